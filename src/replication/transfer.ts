// State transfer: the records a member is missing, streamed from a donor's log, and their
// import. The member runtime does the talking (member.ts); this is what travels and how.
//
// The donor finds "the records after stamp S" by its record index (src/store/recordIndex.ts),
// never by scanning its log, and sends them as a stream of items cut into batches of about
// TRANSFER_BATCH_BYTES: each write op's bytes as a `data` item, then the record that names
// them, and at an epoch's start the data delivered but not yet named by a version (`blob`
// items: versions ordered in the next epoch name them). A version's bytes may span batches, so
// no batch holds more than one op beyond the bound, whatever the version's size. The joiner
// keeps the next batch in flight while it appends the current one, and syncs as it goes: what
// it imported stays a durable prefix of the donor's log if either side dies.
//
// Before it fetches, a member checks that its own log is a prefix of the donor's: the donor
// holds its last record, by stamp and digest (`recordDigest`: the stamp alone can be reused by
// another history; each side computes its own), or the member discards its log and fetches
// everything (member.ts catchUp).

import { createHash } from 'node:crypto'
import { crc32c } from '../store/crc32c.js'
import { decodeRecord, type Mutation } from '../store/records.js'
import { DIRECT_PAYLOAD_MIN_BYTES, PAGE_BYTES, type LogPosition } from '../store/segmentLog.js'
import type { Store } from '../store/store.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { systemClock, type Clock } from './clock.js'
import { describeTransfer, type TransferStatus } from './readiness.js'

/** About this many bytes of file data per batch (one op more at most). */
export const TRANSFER_BATCH_BYTES = 8 * 1024 * 1024
/** The joiner syncs its log whenever this much was imported since the last sync. */
const IMPORT_SYNC_BYTES = 64 * 1024 * 1024
const INDEX_READ_RECORDS = 256 // record index entries read per seek
const APPLY_LAG_BATCHES_MAX = 2 // batches taken whose records may still be applying
const ITEMS_MAX = 8_192 // items per batch: their JSON (up to ~70 bytes each) stays inside a wire frame's 1 MiB header (wire.ts)

// ---- is a log a prefix of the donor's? ----

/**
 * What identifies a record across replicas: its stamp, its mutation without log positions (each
 * replica writes file bytes at its own) and the CRC32C of each write op's bytes. The CRCs, not
 * the bytes: the log keeps one per entry, and an op usually names a whole entry, so "where am
 * I" after a restart reads a few headers, not a version of a GB (`recordDigestAt`). A stamp
 * reused by another history that also has the same mutation differs in a CRC but with
 * probability 2^-32 per op: accidents, not adversaries, are what this guards against.
 */
export function recordDigest(record: { readonly stamp: HlcStamp; readonly mutation: Mutation; readonly data: readonly Buffer[] }): string {
  return digestOf(record.stamp, record.mutation, record.data.map((bytes) => crc32c(bytes)))
}

/** `recordDigest` of the record this store holds at `stamp`, or null: no record there. */
export async function recordDigestAt(store: Store, stamp: HlcStamp): Promise<string | null> {
  const at = store.records.at(stamp)
  if (at === null) return null
  const { mutation } = await store.readRecord(at)
  const crcs: number[] = []
  for (const op of writeOps(mutation)) {
    const whole = await store.dataCrc(op.data, op.sizeBytes)
    if (whole !== null) {
      crcs.push(whole)
      continue
    }
    const bytes = Buffer.allocUnsafe(op.sizeBytes) // part of an entry: read it
    await store.readData(op.data, bytes, 0, op.sizeBytes)
    crcs.push(crc32c(bytes))
  }
  return digestOf(stamp, mutation, crcs)
}

function digestOf(stamp: HlcStamp, mutation: Mutation, dataCrcs: readonly number[]): string {
  const hash = createHash('sha256')
  hash.update(`${stamp}\0`)
  hash.update(canonicalJson(withoutPositions(mutation)))
  for (const crc of dataCrcs) hash.update(`\0${crc >>> 0}`)
  return hash.digest('hex')
}

