// Which users a mount serves: every user when mounted by root, or by another user where
// /etc/fuse.conf allows it; the kernel checks permissions in both cases.

import { describe, expect, it } from 'vitest'
import { mountOptions } from '../../src/fs/mount.js'

describe('mount options', () => {
  it('root: every user, permissions checked by the kernel', () => {
    expect(mountOptions(0, null)).toEqual({ options: 'default_permissions,allow_other', privateBecause: null })
  })

  it("another user: every user only where fuse.conf says user_allow_other, else one line says why not", () => {
    expect(mountOptions(1000, '# mount_max = 1000\nuser_allow_other\n').options).toBe('default_permissions,allow_other')
    expect(mountOptions(1000, '  user_allow_other # for fffs\n').options).toBe('default_permissions,allow_other')
    for (const conf of [null, '', '#user_allow_other\n', 'user_allow_other_typo\n']) {
      const { options, privateBecause } = mountOptions(1000, conf)
      expect(options).toBe('default_permissions')
      expect(privateBecause).toBe('only this user can use the mount: allow_other needs user_allow_other in /etc/fuse.conf')
    }
  })
})
