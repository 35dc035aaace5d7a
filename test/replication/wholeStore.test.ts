// Whole-store transfer in a group of real `fffs serve` processes. Members 0 and 2 keep their data
// on small tmpfs volumes (4 MiB log segments), so retention and `fffs gc` collect their segments
// and move their log base past where member 1, stopped meanwhile, ends its log: no record suffix
// can bring member 1 up to date, and it rejoins by fetching a donor's whole store.
// (a) member 1 stopped with its store kept: on restart it discards that store, installs the
// image, and answers every read as the others do (ERANGE below the floor, the pinned snapshot,
// the same bytes live); the three stores hold the same files and versions.
// (b) member 1's data directory wiped, and the member killed (-9) in the middle of the image's
// transfer: restarted, it drops the partial image and completes.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchMemberStatus } from '../../src/replication/remoteClient.js'
import { Store } from '../../src/store/store.js'
import { cli, replicaContents, sha256, startGroupWithSmallDisk, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { errCode, instantNow } from '../helpers/mount.js'

const VIEW_TIMEOUT_MS = 60_000
const JOINER = 1
const MiB = 1024 * 1024

describe('whole-store transfer: a member whose log ends below the others\' log base rejoins', () => {
  let group: TestGroup
  let mount: ClusterMount
  let stop: (() => Promise<void>) | null = null
  const live = new Map<string, string>() // file -> sha256 of its contents now

  beforeAll(async () => {
    ;({ group, mount, stop } = await startGroupWithSmallDisk([0, 2], '256m', { retention: { keepAllFor: '1s', force: true } }))
  }, 90_000)
  afterAll(async () => {
    await stop?.()
  })

  const dataDirOf = (id: number): string => path.resolve(path.dirname(group.config.path), group.config.members.find((m) => m.id === id)!.dataDir)
  const historyOf = async (id: number): Promise<{ floorStamp: string; logBase: string }> => {
    const status = (await fetchMemberStatus(group.config, group.config.members.find((m) => m.id === id)!, 2_000)) as { history: { floorStamp: string; logBase: string } }
    return status.history
  }
  const write = async (name: string, bytes: Buffer): Promise<void> => {
    await fsp.writeFile(mount.p(name), bytes)
    live.set(name, sha256(bytes))
  }
  const churn = async (rounds: number, seed: number): Promise<void> => {
    for (let i = 0; i < rounds; i++) await write('churn', Buffer.alloc(MiB, seed + i))
  }
  /** Stops the joiner (its store kept) and returns where its log ends. */
  const stopJoiner = async (): Promise<bigint> => {
    const proc = group.members.get(JOINER)!
    proc.child.kill('SIGTERM')
    expect(await proc.waitExit(10_000)).toBe(true)
    await group.waitView([0, 2], VIEW_TIMEOUT_MS)
    const store = new Store(dataDirOf(JOINER))
    await store.open()
    const end = store.appliedStamp
    await store.close()
    return end
  }
  /** Runs `fffs gc` until both donors' log base passed `stamp` (the background runs help). */
  const collectPast = (stamp: bigint): Promise<boolean> =>
    waitFor(`members 0 and 2 to collect their logs past ${stamp}`, 90_000, async () => {
      const gc = await cli(['gc', '--mount', mount.mountpoint])
      expect(gc.status, gc.stderr).toBe(0)
      const bases = await Promise.all([0, 2].map(async (id) => BigInt((await historyOf(id)).logBase)))
      return bases.every((base) => base > stamp) ? true : undefined
    }, 500)
  /** The joiner's view of every file, read through a mount that talks to it first, against the group's mount. */
  const expectSameThroughJoiner = async (name: string): Promise<ClusterMount> => {
    const via = await group.mount(name, await group.writeClientConfig(`${name}.json`, JOINER))
    for (const [file, digest] of live) expect({ file, digest: sha256(await fsp.readFile(via.p(file))) }).toEqual({ file, digest })
    return via
  }

  it('(a) a member stopped while the others collected rejoins with their whole store and reads as they do', async () => {
    for (let i = 0; i < 6; i++) await write(`keep-${i}`, Buffer.alloc(256 * 1024, 0x40 + i))
    await write('gone', Buffer.from('deleted while member 1 is down'))
    await churn(6, 1)
    const joinerEnd = await stopJoiner()

    // Overwrites, a delete, a pinned snapshot and more overwrites while member 1 is down.
    await write('keep-0', Buffer.alloc(300 * 1024, 0x61))
    await fsp.rm(mount.p('gone'))
    live.delete('gone')
    await churn(4, 20)
    await fsp.mkdir(mount.p('.snapshot', 'pin'))
    const hold = await cli(['snapshot', 'hold', 'pin', 'test', '--mount', mount.mountpoint])
    expect(hold.status, hold.stderr).toBe(0)
    await churn(3, 40)
    const droppedAt = await instantNow() // churn's version then is overwritten below, and dropped once the floor passes
    await churn(10, 60)
    await new Promise((resolve) => setTimeout(resolve, 1_200)) // keepAllFor 1s: the floor can pass every overwrite
    await collectPast(joinerEnd)
    const pinnedChurn = sha256(await fsp.readFile(mount.p('.snapshot', 'pin', 'churn'))) // what the others answer (the hold keeps it)

    group.startMember(JOINER)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    const output = group.members.get(JOINER)!.output()
    expect(output).toMatch(/fetching member \d's whole store/)
    expect(output).toMatch(/whole-store transfer from member \d: /)
    expect(output).not.toMatch(/EIO|internal error|corruption/)

    const via = await expectSameThroughJoiner('via-joiner-a')
    expect(await errCode(fsp.readFile(via.p('gone')))).toBe('ENOENT')
    expect(sha256(await fsp.readFile(via.p('.snapshot', 'pin', 'churn')))).toBe(pinnedChurn)
    await waitFor('the floor past the overwritten churn version', 30_000, async () => ((await errCode(fsp.readFile(mount.p(`churn@${droppedAt}`)))) === 'ERANGE' ? true : undefined), 500)
    expect(await errCode(fsp.readFile(via.p(`churn@${droppedAt}`)))).toBe('ERANGE')
    await via.stop()
  }, 300_000)

  it('(b) a wiped member killed (-9) during the transfer restarts and completes it', async () => {
    const joinerEnd = await stopJoiner()
    await fsp.rm(dataDirOf(JOINER), { recursive: true, force: true })
    // Enough kept data that the image takes a while to copy; more churn past the log end.
    for (let i = 0; i < 12; i++) await write(`big-${i}`, Buffer.alloc(4 * MiB, 0x10 + i))
    await churn(6, 80)
    await new Promise((resolve) => setTimeout(resolve, 1_200))
    await collectPast(joinerEnd)

    // Killed once the image has bytes on disk and before it is complete.
    const image = path.join(dataDirOf(JOINER), 'incoming-image')
    group.startMember(JOINER)
    const killedAt = await waitFor('the whole-store image to start arriving', 60_000, async () => {
      const segments = await fsp.readdir(path.join(image, 'segments')).catch(() => [])
      if (segments.length === 0) return undefined
      group.members.get(JOINER)!.child.kill('SIGKILL')
      return segments.length
    }, 5)
    expect(await group.members.get(JOINER)!.waitExit(10_000)).toBe(true)
    expect(killedAt).toBeGreaterThan(0)
    expect(await fsp.stat(path.join(image, 'READY')).catch(() => null)).toBeNull() // killed mid-transfer, not after it

    group.startMember(JOINER)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    expect(group.members.get(JOINER)!.output()).toMatch(/whole-store transfer from member \d: /)
    expect(await fsp.stat(image).catch(() => null)).toBeNull()
    const via = await expectSameThroughJoiner('via-joiner-b')
    await via.stop()

    // Each replica's store, read directly once the group stopped: the same files and versions.
    await mount.stop()
    for (const proc of group.members.values()) {
      proc.child.kill('SIGTERM')
      expect(await proc.waitExit(10_000)).toBe(true)
    }
    // Digests, not contents: deep equality of 50 MB of Buffers takes the matcher minutes.
    const replicas = await Promise.all([0, 1, 2].map(async (id) => new Map([...(await replicaContents(dataDirOf(id)))].map(([name, f]) => [name, { sha256: sha256(f.content), versions: f.versions }]))))
    expect([...replicas[0]!.keys()].sort()).toEqual([...live.keys()].sort())
    for (const [name, digest] of live) expect({ name, digest: replicas[0]!.get(name)!.sha256 }).toEqual({ name, digest })
    for (const replica of replicas.slice(1)) expect(replica).toEqual(replicas[0])
  }, 300_000)
})
