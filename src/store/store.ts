// The versioned state machine. `apply(stamp, mutation)` is the only way state changes; it is
// deterministic (no clocks, no randomness: times come from the stamp) and is called in log
// order. Queries read the state at a cut: HLC_MAX means live, any other stamp means "every
// node at its latest version at or before that stamp".
//
// Durability: the segment log is the write-ahead log. A record is appended and synced before
// it is applied; LevelDB batches are written without sync and carry the log position they
// cover (`M applied`), so recovery replays exactly the records the index has not seen.

import path from 'node:path'
import { errors, FffsError } from '../errors.js'
import { isoOfUs } from '../temporal/civil.js'
import { HLC_MAX, hlcCeilingOfUs, hlcPhysicalUs, wallClockUs, type HlcStamp } from '../temporal/hlc.js'
import { BlockHistory } from './blockHistory.js'
import { BLOCK_SIZE_BYTES, composeDeltas, NO_CHANGE, truncateDelta, writeDelta, type BlockDelta, type BlockMap } from './blockMap.js'
import { nodeDisk, type Disk, type IndexDb, type IndexOp } from './disk.js'
import { pageCacheDropper, pageOffsetFinder } from './diskAddon.js'
import { decodeDirEntry, decodeIno, decodeRow, encodeDirEntry, encodeLiveDirEntry, encodeRow, encodeStamp, inoOfKey, keys, liveDirEntrySince, nameOfDirEntryKey, nameOfLiveDirKey, prefixEnd, stampOfKey } from './keys.js'
import { decodeRecord, encodeRecord, ROOT_INO, S_ISGID, type ApplyResult, type Attr, type DirPage, type EntryChange, type Ino, type Mutation, type NameBinding, type NodeKind, type RecordCursor, type SensorPick, type Snapshot, type StampPage, type VersionOp, type VersionRange, type VersionRecords } from './records.js'
import { RecordIndex, type RecordAt } from './recordIndex.js'
import { compactRange, describeCounts, emptyCounts, nodeFacts, type CompactionCounts } from './retention/compaction.js'
import { HistoryFloor, type HistoryRule } from './retention/floor.js'
import { tierInstants, type RetentionPolicy } from './retention/policy.js'
import { noSpace } from './diskSpace.js'
import { PendingData } from './pendingData.js'
import { collectSegments, decodeSegmentSummary, encodeSegmentSummary, logBaseOf, type GcOptions, type GcReport } from './segmentGc.js'
import { EntryKind, SegmentLog, segmentSizeForDisk, type LogPosition, type PageOffsetOf } from './segmentLog.js'
import { VersionSearch } from './versionSearch.js'

export const NAME_MAX_BYTES = 255
const SETTLED: Promise<void> = Promise.resolve()
/** The most names a node may have (ext4's limit): one more link is EMLINK. */
const LINK_MAX = 65_000

/** A version's time as its atime/mtime/ctime: ms with the µs its HLC stamp has (a fraction; stat shows the µs). */
const msOfStamp = (stamp: HlcStamp): number => hlcPhysicalUs(stamp) / 1000

/** What a sharded group's store holds: `meta`, the namespace; `data`, file contents by inode. */
export type ShardRole = 'meta' | 'data'

/** What apply needs to write, gathered before one atomic LevelDB batch. */
class Changes {
  readonly ops: IndexOp[] = []
  /** What to change in memory once the batch is in the index (the history rule a `retain` set). */
  committed: (() => void) | null = null
  readonly put = (key: Buffer, value: Buffer): void => void this.ops.push({ type: 'put', key, value })
  readonly del = (key: Buffer): void => void this.ops.push({ type: 'del', key })
}

const COMPACTION_KEY = keys.meta('compaction')
const SPACE_SHORT_KEY = keys.meta('spaceShort')
/** Set in stores that kept the rows of names' histories from their first record (setDirEntry). */
const ROWS_KEPT_KEY = keys.meta('rowsKept')
const BLOCK_TAG = keys.blockTable()[0]!
const AUDIT_ORDERED = 0 // a record's: the same on every replica
const AUDIT_LOCAL = 1 // this store's own (segment GC)
const AUDITS_KEPT = 1000 // of each kind, the newest

export interface CompactionCursor {
  readonly nextIno: Ino
}

/** One retention run (a `retain` record and the `compact` records after it): the same on every replica. */
export interface RetentionAudit extends CompactionCounts {
  readonly kind: 'retention'
  readonly floor: string // HlcStamp, decimal
  readonly policy: HistoryRule['policy']
  readonly pinsAdded: number // instants the tiers keep from this floor on
  readonly pinsRemoved: number // instants older, coarser tiers let go
  readonly done: boolean // every node was compacted
}

/** One segment GC run of this store. */
export interface GcAudit {
  readonly kind: 'gc'
  readonly segmentsFreed: number
  readonly bytesFreed: number
  readonly bytesCopied: number
  readonly logBase: string
}

export type AuditEntry = RetentionAudit | GcAudit
export type Audit = AuditEntry & { readonly stamp: HlcStamp }

export interface StoreOpenResult {
  readonly replayedRecords: number
  readonly truncatedBytes: number
  /** Records indexed by a scan of the whole log: a log written before the record index, once. */
  readonly indexedRecords: number
  /** The index was ahead of the log (a machine crash) and was rebuilt by replaying the whole log. */
  readonly rebuiltIndex: boolean
}

export interface StoreOptions {
  readonly role?: ShardRole
  /** Where the log and the index live (default the real disk; the simulation passes its own). */
  readonly disk?: Disk
  readonly segmentSizeBytes?: number
  /**
   * No other replica holds this store's records (an embedded mount's): once segment GC has
   * compacted the log, which then can no longer rebuild an index that ran ahead of it after a
   * power loss (open), a record's index batch waits until the log is synced past it.
   */
  readonly soleCopy?: boolean
}

/** Where a record was appended (SegmentLog.append): its entry's payload, where the entry after it starts, and when its bytes are in the file. */
/** Where bytes of a version lie in the log's files (Store.locate): the files with their identities, and which piece of the range is where. */
export interface LocatedBytes {
  readonly sizeBytes: number
  readonly files: ReadonlyArray<{ readonly file: string; readonly id: string }>
  readonly pieces: ReadonlyArray<{ readonly intoOffset: number; readonly lengthBytes: number; readonly fileIndex: number; readonly offset: number }>
}

export interface LoggedAt {
  readonly position: LogPosition
  readonly next: LogPosition
  readonly written: Promise<void>
}

export class Store {
  readonly dir: string
  private readonly log: SegmentLog
  /** Where each record is in the log, by stamp (state transfer, a replica's last record). */
  readonly records: RecordIndex
  private readonly db: IndexDb
  private readonly disk: Disk
  private readonly blocks: BlockHistory
  /** The history floor and the cuts pinned below it: which reads of the past are answered (retention/floor.ts). */
  readonly floor: HistoryFloor
  private readonly segmentSizeChosen: boolean
  private readonly soleCopy: boolean
  private applying = false
  /** Applies, and segment GC's rewrite of the index, one at a time (Store.exclusive). */
  private turn: Promise<void> = Promise.resolve()
  /** Data appended and not yet named by a version (segment GC leaves their segments alone). */
  private readonly pending = new PendingData()
  /** Each segment's newest record and newest record naming data in it, as written to G (segmentGc.ts). */
  private readonly summaries = new Map<number, { recordMax: HlcStamp; namingMax: HlcStamp }>()
  /** Set while segment GC runs: told of every block entry an apply writes. */
  private blockPutWatch: ((key: Buffer) => void) | null = null
  /** Whole-store images being taken (segment GC waits), and the segment GC run in progress. */
  private segmentHolds = 0
  private collecting: Promise<void> = Promise.resolve()
  /** Reads of file bytes in flight, by generation (segment GC waits for those begun before it moved bytes). */
  private readGeneration = 0
  private readonly readsInFlight = new Map<number, number>()
  private readonly readsDone = new Set<() => void>()
  /** The newest index write while it is under way (applyAhead), and the first that failed. */
  private indexWrite: Promise<void> | null = null
  private indexError: Error | null = null
  private nextIno: Ino = ROOT_INO + 1
  private lastAppliedStamp: HlcStamp = 0n
  /** Stamps remembered from this store's `V` index: new at every open (a member reopens its store on another history: discardStore). */
  private versionSearch = new VersionSearch()

  /**
   * What this store holds (src/replication/shards.ts): absent, the whole state machine; 'meta',
   * the namespace (file contents refused); 'data', file contents only, for inodes created on
   * the meta shard (a version or a time change of an inode seen for the first time starts it).
   */
  readonly role: ShardRole | undefined

  /** `segmentSizeBytes`: the log's segment files' size (default: by the size of the disk, segmentSizeForDisk). */
  constructor(dir: string, options: StoreOptions = {}) {
    this.role = options.role
    this.dir = dir
    this.disk = options.disk ?? nodeDisk
    this.log = new SegmentLog(path.join(dir, 'segments'), options.segmentSizeBytes, this.disk)
    this.segmentSizeChosen = options.segmentSizeBytes !== undefined
    this.soleCopy = options.soleCopy === true
    this.db = this.disk.openIndex(path.join(dir, 'index'))
    this.records = new RecordIndex(this.db)
    this.blocks = new BlockHistory(this.db)
    this.floor = new HistoryFloor(this.db)
  }

