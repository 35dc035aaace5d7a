// A full disk at one member of a group (real `fffs serve` processes; member 2's data directory on
// a small tmpfs): the member orders that its disk is short of space, and the whole group refuses
// new data with ENOSPC (the writer's close gets it, never EIO, never a hang) while every member
// stays in the view; nothing acknowledged is lost; `fffs status` names the member; deletes and
// retention free its disk, and writes resume without a restart. Restarted on a disk filled to
// the last byte by something else, the member starts (its reserve file given back), rejoins and
// serves reads; the group refuses new data until that disk has room.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp, statfsSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, startGroupWithSmallDisk, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { errCode } from '../helpers/mount.js'

const VIEW_TIMEOUT_MS = 30_000
const FILE_BYTES = 1024 * 1024
const DISK = '64m'
const FULL_MEMBER = 2

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

describe('a full disk at one member of a group', () => {
  let group: TestGroup
  let mount: ClusterMount
  let volume: string
  let stop: (() => Promise<void>) | null = null
  const written = new Map<string, string>() // file -> sha256 of what a successful close committed

  beforeAll(async () => {
    ;({ group, mount, volume, stop } = await startGroupWithSmallDisk(FULL_MEMBER, DISK, { retention: { keepAllFor: '1s', force: true } }))
  }, 90_000)
  afterAll(async () => {
    await stop?.()
  })

  it('refuses new data with ENOSPC in the whole group, loses nothing, and takes writes again once space is freed', async () => {
    let refusal = 'none'
    for (let i = 0; i < 128 && refusal === 'none'; i++) {
      const name = mount.p(`f${i}`)
      const bytes = Buffer.alloc(FILE_BYTES, i & 0xff)
      bytes.writeUInt32LE(i, 0)
      const code = await errCode(fsp.writeFile(name, bytes))
      if (code === 'no error') written.set(name, sha(bytes))
      else refusal = code
    }
    expect(refusal).toBe('ENOSPC')
    expect(written.size).toBeGreaterThan(10)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS) // the full member did not fail: it is in the view
    for (const [name, digest] of written) expect({ name, digest: sha(await fsp.readFile(name)) }).toEqual({ name, digest })
    expect(await errCode(fsp.writeFile(mount.p('more'), Buffer.alloc(FILE_BYTES)))).toBe('ENOSPC')
    const status = await cli(['status', '--mount', mount.mountpoint])
    expect(status.stdout).toMatch(new RegExp(`^member ${FULL_MEMBER} disk FULL: `, 'm'))

    // Deletes go on; retention drops what they freed and each member collects its segments.
    for (const name of written.keys()) await fsp.unlink(name)
    await waitFor('writes taken again', 60_000, async () => ((await errCode(fsp.writeFile(mount.p('after'), Buffer.alloc(FILE_BYTES, 7)))) === 'no error' ? true : undefined), 500)
    expect((await fsp.readFile(mount.p('after'))).equals(Buffer.alloc(FILE_BYTES, 7))).toBe(true)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
  }, 240_000)

  it('a member restarted on a completely full disk starts, rejoins and serves reads', async () => {
    const files = new Map<string, string>()
    for (let i = 0; i < 4; i++) {
      const bytes = Buffer.alloc(FILE_BYTES, 100 + i)
      await fsp.writeFile(mount.p(`g${i}`), bytes)
      files.set(`g${i}`, sha(bytes))
    }
    const proc = group.members.get(FULL_MEMBER)!
    proc.child.kill('SIGKILL')
    expect(await proc.waitExit(10_000)).toBe(true)
    await group.waitView([0, 1], VIEW_TIMEOUT_MS)
    // Something else fills the member's disk to the last byte.
    const filler = path.join(volume, 'filler')
    expect(spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M']).status).not.toBe(0) // stopped by ENOSPC
    expect(statfsSync(volume).bavail).toBe(0)

    group.startMember(FULL_MEMBER)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    const viaFull = await group.mount('via-full', await group.writeClientConfig('via-full.json', FULL_MEMBER))
    try {
      for (const [name, digest] of files) expect({ name, digest: sha(await fsp.readFile(viaFull.p(name))) }).toEqual({ name, digest })
      expect((await fsp.readFile(viaFull.p('after'))).equals(Buffer.alloc(FILE_BYTES, 7))).toBe(true)
      await waitFor('new data refused while the member is short of space', 30_000, async () => ((await errCode(fsp.writeFile(mount.p('refused'), Buffer.alloc(FILE_BYTES)))) === 'ENOSPC' ? true : undefined), 500)
      await fsp.rm(filler)
      await waitFor('writes taken again once the filler is gone', 60_000, async () => ((await errCode(fsp.writeFile(mount.p('later'), Buffer.alloc(FILE_BYTES, 9)))) === 'no error' ? true : undefined), 500)
      expect((await fsp.readFile(viaFull.p('later'))).equals(Buffer.alloc(FILE_BYTES, 9))).toBe(true)
    } finally {
      await viaFull.stop()
    }
    expect(proc.output() + group.members.get(FULL_MEMBER)!.output()).not.toMatch(/Database failed to open|internal error|corruption/)
  }, 240_000)
})