function withoutPositions(mutation: Mutation): unknown {
  if (mutation.type !== 'version') return mutation
  return { ...mutation, ops: mutation.ops.map((op) => (op.op === 'write' ? { op: op.op, offset: op.offset, sizeBytes: op.sizeBytes } : op)) }
}

/** JSON with object keys sorted: replicas may build one mutation with its keys in another order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** A version's write ops with their log positions, in op order (what a record's data items are). */
function writeOps(mutation: Mutation): Array<{ readonly sizeBytes: number; readonly data: LogPosition }> {
  if (mutation.type !== 'version') return []
  const ops: Array<{ sizeBytes: number; data: LogPosition }> = []
  for (const op of mutation.ops) {
    if (op.op !== 'write') continue
    if ('blob' in op.data) throw new Error(`invariant: a logged version names blob ${op.data.blob}`)
    ops.push({ sizeBytes: op.sizeBytes, data: op.data })
  }
  return ops
}

// ---- the stream ----

/** Where a transfer stands: every record up to `afterStamp` sent; `opsSent` data items of the next one sent; then `blobsSent` blobs. */
export interface TransferCursor {
  readonly afterStamp: string
  readonly opsSent: number
  readonly blobsSent: number
}

/** One item of a batch; its bytes are the next ones of the batch's body. */
type TransferItem =
  | { readonly pad: number } // bytes to skip: the next item starts at a page boundary of the body
  | { readonly data: number; readonly crc?: number } // the bytes of the next write op of the next record; crc: their CRC32C, as the donor's log holds it
  | { readonly record: number } // a record as the donor's log holds it (encodeRecord): its write ops take the data items sent since the last record, in order
  | { readonly blob: string; readonly sizeBytes: number; readonly crc?: number } // data delivered, not yet named by a version

/** A batch as it travels: the items in the frame's header (bounded: ITEMS_MAX), their bytes as its body. */
export interface TransferBatch {
  readonly items: readonly TransferItem[]
  readonly cursor: TransferCursor
  readonly done: boolean
}

/** Data delivered at the donor and not yet named by a version: where its log holds it. */
export interface HeldBlob {
  readonly id: string
  readonly position: LogPosition
  readonly sizeBytes: number
}

/** What the joiner asks for: the records in (after, upto] (then the held blobs, if `blobs`). */
export interface TransferRequest {
  readonly after: HlcStamp
  readonly upto: HlcStamp
  readonly cursor: TransferCursor | null // null: the first batch
  readonly blobs: readonly HeldBlob[] | null
}

/**
 * The next batch of the stream: about `maxBytes` of data (at least one item, so a single op
 * larger than the bound still goes, alone). The body is laid out first, then every piece is
 * read from the log straight into it, in parallel. A piece large enough for the joiner's log
 * to write with O_DIRECT (DIRECT_PAYLOAD_MIN_BYTES) starts at a page boundary of the body, which
 * the wire delivers page-aligned: it reaches the joiner's disk without a page-cache copy.
 */
