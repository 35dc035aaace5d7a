// The group's durability rules with real `fffs serve` processes and a real cluster mount, on
// disks made slow to sync (an LD_PRELOAD shim, test/fixtures/slowSync.c: while a trigger file
// exists, every fsync and fdatasync of a member first sleeps): a close returns once its version
// is written at every member, before it is synced, and survives kill -9 of every member; fsync
// (of a file or a directory), and the close of an O_DSYNC open, return only once what the mount
// had acknowledged is synced at every member.

import { execFileSync } from 'node:child_process'
import { constants as fsConstants, mkdtempSync, promises as fsp, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchMemberStatus } from '../../src/replication/remoteClient.js'
import { startGroup, type ClusterMount, type TestGroup } from '../helpers/cluster.js'

const VIEW_TIMEOUT_MS = 30_000
const SLOW_SYNC_MS = 4_000 // far longer than a close or a status request takes, even on a loaded machine
const FILES = 12

interface CoreStamps {
  readonly deliveredStamp: bigint
  readonly persistedStamp: bigint
}

let group: TestGroup
let mount: ClusterMount
let shimDir: string
let trigger: string // while it exists, the members' syncs are slow

/** What each member's core reports, asked over a connection of its own. */
async function coreStamps(): Promise<CoreStamps[]> {
  return Promise.all(
    group.config.members.map(async (member) => {
      const status = (await fetchMemberStatus(group.config, member, 5_000)) as { core: { deliveredStamp: string; persistedStamp: string } | null }
      if (status.core === null) throw new Error(`member ${member.id} runs in no epoch`)
      return { deliveredStamp: BigInt(status.core.deliveredStamp), persistedStamp: BigInt(status.core.persistedStamp) }
    }),
  )
}

describe('durability of a group (3 fffs serve processes on slow-syncing disks, cluster mount)', () => {
  beforeAll(async () => {
    shimDir = mkdtempSync(path.join(os.tmpdir(), 'fffs-slow-sync-'))
    const shim = path.join(shimDir, 'slowSync.so')
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(__dirname, '../fixtures/slowSync.c'), '-ldl'])
    trigger = path.join(shimDir, 'slow')
    const wrap = ['env', `LD_PRELOAD=${shim}`, `FFFS_SLOW_SYNC_TRIGGER=${trigger}`, `FFFS_SLOW_SYNC_MS=${SLOW_SYNC_MS}`]
    group = await startGroup(3, { wrapOf: () => wrap })
    for (const id of [0, 1, 2]) group.startMember(id)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    mount = await group.mount('mnt')
  }, 90_000)

  afterAll(async () => {
    await group?.cleanup()
    rmSync(shimDir, { recursive: true, force: true })
  }, 60_000)

  it('closes return before the sync, and kill -9 of every member right after loses none of them', async () => {
    await fsp.writeFile(trigger, '')
    const written = new Map<string, Buffer>()
    for (let i = 0; i < FILES; i++) {
      const bytes = Buffer.from(`acknowledged by close ${i}\n`.repeat(i + 1))
      await fsp.writeFile(mount.p(`closed-${i}`), bytes) // returns after close
      written.set(`closed-${i}`, bytes)
    }
    // The last close is acknowledged while its record is not yet synced at some member.
    const stamps = await coreStamps()
    expect(stamps.some((s) => s.persistedStamp < s.deliveredStamp), `persisted below delivered somewhere: ${JSON.stringify(stamps, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`).toBe(true)
    await Promise.all([group.kill9(0), group.kill9(1), group.kill9(2)])
    await fsp.rm(trigger)
    for (const id of [0, 1, 2]) group.startMember(id)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    for (const [name, bytes] of written) expect((await fsp.readFile(mount.p(name))).equals(bytes), `${name} reads back as written`).toBe(true)
  }, 120_000)

  it('fsync of a directory returns once the names made in it are synced at every member', async () => {
    await fsp.mkdir(mount.p('dir'))
    await fsp.writeFile(trigger, '')
    try {
      await fsp.writeFile(mount.p('dir', 'tmp'), 'saved by rename\n')
      await fsp.rename(mount.p('dir', 'tmp'), mount.p('dir', 'saved'))
      const dir = await fsp.open(mount.p('dir'), 'r')
      try {
        await dir.sync()
      } finally {
        await dir.close()
      }
      // The rename is the last delivered record.
      const stamps = await coreStamps()
      for (const s of stamps) expect(s.persistedStamp).toBe(s.deliveredStamp)
    } finally {
      await fsp.rm(trigger, { force: true })
    }
  }, 60_000)

  it('the close of an O_DSYNC open returns once its version is synced at every member', async () => {
    await fsp.writeFile(trigger, '')
    try {
      const file = await fsp.open(mount.p('dsync'), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_DSYNC, 0o644)
      try {
        await file.write('synced before close returns\n')
      } finally {
        await file.close()
      }
      const stamps = await coreStamps()
      for (const s of stamps) expect(s.persistedStamp).toBe(s.deliveredStamp)
    } finally {
      await fsp.rm(trigger, { force: true })
    }
  }, 60_000)

  it('fsync returns once the version is synced at every member', async () => {
    await fsp.writeFile(trigger, '')
    try {
      const file = await fsp.open(mount.p('fsynced'), 'w')
      try {
        await file.write('synced before fsync returns\n')
        await file.sync()
        // Nothing else is written: the version fsync committed is the last delivered record.
        const stamps = await coreStamps()
        for (const s of stamps) expect(s.persistedStamp).toBe(s.deliveredStamp)
      } finally {
        await file.close()
      }
    } finally {
      await fsp.rm(trigger, { force: true })
    }
  }, 60_000)
})
