// A directory far larger than one reply of the member protocol (its frame header is at most
// 1 MiB): listed through a mount of a 3-replica group live, with `ls -l`, and at a past time.
// The files are made through a RemoteClient of the group, many submits in flight (the group
// batches them), so that making them takes seconds, not the minutes one create at a time would.

import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RemoteClient } from '../../src/replication/remoteClient.js'
import { ROOT_INO } from '../../src/store/records.js'
import { startRunningGroup, type ClusterMount, type TestGroup } from '../helpers/cluster.js'

const execFileP = promisify(execFile)

const FILES = 20_000
const IN_FLIGHT = 1_000
// ~100-byte names: 20k of them are ~2.5 MiB as one listing, more than a frame header holds.
const nameOf = (i: number): string => `${String(i).padStart(6, '0')}-${'n'.repeat(93)}`

describe('a directory of 20k entries in a 3-replica group', () => {
  let group: TestGroup
  let mount: ClusterMount
  let madeAt = ''
  beforeAll(async () => {
    group = await startRunningGroup(3)
    const client = await RemoteClient.connect(group.config, { log: () => undefined })
    try {
      const { ino: dir } = await client.submit({ type: 'mknod', parent: ROOT_INO, name: 'big', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
      for (let from = 0; from < FILES; from += IN_FLIGHT) {
        const names = Array.from({ length: Math.min(IN_FLIGHT, FILES - from) }, (_, i) => nameOf(from + i))
        await Promise.all(names.map((name) => client.submit({ type: 'mknod', parent: dir!, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })))
      }
      madeAt = new Date(Date.now() + 10).toISOString()
    } finally {
      await client.close()
    }
    mount = await group.mount('mnt')
  }, 300_000)
  afterAll(async () => {
    await group?.cleanup()
  })

  it('lists every entry live (readdir)', () => {
    const names = readdirSync(mount.p('big'))
    expect(names.length).toBe(FILES)
    expect(names.sort()).toEqual(Array.from({ length: FILES }, (_, i) => nameOf(i)))
  })

  it('lists every entry with its attributes (ls -l: readdirplus)', async () => {
    const { stdout } = await execFileP('ls', ['-l', mount.p('big')], { maxBuffer: 64 * 1024 * 1024 })
    const rows = stdout.split('\n').filter((line) => line.startsWith('-rw-r--r--'))
    expect(rows.length).toBe(FILES)
    expect(rows[FILES - 1]!.endsWith(nameOf(FILES - 1))).toBe(true)
  })

  it('lists every entry at a past time (the directory history)', () => {
    const names = readdirSync(mount.p(`big@${madeAt}`))
    expect(names.length).toBe(FILES)
    expect(names[0]).toBe(nameOf(0))
  })
})