export async function exportBatch(store: Store, request: TransferRequest, maxBytes = TRANSFER_BATCH_BYTES): Promise<{ batch: TransferBatch; body: Buffer }> {
  const items: TransferItem[] = []
  const pieces: Array<{ readonly item: number; readonly offset: number; readonly sizeBytes: number; readonly from: LogPosition | Buffer }> = []
  let sizeBytes = 0
  let cursor: TransferCursor = request.cursor ?? { afterStamp: request.after.toString(), opsSent: 0, blobsSent: 0 }
  const fits = (n: number): boolean => items.length === 0 || (sizeBytes + n + PAGE_BYTES <= maxBytes && items.length < ITEMS_MAX)
  const place = (item: TransferItem, n: number, from: LogPosition | Buffer): void => {
    const padBytes = n >= DIRECT_PAYLOAD_MIN_BYTES ? (PAGE_BYTES - (sizeBytes % PAGE_BYTES)) % PAGE_BYTES : 0
    if (padBytes > 0) items.push({ pad: padBytes })
    sizeBytes += padBytes
    pieces.push({ item: items.length, offset: sizeBytes, sizeBytes: n, from })
    items.push(item)
    sizeBytes += n
  }
  // Each piece read into its place; a data piece that is a whole entry of the donor's log takes
  // that entry's CRC along (a header read): the joiner logs it without checksumming again.
  const finish = async (done: boolean): Promise<{ batch: TransferBatch; body: Buffer }> => {
    const body = store.allocateData(sizeBytes)
    await Promise.all(
      pieces.map(async ({ item, offset, sizeBytes: n, from }) => {
        if (Buffer.isBuffer(from)) return void from.copy(body, offset)
        const [crc] = await Promise.all([store.dataCrc(from, n), store.readData(from, body, offset, n)])
        if (crc !== null) items[item] = { ...(items[item] as { data: number } | { blob: string; sizeBytes: number }), crc }
      }),
    )
    return { batch: { items, cursor, done }, body }
  }

  for (let recordsDone = false; !recordsDone; ) {
    const next = await store.records.after(BigInt(cursor.afterStamp), request.upto, INDEX_READ_RECORDS)
    recordsDone = next.length < INDEX_READ_RECORDS
    for (const at of next) {
      const encoded = await store.recordBytes(at)
      const { stamp, mutation } = decodeRecord(encoded)
      if (stamp !== at.stamp) throw new Error(`invariant: the record index names ${at.stamp}, the log holds ${stamp} there`)
      const ops = writeOps(mutation)
      for (let i = cursor.opsSent; i < ops.length; i++) {
        const op = ops[i]!
        if (!fits(op.sizeBytes)) return finish(false)
        place({ data: op.sizeBytes }, op.sizeBytes, op.data)
        cursor = { ...cursor, opsSent: i + 1 }
      }
      if (!fits(at.sizeBytes)) return finish(false)
      place({ record: at.sizeBytes }, at.sizeBytes, encoded)
      cursor = { afterStamp: stamp.toString(), opsSent: 0, blobsSent: 0 }
    }
  }
  const blobs = request.blobs ?? []
  for (let i = cursor.blobsSent; i < blobs.length; i++) {
    const blob = blobs[i]!
    if (!fits(blob.sizeBytes)) return finish(false)
    place({ blob: blob.id, sizeBytes: blob.sizeBytes }, blob.sizeBytes, blob.position)
    cursor = { ...cursor, blobsSent: i + 1 }
  }
  return finish(true)
}

/**
 * The donor's side of transfers in progress: each batch served starts reading the one after it
 * (its cursor is known here), so the donor's disk reads overlap the wire and the joiner's
 * writes instead of waiting for the joiner's next request. At most PREFETCH_MAX batches are
 * held, each for PREFETCH_KEEP_MS at most; `clear` when the store is replaced.
 */
export class ExportAhead {
  private readonly store: Store
  private readonly clock: Clock
  private readonly batchBytes: number
  private readonly ahead = new Map<string, { readonly batch: Promise<{ batch: TransferBatch; body: Buffer }>; readonly atMs: number }>()
  private generation = 0 // bumped by clear: a read begun before it never serves a request after it

  constructor(store: Store, clock: Clock = systemClock, batchBytes = TRANSFER_BATCH_BYTES) {
    this.store = store
    this.clock = clock
    this.batchBytes = batchBytes
  }