  /** Opens the index, creates the root on first use, and replays the log past the index. */
  async open(): Promise<StoreOpenResult> {
    await this.disk.mkdirp(this.dir)
    if (!this.segmentSizeChosen) this.log.segmentSizeBytes = segmentSizeForDisk((await this.disk.space(this.dir)).totalBytes)
    await this.db.open()
    this.versionSearch = new VersionSearch()
    const applied = this.db.getSync(keys.meta('applied'))
    let from: LogPosition = applied ? (JSON.parse(applied.toString()) as LogPosition) : { segment: 0, offset: 0 }
    // The index got ahead of the log: it holds records whose entries never reached the file
    // (written behind apply and synced later, then a crash of the machine). Its state cannot be
    // undone record by record; it is rebuilt from the log, which is the truth.
    const rebuiltIndex = !(await this.log.reaches(from))
    if (rebuiltIndex) {
      // Segment GC deleted the beginning of the log: this store cannot be rebuilt from its own log.
      if (logBaseOf(this.db) > 0n) {
        await this.db.close()
        throw errors.indexAheadOfCompactedLog(`${this.dir}: the index names log entries past the end of the log, and the log was compacted (it no longer starts at the first record)`)
      }
      // Durably: LevelDB's deletes are written without sync too, and a power loss that took them
      // back would bring the old entries back, naming log positions that later records reuse.
      await this.db.clear()
      from = { segment: 0, offset: 0 }
      await this.db.batch([{ type: 'put', key: keys.meta('applied'), value: Buffer.from(JSON.stringify(from)) }], { sync: true })
    }
    this.nextIno = Number(this.db.getSync(keys.meta('nextIno'))?.toString() ?? ROOT_INO + 1)
    this.lastAppliedStamp = BigInt(this.db.getSync(keys.meta('lastStamp'))?.toString() ?? '0')
    this.floor.load()
    this.pending.clear()
    this.summaries.clear()
    if (this.db.getSync(keys.liveAttr(ROOT_INO)) === undefined) await this.createRoot()
    let replayedRecords = 0
    const { truncatedBytes } = await this.log.open(from, async (entry) => {
      if (entry.kind !== EntryKind.Record) return
      const { stamp, mutation } = decodeRecord(entry.payload)
      await this.apply(stamp, mutation, { ...entry, written: Promise.resolve() }) // read from the file: in it
      replayedRecords++
    })
    const indexedRecords = await this.records.completeFrom(this.log)
    return { replayedRecords, truncatedBytes, indexedRecords, rebuiltIndex }
  }

  async close(): Promise<void> {
    await this.turn // the index writes under way
    await this.log.close()
    await this.db.close()
  }

  private async createRoot(): Promise<void> {
    const root: Attr = { ino: ROOT_INO, kind: 'dir', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, nlink: 2, sizeBytes: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, version: 1, stamp: '0', change: 'create' }
    const value = Buffer.from(JSON.stringify(root))
    await this.db.batch([
      { type: 'put', key: keys.attr(ROOT_INO, 0n), value },
      { type: 'put', key: keys.liveAttr(ROOT_INO), value },
      { type: 'put', key: keys.version(ROOT_INO, 1), value: encodeStamp(0n) },
      { type: 'put', ...RecordIndex.completeMark() }, // a new log: every record it gets is indexed as it is applied
      { type: 'put', key: ROWS_KEPT_KEY, value: Buffer.from('1') },
    ])
  }

  /** The stamp of the last applied record: every query at a cut at or below it is final. */
  get appliedStamp(): HlcStamp {
    return this.lastAppliedStamp
  }

  // ---------------------------------------------------------------- state transfer

  /** The record at `at` (as the record index names it), checked against its entry's CRC. */
  async readRecord(at: RecordAt): Promise<{ stamp: HlcStamp; mutation: Mutation }> {
    return decodeRecord(await this.recordBytes(at))
  }

  /** The encoded record at `at` (as the record index names it), checked against its entry's CRC: what a transfer sends. */
  recordBytes(at: RecordAt): Promise<Buffer> {
    return this.log.readEntry(at.position, at.sizeBytes, EntryKind.Record)
  }

  /** crc32c of `sizeBytes` of data at `position` without reading them, when they are one whole data entry; else null (SegmentLog.payloadCrc). */
  dataCrc(position: LogPosition, sizeBytes: number): Promise<number | null> {
    return this.log.payloadCrc(position, sizeBytes)
  }

  /** The segment the log appends to: it moves on as the log grows (retention's runner moves the floor when it does). */
  get tailSegment(): number {
    return this.log.tail.segment
  }

  /** The log's segment files on disk, by number, with their sizes (a whole-store image copies them). */
  segmentFiles(): Promise<Array<{ segment: number; sizeBytes: number }>> {
    return this.log.segmentFiles()
  }

  /** The size of the log's segment files (a transfer's batches are sized by it). */
  get segmentSizeBytes(): number {
    return this.log.segmentSizeBytes
  }

  /**
   * Appends a record another replica exported; apply the result in order, as for `appendRecord`.
   * `dataPositions` are where this log holds the bytes of its write ops, in op order (appended
   * with `appendData` before it).
   */
  appendImported(stamp: HlcStamp, mutation: Mutation, dataPositions: readonly LogPosition[]): { mutation: Mutation; logged: LoggedAt } {
    let local = mutation
    if (mutation.type === 'version') {
      let index = 0
      const ops = mutation.ops.map((op): VersionOp => (op.op === 'write' ? { ...op, data: dataPositions[index++]! } : op))
      if (index !== dataPositions.length) throw new Error(`invariant: record ${stamp} has ${index} write ops, ${dataPositions.length} data entries came with it`)
      local = { ...mutation, ops }
    } else if (dataPositions.length > 0) {
      throw new Error(`invariant: record ${stamp} (${mutation.type}) writes no data, ${dataPositions.length} data entries came with it`)
    }
    return { mutation: local, logged: this.appendRecord(stamp, local) }
  }

  // ---------------------------------------------------------------- writing

  /** Appends file bytes to the log; the returned position goes into a 'write' VersionOp. `crc`: crc32c(bytes), if known (SegmentLog.append). */
  appendData(bytes: Uint8Array, crc?: number | Promise<number>): { position: LogPosition; written: Promise<void> } {
    const appended = this.log.append(EntryKind.Data, bytes, crc)
    this.pending.add(appended.position, bytes.byteLength)
    appended.written.catch(() => this.pending.failed(appended.position)) // a full disk: a version must not name it
    return appended
  }

  /**
   * Refuses (ENOSPC) a version naming data whose entry could not be written (the disk was full:
   * the log was cut back and the position may hold other bytes later). Checked before the
   * version is ordered (EmbeddedClient): once in the log, a record's positions are trusted.
   */
  refuseUnwrittenData(mutation: Mutation): void {
    if (mutation.type !== 'version') return
    for (const op of mutation.ops) {
      if (op.op === 'write' && !('blob' in op.data) && this.pending.hasFailed(op.data)) throw noSpace(`version of inode ${mutation.ino}: its bytes could not be written to the log`)
    }
  }

