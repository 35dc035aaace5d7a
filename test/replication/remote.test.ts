// The Client over the wire: serveClient around a real EmbeddedClient in a temp dir, a
// RemoteClient connecting through the group config, real sockets, real stores.

import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { dataRefAt, type Client, type SubmitId, type SubmitOptions } from '../../src/client/client.js'
import { EmbeddedClient } from '../../src/client/embedded.js'
import { loadGroupConfig, writeLocalGroup, type GroupConfig } from '../../src/replication/config.js'
import { RemoteClient } from '../../src/replication/remoteClient.js'
import { serveClient, type ServeClientOptions } from '../../src/replication/server.js'
import { listen, type WireServer } from '../../src/replication/wire.js'
import { ROOT_INO, type Mutation } from '../../src/store/records.js'
import { HLC_MAX, hlcCeilingOfUs, wallClockUs } from '../../src/temporal/hlc.js'

let dir: string
let config: GroupConfig
const cleanups: Array<() => Promise<void> | void> = []

beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fffs-remote-'))
  const loaded = await loadGroupConfig(await writeLocalGroup(dir, { replicas: 2, shards: 1 }))
  // Fast failure detection for the failover tests.
  config = { ...loaded, clients: { ...loaded.clients, heartbeatIntervalMs: 50, deadPeerMs: 500, requestTimeoutMs: 10_000 } }
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await fsp.rm(dir, { recursive: true, force: true })
})

async function openStore(index: number): Promise<EmbeddedClient> {
  const { client } = await EmbeddedClient.open(config.members[index]!.dataDir)
  cleanups.push(() => client.close())
  return client
}

async function serve(index: number, client: Client, options: ServeClientOptions = {}): Promise<WireServer> {
  const member = config.members[index]!
  const server = await listen(member.clientPort, member.host, config.key, (connection) => serveClient(connection, client, { memberId: member.id, ...options }), {
    heartbeatIntervalMs: config.clients.heartbeatIntervalMs,
    deadPeerMs: config.clients.deadPeerMs,
  })
  cleanups.push(() => server.close())
  return server
}

async function remote(log: string[] = []): Promise<RemoteClient> {
  const client = await RemoteClient.connect(config, { log: (line) => log.push(line) })
  cleanups.push(() => client.close())
  return client
}