  /** The batch `request` asks for: read ahead for it already, or read now; then the next one is read ahead. */
  next(request: TransferRequest): Promise<{ batch: TransferBatch; body: Buffer }> {
    const key = requestKey(request)
    const held = this.ahead.get(key)
    this.ahead.delete(key)
    const now = this.clock.nowMs()
    for (const [k, entry] of this.ahead) if (now - entry.atMs > PREFETCH_KEEP_MS) this.ahead.delete(k)
    const batch = held?.batch ?? exportBatch(this.store, request, this.batchBytes)
    const generation = this.generation
    void batch.then(({ batch: served }) => {
      if (served.done || this.ahead.size >= PREFETCH_MAX || generation !== this.generation) return
      const next = { ...request, cursor: served.cursor }
      const reading = exportBatch(this.store, next, this.batchBytes)
      reading.catch(() => undefined) // read again, and reported, if it is asked for
      this.ahead.set(requestKey(next), { batch: reading, atMs: this.clock.nowMs() })
    }, () => undefined)
    return batch
  }

  clear(): void {
    this.generation++
    this.ahead.clear()
  }
}

const PREFETCH_MAX = 4 // batches read ahead at once (one per transfer in progress, usually one)
const PREFETCH_KEEP_MS = 10_000

function requestKey(request: TransferRequest): string {
  return JSON.stringify([request.after.toString(), request.upto.toString(), request.cursor, request.blobs?.length ?? null])
}

/**
 * About how many bytes the records in (after, upto] and `blobs` take in the donor's log: the
 * log's length between them (data entries lie between the records that name them). An
 * estimate for progress, computed from two index lookups.
 */
export async function transferSizeEstimate(store: Store, after: HlcStamp, upto: HlcStamp, blobs: readonly HeldBlob[]): Promise<number> {
  const [first] = await store.records.after(after, upto, 1)
  const last = await store.records.atOrBefore(upto)
  const blobBytes = blobs.reduce((sum, b) => sum + b.sizeBytes, 0)
  if (first === undefined || last === null) return blobBytes
  const start = after === 0n ? { segment: 0, offset: 0 } : (store.records.at(after)?.position ?? first.position)
  const segmentBytes = store.segmentSizeBytes
  const logBytes = (last.position.segment - start.segment) * segmentBytes + last.position.offset + last.sizeBytes - start.offset
  return Math.max(0, logBytes) + blobBytes
}

/**
 * The joiner's side: appends each batch's data and records to the log as it comes (stream
 * order is log order) and applies the records in order behind it, so the log's writes, the
 * applies and the next batch on the wire overlap; `take` waits only once applies lag more
 * than APPLY_LAG_BATCHES_MAX batches behind (each holds its body until written). The log is
 * synced in the background every IMPORT_SYNC_BYTES.
 */
export class TransferImport {
  private readonly store: Store
  private readonly onRecordFailed: (stamp: HlcStamp, message: string) => void
  private readonly observer: { recordLogged(stamp: HlcStamp, mutation: Mutation): void } | undefined
  private pending: LogPosition[] = [] // data of the next record, appended already
  private applyChain: Promise<void> = Promise.resolve()
  private readonly applied: Array<Promise<void>> = [] // per batch taken, its last apply (bounded lag)
  private syncing: Promise<void> = Promise.resolve()
  private unsyncedBytes = 0
  readonly blobs = new Map<string, { position: LogPosition; sizeBytes: number }>()
  records = 0 // applied
  bytes = 0 // of batch bodies taken: file data and records
  complete = false // the stream's last batch was taken

  /** `observer`: told of each record as it is appended here. */
  constructor(store: Store, onRecordFailed: (stamp: HlcStamp, message: string) => void, observer?: { recordLogged(stamp: HlcStamp, mutation: Mutation): void }) {
    this.store = store
    this.onRecordFailed = onRecordFailed
    this.observer = observer
  }

