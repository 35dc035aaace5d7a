// Sharding: a meta shard and two data shards of 3 replicas, served by three real `fffs serve`
// processes (each serves every shard), behind a real FUSE mount. Files spread over both data
// shards; a version written after reading another, on the other shard, is in every cut that
// holds the later one (HLC piggybacking, also checked directly with a client whose clock is
// ahead); kill -9 of one process (a replica of every shard) stops nothing and loses nothing,
// the restarted process catches up in every shard, and a cut read while writing reads the
// same after the kill, from the restarted member, and after a total restart. Plus the shard map and the stores'
// refusal of misrouted mutations. No assertion is about timing; every wait is bounded.

import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { loadGroupConfig, parseGroupConfig, writeLocalGroup } from '../../src/replication/config.js'
import { RemoteClient, SeenStamp } from '../../src/replication/remoteClient.js'
import { dataShardOf, shardGroups } from '../../src/replication/shards.js'
import { ROOT_INO, type Mutation } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { hlcOf, wallClockUs } from '../../src/temporal/hlc.js'
import { cli, sha256, startGroup, waitFor, Writer, type ClusterMount, type TestGroup, type Written } from '../helpers/cluster.js'

const tmpDirs: string[] = []
const tmp = (): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-shards-'))
  tmpDirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true })
})

