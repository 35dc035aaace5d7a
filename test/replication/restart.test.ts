// Replicas crash and come back: real `fffs serve` processes, a real cluster mount, ordinary
// file I/O. A killed replica restarts, rejoins through a reconfigure and catches up by state
// transfer; after every replica is killed at once the group restarts from the longest log; a
// replica whose log ends in a record the others never had discards its log when it rejoins.
// Every write acknowledged by close must be present, and the replicas' stores must hold the
// same files, versions and stamps byte for byte.

import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT_INO } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { FffsError } from '../../src/errors.js'
import { RemoteClient } from '../../src/replication/remoteClient.js'
import { hlcCeilingOfUs, wallClockUs } from '../../src/temporal/hlc.js'
import { replicaContents, startGroup, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'

const VIEW_TIMEOUT_MS = 30_000
const acked = new Map<string, Buffer>()
let group: TestGroup
let mount: ClusterMount

async function startAll(): Promise<void> {
  for (const id of [0, 1, 2]) group.startMember(id)
  await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
}

async function stopMember(id: number): Promise<void> {
  const proc = group.members.get(id)!
  proc.child.kill('SIGTERM')
  await proc.waitExit(10_000)
}

async function writeAcked(name: string, bytes: Buffer): Promise<void> {
  await fsp.writeFile(mount.p(name), bytes) // returns after close: durable at every replica
  acked.set(name, bytes)
}

async function writeBatch(prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const large = i % 10 === 9
    await writeAcked(`${prefix}-${i}`, large ? randomBytes(3 * 1024 * 1024 + i) : Buffer.from(`${prefix} file ${i}\n`))
  }
}

async function expectAllAcked(): Promise<void> {
  for (const [name, bytes] of acked) {
    const read = await fsp.readFile(mount.p(name))
    expect(read.equals(bytes), `${name} reads back as written`).toBe(true)
  }
}

describe('replicas crash and restart (3 fffs serve processes, cluster mount)', () => {
  beforeAll(async () => {
    group = await startGroup(3)
    await startAll()
    mount = await group.mount('mnt')
  }, 90_000)

  afterAll(async () => {
    await group?.cleanup()
  }, 60_000)

  it('a killed replica misses writes, restarts, rejoins and catches up', async () => {
    await writeBatch('before', 20)
    await group.kill9(2)
    await writeBatch('while-down', 20) // the two survivors are a majority of the view: writes go on
    const restarted = group.startMember(2)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    await waitFor('member 2 to report its state transfer', VIEW_TIMEOUT_MS, () => (/state transfer from member \d: \d+ records/.test(restarted.output()) ? true : undefined))
    await writeBatch('after-rejoin', 10)
    await expectAllAcked()
  }, 120_000)

  it('every replica killed at once: the group restarts from its logs with every acknowledged write', async () => {
    await Promise.all([group.kill9(0), group.kill9(1), group.kill9(2)])
    await startAll()
    await expectAllAcked()
    await writeBatch('after-restart', 10)
    await expectAllAcked()
  }, 120_000)

  // A mount that fails over may land on a member that restarted and has not rejoined: its log
  // can end in records the group went on without, so it must not answer a past cut from it.
  it('a past cut is read only where it is known stable: a member restarted alone refuses it (EAGAIN), then serves it once its group runs', async () => {
    const bytes = Buffer.from('frozen at T\n')
    await writeAcked('frozen-cut', bytes)
    const readAt = async (client: RemoteClient, cut: bigint): Promise<Buffer> => {
      const attr = await client.walk(['frozen-cut'], cut)
      const into = Buffer.alloc(attr.sizeBytes)
      await client.read(attr, 0, into, attr.sizeBytes)
      return into
    }
    const before = await RemoteClient.connect(group.config)
    const cut = hlcCeilingOfUs(wallClockUs())
    try {
      await before.waitStable(cut, 10_000)
      expect(await readAt(before, cut)).toEqual(bytes)
    } finally {
      await before.close()
    }
    await Promise.all([group.kill9(0), group.kill9(1), group.kill9(2)])
    const alone = group.startMember(0)
    await waitFor('member 0 serving clients', VIEW_TIMEOUT_MS, () => (alone.output().includes('serving clients') ? true : undefined))
    const client = await RemoteClient.connect(group.config)
    try {
      const refused = await readAt(client, cut).catch((err: unknown) => err)
      expect(refused).toBeInstanceOf(FffsError)
      expect((refused as FffsError).code).toBe('EAGAIN')
      expect((refused as FffsError).message).toMatch(/does not hold/)
      for (const id of [1, 2]) group.startMember(id)
      await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
      expect(await readAt(client, cut)).toEqual(bytes)
    } finally {
      await client.close()
    }
    await expectAllAcked()
  }, 120_000)

  it('the replicas hold identical files, versions and stamps', async () => {
    await mount.stop()
    await Promise.all([0, 1, 2].map(stopMember))
    await expectIdenticalReplicas()
  }, 60_000)

  // What a total crash can leave: member 0 delivered and persisted a record no other member
  // persisted (never acknowledged). Members 1 and 2, a majority of the last view, restart without
  // it and go on; member 0 then rejoins. Its last record is not in the donor's log, so it must
  // discard its log and fetch everything, not keep the record under the group's.
  it('a replica whose log ends in a record the group went on without discards its log when it rejoins', async () => {
    const dataDir = group.config.members.find((m) => m.id === 0)!.dataDir
    const store = new Store(dataDir)
    await store.open()
    const stamp = store.appliedStamp + 1n
    const mutation = { type: 'mknod', parent: ROOT_INO, name: 'divergent', kind: 'file', mode: 0o644, uid: 0, gid: 0 } as const
    const logged = store.appendRecord(stamp, mutation)
    await store.sync()
    await store.apply(stamp, mutation, logged)
    await store.close()
    group.startMember(1)
    group.startMember(2)
    await group.waitView([1, 2], VIEW_TIMEOUT_MS)
    mount = await group.mount('mnt-after-divergence')
    await writeBatch('without-0', 10)
    const rejoined = group.startMember(0)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    expect(rejoined.output()).toMatch(/member \d does not hold this log's last record \(\d+\): discarding this log/)
    await writeBatch('after-discard', 5)
    await expectAllAcked()
    await mount.stop()
    await Promise.all([0, 1, 2].map(stopMember))
    await expectIdenticalReplicas()
  }, 120_000)
})

/** Every replica holds exactly the acknowledged files, with the same versions and stamps. */
async function expectIdenticalReplicas(): Promise<void> {
  const replicas = await Promise.all(group.config.members.map((m) => replicaContents(m.dataDir)))
  const [first, ...others] = replicas
  expect(first!.size).toBe(acked.size)
  for (const [name, bytes] of acked) expect(first!.get(name)?.content.equals(bytes), name).toBe(true)
  for (const other of others) {
    expect([...other.keys()].sort()).toEqual([...first!.keys()].sort())
    for (const [name, file] of first!) {
      expect(other.get(name)!.content.equals(file.content), name).toBe(true)
      expect(other.get(name)!.versions).toEqual(file.versions)
    }
  }
}
