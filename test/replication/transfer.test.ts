// State transfer between two stores, without processes: the donor finds the records after a
// stamp by its record index, a version's bytes may span batches (no batch is larger than its
// bound plus one op), the joiner ends byte-identical with the same versions and stamps, a
// record's digest is the same read back from the log as computed from its parts.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { exportBatch, recordDigest, recordDigestAt, TransferImport, transferSizeEstimate, type HeldBlob, type TransferCursor } from '../../src/replication/transfer.js'
import { ROOT_INO, type Mutation, type VersionOp } from '../../src/store/records.js'
import { SegmentLog } from '../../src/store/segmentLog.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'

const KiB = 1024
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function openStore(dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-transfer-'))): Promise<Store> {
  const store = new Store(dir)
  await store.open()
  cleanups.push(async () => {
    await store.close().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
  return store
}

/** Appends the bytes, then the record naming them, applies it (as a replica does at delivery). */
async function write(store: Store, stamp: bigint, mutation: Mutation, data: Buffer[] = []): Promise<void> {
  const positions = data.map((bytes) => store.appendData(bytes).position)
  let index = 0
  const local: Mutation = mutation.type === 'version' ? { ...mutation, ops: mutation.ops.map((op): VersionOp => (op.op === 'write' ? { ...op, data: positions[index++]! } : op)) } : mutation
  const logged = store.appendRecord(stamp, local)
  await store.sync()
  const result = await store.apply(stamp, local, logged)
  expect(result.ok).toBe(true)
}

/** A file of three 300 KiB writes (one version), another file, metadata between: 6 records. */
async function donorWithHistory(): Promise<{ store: Store; content: Map<string, Buffer>; stamps: bigint[] }> {
  const store = await openStore()
  const big = [randomBytes(300 * KiB), randomBytes(300 * KiB), randomBytes(300 * KiB)]
  const small = randomBytes(1000)
  const stamps = [1000n, 2000n, 3000n, 4000n, 5000n, 6000n]
  await write(store, stamps[0]!, { type: 'mknod', parent: ROOT_INO, name: 'big', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
  const bigIno = store.liveLookup(ROOT_INO, 'big')!
  const writes = (parts: Buffer[]): VersionOp[] => parts.map((bytes, i) => ({ op: 'write', offset: i * 300 * KiB, sizeBytes: bytes.length, data: { segment: 0, offset: 0 } }))
  await write(store, stamps[1]!, { type: 'version', ino: bigIno, ops: writes(big) }, big)
  await write(store, stamps[2]!, { type: 'mknod', parent: ROOT_INO, name: 'small', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
  const smallIno = store.liveLookup(ROOT_INO, 'small')!
  await write(store, stamps[3]!, { type: 'version', ino: smallIno, ops: writes([small]) }, [small])
  await write(store, stamps[4]!, { type: 'setattr', ino: smallIno, mode: 0o600 })
  await write(store, stamps[5]!, { type: 'setattr', ino: bigIno, mode: 0o640 })
  return { store, content: new Map([['big', Buffer.concat(big)], ['small', small]]), stamps }
}

/** Every batch from `after`, imported into `joiner`; returns the batch sizes. */
async function transfer(donor: Store, joiner: Store, after: bigint, maxBytes: number, blobs: HeldBlob[] | null = null): Promise<{ bodies: number[]; imported: TransferImport }> {
  const imported = new TransferImport(joiner, (stamp, message) => {
    throw new Error(`record ${stamp} failed: ${message}`)
  })
  const bodies: number[] = []
  let cursor: TransferCursor | null = null
  for (let batches = 0; batches < 1000; batches++) {
    const { batch, body } = await exportBatch(donor, { after, upto: HLC_MAX, cursor, blobs }, maxBytes)
    bodies.push(body.length)
    await imported.take(batch, body)
    cursor = batch.cursor
    if (batch.done) {
      await imported.finish()
      return { bodies, imported }
    }
  }
  throw new Error('transfer did not end')
}

async function files(store: Store): Promise<Map<string, { content: Buffer; versions: string[] }>> {
  const out = new Map<string, { content: Buffer; versions: string[] }>()
  for (const { name, ino } of await store.readdir(ROOT_INO, HLC_MAX)) {
    const attr = (await store.attr(ino, HLC_MAX))!
    const content = Buffer.alloc(attr.sizeBytes)
    await store.read(attr, 0, content, attr.sizeBytes)
    out.set(name, { content, versions: (await store.versions(ino)).map((v) => `${v.version}@${v.stamp}:${v.mode.toString(8)}`) })
  }
  return out
}

describe('state transfer', () => {
  it('streams a version larger than a batch across batches; the joiner ends identical', async () => {
    const { store: donor, content } = await donorWithHistory()
    const joiner = await openStore()
    const { bodies, imported } = await transfer(donor, joiner, 0n, 256 * KiB)
    expect(imported.records).toBe(6)
    expect(bodies.length).toBeGreaterThanOrEqual(4) // 900 KiB of one version cannot go in one 256 KiB batch
    for (const size of bodies) expect(size).toBeLessThanOrEqual(256 * KiB + 300 * KiB)
    expect(joiner.appliedStamp).toBe(donor.appliedStamp)
    const theirs = await files(donor)
    const mine = await files(joiner)
    expect([...mine.keys()].sort()).toEqual(['big', 'small'])
    for (const [name, file] of theirs) {
      expect(mine.get(name)!.content.equals(content.get(name)!), name).toBe(true)
      expect(mine.get(name)!.versions).toEqual(file.versions)
    }
    // Data entries carry the CRCs the donor's log holds, not recomputed: every entry checks out.
    await joiner.close()
    const log = new SegmentLog(path.join(joiner.dir, 'segments'))
    let entries = 0
    const { truncatedBytes } = await log.open({ segment: 0, offset: 0 }, async () => void entries++)
    await log.close()
    expect(truncatedBytes).toBe(0)
    expect(entries).toBeGreaterThanOrEqual(10) // 4 data entries, 6 records
  })

  it('sends only the records after a stamp, found by the index', async () => {
    const { store: donor, stamps } = await donorWithHistory()
    const joiner = await openStore()
    // The joiner holds the first three records already (as a replica that stopped there would).
    const { batch, body } = await exportBatch(donor, { after: 0n, upto: stamps[2]!, cursor: null, blobs: null })
    expect(batch.done).toBe(true)
    const data = batch.items.filter((item) => 'data' in item)
    expect(data.length).toBe(3)
    expect(data.every((item) => 'crc' in item && typeof item.crc === 'number')).toBe(true) // whole entries of the donor's log
    const head = new TransferImport(joiner, () => undefined)
    await head.take(batch, body)
    await head.finish()
    expect(joiner.appliedStamp).toBe(stamps[2])
    const { imported } = await transfer(donor, joiner, stamps[2]!, 8 * 1024 * KiB)
    expect(imported.records).toBe(3)
    expect(joiner.appliedStamp).toBe(donor.appliedStamp)
    expect((await files(joiner)).get('small')!.versions).toEqual((await files(donor)).get('small')!.versions)
    // The estimate covers the log between the records (here: the small file's bytes and three records).
    const estimate = await transferSizeEstimate(donor, stamps[2]!, HLC_MAX, [])
    expect(estimate).toBeGreaterThan(1000)
    expect(estimate).toBeLessThan(64 * KiB)
  })

  it('sends held blobs after the records, each once, across batches', async () => {
    const { store: donor } = await donorWithHistory()
    const held = [randomBytes(200 * KiB), randomBytes(10)]
    const blobs: HeldBlob[] = held.map((bytes, i) => ({ id: `b${i}`, position: donor.appendData(bytes).position, sizeBytes: bytes.length }))
    const joiner = await openStore()
    const { imported } = await transfer(donor, joiner, 0n, 256 * KiB, blobs)
    expect([...imported.blobs.keys()]).toEqual(['b0', 'b1'])
    for (const [i, bytes] of held.entries()) {
      const at = imported.blobs.get(`b${i}`)!
      const read = Buffer.alloc(at.sizeBytes)
      await joiner.readData(at.position, read, 0, at.sizeBytes)
      expect(read.equals(bytes)).toBe(true)
    }
  })

  it('a record digest read back from the log is the digest of its parts, the same at a replica, and differs for other bytes', async () => {
    const { store: donor, stamps } = await donorWithHistory()
    const at = donor.records.at(stamps[1]!)!
    const { mutation } = await donor.readRecord(at)
    const data: Buffer[] = []
    for (const op of mutation.type === 'version' ? mutation.ops : []) {
      if (op.op !== 'write' || 'blob' in op.data) continue
      const bytes = Buffer.alloc(op.sizeBytes)
      await donor.readData(op.data, bytes, 0, op.sizeBytes)
      data.push(bytes)
    }
    const digest = await recordDigestAt(donor, stamps[1]!)
    expect(digest).toBe(recordDigest({ stamp: stamps[1]!, mutation, data }))
    const joiner = await openStore()
    await transfer(donor, joiner, 0n, 64 * KiB)
    expect(await recordDigestAt(joiner, stamps[1]!)).toBe(digest) // other log positions, same record
    expect(await recordDigestAt(joiner, stamps[1]! + 1n)).toBeNull()
    data[0] = Buffer.from(data[0]!)
    data[0][0] ^= 1
    expect(recordDigest({ stamp: stamps[1]!, mutation, data })).not.toBe(digest)
  })

  it('a record digest is the same whether an op names a whole log entry or part of one', async () => {
    const store = await openStore()
    await write(store, 100n, { type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    const ino = store.liveLookup(ROOT_INO, 'f')!
    const chunk = randomBytes(1000)
    const { position } = store.appendData(chunk) // one entry; the version names two parts of it
    const mutation: Mutation = {
      type: 'version',
      ino,
      ops: [
        { op: 'write', offset: 0, sizeBytes: 300, data: { segment: position.segment, offset: position.offset + 100 } },
        { op: 'write', offset: 4096, sizeBytes: 1000, data: position },
      ],
    }
    await store.apply(200n, mutation, store.appendRecord(200n, mutation))
    expect(await recordDigestAt(store, 200n)).toBe(recordDigest({ stamp: 200n, mutation, data: [chunk.subarray(100, 400), chunk] }))
  })
})