describe('the shard map', () => {
  it('three members serve the meta shard and both data shards; six serve disjoint data shards', async () => {
    const compact = await loadGroupConfig(await writeLocalGroup(tmp(), { replicas: 3, shards: 2, basePort: 32000 }))
    const groups = shardGroups(compact)
    expect(groups.map((g) => [g.name, g.role, g.config.members.map((m) => m.id)])).toEqual([
      ['meta', 'meta', [0, 1, 2]],
      ['data0', 'data', [0, 1, 2]],
      ['data1', 'data', [0, 1, 2]],
    ])
    // Shard group g of a member listens on its ports + g and keeps its data in a directory of its own.
    const m1 = compact.members[1]!
    expect(groups[2]!.config.members[1]).toEqual({ ...m1, transportPort: m1.transportPort + 2, clientPort: m1.clientPort + 2, dataDir: path.join(m1.dataDir, 'data1') })
    expect(groups[2]!.config.shardRole).toBe('data')
    const spread = await loadGroupConfig(await writeLocalGroup(tmp(), { replicas: 3, shards: 2, members: 6, basePort: 32100 }))
    expect(shardGroups(spread).map((g) => g.config.members.map((m) => m.id))).toEqual([[0, 1, 2], [0, 1, 2], [3, 4, 5]])
    const one = await loadGroupConfig(await writeLocalGroup(tmp(), { replicas: 3, shards: 1, basePort: 32200 }))
    expect(shardGroups(one).map((g) => [g.name, g.config === one])).toEqual([['all', true]])
  })

  it('refuses a config whose shard groups would share a port', () => {
    const config = {
      version: 1,
      name: 'g',
      members: [
        { id: 0, host: '127.0.0.1', transportPort: 7000, clientPort: 7010, dataDir: 'm0' },
        { id: 1, host: '127.0.0.1', transportPort: 7002, clientPort: 7020, dataDir: 'm1' },
      ],
      layout: { shards: 2, replicas: 2 },
      keyFile: 'k',
    }
    const err = (() => {
      try {
        parseGroupConfig(config, '/x/config.json')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(FffsError)
    expect((err as FffsError).message).toBe('config members[1].transportPort: 127.0.0.1:7002 is already used by members[0].transportPort + 2 (in /x/config.json)')
  })

  it('spreads inodes evenly, also when directories and files alternate', () => {
    const counts = [0, 0]
    for (let ino = 2; ino < 2002; ino += 2) counts[dataShardOf(ino, 2)]!++ // every other inode: the files of a dir/file tree
    expect(Math.min(...counts)).toBeGreaterThan(400)
  })

  it('a data shard store refuses namespace mutations; a meta shard store refuses file contents', async () => {
    const applyLogged = (store: Store, stamp: bigint, mutation: Mutation) => store.apply(stamp, mutation, store.appendRecord(stamp, mutation))
    const data = new Store(tmp(), { role: 'data' })
    const meta = new Store(tmp(), { role: 'meta' })
    await data.open()
    await meta.open()
    try {
      const stamp = hlcOf(wallClockUs(), 0)
      const mknod = await applyLogged(data, stamp, { type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
      expect(mknod).toMatchObject({ ok: false, code: 'EINVAL' })
      const version = await applyLogged(meta, stamp, { type: 'version', ino: 7, ops: [{ op: 'truncate', sizeBytes: 3 }] })
      expect(version).toMatchObject({ ok: false, code: 'EINVAL' })
      // A data shard starts the contents of an inode the meta shard made at its first version.
      const first = await applyLogged(data, stamp + 1n, { type: 'version', ino: 7, ops: [{ op: 'truncate', sizeBytes: 3 }] })
      expect(first).toMatchObject({ ok: true, attr: { ino: 7, sizeBytes: 3 } })
      expect(data.liveAttr(7)).toMatchObject({ ino: 7, kind: 'file', sizeBytes: 3, version: 1 })
    } finally {
      await data.close()
      await meta.close()
    }
  })
})

describe('a sharded group of processes behind a FUSE mount (meta + 2 data shards, 3 replicas)', () => {
  let group: TestGroup
  let mount: ClusterMount
  const acknowledged: Written[] = [] // files whose close returned, across the tests below
  const frozen = { at: '', digest: '' } // a cut read while writing, read again after failures

  /** The data shard whose log holds `marker` (every member keeps each shard's log under dataDir/SHARD). */
  async function shardHolding(marker: string, memberId = 0): Promise<string[]> {
    const dataDir = group.config.members.find((m) => m.id === memberId)!.dataDir
    const found: string[] = []
    for (const shard of ['meta', 'data0', 'data1']) {
      const segments = path.join(dataDir, shard, 'segments')
      for (const file of await fsp.readdir(segments)) {
        if ((await fsp.readFile(path.join(segments, file))).includes(marker)) found.push(shard)
      }
    }
    return found
  }

  /** Names and contents of stream/ at a cut: what a frozen read must keep returning. */
  async function treeDigest(where: ClusterMount, at: string): Promise<string> {
    const dir = where.p(`stream@${at}`)
    const names = (await fsp.readdir(dir)).sort()
    const hash = createHash('sha256')
    for (const name of names) hash.update(name).update(await fsp.readFile(path.join(dir, name)))
    return `${names.length} files ${hash.digest('hex')}`
  }

  beforeAll(async () => {
    group = await startGroup(3, { shards: 2 })
    for (const m of group.config.members) group.startMember(m.id)
    await group.waitView([0, 1, 2], 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${[...group.members].map(([id, p]) => `[member ${id}]\n${p.output()}`).join('\n')}`)
    })
    mount = await group.mount('mnt')
  })

  afterAll(async () => {
    await group?.cleanup()
  })

  it('file contents land on both data shards, names only on the meta shard; everything reads back', async () => {
    await fsp.mkdir(mount.p('dir'))
    const written = new Map<string, string>()
    for (let i = 0; i < 16; i++) {
      const content = `content-${i}-${randomBytes(8).toString('hex')}`
      await fsp.writeFile(mount.p('dir', `f${i}.txt`), content)
      written.set(`f${i}.txt`, content)
    }
    expect((await fsp.readdir(mount.p('dir'))).sort()).toEqual([...written.keys()].sort())
    const shardsUsed = new Set<string>()
    for (const [name, content] of written) {
      expect(await fsp.readFile(mount.p('dir', name), 'utf8')).toBe(content)
      const holders = await shardHolding(content)
      expect(holders, `${name}'s bytes are in exactly one data shard`).toHaveLength(1)
      expect(holders[0]).toMatch(/^data[01]$/)
      shardsUsed.add(holders[0]!)
    }
    expect([...shardsUsed].sort()).toEqual(['data0', 'data1'])
    expect(await shardHolding('f15.txt')).toEqual(['meta'])
    // Attributes join both halves: chmod (meta) and a write (data) are versions of one file.
    await fsp.chmod(mount.p('dir', 'f0.txt'), 0o600)
    await fsp.appendFile(mount.p('dir', 'f0.txt'), '+more')
    const stat = await fsp.stat(mount.p('dir', 'f0.txt'))
    expect(stat.mode & 0o777).toBe(0o600)
    expect(stat.size).toBe(written.get('f0.txt')!.length + 5)
    const log = await cli(['log', '--json', mount.p('dir', 'f0.txt')])
    expect(log.status).toBe(0)
    const versions = JSON.parse(log.stdout) as Array<{ version: number; change: string; sizeBytes: number }>
    expect(versions.map((v) => [v.version, v.change])).toEqual([[1, 'create'], [2, 'version'], [3, 'setattr'], [4, 'version']])
    expect(await fsp.readFile(mount.p('dir', 'f0.txt@v2'), 'utf8')).toBe(written.get('f0.txt'))
    // Pages of the joined history keep their rows; a save-by-rename is the name's next row.
    const page = async (...args: string[]): Promise<Array<[number, string]>> =>
      (JSON.parse((await cli(['log', '--json', ...args, mount.p('dir', 'f0.txt')])).stdout) as typeof versions).map((v) => [v.version, v.change])
    expect(await page('--reverse', '--limit', '2')).toEqual([[4, 'version'], [3, 'setattr']])
    const times = (JSON.parse(log.stdout) as Array<{ time: string }>).map((v) => v.time)
    expect(await page('--since', times[1]!, '--until', times[2]!)).toEqual([[2, 'version'], [3, 'setattr']])
    await fsp.writeFile(mount.p('dir', '.f0.tmp'), 'saved')
    await fsp.rename(mount.p('dir', '.f0.tmp'), mount.p('dir', 'f0.txt'))
    expect(await page('--reverse', '--limit', '1')).toEqual([[5, 'replaced by rename']])
    expect(await fsp.readFile(mount.p('dir', 'f0.txt@v5'), 'utf8')).toBe('saved')
    expect(await fsp.readFile(mount.p('dir', 'f0.txt@v4'), 'utf8')).toBe(written.get('f0.txt') + '+more')
  })

  it('fffs status shows every shard: its view, members and table', async () => {
    const json = await cli(['status', '--json', '--mount', mount.mountpoint])
    expect(json.status).toBe(0)
    const status = JSON.parse(json.stdout) as { mode: string; shards: Array<{ shard: string; summary: { view: { members: number[] } | null } }> }
    expect(status.mode).toBe('sharded')
    expect(status.shards.map((s) => [s.shard, s.summary.view?.members])).toEqual([
      ['meta', [0, 1, 2]],
      ['data0', [0, 1, 2]],
      ['data1', [0, 1, 2]],
    ])
    const text = await cli(['status', '--verbose', '--mount', mount.mountpoint])
    expect(text.stdout).toMatch(/^=== shard data1 \(members \[0,1,2\]\) ===$/m)
    expect(text.stdout.match(/shared state table as member \d sees it/g)).toHaveLength(3)
  })

  it('a write that follows a read on the other shard is in every cut that holds it', async () => {
    // Two files whose contents live on different data shards.
    const a = 'causal-a.txt'
    await fsp.writeFile(mount.p(a), `a-0-${randomBytes(4).toString('hex')}`)
    const shardOfA = (await shardHolding((await fsp.readFile(mount.p(a), 'utf8'))))[0]
    let b = ''
    for (let i = 0; b === '' && i < 32; i++) {
      const name = `causal-b${i}.txt`
      const marker = `b-probe-${randomBytes(6).toString('hex')}`
      await fsp.writeFile(mount.p(name), marker)
      if ((await shardHolding(marker))[0] !== shardOfA) b = name
    }
    expect(b, 'a file on the other data shard').not.toBe('')
    const rounds = 12
    for (let k = 1; k <= rounds; k++) {
      await fsp.writeFile(mount.p(a), `a-${k}`)
      expect(await fsp.readFile(mount.p(a), 'utf8')).toBe(`a-${k}`) // read it ...
      await fsp.writeFile(mount.p(b), `b-${k}`) // ... then write on the other shard
    }
    const stampsOf = async (name: string): Promise<Array<{ stamp: string; time: string }>> => {
      const { stdout } = await cli(['log', '--json', mount.p(name)])
      return (JSON.parse(stdout) as Array<{ stamp: string; time: string; change: string }>).filter((v) => v.change === 'version')
    }
    const aVersions = (await stampsOf(a)).slice(-rounds)
    const bVersions = (await stampsOf(b)).slice(-rounds)
    for (let k = 0; k < rounds; k++) {
      expect(BigInt(bVersions[k]!.stamp) > BigInt(aVersions[k]!.stamp), `b-${k + 1} stamped after a-${k + 1}`).toBe(true)
      // The cut at b-k's time holds b-k, so it holds a-k (and not a later a: that came after b-k).
      expect(await fsp.readFile(mount.p(`${b}@${bVersions[k]!.time}`), 'utf8')).toBe(`b-${k + 1}`)
      expect(await fsp.readFile(mount.p(`${a}@${bVersions[k]!.time}`), 'utf8')).toBe(`a-${k + 1}`)
    }
  })

  it('fffs cut reports each shard and the version a cut picks; fffs watch streams versions as they become stable', async () => {
    await fsp.writeFile(mount.p('cut.txt'), 'one')
    // The platform time of the version 'one' made (µs, from its own stamp: a wall-clock read
    // after the write, floored to ms by toISOString, could fall before that stamp).
    const logged = JSON.parse((await cli(['log', mount.p('cut.txt'), '--json'])).stdout) as Array<{ version: number; time: string }>
    const between = logged.find((v) => v.version === 2)!.time
    await new Promise((resolve) => setTimeout(resolve, 5))
    await fsp.writeFile(mount.p('cut.txt'), 'two!')
    const past = JSON.parse((await cli(['cut', between, mount.p('cut.txt'), '--json'])).stdout) as {
      stable: boolean
      shards: Array<{ shard: string; stable: boolean }>
      path: { version: number; sizeBytes: number; provisional: boolean }
    }
    expect(past.shards.map((s) => s.shard)).toEqual(['meta', 'data0', 'data1'])
    expect(past.stable).toBe(true)
    expect(past.path).toMatchObject({ version: 2, sizeBytes: 3, provisional: false })
    const future = JSON.parse((await cli(['cut', `${Date.now() + 3_600_000}ms`, '--mount', mount.mountpoint, '--json'])).stdout) as {
      stable: boolean
      shards: Array<{ stable: boolean; untilStableMs: number }>
    }
    expect(future.stable).toBe(false)
    for (const shard of future.shards) expect(shard.untilStableMs).toBeGreaterThan(3_000_000)
    const text = await cli(['cut', between, mount.p('cut.txt')])
    expect(text.stdout).toMatch(/^cut .* stable\n/)
    expect(text.stdout).toContain('/cut.txt: version 2')
    expect((await cli(['cut', 'v9', mount.p('cut.txt')])).stderr).toMatch(/^fffs: .*version 9/)

    // watch: the versions of matching files since a time, streamed once stable, oldest first; other files ignored.
    await fsp.mkdir(mount.p('watch'))
    const since = new Date().toISOString()
    const watcher = cli(['watch', mount.p('watch', '*.log'), '--since', since, '--json', '--count', '3'], 30_000)
    await fsp.writeFile(mount.p('watch', 'a.log'), 'a1')
    await fsp.writeFile(mount.p('watch', 'ignored.txt'), 'x')
    await fsp.appendFile(mount.p('watch', 'a.log'), 'a2')
    await fsp.writeFile(mount.p('watch', 'b.log'), 'b1')
    const watched = await watcher
    expect(watched.status).toBe(0)
    const lines = watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; version: number; stamp: string })
    expect(lines.map((l) => `${l.path} v${l.version}`)).toEqual(['/watch/a.log v1', '/watch/a.log v2', '/watch/a.log v3'])
    const stamps = lines.map((l) => BigInt(l.stamp))
    expect([...stamps].sort((a, b) => (a < b ? -1 : 1))).toEqual(stamps)
  })

  it('a submit carrying a clock ahead of the member is stamped above it (HLC piggybacking); one too far ahead is refused', async () => {
    const meta = shardGroups(group.config)[0]!.config
    const clientWith = async (aheadUs: number): Promise<{ client: RemoteClient; ahead: bigint }> => {
      const seen = new SeenStamp()
      const ahead = hlcOf(wallClockUs() + aheadUs, 0)
      seen.observe(ahead)
      return { client: await RemoteClient.connect(meta, { seen }), ahead }
    }
    const near = await clientWith(300_000) // 0.3 s: within the bound a member accepts
    try {
      const { stamp } = await near.client.submit({ type: 'mknod', parent: ROOT_INO, name: 'from-a-fast-clock', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
      expect(stamp > near.ahead).toBe(true)
    } finally {
      await near.client.close()
    }
    // The meta shard's clock is now ahead of wall time; let wall time catch up, so the cuts the
    // tests below name by wall-clock time are not before their own writes.
    await new Promise((resolve) => setTimeout(resolve, 400))
    // A clock a minute ahead would drag every member's clock (and every later cut) with it.
    const far = await clientWith(60_000_000)
    try {
      const err = await far.client.submit({ type: 'mknod', parent: ROOT_INO, name: 'from-the-future', kind: 'dir', mode: 0o755, uid: 0, gid: 0 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(FffsError)
      expect((err as FffsError).code).toBe('EINVAL')
      expect((err as FffsError).message).toMatch(/ahead of member/)
    } finally {
      await far.client.close()
    }
  })

  it("Δ is the group's: a member refuses a creation stamped older than now − Δ whatever Δ the client sent; a mount flag that disagrees is refused", async () => {
    const meta = shardGroups(group.config)[0]!.config
    const lagUs = group.config.time.sensorLagMaxMs * 1000
    const client = await RemoteClient.connect(meta)
    try {
      const create = (name: string, sensorUs: number): Promise<unknown> =>
        client.submit({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, sensorUs, sensorLagMaxUs: 3600 * lagUs })
      await create('sensed-recently', wallClockUs() - lagUs / 5)
      const err = await create('sensed-long-ago', wallClockUs() - 3 * lagUs).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(FffsError)
      expect((err as FffsError).code).toBe('EINVAL')
      expect((err as FffsError).message).toMatch(/older than platform time .* − Δ 5000 ms/)
    } finally {
      await client.close()
    }
    const refused = await cli(['mount', path.join(group.root, 'never-mounted'), '--cluster', group.config.path, '--sensor-lag-max', '60000'])
    expect(refused.status).not.toBe(0)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(refused.stderr).toMatch(/--sensor-lag-max 60000: the group .* uses 5000 \(time\.sensorLagMaxMs in .*config\.json\)/)
  })

  it('kill -9 of one process (a replica of every shard): writes go on, nothing acknowledged is lost, it catches up on restart', async () => {
    await fsp.mkdir(mount.p('stream'))
    const writer = new Writer(mount.p('stream'))
    writer.start()
    try {
      await waitFor('10 files before the kill', 20_000, () => (writer.acknowledged.length >= 10 ? true : undefined))
      frozen.at = new Date().toISOString()
      frozen.digest = await treeDigest(mount, frozen.at) // read while writes go on
      expect(Number(frozen.digest.split(' ')[0])).toBeGreaterThanOrEqual(10)
      await group.kill9(1)
      const shrunkVid = await group.waitView([0, 2], 20_000)
      expect(await treeDigest(mount, frozen.at), 'the frozen cut after the kill').toBe(frozen.digest)
      const afterView = writer.acknowledged.length
      await waitFor('10 more files in the new views', 20_000, () => (writer.acknowledged.length >= afterView + 10 ? true : undefined))
      group.startMember(1)
      expect(await group.waitView([0, 1, 2], 60_000)).toBeGreaterThan(shrunkVid)
      const afterRejoin = writer.acknowledged.length
      await waitFor('10 more files after the rejoin', 20_000, () => (writer.acknowledged.length >= afterRejoin + 10 ? true : undefined))
    } finally {
      await writer.stop()
    }
    expect(writer.failures).toEqual([])
    // Every acknowledged file, read through a mount served by the restarted member (every shard).
    const fromMember1 = await group.mount('mnt-1', await group.writeClientConfig('client-from-1.json', 1))
    for (const file of writer.acknowledged) {
      const bytes = await fsp.readFile(fromMember1.p('stream', file.name))
      expect(sha256(bytes), `${file.name} via member 1`).toBe(file.sha256)
    }
    expect(await treeDigest(fromMember1, frozen.at), 'the frozen cut read from the restarted member').toBe(frozen.digest)
    acknowledged.push(...writer.acknowledged)
  })

  it('every process killed at once: each shard restarts from its logs with every acknowledged file', async () => {
    expect(acknowledged.length).toBeGreaterThanOrEqual(30)
    await Promise.all([0, 1, 2].map((id) => group.kill9(id)))
    for (const id of [0, 1, 2]) group.startMember(id)
    await group.waitView([0, 1, 2], 60_000)
    for (const file of acknowledged) {
      const bytes = await waitFor(`${file.name} readable after the restart`, 30_000, () => fsp.readFile(mount.p('stream', file.name)))
      expect(sha256(bytes), `${file.name} after the restart`).toBe(file.sha256)
    }
    expect(await treeDigest(mount, frozen.at), 'the frozen cut after the total restart').toBe(frozen.digest)
  })
})