  /** Reads `lengthBytes` of file bytes appended at `position` (readable as soon as appended). */
  readData(position: LogPosition, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> {
    return this.log.read(position, into, intoOffset, lengthBytes)
  }

  /** A buffer to read file bytes into: page-aligned when the log reads and writes large ones with O_DIRECT (SegmentLog.allocate). */
  allocateData(sizeBytes: number): Buffer {
    return this.log.allocate(sizeBytes)
  }

  /** Makes every record and byte appended so far durable. Concurrent callers share one fdatasync (group commit). */
  sync(): Promise<void> {
    return this.log.sync()
  }

  /**
   * Tunes the log for the host's disk through the disk addon (diskAddon.ts; without it, neither):
   * synced pages leave the page cache but the newest `cacheKeepBytes`, with a background sync
   * every `syncEveryBytes` appended (SegmentLog.dropSyncedPages), and large page-aligned payloads
   * are written with O_DIRECT (SegmentLog.writeLargePayloadsDirect). Returns the page-offset
   * finder writers align their buffers with (null without the addon).
   */
  useHostDisk(options: { readonly cacheKeepBytes: number; readonly syncEveryBytes?: number }): PageOffsetOf | null {
    const dropPages = pageCacheDropper()
    if (dropPages !== null) this.log.dropSyncedPages(dropPages, options.cacheKeepBytes, options.syncEveryBytes)
    const pageOffsetOf = pageOffsetFinder()
    if (pageOffsetOf !== null) this.log.writeLargePayloadsDirect(pageOffsetOf)
    return pageOffsetOf
  }

  /** Appends a record to the log; apply it in order, with this result (durable once `sync()` returned). */
  appendRecord(stamp: HlcStamp, mutation: Mutation): LoggedAt {
    return this.log.append(EntryKind.Record, encodeRecord(stamp, mutation))
  }

  /**
   * Applies one record. Deterministic: the same records in the same order give the same
   * state on every replica. Failures (ENOENT, EEXIST, ...) are results, not exceptions: the
   * record is in the log either way and has no effect.
   */
  async apply(stamp: HlcStamp, mutation: Mutation, logged: LoggedAt): Promise<ApplyResult> {
    const { result, indexed } = await this.applyAhead(stamp, mutation, logged)
    await indexed
    return result
  }

  /**
   * Applies one record as `apply` does, but resolves once its result is known and its index
   * write has begun (`indexed`: once it is in): the answer to a client overlaps the write. The
   * next apply, and segment GC, wait for it; so must every query (`settled`).
   */
  applyAhead(stamp: HlcStamp, mutation: Mutation, logged: LoggedAt): Promise<{ result: ApplyResult; indexed: Promise<void> }> {
    const run = this.turn.then(() => this.applyNow(stamp, mutation, logged))
    this.turn = run.then(
      ({ indexed }) => indexed.catch(() => undefined),
      () => undefined,
    )
    return run
  }

  /**
   * Resolves once every index write begun is in (applyAhead), so a query reads every record
   * applied; rejects once one failed (the index no longer follows the log: a restart replays it).
   */
  settled(): Promise<void> {
    if (this.indexError !== null) return Promise.reject(errors.corrupt(`the index could not be written: ${this.indexError.message}`))
    return this.indexWrite ?? SETTLED
  }

  /** Runs `fn` when no record is being applied, and holds applies until it is done (segment GC's rewrite of the index). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn)
    this.turn = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  private async applyNow(stamp: HlcStamp, mutation: Mutation, logged: LoggedAt): Promise<{ result: ApplyResult; indexed: Promise<void> }> {
    if (this.applying) throw new Error('Store.apply is not re-entrant: records apply one at a time, in order')
    if (this.indexError !== null) throw errors.corrupt(`the index could not be written: ${this.indexError.message}`) // the state is no longer the index's
    if (stamp <= this.lastAppliedStamp) throw new Error(`stamps must increase: ${stamp} after ${this.lastAppliedStamp}`)
    this.applying = true
    try {
      const changes = new Changes()
      let result: ApplyResult
      try {
        result = await this.applyTo(changes, stamp, mutation)
      } catch (err) {
        if (!(err instanceof FffsError)) throw err
        changes.ops.length = 0
        changes.committed = null
        result = { ok: false, code: err.code, message: err.message, ...(err.reason !== undefined ? { reason: err.reason } : {}) }
      }
      const before = { stamp: this.lastAppliedStamp, nextIno: this.nextIno }
      this.lastAppliedStamp = stamp
      this.summarize(changes, stamp, mutation, logged.position.segment)
      // The index never names an entry that is not in the file yet: a process killed between
      // the two would leave it ahead of the log (a machine crash still can: open rebuilds then).
      // An entry that could not be written (a full disk) is no record: as if never applied.
      await logged.written.catch((err: unknown) => {
        this.lastAppliedStamp = before.stamp
        this.nextIno = before.nextIno
        throw err
      })
      const recordEntry = RecordIndex.entry(stamp, logged.position, logged.next)
      changes.put(recordEntry.key, recordEntry.value)
      changes.put(keys.meta('applied'), Buffer.from(JSON.stringify(logged.next)))
      changes.put(keys.meta('nextIno'), Buffer.from(String(this.nextIno)))
      changes.put(keys.meta('lastStamp'), Buffer.from(stamp.toString()))
      if (this.blockPutWatch !== null) for (const op of changes.ops) if (op.type === 'put' && op.key[0] === BLOCK_TAG) this.blockPutWatch(op.key)
      // The index may run ahead of the synced log only while the log can rebuild it (open).
      if (this.soleCopy && logBaseOf(this.db) > 0n) await this.log.sync()
      const indexed = this.db.batch(changes.ops).then(
        () => {
          changes.committed?.()
          if (this.indexWrite === indexed) this.indexWrite = null
        },
        (err: Error) => {
          this.indexError ??= err
          throw err
        },
      )
      this.indexWrite = indexed
      return { result, indexed }
    } finally {
      this.applying = false
    }
  }

  /**
   * Keeps each segment's summary (G): the newest record in it, and the newest record naming data
   * in it, whatever the record's result (a state transfer sends failed records too). Segment GC
   * collects a segment only once both are below the history floor.
   */
  private summarize(changes: Changes, stamp: HlcStamp, mutation: Mutation, recordSegment: number): void {
    const touch = (segment: number, field: 'recordMax' | 'namingMax'): void => {
      let summary = this.summaries.get(segment)
      if (summary === undefined) {
        const value = this.db.getSync(keys.segmentNaming(segment))
        summary = value === undefined ? { recordMax: 0n, namingMax: 0n } : decodeSegmentSummary(value)
        this.summaries.set(segment, summary)
      }
      if (summary[field] >= stamp) return
      summary[field] = stamp
      changes.put(keys.segmentNaming(segment), encodeSegmentSummary(summary))
    }
    touch(recordSegment, 'recordMax')
    if (mutation.type !== 'version') return
    for (const op of mutation.ops) {
      if (op.op !== 'write' || 'blob' in op.data) continue
      this.pending.named(op.data)
      touch(op.data.segment, 'namingMax')
    }
  }

  // ---------------------------------------------------------------- segment GC

  /** Collects segments whose live bytes are few, copying those forward (segmentGc.ts). Nothing while a whole-store image is taken (holdSegments). */
  gc(options: GcOptions = {}): Promise<GcReport> {
    if (this.segmentHolds > 0) return Promise.resolve({ dryRun: options.dryRun === true, floor: this.floor.stamp, logBase: this.logBase, segments: 0, eligible: 0, victims: [], bytesCopied: 0, bytesFreed: 0 })
    const run = this.collectNow(options)
    this.collecting = run.then(() => undefined, () => undefined)
    return run
  }

  private collectNow(options: GcOptions): Promise<GcReport> {
    return collectSegments(
      {
        db: this.db,
        log: this.log,
        records: this.records,
        floor: this.floor,
        appliedStamp: () => this.lastAppliedStamp,
        pendingSegments: () => this.pending.segments(),
        exclusive: (fn) => this.exclusive(fn),
        watchBlockPuts: (watch) => void (this.blockPutWatch = watch),
        readsDrained: () => this.readsDrained(),
        clearBlockCache: () => this.blocks.clearCache(),
        audit: (report) => ({
          key: keys.audit(AUDIT_LOCAL, this.lastAppliedStamp, Date.now()),
          value: Buffer.from(JSON.stringify({ kind: 'gc', segmentsFreed: report.victims.length, bytesFreed: report.bytesFreed, bytesCopied: report.bytesCopied, logBase: report.logBase.toString() } satisfies GcAudit)),
        }),
      },
      options,
    )
  }

  /** Records at or below this stamp may be gone from the log: a state transfer starts above it. */
  get logBase(): HlcStamp {
    return logBaseOf(this.db)
  }

  // ---------------------------------------------------------------- whole-store image

  /**
   * Keeps segment GC from running (after the run in progress, if any, is done) until the
   * returned release is called: a whole-store image (replication/storeImage.ts) copies the
   * segment files and the index as they are, so neither may move bytes meanwhile.
   */
  async holdSegments(): Promise<() => void> {
    this.segmentHolds++
    await this.collecting
    let released = false
    return () => {
      if (!released) this.segmentHolds--
      released = true
    }
  }

  /**
   * The last applied record and the log's tail then, taken with no apply running: an image holds
   * the log up to the tail, since segment GC's copies lie past the last record the index names
   * as applied (and a record appended and not yet applied is replayed where the image is opened).
   */
  imagePoint(): Promise<{ stamp: HlcStamp; end: LogPosition }> {
    return this.exclusive(async () => ({ stamp: this.lastAppliedStamp, end: this.log.tail }))
  }

  /** The index's entries after key `after` (null: from the first), at most `limit`, in key order (an image's index). */
  indexEntries(after: Buffer | null, limit: number): Promise<Array<[Buffer, Buffer]>> {
    return this.db.iterator({ ...(after !== null ? { gt: after } : {}), limit }).all()
  }

  /** Resolves once every read of file bytes begun before the call has finished. */
  private readsDrained(): Promise<void> {
    const generation = this.readGeneration++
    const done = (): boolean => [...this.readsInFlight].every(([g, n]) => g > generation || n === 0)
    if (done()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return
        this.readsDone.delete(check)
        resolve()
      }
      this.readsDone.add(check)
    })
  }

  /** Runs a read of file bytes as one of its generation (readsDrained). */
  private async tracked<T>(read: () => Promise<T>): Promise<T> {
    const generation = this.readGeneration
    this.readsInFlight.set(generation, (this.readsInFlight.get(generation) ?? 0) + 1)
    try {
      return await read()
    } finally {
      const left = this.readsInFlight.get(generation)! - 1
      if (left === 0) this.readsInFlight.delete(generation)
      else this.readsInFlight.set(generation, left)
      for (const check of [...this.readsDone]) check()
    }
  }

  private async applyTo(changes: Changes, stamp: HlcStamp, m: Mutation): Promise<ApplyResult> {
    // A misrouted mutation is refused, not half-applied: it would split one object's history across shards.
    const everyShard = m.type === 'snapshot' || m.type === 'unsnapshot' || m.type === 'hold' || m.type === 'release' || m.type === 'retain' || m.type === 'compact' || m.type === 'space'
    if (this.role === 'data' && !everyShard && m.type !== 'version' && !(m.type === 'setattr' && m.mode === undefined && m.uid === undefined && m.gid === undefined)) {
      throw errors.invalid(`${m.type} sent to a data shard (namespace mutations belong to the meta shard)`)
    }
    if (this.role === 'meta' && m.type === 'version') throw errors.invalid(`version of inode ${m.ino} sent to the meta shard (file contents belong to a data shard)`)
    // A member short of disk space said so in order: every replica refuses new data alike.
    const short = this.membersShortOfSpace()
    if (short.length > 0 && addsData(m)) throw noSpace(`${m.type} refused: member${short.length > 1 ? 's' : ''} ${short.join(', ')} of the group short of disk space`)
    switch (m.type) {
      case 'mknod': {
        const attr = await this.applyMknod(changes, stamp, m)
        return { ok: true, ino: attr.ino, attr }
      }
      case 'link':
        return { ok: true, attr: await this.applyLink(changes, stamp, m) }
      case 'unlink':
      case 'rmdir':
        await this.applyRemove(changes, stamp, m.parent, m.name, m.type)
        return { ok: true }
      case 'rename':
        await this.applyRename(changes, stamp, m)
        return { ok: true }
      case 'setattr': {
        const attr = this.putAttr(changes, stamp, this.contentAttr(m.ino, stamp), 'setattr', (a) => ({
          ...a,
          mode: m.mode ?? a.mode,
          uid: m.uid ?? a.uid,
          gid: m.gid ?? a.gid,
          atimeMs: m.atimeMs ?? a.atimeMs,
          mtimeMs: m.mtimeMs ?? a.mtimeMs,
        }))
        return { ok: true, attr }
      }
      case 'setxattr':
      case 'removexattr': {
        const attr = this.liveAttrOrThrow(m.ino)
        const xattrs = { ...(attr.xattrs ?? {}) }
        if (m.type === 'setxattr') xattrs[m.name] = m.valueBase64
        else if (xattrs[m.name] === undefined) throw errors.noAttr(m.name)
        else delete xattrs[m.name]
        return { ok: true, attr: this.putAttr(changes, stamp, attr, m.type, (a) => ({ ...a, xattrs })) }
      }
      case 'version':
        return { ok: true, attr: await this.applyVersion(changes, stamp, m) }
      case 'snapshot': {
        if (this.db.getSync(keys.snapshot(m.name)) !== undefined) throw errors.exists(`snapshot ${m.name}`)
        const at = BigInt(m.at)
        this.floor.check(at) // a cut below the floor nothing pins cannot be pinned any more
        const snapshot: Snapshot = { name: m.name, at: m.at, spec: m.spec, createdStamp: stamp.toString() }
        changes.put(keys.snapshot(m.name), Buffer.from(JSON.stringify(snapshot)))
        this.floor.snapshotPin(at, m.name, true, changes.put, changes.del)
        return { ok: true }
      }
      case 'unsnapshot': {
        const snapshot = this.snapshotOrThrow(m.name)
        if ((snapshot.holds ?? []).length > 0) throw errors.busy(`snapshot ${m.name} is held (${snapshot.holds!.join(', ')}): release it first (fffs snapshot release ${m.name} TAG)`)
        changes.del(keys.snapshot(m.name))
        this.floor.snapshotPin(BigInt(snapshot.at), m.name, false, changes.put, changes.del)
        return { ok: true }
      }
      case 'hold':
      case 'release': {
        const snapshot = this.snapshotOrThrow(m.name)
        const holds = snapshot.holds ?? []
        if (m.tag.length === 0) throw errors.invalid('a hold needs a tag')
        if (m.type === 'hold' && holds.includes(m.tag)) throw errors.exists(`hold ${m.tag} on snapshot ${m.name}`)
        if (m.type === 'release' && !holds.includes(m.tag)) throw errors.notFound(`hold ${m.tag} on snapshot ${m.name}`)
        const next = m.type === 'hold' ? [...holds, m.tag] : holds.filter((t) => t !== m.tag)
        const { holds: _holds, ...rest } = snapshot
        changes.put(keys.snapshot(m.name), Buffer.from(JSON.stringify({ ...rest, ...(next.length > 0 ? { holds: next } : {}) })))
        return { ok: true }
      }
      case 'retain':
        await this.applyRetain(changes, stamp, m.policy)
        return { ok: true }
      case 'compact':
        await this.applyCompact(changes, m.toIno)
        return { ok: true }
      case 'space': {
        if (!Number.isSafeInteger(m.member) || m.member < 0) throw errors.invalid(`space: ${m.member} is not a member id`)
        const next = short.filter((id) => id !== m.member).concat(m.full === true ? [m.member] : []).sort((a, b) => a - b)
        changes.put(SPACE_SHORT_KEY, Buffer.from(JSON.stringify(next)))
        return { ok: true }
      }
    }
  }

  private snapshotOrThrow(name: string): Snapshot {
    const snapshot = this.snapshot(name)
    if (snapshot === null) throw errors.notFound(`snapshot ${name}`)
    return snapshot
  }

  // ---------------------------------------------------------------- retention

  /** Moves the floor (retention/floor.ts) and starts a compaction over every node (the `compact` records that follow). */
  private async applyRetain(changes: Changes, stamp: HlcStamp, policy: unknown): Promise<void> {
    const [first] = await this.records.after(0n, HLC_MAX, 1)
    const { rule, pinsAdded, pinsRemoved } = await this.floor.retain(stamp, policy, first?.stamp ?? stamp, changes.put, changes.del)
    changes.put(COMPACTION_KEY, Buffer.from(JSON.stringify({ nextIno: ROOT_INO } satisfies CompactionCursor)))
    const audit: RetentionAudit = { kind: 'retention', floor: rule.floor.toString(), policy: rule.policy, pinsAdded, pinsRemoved, done: false, ...emptyCounts() }
    changes.put(keys.audit(AUDIT_ORDERED, stamp), Buffer.from(JSON.stringify(audit)))
    await this.trimAudits(AUDIT_ORDERED, changes.del)
    changes.committed = () => this.floor.adopt(rule)
  }

  /** Compacts the nodes from the cursor up to `toIno` under the current rule (retention/compaction.ts). */
  private async applyCompact(changes: Changes, toIno: number): Promise<void> {
    const rule = this.floor.rule
    const cursor = this.compactionCursor()
    if (rule === null || cursor === null) return // nothing to compact: a record proposed twice
    if (!Number.isSafeInteger(toIno)) throw errors.invalid(`compact: ${toIno} is not an inode number`)
    const to = Math.max(cursor.nextIno, Math.min(toIno, this.nextIno))
    const pins = await this.floor.pinsBelowFloor()
    const counts = await compactRange(this.db, { floor: rule.floor, pins, minVersions: rule.policy.minVersions }, cursor.nextIno, to, changes.put, changes.del)
    if (to >= this.nextIno) changes.del(COMPACTION_KEY)
    else changes.put(COMPACTION_KEY, Buffer.from(JSON.stringify({ nextIno: to } satisfies CompactionCursor)))
    // The run's audit entry (the `retain`'s) adds this record's counts.
    const runKey = keys.audit(AUDIT_ORDERED, rule.stamp)
    const run = this.db.getSync(runKey)
    if (run !== undefined) {
      const audit = JSON.parse(run.toString()) as RetentionAudit
      const sum = { ...audit, done: to >= this.nextIno }
      for (const field of Object.keys(counts) as Array<keyof CompactionCounts>) sum[field] = audit[field] + counts[field]
      changes.put(runKey, Buffer.from(JSON.stringify(sum)))
    }
    if (counts.versionsDropped > 0 || counts.nodesRemoved > 0) this.versionSearch = new VersionSearch() // remembered stamps of dropped versions: harmless, but memory
    this.compactionLog?.(describeCounts(counts, rule.floor))
  }

  /** The members that said their disk is short of space (`space` records), in order. */
  membersShortOfSpace(): number[] {
    const value = this.db.getSync(SPACE_SHORT_KEY)
    return value === undefined ? [] : (JSON.parse(value.toString()) as number[])
  }

  /** Where the compaction the last `retain` started stands; null: done (or none). */
  compactionCursor(): CompactionCursor | null {
    const value = this.db.getSync(COMPACTION_KEY)
    return value === undefined ? null : (JSON.parse(value.toString()) as CompactionCursor)
  }

  /** Where a `compact` record from `fromIno` should stop so that it looks at about `versionsMax` versions (at least one node). */
  async compactionChunkEnd(fromIno: Ino, versionsMax: number): Promise<Ino> {
    let versions = 0
    let lastIno = fromIno
    for await (const key of this.db.keys({ gte: keys.attr(fromIno, 0n), lt: prefixEnd(keys.attrTable()) })) {
      const ino = inoOfKey(key)
      if (ino !== lastIno && versions >= versionsMax) return ino
      lastIno = ino
      versions++
    }
    return this.nextIno
  }

  /** What a `retain` by `policy` now, and the compaction after it, would drop (nothing changes). */
  async compactionPreview(policy: RetentionPolicy): Promise<{ floor: HlcStamp; counts: CompactionCounts }> {
    const nowUs = wallClockUs()
    const wanted = hlcCeilingOfUs(Math.max(0, nowUs - policy.keepAllForMs * 1000))
    const floor = wanted > this.floor.stamp ? wanted : this.floor.stamp
    const pins = new Set(await this.floor.pinsBelowFloor())
    for await (const key of this.db.keys({ gte: keys.pin(this.floor.stamp), lt: keys.pin(floor) })) pins.add(stampOfKey(key)) // snapshots the floor will pass
    const [first] = await this.records.after(0n, HLC_MAX, 1)
    const fromUs = hlcPhysicalUs(this.floor.rule?.floor ?? first?.stamp ?? floor)
    for (const instantUs of tierInstants(policy, nowUs, fromUs, hlcPhysicalUs(floor) + 1)) if (hlcCeilingOfUs(instantUs) < floor) pins.add(hlcCeilingOfUs(instantUs))
    const ignore = (): void => undefined
    const counts = await compactRange(this.db, { floor, pins: [...pins].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), minVersions: policy.minVersions }, ROOT_INO, this.nextIno, ignore, ignore)
    return { floor, counts }
  }

  /** The next inode number to be given: inodes below it may have history. */
  get inodeEnd(): Ino {
    return this.nextIno
  }

  /** The audit of retention and GC runs (`fffs log --gc`): the newest `limit` of each kind, oldest first. */
  async audits(limit = AUDITS_KEPT): Promise<Audit[]> {
    const out: Audit[] = []
    for (const kind of [AUDIT_ORDERED, AUDIT_LOCAL]) {
      const prefix = keys.auditPrefix(kind)
      const entries = await this.db.iterator({ gt: prefix, lt: prefixEnd(prefix), reverse: true, limit }).all()
      for (const [key, value] of entries) out.push({ stamp: key.readBigUInt64BE(2), ...(JSON.parse(value.toString()) as AuditEntry) })
    }
    return out.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0)).slice(-limit)
  }

  /** The audit of the newest retention run (the same on every replica), or null. */
  async lastRetention(): Promise<RetentionAudit | null> {
    const prefix = keys.auditPrefix(AUDIT_ORDERED)
    const [entry] = await this.db.iterator({ gt: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1 }).all()
    return entry === undefined ? null : (JSON.parse(entry[1].toString()) as RetentionAudit)
  }

  /** Keeps the newest AUDITS_KEPT entries of a kind (an ordered kind trimmed by a record: the same everywhere). */
  private async trimAudits(kind: number, del: (key: Buffer) => void): Promise<void> {
    const prefix = keys.auditPrefix(kind)
    const newest = await this.db.keys({ gt: prefix, lt: prefixEnd(prefix), reverse: true, limit: AUDITS_KEPT + 16 }).all()
    for (const key of newest.slice(AUDITS_KEPT)) del(key)
  }

  /** Logs each compaction (set by whoever runs the store: the mount, a member). */
  compactionLog: ((line: string) => void) | null = null

  /** The live attributes of a file about to change; on a data shard, a fresh empty one for an inode it has not seen. */
  private contentAttr(ino: Ino, stamp: HlcStamp): Attr {
    const attr = this.liveAttr(ino)
    if (attr !== null) return attr
    if (this.role !== 'data') throw errors.notFound(`inode ${ino}`)
    const stampMs = msOfStamp(stamp)
    return { ino, kind: 'file', mode: 0, uid: 0, gid: 0, sizeBytes: 0, atimeMs: stampMs, mtimeMs: stampMs, ctimeMs: stampMs, version: 0, stamp: stamp.toString(), change: 'create' }
  }

  private liveAttrOrThrow(ino: Ino): Attr {
    const attr = this.liveAttr(ino)
    if (attr === null) throw errors.notFound(`inode ${ino}`)
    return attr
  }

  private liveDirOrThrow(ino: Ino): Attr {
    const attr = this.liveAttrOrThrow(ino)
    if (attr.kind !== 'dir') throw errors.notDir(`inode ${ino}`)
    return attr
  }

  /** Writes the next version of a node's attributes: new version number, ctime from the stamp. */
  private putAttr(changes: Changes, stamp: HlcStamp, current: Attr, change: Attr['change'], edit: (a: Attr) => Attr): Attr {
    const stampMs = msOfStamp(stamp)
    const { entries: _previousEntries, ...unchanged } = current // a directory's entry change belongs to the version that made it
    const next: Attr = { ...edit(unchanged), ino: current.ino, version: current.version + 1, stamp: stamp.toString(), ctimeMs: stampMs, change }
    this.writeAttr(changes, stamp, next, change === 'version')
    return next
  }

  /**
   * `sensorStamped`: this change is what carries the node's sensor time (a creation or a version
   * at sensor time), so a read at that sensor time finds it. A later chmod, rename or xattr keeps
   * the attribute but is no new sensor-time entry: else a sensor cut already read would pick the
   * later change (its attributes, and on a sharded group the data version current then).
   */
  private writeAttr(changes: Changes, stamp: HlcStamp, attr: Attr, sensorStamped: boolean): void {
    const value = Buffer.from(JSON.stringify(attr))
    changes.put(keys.attr(attr.ino, stamp), value)
    changes.put(keys.liveAttr(attr.ino), value)
    changes.put(keys.version(attr.ino, attr.version), encodeStamp(stamp))
    // A record-format file is visible at sensor time through its records' entries only (applyRecords):
    // a whole-version entry would show an incomplete tail.
    if (sensorStamped && attr.sensorUs !== undefined && attr.records === undefined) changes.put(keys.sensor(attr.ino, attr.sensorUs, stamp), encodeSensorEntry(attr.version, null))
  }

  /**
   * A directory's entries changed: a new version with a new mtime, what changed among its
   * entries (`fffs log DIR` shows it), and its link count moved by `subdirsDelta` (a subdirectory's `..`).
   */
  private touchDir(changes: Changes, stamp: HlcStamp, dir: Attr, change: Attr['change'], entries: EntryChange, subdirsDelta = 0): void {
    const stampMs = msOfStamp(stamp)
    // A directory written before link counts were kept stays uncounted (absent) rather than wrong.
    const nlink = dir.nlink === undefined ? {} : { nlink: dir.nlink + subdirsDelta }
    this.putAttr(changes, stamp, dir, change, (a) => ({ ...a, mtimeMs: stampMs, entries, ...nlink }))
  }

  /** One name of `attr` is gone: a directory has none left; any other node one fewer (0: only open files hold it). */
  private dropName(changes: Changes, stamp: HlcStamp, attr: Attr, change: Attr['change']): void {
    const nlink = attr.kind === 'dir' ? 0 : Math.max(0, (attr.nlink ?? 1) - 1)
    this.putAttr(changes, stamp, attr, change, (a) => ({ ...a, nlink }))
  }

  /**
   * Binds `name` to `child` (null: unbinds it), whose version from this record on is
   * `childVersion`. The D entry carries the row of the name's history the binding starts at
   * (the rows the binding before made, after its own first row), so the numbering of `fffs log`
   * and `P@vN` does not depend on history compaction may drop; an unbound name keeps its next
   * row in Z. Rows are null (counted from the history instead) for a name whose bindings began
   * before rows were kept.
   */
  private async setDirEntry(changes: Changes, stamp: HlcStamp, parent: Ino, name: string, child: Ino | null, childVersion: number | null): Promise<void> {
    const live = this.db.getSync(keys.liveDirEntry(parent, name))
    let firstRow: number | null
    if (live !== undefined) {
      const since = liveDirEntrySince(live)
      const value = since === null ? undefined : this.db.getSync(keys.dirEntry(parent, name, since))
      const binding = value === undefined ? null : decodeDirEntry(value)
      const node = binding?.ino == null ? null : this.liveAttr(binding.ino)
      firstRow = binding?.firstRow == null || binding.version === null || node === null ? null : binding.firstRow + (node.version - binding.version + 1)
    } else {
      firstRow = await this.firstRowOfUnboundName(parent, name)
    }
    changes.put(keys.dirEntry(parent, name, stamp), encodeDirEntry(child, firstRow, childVersion))
    if (child === null) {
      changes.del(keys.liveDirEntry(parent, name))
      if (firstRow !== null) changes.put(keys.unboundName(parent, name), encodeRow(firstRow + 1)) // a removal is one row
    } else {
      changes.put(keys.liveDirEntry(parent, name), encodeLiveDirEntry(child, stamp))
      changes.del(keys.unboundName(parent, name))
    }
  }

  /** The row a new binding of a name bound to nothing starts at; null: it had bindings before rows were kept. */
  private async firstRowOfUnboundName(parent: Ino, name: string): Promise<number | null> {
    const next = this.db.getSync(keys.unboundName(parent, name))
    if (next !== undefined) return decodeRow(next)
    if (this.db.getSync(ROWS_KEPT_KEY) === undefined) {
      // A store written before rows were kept: the name may have a history without them.
      const older = await this.latestAtOrBefore(keys.dirNamePrefix(parent, name), keys.dirEntry(parent, name, HLC_MAX))
      if (older !== null) return null
    }
    return 1
  }

  private async applyMknod(changes: Changes, stamp: HlcStamp, m: Extract<Mutation, { type: 'mknod' }>): Promise<Attr> {
    checkName(m.name)
    if (m.sensorUs !== undefined) checkSensorLag(stamp, m.sensorLagMaxUs, m.sensorUs, `creating '${m.name}' at sensor time`)
    const parent = this.liveDirOrThrow(m.parent)
    if (this.liveLookup(m.parent, m.name) !== null) throw errors.exists(m.name)
    const isDevice = m.kind === 'chardev' || m.kind === 'blockdev'
    if (isDevice && !(Number.isSafeInteger(m.rdev) && m.rdev! >= 0)) throw errors.invalid(`device node '${m.name}' needs a device number, got ${m.rdev}`)
    if (!NODE_KINDS.has(m.kind)) throw errors.invalid(`unknown node kind '${m.kind}'`)
    const ino = this.nextIno++
    const stampMs = msOfStamp(stamp)
    // A set-group-ID directory gives what is made in it its group, and its subdirectories the bit (BSD and System V semantics alike).
    const inheritsGroup = (parent.mode & S_ISGID) !== 0
    const xattrs = { ...inheritedXattrs(parent, m.inheritXattrs), ...m.xattrs }
    const attr: Attr = {
      ino, parent: m.parent, kind: m.kind,
      mode: (m.mode & 0o7777) | (inheritsGroup && m.kind === 'dir' ? S_ISGID : 0),
      uid: m.uid, gid: inheritsGroup ? parent.gid : m.gid, nlink: m.kind === 'dir' ? 2 : 1,
      ...(isDevice ? { rdev: m.rdev! } : {}),
      sizeBytes: m.kind === 'symlink' ? Buffer.byteLength(m.target ?? '') : 0,
      atimeMs: stampMs, mtimeMs: stampMs, ctimeMs: stampMs, version: 1, stamp: stamp.toString(), change: 'create',
      ...(m.target !== undefined ? { target: m.target } : {}),
      ...(m.sensorUs !== undefined ? { sensorUs: m.sensorUs } : {}),
      ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
    }
    this.writeAttr(changes, stamp, attr, true) // a creation carries the node's sensor time, if it has one
    await this.setDirEntry(changes, stamp, m.parent, m.name, ino, 1)
    this.touchDir(changes, stamp, parent, 'mknod', { added: m.name }, m.kind === 'dir' ? 1 : 0)
    return attr
  }

  /** A hard link: one more name for a node that is not a directory; both names lead to the same history. */
  private async applyLink(changes: Changes, stamp: HlcStamp, m: Extract<Mutation, { type: 'link' }>): Promise<Attr> {
    checkName(m.name)
    const parent = this.liveDirOrThrow(m.parent)
    const target = this.liveAttrOrThrow(m.ino)
    if (target.kind === 'dir') throw errors.notPermitted(`a directory cannot be hard linked (inode ${m.ino})`)
    const nlink = target.nlink ?? 1
    if (nlink === 0) throw errors.notFound(`inode ${m.ino}: no name refers to it any more`)
    if (nlink >= LINK_MAX) throw errors.tooManyLinks(`inode ${m.ino} has ${nlink} names`)
    if (this.liveLookup(m.parent, m.name) !== null) throw errors.exists(m.name)
    await this.setDirEntry(changes, stamp, m.parent, m.name, m.ino, target.version + 1)
    const linked = this.putAttr(changes, stamp, target, 'link', (a) => ({ ...a, nlink: nlink + 1 }))
    this.touchDir(changes, stamp, parent, 'link', { added: m.name })
    return linked
  }

  private async applyRemove(changes: Changes, stamp: HlcStamp, parentIno: Ino, name: string, type: 'unlink' | 'rmdir'): Promise<void> {
    const parent = this.liveDirOrThrow(parentIno)
    const child = this.liveLookup(parentIno, name)
    if (child === null) throw errors.notFound(name)
    const attr = this.liveAttrOrThrow(child)
    if (type === 'rmdir' && attr.kind !== 'dir') throw errors.notDir(name)
    if (type === 'unlink' && attr.kind === 'dir') throw errors.isDir(name)
    if (type === 'rmdir' && (await this.hasLiveChildren(child))) throw errors.notEmpty(name)
    await this.setDirEntry(changes, stamp, parentIno, name, null, null)
    this.touchDir(changes, stamp, parent, type, { removed: name }, attr.kind === 'dir' ? -1 : 0)
    this.dropName(changes, stamp, attr, type)
  }

  private async applyRename(changes: Changes, stamp: HlcStamp, m: Extract<Mutation, { type: 'rename' }>): Promise<void> {
    checkName(m.toName)
    const fromDir = this.liveDirOrThrow(m.fromParent)
    const toDir = this.liveDirOrThrow(m.toParent)
    const moving = this.liveLookup(m.fromParent, m.fromName)
    if (moving === null) throw errors.notFound(m.fromName)
    const movingAttr = this.liveAttrOrThrow(moving)
    const replaced = this.liveLookup(m.toParent, m.toName)
    if (replaced === moving) return // two names of one node: nothing to do (POSIX)
    if (movingAttr.kind === 'dir' && this.isAncestor(moving, m.toParent)) throw errors.invalid(`cannot move a directory into itself: ${m.fromName}`)
    const replacedAttr = replaced === null ? null : this.liveAttrOrThrow(replaced)
    if (replacedAttr !== null) {
      if (replacedAttr.kind === 'dir' && movingAttr.kind !== 'dir') throw errors.isDir(m.toName)
      if (replacedAttr.kind !== 'dir' && movingAttr.kind === 'dir') throw errors.notDir(m.toName)
      if (replacedAttr.kind === 'dir' && (await this.hasLiveChildren(replacedAttr.ino))) throw errors.notEmpty(m.toName)
    }
    await this.setDirEntry(changes, stamp, m.fromParent, m.fromName, null, null)
    await this.setDirEntry(changes, stamp, m.toParent, m.toName, moving, movingAttr.version + 1)
    this.putAttr(changes, stamp, movingAttr, 'rename', (a) => ({ ...a, parent: m.toParent }))
    if (replacedAttr !== null) this.dropName(changes, stamp, replacedAttr, 'rename')
    // Link counts of the directories: a directory moving out of one and into another, one replaced.
    const movesDir = movingAttr.kind === 'dir' ? 1 : 0
    const replacesDir = replacedAttr?.kind === 'dir' ? 1 : 0
    const replacing = replacedAttr !== null ? { replaced: true as const } : {}
    if (m.toParent === m.fromParent) this.touchDir(changes, stamp, fromDir, 'rename', { removed: m.fromName, added: m.toName, ...replacing }, -replacesDir)
    else {
      this.touchDir(changes, stamp, fromDir, 'rename', { removed: m.fromName, moved: true }, -movesDir)
      this.touchDir(changes, stamp, toDir, 'rename', { added: m.toName, moved: true, ...replacing }, movesDir - replacesDir)
    }
  }

  /** Whether `ancestor` is `ino` or one of its live ancestors (directories have one parent). */
  private isAncestor(ancestor: Ino, ino: Ino): boolean {
    for (let current = ino, steps = 0; steps < 4096; steps++) {
      if (current === ancestor) return true
      if (current === ROOT_INO) return false
      const parent = this.liveAttr(current)?.parent
      if (parent === undefined) return false
      current = parent
    }
    throw new Error('directory tree deeper than 4096 levels or cyclic')
  }

  private async applyVersion(changes: Changes, stamp: HlcStamp, m: Extract<Mutation, { type: 'version' }>): Promise<Attr> {
    const { ino, ops } = m
    if (m.sensorUs !== undefined) checkSensorLag(stamp, m.sensorLagMaxUs, m.sensorUs, `version of inode ${ino}`)
    const attr = this.contentAttr(ino, stamp)
    if (attr.kind === 'dir') throw errors.isDir(`inode ${ino}`)
    if (attr.kind !== 'file') throw errors.invalid(`inode ${ino} is not a regular file`)
    const touched = new Map<number, BlockDelta>() // each block's change in this version
    const change = (block: number, delta: BlockDelta): void => void touched.set(block, composeDeltas(touched.get(block) ?? NO_CHANGE, delta))
    let sizeBytes = attr.sizeBytes
    let lowestChangedBytes = Number.MAX_SAFE_INTEGER // the first byte this version may change (record cursors below it stand)
    for (const op of ops) {
      lowestChangedBytes = Math.min(lowestChangedBytes, op.op === 'write' ? op.offset : Math.min(op.sizeBytes, sizeBytes))
      if (op.op === 'write') {
        if ('blob' in op.data) throw new Error(`internal: version of inode ${ino} refers to blob ${op.data.blob}; blobs must be replaced by log positions before ordering`)
        const data = op.data
        for (let at = op.offset; at < op.offset + op.sizeBytes; ) {
          const block = Math.floor(at / BLOCK_SIZE_BYTES)
          const inBlock = at - block * BLOCK_SIZE_BYTES
          const n = Math.min(BLOCK_SIZE_BYTES - inBlock, op.offset + op.sizeBytes - at)
          change(block, writeDelta(inBlock, n, { segment: data.segment, offset: data.offset + (at - op.offset) }))
          at += n
        }
        sizeBytes = Math.max(sizeBytes, op.offset + op.sizeBytes)
      } else {
        if (op.sizeBytes < sizeBytes) {
          // Invariant: no extent lies beyond the file size, so growing later reads zeros.
          const firstBlock = Math.floor(op.sizeBytes / BLOCK_SIZE_BYTES)
          const endBlock = Math.ceil(sizeBytes / BLOCK_SIZE_BYTES)
          for (let block = firstBlock; block < endBlock; block++) change(block, truncateDelta(op.sizeBytes - block * BLOCK_SIZE_BYTES))
        }
        sizeBytes = op.sizeBytes
      }
    }
    for (const [block, delta] of touched) for (const { key, value } of this.blocks.changeOps(ino, block, stamp, delta)) changes.put(key, value)
    // mtime to the µs of the stamp: a kernel that caches a file's pages keeps them while its
    // mtime and size are unchanged, so two versions must not share an mtime (within one ms they would).
    const stampMs = msOfStamp(stamp)
    const { sensorUs: _previousSensorUs, records: previousCursor, ...rest } = attr
    let sensorUs = m.sensorUs
    let records: RecordCursor | undefined
    if (m.records !== undefined) {
      records = this.applyRecords(changes, stamp, ino, attr.version + 1, sizeBytes, m.records, m.sensorLagMaxUs)
      if (m.records.entries.length > 0) sensorUs = records.maxSensorUs // the version's sensor time: when its last record shows
    } else if (previousCursor !== undefined && lowestChangedBytes >= previousCursor.endBytes) {
      records = previousCursor // appended past the parsed records, unparsed (no format now): they stand
    }
    return this.putAttr(changes, stamp, rest, 'version', (a) => ({ ...a, sizeBytes, mtimeMs: stampMs, ...(sensorUs !== undefined ? { sensorUs } : {}), ...(records !== undefined ? { records } : {}) }))
  }

  /**
   * Indexes a version's records. Each record is entered under the greatest sensor time of the
   * records up to and including it (a running maximum, non-decreasing in file order), with the
   * record's end offset: so the latest entry at or before T names the longest prefix whose
   * records are all stamped at or before T, and ties go to the later version. Entries sharing
   * a key keep the last (longest) record.
   */
  private applyRecords(changes: Changes, stamp: HlcStamp, ino: Ino, version: number, sizeBytes: number, records: VersionRecords, sensorLagMaxUs: number | undefined): RecordCursor {
    let previousEnd = 0
    let maxSensorUs = records.baseMaxSensorUs
    if (!Number.isSafeInteger(maxSensorUs) || maxSensorUs < -1) throw errors.invalid(`records of inode ${ino}: bad baseMaxSensorUs ${maxSensorUs}`)
    const entries = records.entries
    for (let i = 0; i < entries.length; i++) {
      const [endBytes, sensorUs] = entries[i]!
      if (!Number.isSafeInteger(endBytes) || endBytes <= previousEnd || endBytes > sizeBytes) throw errors.invalid(`records of inode ${ino}: record end ${endBytes} not in (${previousEnd}, ${sizeBytes}]`)
      if (!Number.isSafeInteger(sensorUs) || sensorUs < 0) throw errors.invalid(`records of inode ${ino}: bad sensor time ${sensorUs}`)
      checkSensorLag(stamp, sensorLagMaxUs, sensorUs, `record of inode ${ino} ending at byte ${endBytes}`)
      previousEnd = endBytes
      maxSensorUs = Math.max(maxSensorUs, sensorUs)
      const next = entries[i + 1]
      if (next === undefined || Math.max(maxSensorUs, next[1]) !== maxSensorUs) changes.put(keys.sensor(ino, maxSensorUs, stamp), encodeSensorEntry(version, endBytes))
    }
    if (!Number.isSafeInteger(records.endBytes) || records.endBytes < previousEnd || records.endBytes > sizeBytes) throw errors.invalid(`records of inode ${ino}: cursor ${records.endBytes} not in [${previousEnd}, ${sizeBytes}]`)
    return { endBytes: records.endBytes, maxSensorUs, ...(records.state !== undefined ? { state: records.state } : {}) }
  }

  // ---------------------------------------------------------------- reading (live)

  liveAttr(ino: Ino): Attr | null {
    const value = this.db.getSync(keys.liveAttr(ino))
    return value === undefined ? null : (JSON.parse(value.toString()) as Attr)
  }

  liveLookup(parent: Ino, name: string): Ino | null {
    const value = this.db.getSync(keys.liveDirEntry(parent, name))
    return value === undefined ? null : decodeIno(value)
  }

  private async hasLiveChildren(dir: Ino): Promise<boolean> {
    const prefix = keys.liveDirPrefix(dir)
    const first = await this.db.keys({ gt: prefix, lt: prefixEnd(prefix), limit: 1 }).all()
    return first.length > 0
  }

  // ---------------------------------------------------------------- reading (at a cut)

  /** The node named `name` in directory `parent` at the cut (HLC_MAX: live). A name no node can have is ENAMETOOLONG, not absent. */
  async lookup(parent: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    if (Buffer.byteLength(name) > NAME_MAX_BYTES) throw errors.nameTooLong(name)
    if (cut === HLC_MAX) return this.liveLookup(parent, name)
    // A name's live binding, begun at or before the cut, is the one the cut sees (every rebinding
    // starts a new one): a synchronous get instead of a seek. Certain below the floor too.
    const live = this.db.getSync(keys.liveDirEntry(parent, name))
    const since = live === undefined ? null : liveDirEntrySince(live)
    if (since !== null && since <= cut) return decodeIno(live!)
    this.floor.check(cut)
    const entry = await this.latestAtOrBefore(keys.dirNamePrefix(parent, name), keys.dirEntry(parent, name, cut))
    return entry === null ? null : decodeDirEntry(entry[1]).ino
  }

  /** The node named `name` in directory `parent` at the cut, with its attributes there; null when none. */
  async child(parent: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    const ino = await this.lookup(parent, name, cut)
    return ino === null ? null : this.attr(ino, cut)
  }

  /**
   * The attributes of the node's latest version at or before the cut. Below the history floor
   * only what is certain: a node unchanged since, the version stamped exactly at the cut (a
   * version read by number), a node created after the cut, a pinned cut; else ERANGE.
   */
  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    const live = this.liveAttr(ino)
    // The latest version, stamped at or before the cut, is the cut's: most nodes a past cut reads have not changed since.
    if (cut === HLC_MAX || (live !== null && BigInt(live.stamp) <= cut)) return live
    if (cut < this.floor.stamp) return this.attrBelowFloor(ino, cut)
    if (live === null) return this.vanished(ino)
    const compacted = this.floor.stamp > 0n
    const stamp = this.versionSearch.latestAtOrBefore(ino, live.version - 1, cut, (version) => {
      const found = this.versionStamp(ino, version)
      // A dropped version is older than the floor, so than the cut: it is before the one the cut sees.
      if (found === null && compacted) return 0n
      if (found === null) throw new Error(`store index: inode ${ino} has no entry for version ${version} of ${live.version}`)
      return found
    })
    if (stamp === null) return null
    const value = this.db.getSync(keys.attr(ino, stamp))
    if (value === undefined && compacted) return this.vanished(ino) // the version the cut sees was dropped: no name reached it at the floor
    if (value === undefined) throw new Error(`store index: inode ${ino} has no attributes at the stamp of one of its versions (${stamp})`)
    return JSON.parse(value.toString()) as Attr
  }

  /**
   * A node with no live attributes: null (never made here) or, once history was compacted, a node
   * deleted before the floor and dropped (ERANGE: what an open handle held of it is gone).
   */
  private vanished(ino: Ino): null {
    if (this.floor.stamp > 0n && this.role !== 'data' && ino < this.nextIno) throw this.floor.compacted()
    return null
  }

  private async attrBelowFloor(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    const exact = this.db.getSync(keys.attr(ino, cut))
    if (exact !== undefined) return JSON.parse(exact.toString()) as Attr
    if (this.floor.pin(cut) === null) {
      const first = this.versionStamp(ino, 1)
      if (first !== null && first > cut) return null // made after the cut
      throw this.floor.compacted()
    }
    // A pinned cut: the version it sees is kept if a name reached the node there. The kept version
    // found is the one only if the version after it (whose number's stamp compaction keeps) came later.
    const entry = await this.latestAtOrBefore(keys.attrPrefix(ino), keys.attr(ino, cut))
    if (entry === null) return this.liveAttr(ino) === null ? this.vanished(ino) : null // made after the cut, or dropped whole
    const found = JSON.parse(entry[1].toString()) as Attr
    const live = this.liveAttr(ino)
    if (live !== null && live.version === found.version) return found
    const next = this.versionStamp(ino, found.version + 1)
    if (next !== null && next > cut) return found
    throw this.floor.compacted() // the version the cut saw was dropped: no name reached the node there
  }

  /** Resolves path components from the root at the cut. */
  async walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    let attr = await this.attr(ROOT_INO, cut)
    if (attr === null) throw errors.notFound('/')
    for (const name of components) {
      if (attr.kind !== 'dir') throw errors.notDir(name)
      const child = await this.lookup(attr.ino, name, cut)
      if (child === null) throw errors.notFound(name)
      attr = await this.attr(child, cut)
      if (attr === null) throw errors.notFound(name)
    }
    return attr
  }

  /**
   * Names and inodes in a directory at the cut, sorted by name (byte order); `page`: only the
   * names after `page.after`, at most `page.limit` of them (a listing read a window at a time).
   */
  async readdir(dir: Ino, cut: HlcStamp, page: DirPage = {}): Promise<Array<{ name: string; ino: Ino }>> {
    const limit = page.limit ?? Infinity
    if (limit <= 0) return []
    if (cut === HLC_MAX) {
      const prefix = keys.liveDirPrefix(dir)
      const from = page.after !== undefined ? keys.liveDirEntry(dir, page.after) : prefix
      const entries = await this.db.iterator({ gt: from, lt: prefixEnd(prefix), ...(page.limit !== undefined ? { limit: page.limit } : {}) }).all()
      return entries.map(([key, value]) => ({ name: nameOfLiveDirKey(key), ino: decodeIno(value) }))
    }
    this.floor.check(cut)
    const prefix = keys.dirPrefix(dir)
    // Past every history key of `after` (its name, 0x00, an 8-byte stamp).
    const from = page.after !== undefined ? prefixEnd(keys.dirNamePrefix(dir, page.after)) : prefix
    const out: Array<{ name: string; ino: Ino }> = []
    let current: { name: string; ino: Ino | null } | null = null
    for await (const [key, value] of this.db.iterator({ gt: from, lt: prefixEnd(prefix) })) {
      const name = nameOfDirEntryKey(key)
      if (current !== null && current.name !== name) {
        if (current.ino !== null) out.push({ name: current.name, ino: current.ino })
        current = null
        if (out.length >= limit) return out
      }
      if (stampOfKey(key) > cut) continue // later history of this name
      current = { name, ino: decodeDirEntry(value).ino }
    }
    if (current !== null && current.ino !== null) out.push({ name: current.name, ino: current.ino })
    return out
  }

  /** A buffer `read` fills fastest with `lengthBytes` (large reads go past the page cache into aligned memory). */
  readBuffer(lengthBytes: number): Buffer {
    return this.log.readBuffer(lengthBytes)
  }

  /**
   * Reads from the version of a file described by `attr` (which must come from this store):
   * every byte from that one version, never a mix. Returns the number of bytes read.
   */
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    return this.tracked(() => this.readNow(attr, offset, into, lengthBytes))
  }

  private async readNow(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    const { sizeBytes, pieces } = await this.pieces(attr, offset, lengthBytes)
    into.fill(0, 0, sizeBytes)
    await Promise.all(pieces.map((piece) => this.log.read(piece.position, into, piece.intoOffset, piece.lengthBytes)))
    return sizeBytes
  }

  /**
   * Where bytes [offset, offset + lengthBytes) of the version `attr` lie in the log files, for
   * a reader on this host (a mount beside its member): each piece's file, its identity
   * (Disk.fileId: a file found there later with another is not this one) and position, every
   * piece written to its file when this resolves. `sizeBytes` are read; what no piece covers
   * is zeros. Null where the disk cannot say what its files are.
   */
  locate(attr: Attr, offset: number, lengthBytes: number): Promise<LocatedBytes | null> {
    const disk = this.disk
    if (disk.fileId === undefined) return Promise.resolve(null)
    return this.tracked(async () => {
      const { sizeBytes, pieces } = await this.pieces(attr, offset, lengthBytes)
      const segments = [...new Set(pieces.map((piece) => piece.position.segment))]
      const ids = await Promise.all(segments.map((segment) => disk.fileId!(this.log.segmentFile(segment))))
      if (ids.some((id) => id === null)) return null // collected since its pieces were found
      await Promise.all(pieces.map((piece) => this.log.written(piece.position, piece.lengthBytes)))
      return {
        sizeBytes,
        files: segments.map((segment, i) => ({ file: this.log.segmentFile(segment), id: ids[i]! })),
        pieces: pieces.map((piece) => ({ intoOffset: piece.intoOffset, lengthBytes: piece.lengthBytes, fileIndex: segments.indexOf(piece.position.segment), offset: piece.position.offset })),
      }
    })
  }

  /** The log positions of bytes [offset, offset + lengthBytes) of the version `attr`, and how many of those bytes the version has. */
  private async pieces(attr: Attr, offset: number, lengthBytes: number): Promise<{ sizeBytes: number; pieces: Array<{ position: LogPosition; intoOffset: number; lengthBytes: number }> }> {
    const end = Math.min(attr.sizeBytes, offset + lengthBytes)
    if (end <= offset) return { sizeBytes: 0, pieces: [] }
    // A version below the floor may have been dropped since the caller found it (a file held open
    // across a compaction): its block entries are gone, so it is ERANGE, never zeros. Checked after
    // its maps are read too: a compaction in between would have taken them.
    const dropped = (): boolean => BigInt(attr.stamp) < this.floor.stamp && this.db.getSync(keys.attr(attr.ino, BigInt(attr.stamp))) === undefined
    if (dropped()) throw this.floor.compacted()
    const maps = await this.blockMaps(attr, Math.floor(offset / BLOCK_SIZE_BYTES), Math.floor((end - 1) / BLOCK_SIZE_BYTES))
    if (dropped()) throw this.floor.compacted()
    const pieces: Array<{ position: LogPosition; intoOffset: number; lengthBytes: number }> = []
    maps.forEach((map, i) => {
      const blockStart = (Math.floor(offset / BLOCK_SIZE_BYTES) + i) * BLOCK_SIZE_BYTES
      for (const extent of map) {
        const from = Math.max(offset, blockStart + extent.offset)
        const to = Math.min(end, blockStart + extent.offset + extent.sizeBytes)
        if (from >= to) continue
        pieces.push({ position: { segment: extent.segment, offset: extent.segmentOffset + (from - blockStart - extent.offset) }, intoOffset: from - offset, lengthBytes: to - from })
      }
    })
    return { sizeBytes: end - offset, pieces }
  }

  /** Block maps of blocks [first, last] as of the version `attr`; the live entries when it is still current. */
  private async blockMaps(attr: Attr, first: number, last: number): Promise<BlockMap[]> {
    const stamp = BigInt(attr.stamp)
    const live = this.db.getSync(keys.liveAttr(attr.ino))
    if (live !== undefined && (JSON.parse(live.toString()) as Attr).stamp === attr.stamp) {
      const maps: BlockMap[] = []
      for (let block = first; block <= last; block++) maps.push(this.blocks.liveMap(attr.ino, block))
      // A batch may have landed between the synchronous reads: valid only if still current.
      const after = this.db.getSync(keys.liveAttr(attr.ino))
      if (after !== undefined && (JSON.parse(after.toString()) as Attr).stamp === attr.stamp) return maps
    }
    const maps: BlockMap[] = []
    for (let block = first; block <= last; block++) {
      // A block the version itself wrote (a file rewritten whole, the common case) has an entry at exactly its stamp.
      const exact = this.db.getSync(keys.block(attr.ino, block, stamp))
      const entry: [Buffer, Buffer] | null = exact !== undefined ? [keys.block(attr.ino, block, stamp), exact] : await this.latestAtOrBefore(keys.blockPrefix(attr.ino, block), keys.block(attr.ino, block, stamp))
      maps.push(entry === null ? [] : this.blocks.mapAt(attr.ino, block, stampOfKey(entry[0]), entry[1]))
    }
    return maps
  }

  /** The versions of a node in `range` (all of them by default), oldest first: an ordered-index range, never a scan of the rest. */
  async versions(ino: Ino, range: VersionRange = {}): Promise<Attr[]> {
    const prefix = keys.attrPrefix(ino)
    const entries = await this.db
      .iterator({
        gt: range.after !== undefined ? keys.attr(ino, range.after) : prefix,
        ...(range.upto !== undefined && range.upto !== HLC_MAX ? { lte: keys.attr(ino, range.upto) } : { lt: prefixEnd(prefix) }),
        ...(range.reverse === true ? { reverse: true } : {}),
        ...(range.limit !== undefined ? { limit: range.limit } : {}),
      })
      .all()
    return entries.map(([, value]) => JSON.parse(value.toString()) as Attr)
  }

  /** Every binding of `name` in directory `dir`, oldest first (a range of the directory history, one entry per change of the name). */
  async nameHistory(dir: Ino, name: string, page: StampPage = {}): Promise<NameBinding[]> {
    const prefix = keys.dirNamePrefix(dir, name)
    const from = page.after !== undefined ? keys.dirEntry(dir, name, page.after) : prefix
    const entries = await this.db.iterator({ gt: from, lt: prefixEnd(prefix), ...(page.limit !== undefined ? { limit: page.limit } : {}) }).all()
    return entries.map(([key, value]) => {
      const { ino, firstRow, version } = decodeDirEntry(value)
      return { stamp: stampOfKey(key), ino, ...(firstRow !== null ? { firstRow } : {}), ...(version !== null ? { version } : {}) }
    })
  }

  /** The stamp of version `version` of a node, or null (no such version); ERANGE for one retention dropped. */
  stampOfVersion(ino: Ino, version: number): HlcStamp | null {
    const stamp = this.versionStamp(ino, version)
    if (stamp === null && this.floor.stamp > 0n && version >= 1 && version < (this.liveAttr(ino)?.version ?? 0)) throw this.floor.compacted()
    return stamp
  }

  private versionStamp(ino: Ino, version: number): HlcStamp | null {
    const value = this.db.getSync(keys.version(ino, version))
    return value === undefined ? null : value.readBigUInt64BE(0)
  }

  /** The stamp of the node's latest version whose sensor time is at or before `sensorUs`, or null. */
  async stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return (await this.sensorPick(ino, sensorUs))?.stamp ?? null
  }

  /**
   * What a read at sensor time `sensorUs` sees of a node: its latest version stamped at or
   * before it, and for a record-format file the prefix of that version up to the last record
   * at or before it (applyRecords).
   */
  async sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    const entry = await this.latestAtOrBefore(keys.sensorPrefix(ino), keys.sensor(ino, sensorUs, HLC_MAX))
    // Compaction dropped versions with sensor times in [min, max]: one of them could have been the
    // pick unless they all lie after the cut or before the pick.
    const facts = nodeFacts(this.db, ino)
    if (facts !== null && facts.droppedSensorMinUs <= sensorUs && (entry === null || Number(entry[0].readBigUInt64BE(9)) <= facts.droppedSensorMaxUs)) throw this.floor.compacted()
    if (entry === null) return null
    return { stamp: stampOfKey(entry[0]), sizeBytes: decodeSensorEntry(entry[1]) }
  }

  /** The named snapshots, by name; `page`: those after `page.after`, at most `page.limit`. */
  async snapshots(page: DirPage = {}): Promise<Snapshot[]> {
    const prefix = keys.snapshotPrefix()
    const from = page.after !== undefined ? keys.snapshot(page.after) : prefix
    const entries = await this.db.iterator({ gt: from, lt: prefixEnd(prefix), ...(page.limit !== undefined ? { limit: page.limit } : {}) }).all()
    return entries.map(([, value]) => JSON.parse(value.toString()) as Snapshot)
  }

  snapshot(name: string): Snapshot | null {
    const value = this.db.getSync(keys.snapshot(name))
    return value === undefined ? null : (JSON.parse(value.toString()) as Snapshot)
  }

  private async latestAtOrBefore(prefix: Buffer, upTo: Buffer): Promise<[Buffer, Buffer] | null> {
    const [entry] = await this.db.iterator({ gte: prefix, lte: upTo, reverse: true, limit: 1 }).all()
    return entry ?? null
  }
}