  /** Takes one batch (in stream order). Durable once `finish` returned, or in part at each periodic sync. */
  async take(batch: TransferBatch, body: Buffer): Promise<void> {
    let offset = 0
    const bytesOf = (sizeBytes: number): Buffer => {
      if (offset + sizeBytes > body.length) throw new Error(`state transfer batch body ends at ${body.length} bytes, its items name ${offset + sizeBytes}`)
      const bytes = body.subarray(offset, offset + sizeBytes)
      offset += sizeBytes
      return bytes
    }
    for (const item of batch.items) {
      if ('pad' in item) {
        bytesOf(item.pad)
      } else if ('data' in item) {
        this.pending.push(this.store.appendData(bytesOf(item.data), item.crc).position)
      } else if ('blob' in item) {
        this.blobs.set(item.blob, { position: this.store.appendData(bytesOf(item.sizeBytes), item.crc).position, sizeBytes: item.sizeBytes })
      } else {
        const { stamp, mutation: exported } = decodeRecord(bytesOf(item.record))
        const { mutation, logged } = this.store.appendImported(stamp, exported, this.pending)
        this.observer?.recordLogged(stamp, mutation)
        this.pending = []
        this.applyChain = this.applyChain.then(async () => {
          const result = await this.store.apply(stamp, mutation, logged)
          if (!result.ok) this.onRecordFailed(stamp, result.message)
          this.records++
        })
      }
    }
    if (offset !== body.length) throw new Error(`state transfer batch body has ${body.length} bytes, its items name ${offset}`)
    this.complete = batch.done
    this.bytes += body.length
    this.unsyncedBytes += body.length
    if (this.unsyncedBytes >= IMPORT_SYNC_BYTES) {
      this.unsyncedBytes = 0
      // Background: a failure is sticky in the log (later appends and syncs fail) and finish reports it.
      this.syncing = this.syncing.then(() => this.store.sync()) // also lets the log drop synced pages (SegmentLog.dropSyncedPages)
      this.syncing.catch(() => undefined)
    }
    this.applied.push(this.applyChain)
    this.applyChain.catch(() => undefined) // awaited below or by finish
    if (this.applied.length > APPLY_LAG_BATCHES_MAX) await this.applied.shift()
  }

  /** Applies and makes durable everything taken. After a transfer stopped early, data of a
   * record not yet taken stays in the log unreferenced (as data of a version never ordered does). */
  async finish(): Promise<void> {
    if (this.complete && this.pending.length > 0) throw new Error(`invariant: state transfer ended with ${this.pending.length} data items of no record`)
    this.pending = []
    await this.applyChain
    await this.syncing
    await this.store.sync()
  }
}

// ---- progress ----

export class TransferProgress {
  readonly donorId: number
  private readonly clock: Clock
  private readonly startedMs: number
  private totalBytes = 0
  private doneBytes = 0
  private records = 0
  private loggedMs: number

  constructor(donorId: number, clock: Clock = systemClock) {
    this.donorId = donorId
    this.clock = clock
    this.startedMs = this.loggedMs = clock.nowMs()
  }

  expect(totalBytes: number): void {
    this.totalBytes = totalBytes
  }

  update(records: number, doneBytes: number): void {
    this.records = records
    this.doneBytes = doneBytes
  }

  status(): TransferStatus {
    const elapsedMs = this.clock.nowMs() - this.startedMs
    const totalBytes = Math.max(this.totalBytes, this.doneBytes)
    const rateBytesPerS = elapsedMs > 0 ? (this.doneBytes * 1000) / elapsedMs : 0
    const etaMs = rateBytesPerS > 0 ? Math.round(((totalBytes - this.doneBytes) * 1000) / rateBytesPerS) : null
    return { donorId: this.donorId, records: this.records, doneBytes: this.doneBytes, totalBytes, rateBytesPerS: Math.round(rateBytesPerS), etaMs, elapsedMs }
  }

  /** A log line every `periodMs` (null between). */
  lineIfDue(periodMs: number): string | null {
    if (this.clock.nowMs() - this.loggedMs < periodMs) return null
    this.loggedMs = this.clock.nowMs()
    return describeTransfer(this.status())
  }
}
