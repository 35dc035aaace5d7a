// History retention in a group of real `fffs serve` processes: the group config's policy
// reaches every member, the floor moves by ordered records (every replica drops exactly the
// same versions), a restarted member reads as the others do (ERANGE below the floor, the same
// bytes above it), `fffs status` shows the floor of each member, `fffs gc` and `fffs log --gc`
// work against the group.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { fetchMemberStatus } from '../../src/replication/remoteClient.js'
import { ROOT_INO } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { hlcCeilingOfUs, HLC_MAX } from '../../src/temporal/hlc.js'
import { cli, startRunningGroup, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { errCode, instantNow, python } from '../helpers/mount.js'

const VIEW_TIMEOUT_MS = 30_000
const KEEP_ALL_FOR = '3s'

interface HistoryJson {
  readonly floor: string | null
  readonly floorStamp: string
  readonly policy: string | null
  readonly compacting: boolean
}

describe('retention in a group (3 fffs serve processes, cluster mounts)', () => {
  let group: TestGroup
  let mount: ClusterMount
  beforeAll(async () => {
    group = await startRunningGroup(3, { fields: { retention: { keepAllFor: KEEP_ALL_FOR, force: true } } })
    mount = await group.mount('mnt')
  }, 90_000)
  afterAll(async () => {
    await group?.cleanup()
  })

  const historyOf = async (id: number): Promise<HistoryJson> => {
    const status = (await fetchMemberStatus(group.config, group.config.members.find((m) => m.id === id)!, 2_000)) as { history: HistoryJson }
    return status.history
  }
  /** Waits until every member named applied a floor past `iso` and finished the compaction it started. */
  const waitFloorPast = (ids: readonly number[], iso: string): Promise<string> =>
    waitFor(`the history floor past ${iso} at members ${ids.join(', ')}`, 30_000, async () => {
      const states = await Promise.all(ids.map(historyOf))
      return states.every((h) => h.floor !== null && h.floor > iso && !h.compacting) ? states[0]!.floor! : undefined
    })

  /** Waits until a mount knows a floor past `iso` (user.fffs.history_floor on its root). */
  const waitMountFloorPast = (m: ClusterMount, iso: string): Promise<string> =>
    waitFor(`${m.mountpoint} to know a floor past ${iso}`, 30_000, () => {
      const floor = python('import os,sys; print(os.getxattr(sys.argv[1], "user.fffs.history_floor").decode())', m.mountpoint).trim()
      return floor > iso ? floor : undefined
    })

  it('drops the same versions at every replica; a restarted member reads as the others do', async () => {
    const f = mount.p('sensor.log')
    await fsp.writeFile(f, 'one')
    await fsp.writeFile(f, 'two')
    const afterTwo = await instantNow()
    await fsp.writeFile(f, 'three')
    const afterThree = await instantNow()
    expect(await fsp.readFile(`${f}@${afterTwo}`, 'utf8')).toBe('two')

    // `fffs gc` against the group: the first member orders the records, each member collects.
    const gc = await cli(['gc', '--mount', mount.mountpoint])
    expect(gc.status, gc.stderr).toBe(0)
    for (const id of [0, 1, 2]) expect(gc.stdout).toMatch(new RegExp(`member ${id}: floor \\S+;`))

    await waitFloorPast([0, 1, 2], afterThree) // past the time 'two' was superseded: no cut at or above it sees 'two'
    await waitMountFloorPast(mount, afterThree)
    expect(await errCode(fsp.readFile(`${f}@${afterTwo}`))).toBe('ERANGE')
    expect(await fsp.readFile(f, 'utf8')).toBe('three')

    // Member 1 is down while the group writes more, then comes back and catches up.
    const proc = group.members.get(1)!
    proc.child.kill('SIGTERM')
    expect(await proc.waitExit(10_000)).toBe(true)
    await group.waitView([0, 2], VIEW_TIMEOUT_MS)
    await fsp.writeFile(mount.p('while-down.txt'), 'written while member 1 was down')
    group.startMember(1)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    const now = await instantNow()
    await waitFloorPast([0, 1, 2], now)

    // Through member 1: what the others answer.
    const viaOne = await group.mount('via-1', await group.writeClientConfig('via-1.json', 1))
    const g = viaOne.p('sensor.log')
    expect(await errCode(fsp.readFile(`${g}@${afterTwo}`))).toBe('ERANGE')
    expect(await fsp.readFile(`${g}@${now}`, 'utf8')).toBe('three')
    expect(await fsp.readFile(viaOne.p('while-down.txt'), 'utf8')).toBe('written while member 1 was down')

    // Status: every member's floor, the same; the text says it once.
    const json = JSON.parse((await cli(['status', '--mount', mount.mountpoint, '--json'])).stdout) as { members: Array<{ id: number; status: { history: HistoryJson } }> }
    expect(json.members.map((m) => m.status.history.policy)).toEqual([`keepAllFor ${KEEP_ALL_FOR}`, `keepAllFor ${KEEP_ALL_FOR}`, `keepAllFor ${KEEP_ALL_FOR}`])
    expect(json.members.every((m) => m.status.history.floor !== null && m.status.history.floor > afterTwo)).toBe(true)
    expect((await cli(['status', '--mount', mount.mountpoint])).stdout).toMatch(new RegExp(`^history floor \\d{4}-\\S+Z \\(policy keepAllFor ${KEEP_ALL_FOR}\\)`, 'm'))
    const audit = await cli(['log', '--gc', '--mount', mount.mountpoint])
    expect(audit.status, audit.stderr).toBe(0)
    expect(audit.stdout).toMatch(/retention \(keepAllFor 3s\): floor \S+; \d+ versions and \d+ deleted nodes dropped/)

    // Each replica's store, read directly once the group stopped: the same versions, ERANGE below the floor alike.
    await viaOne.stop()
    await mount.stop()
    for (const [, member] of group.members) {
      member.child.kill('SIGTERM')
      await member.waitExit(10_000)
    }
    const below = hlcCeilingOfUs(Date.parse(afterTwo) * 1000)
    const replicas = await Promise.all(group.config.members.map((m) => replicaHistory(path.resolve(path.dirname(group.config.path), m.dataDir), below)))
    expect(replicas[0]!.belowFloor).toBe('ERANGE')
    expect(replicas[0]!.versions.length).toBeGreaterThanOrEqual(1)
    for (const replica of replicas) expect(replica).toEqual(replicas[0])
  }, 240_000)
})

/** sensor.log's versions in one replica's store, and what a read of it at `below` (under the floor) answers. */
async function replicaHistory(dataDir: string, below: bigint): Promise<{ versions: string[]; live: string; belowFloor: string }> {
  const store = new Store(dataDir)
  await store.open()
  try {
    const ino = (await store.lookup(ROOT_INO, 'sensor.log', HLC_MAX))!
    const versions = (await store.versions(ino)).map((v) => `${v.version}@${v.stamp}`)
    const attr = (await store.attr(ino, HLC_MAX))!
    const content = Buffer.alloc(attr.sizeBytes)
    await store.read(attr, 0, content, attr.sizeBytes)
    const belowFloor = await store.attr(ino, below).then(
      () => 'read',
      (err: unknown) => (err instanceof FffsError ? err.code : String(err)),
    )
    return { versions, live: content.toString(), belowFloor }
  } finally {
    await store.close()
  }
}