/** `client` with its submit replaced (the rest delegates). */
function withSubmit(client: Client, submit: (mutation: Mutation, options?: SubmitOptions) => Promise<{ stamp: bigint; ino?: number }>): Client {
  return new Proxy(client, {
    get(target, property) {
      if (property === 'submit') return submit
      const value = Reflect.get(target, property) as unknown
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
}

const file = (name: string, parent = ROOT_INO): Mutation => ({ type: 'mknod', parent, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })

async function readAll(client: Client, components: string[], cut = HLC_MAX): Promise<Buffer> {
  const attr = await client.walk(components, cut)
  const into = Buffer.alloc(attr.sizeBytes)
  let done = 0
  while (done < attr.sizeBytes) {
    const chunk = Buffer.alloc(Math.min(1024 * 1024, attr.sizeBytes - done))
    const n = await client.read(attr, done, chunk, chunk.length)
    chunk.copy(into, done, 0, n)
    done += n
  }
  return into
}

describe('remote client', () => {
  it('creates, writes through blobs, reads back, lists versions, walks at a cut, waits, keeps error codes', async () => {
    await serve(0, await openStore(0))
    const client = await remote()
    expect(client.memberId).toBe(0)

    const { ino: dirIno } = await client.submit({ type: 'mknod', parent: ROOT_INO, name: 'd', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
    const { ino } = await client.submit(file('f', dirIno!))
    const big = randomBytes(3 * 1024 * 1024 + 17)
    const small = Buffer.from('hello')
    const a = client.appendData(ino!, big)
    const b = client.appendData(ino!, small)
    await Promise.all([a.written, b.written])
    const { stamp: firstStamp } = await client.submit({
      type: 'version',
      ino: ino!,
      ops: [
        { op: 'write', offset: 0, sizeBytes: big.length, data: a.ref },
        { op: 'write', offset: big.length, sizeBytes: 3, data: dataRefAt(b.ref, 1) }, // "ell"
      ],
    })
    const expected = Buffer.concat([big, Buffer.from('ell')])
    expect((await readAll(client, ['d', 'f'])).equals(expected)).toBe(true)

    await client.submit({ type: 'version', ino: ino!, ops: [{ op: 'truncate', sizeBytes: 10 }] })
    const versions = await client.versions(ino!)
    expect(versions.map((v) => [v.version, v.sizeBytes, v.change])).toEqual([[1, 0, 'create'], [2, expected.length, 'version'], [3, 10, 'version']])
    expect(await client.stampOfVersion(ino!, 2)).toBe(firstStamp)
    expect(await client.stampOfVersion(ino!, 9)).toBeNull()
    expect(await client.stampAtSensorTime(ino!, 1)).toBeNull()
    expect(await client.sensorPick(ino!, 1)).toBeNull()
    // The tree at the first version's stamp: the file as it was then.
    await client.waitStable(firstStamp, 1000)
    expect((await readAll(client, ['d', 'f'], firstStamp)).equals(expected)).toBe(true)
    expect((await client.readdir(dirIno!, firstStamp)).map((e) => e.name)).toEqual(['f'])
    expect(await client.lookup(dirIno!, 'f', firstStamp)).toBe(ino)
    expect((await client.attr(ino!, HLC_MAX))!.sizeBytes).toBe(10)
    // A record-format version's records cross the wire, and so does the prefix a sensor pick names.
    const { stamp: recordsStamp } = await client.submit({ type: 'version', ino: ino!, ops: [], records: { entries: [[4, 100], [10, 200]], baseMaxSensorUs: -1, endBytes: 10 } })
    expect(await client.sensorPick(ino!, 150)).toEqual({ stamp: recordsStamp, sizeBytes: 4 })
    expect((await client.attr(ino!, HLC_MAX))!.records).toEqual({ endBytes: 10, maxSensorUs: 200 })

    // Snapshots.
    const frontier = await client.stableFrontier()
    expect(frontier).toBeGreaterThanOrEqual(firstStamp)
    await client.submit({ type: 'snapshot', name: 'epoch1', at: frontier.toString(), spec: 'now' })
    expect((await client.snapshot('epoch1'))?.at).toBe(frontier.toString())
    expect(await client.snapshot('nope')).toBeNull()
    expect((await client.snapshots()).map((s) => s.name)).toEqual(['epoch1'])

    // A cut a minute ahead is not stable: EAGAIN after the wait, at once with 0.
    const future = hlcCeilingOfUs(wallClockUs() + 60_000_000)
    const startedMs = Date.now()
    const waited = await client.waitStable(future, 300).catch((e: unknown) => e)
    expect((waited as FffsError).code).toBe('EAGAIN')
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(290)
    expect(((await client.waitStable(future, 0).catch((e: unknown) => e)) as FffsError).code).toBe('EAGAIN')

    // Errors keep their FffsError code across the wire.
    const missing = await client.walk(['d', 'nope'], HLC_MAX).catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(FffsError)
    expect((missing as FffsError).code).toBe('ENOENT')
    const exists = await client.submit(file('f', dirIno!)).catch((e: unknown) => e)
    expect((exists as FffsError).code).toBe('EEXIST')
    const notEmpty = await client.submit({ type: 'rmdir', parent: ROOT_INO, name: 'd' }).catch((e: unknown) => e)
    expect((notEmpty as FffsError).code).toBe('ENOTEMPTY')
  })

  it('reads listings, histories and batches of attributes longer than one reply, a window at a time', async () => {
    const store = await openStore(0)
    await serve(0, store)
    const client = await remote()
    const local = (m: Mutation) => store.submit(m) // made locally: fast; read over the wire
    const { ino: dir } = await local({ type: 'mknod', parent: ROOT_INO, name: 'd', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
    const names = Array.from({ length: 1300 }, (_, i) => `e${String(i).padStart(5, '0')}`)
    await Promise.all(names.map((name) => local(file(name, dir!))))
    const { stamp: listed } = await local({ type: 'unlink', parent: dir!, name: names[0]! })
    await local(file('late', dir!))
    const { ino } = await local(file('f', ROOT_INO))
    await Promise.all(Array.from({ length: 600 }, (_, i) => local({ type: 'setattr', ino: ino!, mode: 0o600 + (i % 64) })))
    for (let i = 0; i < 520; i++) {
      await local(file('again', ROOT_INO))
      await local({ type: 'unlink', parent: ROOT_INO, name: 'again' })
    }
    await Promise.all(Array.from({ length: 300 }, (_, i) => local({ type: 'snapshot', name: `s${String(i).padStart(3, '0')}`, at: listed.toString(), spec: 'then' })))

    // Each answer is the store's own, whole, though no reply of the wire holds it.
    expect(await client.readdir(dir!, HLC_MAX)).toEqual(await store.readdir(dir!, HLC_MAX))
    expect((await client.readdir(dir!, HLC_MAX)).length).toBe(1300)
    await client.waitStable(listed, 5000)
    const atListed = await client.readdir(dir!, listed)
    expect(atListed.map((e) => e.name)).toEqual(names.slice(1))
    expect(await client.readdir(dir!, listed, { after: names[600], limit: 700 })).toEqual(atListed.slice(600, 1299))
    const entries = await client.readdir(dir!, HLC_MAX)
    // 20 of them with 48 KiB xattrs: ~1.3 MiB of attributes as JSON in one window of nodes.
    const valueBase64 = randomBytes(48 * 1024).toString('base64')
    await Promise.all(entries.slice(100, 120).map((e) => local({ type: 'setxattr', ino: e.ino, name: 'user.big', valueBase64 })))
    expect(await client.attrs(entries.map((e) => e.ino), HLC_MAX)).toEqual(await store.attrs(entries.map((e) => e.ino), HLC_MAX))
    expect((await client.versions(ino!)).length).toBe(601)
    expect(await client.versions(ino!, { reverse: true, limit: 300 })).toEqual(await store.versions(ino!, { reverse: true, limit: 300 }))
    expect(await client.versions(ino!, { reverse: true })).toEqual(await store.versions(ino!, { reverse: true }))
    const history = await client.nameHistory(ROOT_INO, 'again')
    expect(history.length).toBe(1040)
    expect(history).toEqual(await store.nameHistory(ROOT_INO, 'again'))
    expect((await client.snapshots()).map((s) => s.name)).toEqual(Array.from({ length: 300 }, (_, i) => `s${String(i).padStart(3, '0')}`))
  })

  it('a wrong key is refused with EACCES and logged', async () => {
    await serve(0, await openStore(0))
    await serve(1, await openStore(1))
    const log: string[] = []
    const err = await RemoteClient.connect({ ...config, key: randomBytes(32) }, { log: (line) => log.push(line) }).catch((e: unknown) => e)
    expect((err as FffsError).code).toBe('EACCES')
    expect((err as FffsError).message).toMatch(/no member of group .* reachable: member 0 .*bad cluster key.*; member 1 /)
    expect(log.filter((l) => l.endsWith('bad cluster key'))).toHaveLength(2)
  })

  it('fails over to the next member: a pending wait keeps its deadline, reads continue', async () => {
    const server0 = await serve(0, await openStore(0))
    await serve(1, await openStore(1))
    const log: string[] = []
    const client = await remote(log)
    expect(client.memberId).toBe(0)
    const future = hlcCeilingOfUs(wallClockUs() + 60_000_000)
    const startedMs = Date.now()
    const waiting = client.waitStable(future, 1500).catch((e: unknown) => e)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await server0.close()
    const err = await waiting
    expect((err as FffsError).code).toBe('EAGAIN') // answered by member 1, not an EIO
    const elapsedMs = Date.now() - startedMs
    expect(elapsedMs).toBeGreaterThanOrEqual(1400)
    expect(elapsedMs).toBeLessThan(3000)
    expect(client.memberId).toBe(1)
    expect(log.some((l) => /lost member 0 .*failing over/.test(l))).toBe(true)
    expect((await client.walk([], HLC_MAX)).ino).toBe(ROOT_INO)
  })

  it('re-sends an in-doubt submit (same id, blobs again) only to a member that deduplicates', async () => {
    const store0 = await openStore(0)
    const store1 = await openStore(1)
    const { ino } = await store0.submit(file('f'))
    expect((await store1.submit(file('f'))).ino).toBe(ino) // the same state on both, as replicas would have
    const seen: Array<{ member: number; id: SubmitId | undefined }> = []
    let submitted!: () => void
    const arrived = new Promise<void>((resolve) => (submitted = resolve))
    const server0 = await serve(0, withSubmit(store0, (_mutation, options) => {
      seen.push({ member: 0, id: options?.id })
      submitted()
      return new Promise(() => undefined) // never answers: the outcome stays unknown
    }))
    await serve(1, withSubmit(store1, (mutation, options) => {
      seen.push({ member: 1, id: options?.id })
      return store1.submit(mutation, options)
    }), { dedupesSubmits: true })
    const client = await remote()
    const bytes = randomBytes(2 * 1024 * 1024)
    const { ref } = client.appendData(ino!, bytes)
    const result = client.submit({ type: 'version', ino: ino!, ops: [{ op: 'write', offset: 0, sizeBytes: bytes.length, data: ref }] })
    await arrived
    await server0.close()
    await result
    expect(seen.map((s) => s.member)).toEqual([0, 1])
    expect(seen[1]!.id).toEqual(seen[0]!.id)
    expect(seen[0]!.id!.clientId).toBe(client.clientId)
    expect((await readAll(client, ['f'])).equals(bytes)).toBe(true) // the blob reached member 1 too
  })

  it('does not re-send an in-doubt submit to a member that does not deduplicate', async () => {
    const store0 = await openStore(0)
    const store1 = await openStore(1)
    let submitted!: () => void
    const arrived = new Promise<void>((resolve) => (submitted = resolve))
    const server0 = await serve(0, withSubmit(store0, () => {
      submitted()
      return new Promise(() => undefined)
    }))
    let applied = 0
    await serve(1, withSubmit(store1, (mutation, options) => {
      applied++
      return store1.submit(mutation, options)
    }))
    const client = await remote()
    const result = client.submit(file('g')).catch((e: unknown) => e)
    await arrived
    await server0.close()
    const err = await result
    expect((err as FffsError).code).toBe('EIO')
    expect((err as FffsError).message).toMatch(/outcome is unknown and member 1 does not deduplicate/)
    expect(applied).toBe(0)
    // Later submits go to member 1 as usual.
    expect((await client.submit(file('h'))).ino).toBeGreaterThan(ROOT_INO)
  })
})
