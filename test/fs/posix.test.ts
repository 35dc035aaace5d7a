// POSIX facts as a file's history records them (`fffs log`): the names a hard-linked file had
// with each version, and what clearing set-user-ID after another user's write costs.

import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startMount, type TestMount } from '../helpers/mount.js'
import { ALICE, errnoOf } from '../posix/users.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount()
  await fsp.chmod(m.root, 0o755) // the test's temp dir: another user must reach the mount
})
afterAll(async () => {
  await m?.cleanup()
})

interface Row {
  version: number
  sizeBytes: number | null // null: a row where the name was removed
  links: number | null
  change: string
}

describe('fffs log of a hard-linked file', () => {
  it('lists what each name returned (a linked name from its link on) and, with --object, the one inode across both, with the links each version had', async () => {
    await fsp.writeFile(m.p('report.txt'), 'draft')
    await fsp.link(m.p('report.txt'), m.p('report-copy.txt'))
    await fsp.writeFile(m.p('report-copy.txt'), 'final')
    await fsp.unlink(m.p('report.txt'))
    const log = (...args: string[]): Array<[number, number | null, number | null, string]> => {
      const run = runCli(['log', '--json', ...args])
      expect(run.status, run.stderr).toBe(0)
      return (JSON.parse(run.stdout) as Row[]).map((r) => [r.version, r.sizeBytes, r.links, r.change])
    }
    expect(log(m.p('report-copy.txt'))).toEqual([
      [1, 5, 2, 'link'],
      [2, 5, 2, 'version'],
      [3, 5, 1, 'unlink'],
    ])
    expect(log(m.p('report.txt'))).toEqual([
      [1, 0, 1, 'create'],
      [2, 5, 1, 'version'],
      [3, 5, 2, 'link'],
      [4, 5, 2, 'version'],
      [5, null, null, 'removed'],
    ])
    expect(log('--object', m.p('report-copy.txt'))).toEqual([
      [1, 0, 1, 'create'],
      [2, 5, 1, 'version'],
      [3, 5, 2, 'link'],
      [4, 5, 2, 'version'],
      [5, 5, 1, 'unlink'],
    ])
    expect(runCli(['log', m.p('report-copy.txt')]).stdout).toMatch(/^VERSION\s+TIME\s+SENSOR_TIME\s+SIZE\s+LINKS\s+INODE\s+CHANGE\n/)
  })
})

describe('set-user-ID after a write by another user', () => {
  it('is cleared by one attribute version before the write, however many write calls it takes', async () => {
    await fsp.writeFile(m.p('tool'), 'v1')
    await fsp.chmod(m.p('tool'), 0o4777)
    const fourWrites = `fd = os.open('tool', os.O_WRONLY)\nfor chunk in (b'a', b'b', b'c', b'd'):\n    os.write(fd, chunk)\nos.close(fd)`
    expect(await errnoOf(ALICE, m.mountpoint, fourWrites)).toBe('OK')
    expect((await fsp.stat(m.p('tool'))).mode & 0o7777).toBe(0o777)
    const rows = (JSON.parse(runCli(['log', '--json', m.p('tool')]).stdout) as Row[]).map((r) => [r.sizeBytes, r.change])
    expect(rows).toEqual([[0, 'create'], [2, 'version'], [2, 'setattr'], [2, 'setattr'], [4, 'version']])
  })
})