/** An S entry's value: the version, and for a record the end of the prefix it makes visible ("3 4096"). */
function encodeSensorEntry(version: number, prefixBytes: number | null): Buffer {
  return Buffer.from(prefixBytes === null ? String(version) : `${version} ${prefixBytes}`)
}

function decodeSensorEntry(value: Buffer): number | null {
  const [, prefix] = value.toString().split(' ')
  return prefix === undefined ? null : Number(prefix)
}

/**
 * Whether a mutation adds data (file bytes, names, attributes, pins): refused while the disk is
 * below its reserve. The rest (unlink, rmdir, truncation, snapshot deletion, retention) frees
 * space or takes next to none.
 */
export function addsData(m: Mutation): boolean {
  switch (m.type) {
    case 'version':
      return m.ops.some((op) => op.op === 'write')
    case 'mknod':
    case 'link':
    case 'setxattr':
    case 'snapshot':
    case 'hold':
      return true
    default:
      return false
  }
}

/** Refuses a sensor time below the version's platform time − Δ (deterministic: the stamp is the clock). */
function checkSensorLag(stamp: HlcStamp, sensorLagMaxUs: number | undefined, sensorUs: number, what: string): void {
  if (sensorLagMaxUs === undefined) return
  const floorUs = hlcPhysicalUs(stamp) - sensorLagMaxUs
  if (sensorUs >= floorUs) return
  const iso = (us: number): string => (us >= 0 ? isoOfUs(us) : `${us} µs`)
  throw errors.lateSensorWrite(`${what} stamped ${iso(sensorUs)} is older than platform time ${isoOfUs(hlcPhysicalUs(stamp))} − Δ ${sensorLagMaxUs / 1000} ms = ${iso(floorUs)}`)
}

/** The xattrs named in `names` that `parent` has (what a new node takes from its directory). */
function inheritedXattrs(parent: Attr, names: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of names ?? []) {
    const value = parent.xattrs?.[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

const NODE_KINDS: ReadonlySet<NodeKind> = new Set(['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'])

function checkName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw errors.invalid(`invalid name '${name}'`)
  if (Buffer.byteLength(name) > NAME_MAX_BYTES) throw errors.nameTooLong(name)
}
