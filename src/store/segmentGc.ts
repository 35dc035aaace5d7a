// Segment garbage collection: space back from the log once compaction has dropped what named it.
//
// A sealed segment is collected when the bytes the index still names in it (its *live* bytes)
// are at most a share of it (`liveRatioMax`), and nothing else can need it: every record in it and
// every record naming data in it is at or below the history floor (so no state transfer from a
// stamp at or above the new log base reads it), it holds no data appended but not yet named by a
// version (an open file's chunks, a member's delivered blobs), and it is not the segment of the
// store's last record. Its live bytes are copied forward to the tail of the log (as ordinary Data
// entries), the block entries naming them are rewritten to the copies, and the file is deleted.
//
// This is local to each store: replicas hold file bytes at positions of their own already, and
// what may be collected is decided by the floor, which records move identically everywhere.
//
// Crash safety, step by step: (1) the log base is moved first and synced (records at or below it
// are no longer exported), then their record-index entries go; (2) the copies are appended and
// synced; (3) the index is rewritten in one synced batch, with applies held off meanwhile and the
// block entries they wrote during the run rewritten too; (4) reads that may hold old positions
// finish; (5) the segments are deleted. A crash before (3) leaves unnamed copies (garbage the
// next run collects); after it, segments nothing names.

import type { IndexDb } from './disk.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { HLC_MAX, type HlcStamp } from '../temporal/hlc.js'
import { decodeBlockEntry, relocateBlockEntry, relocateExtents, type MoveBytes, type MovedPieces } from './blockHistory.js'
import { decodeExtents, encodeExtents, EXTENT_BYTES, type BlockMap } from './blockMap.js'
import { keys, prefixEnd } from './keys.js'
import { decodeRecord } from './records.js'
import type { RecordIndex } from './recordIndex.js'
import type { HistoryFloor } from './retention/floor.js'
import { EntryKind, type SegmentLog } from './segmentLog.js'

/** Copies are appended in entries of at most this size. */
const COPY_ENTRY_BYTES_MAX = 8 * 1024 * 1024
const RECORD_INDEX_DELETES_PER_BATCH = 4096
export const LIVE_RATIO_MAX_DEFAULT = 0.5
const LOG_BASE_KEY = keys.meta('logBase')

/** What GC needs of the store it collects. */
export interface GcHost {
  readonly db: IndexDb
  readonly log: SegmentLog
  readonly records: RecordIndex
  readonly floor: HistoryFloor
  appliedStamp(): HlcStamp
  /** Segments holding data appended but not yet named by a version. */
  pendingSegments(): ReadonlySet<number>
  /** Runs `fn` with no record being applied (applies wait). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>
  /** While set, called with the key of every block entry an apply writes. */
  watchBlockPuts(watch: ((key: Buffer) => void) | null): void
  /** Resolves once every read of the log that began before the call is done. */
  readsDrained(): Promise<void>
  /** Block positions changed: forget reconstructed maps. */
  clearBlockCache(): void
  /** Appends this run's audit entry to the batch that rewrites the index. */
  audit(report: GcReport): { key: Buffer; value: Buffer }
}

export interface GcOptions {
  /** Collect a segment whose live bytes are at most this share of it (default 0.5; 1: every eligible segment). */
  readonly liveRatioMax?: number
  /** At most this many bytes copied per second (the I/O budget of a background run); default: no limit. */
  readonly copyBytesPerSecond?: number
  /** About this many bytes copied in one run at most (at least one segment is collected); default: no limit. */
  readonly copyBytesMax?: number
  /** Told of each segment that could be collected; true: leave it for a later run. */
  readonly defer?: (candidate: GcVictim) => boolean
  /** Say what would be collected; change nothing. */
  readonly dryRun?: boolean
  /** Told of the segments a run collects before it copies their live bytes (a long copy is announced). */
  readonly onCollect?: (victims: readonly GcVictim[]) => void
}

export interface GcVictim {
  readonly segment: number
  readonly sizeBytes: number
  readonly liveBytes: number
}

export interface GcReport {
  readonly dryRun: boolean
  readonly floor: HlcStamp
  readonly logBase: HlcStamp // records at or below it are no longer in the log (or no longer exported)
  readonly segments: number // sealed segments looked at
  readonly eligible: number // of them, those nothing but their live bytes holds
  readonly victims: readonly GcVictim[]
  readonly bytesCopied: number
  readonly bytesFreed: number // segment bytes deleted, less the copies
}

/** A segment's records: the newest record in it and the newest record naming data in it (G segment). */
interface SegmentSummary {
  readonly recordMax: HlcStamp
  readonly namingMax: HlcStamp
}

export function encodeSegmentSummary(summary: SegmentSummary): Buffer {
  const out = Buffer.allocUnsafe(16)
  out.writeBigUInt64BE(summary.recordMax, 0)
  out.writeBigUInt64BE(summary.namingMax, 8)
  return out
}

export function decodeSegmentSummary(value: Buffer): SegmentSummary {
  return { recordMax: value.readBigUInt64BE(0), namingMax: value.readBigUInt64BE(8) }
}

/** The log base: records at or below it may be gone from the log; a state transfer starts above it. */
export function logBaseOf(db: IndexDb): HlcStamp {
  const value = db.getSync(LOG_BASE_KEY)
  return value === undefined ? 0n : BigInt(value.toString())
}

/** One live interval of a victim segment and where its copy went (in pieces, one per copy entry). */
interface LiveInterval {
  readonly start: number
  end: number
  copies: Array<{ readonly from: number; readonly to: number; readonly segment: number; readonly offset: number }>
}

export async function collectSegments(host: GcHost, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun === true
  const liveRatioMax = options.liveRatioMax ?? LIVE_RATIO_MAX_DEFAULT
  const floor = host.floor.stamp
  const files = (await host.log.segmentFiles()).filter((f) => f.segment < host.log.tail.segment)
  const empty: GcReport = { dryRun, floor, logBase: logBaseOf(host.db), segments: files.length, eligible: 0, victims: [], bytesCopied: 0, bytesFreed: 0 }
  if (floor === 0n) return empty

  // Segments that only their live bytes hold: sealed, below the first record after the floor
  // and the last record, with no pending data and nothing after the floor naming their data.
  const [firstAfterFloor] = await host.records.after(floor, HLC_MAX, 1)
  const last = host.records.at(host.appliedStamp())
  const limit = Math.min(firstAfterFloor?.position.segment ?? Number.MAX_SAFE_INTEGER, last?.position.segment ?? Number.MAX_SAFE_INTEGER)
  const pending = host.pendingSegments()
  const summaries = new Map<number, SegmentSummary>()
  const candidates = files.filter((f) => f.segment < limit && !pending.has(f.segment))
  if (candidates.some((f) => host.db.getSync(keys.segmentNaming(f.segment)) === undefined)) await summarizeLog(host)
  for (const file of candidates) {
    const value = host.db.getSync(keys.segmentNaming(file.segment))
    const summary = value === undefined ? { recordMax: 0n, namingMax: 0n } : decodeSegmentSummary(value) // no summary: no record in it, nor naming it
    if (summary.recordMax <= floor && summary.namingMax <= floor) summaries.set(file.segment, summary)
  }
  if (summaries.size === 0) return empty

  // Block entries an apply writes from now on are rewritten too (they may name what is copied).
  const dirty = new Map<string, Buffer>()
  if (!dryRun) host.watchBlockPuts((key) => void dirty.set(key.toString('hex'), key))
  try {
    const { intervals, referencing } = await liveIntervals(host.db, summaries)
    const collectable: GcVictim[] = []
    for (const file of files) {
      if (!summaries.has(file.segment)) continue
      const liveBytes = (intervals.get(file.segment) ?? []).reduce((sum, i) => sum + (i.end - i.start), 0)
      const candidate = { segment: file.segment, sizeBytes: file.sizeBytes, liveBytes }
      if (liveBytes <= liveRatioMax * file.sizeBytes && options.defer?.(candidate) !== true) collectable.push(candidate)
    }
    const victims = cheapestFirst(collectable, options.copyBytesMax ?? Number.POSITIVE_INFINITY)
    const copyBytes = victims.reduce((sum, v) => sum + v.liveBytes, 0)
    const reclaimed = victims.reduce((sum, v) => sum + v.sizeBytes, 0) - copyBytes
    let logBase = logBaseOf(host.db)
    for (const v of victims) {
      const s = summaries.get(v.segment)!
      for (const stamp of [s.recordMax, s.namingMax]) if (stamp > logBase) logBase = stamp
    }
    const report: GcReport = { dryRun, floor, logBase, segments: files.length, eligible: summaries.size, victims, bytesCopied: copyBytes, bytesFreed: reclaimed }
    if (dryRun || victims.length === 0) return report

    options.onCollect?.(victims)
    await moveLogBase(host, logBase)
    const byVictim = new Map(victims.map((v) => [v.segment, intervals.get(v.segment) ?? []]))
    await copyForward(host, byVictim, options.copyBytesPerSecond)
    await host.exclusive(async () => {
      const batch: Array<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }> = []
      const move: MoveBytes = (segment, offset, sizeBytes) => moved(byVictim.get(segment), offset, sizeBytes)
      for (const key of new Map([...referencing, ...dirty]).values()) {
        const value = host.db.getSync(key)
        if (value === undefined) continue // dropped by a compaction meanwhile
        const relocated = key[0] === keys.blockTable()[0] ? relocateBlockEntry(value, move) : relocateWholeMap(value, move)
        if (relocated !== null) batch.push({ type: 'put', key, value: relocated })
      }
      for (const v of victims) batch.push({ type: 'del', key: keys.segmentNaming(v.segment) })
      batch.push({ type: 'put', ...host.audit(report) })
      await host.db.batch(batch, { sync: true })
      host.clearBlockCache()
    })
    host.watchBlockPuts(null)
    await host.readsDrained()
    await host.log.removeSegments(victims.map((v) => v.segment))
    return report
  } finally {
    host.watchBlockPuts(null)
  }
}

/**
 * The victims of one run: the segments with the fewest live bytes per segment byte first (the
 * most space back per byte copied), those whose live bytes still fit `copyBytesMax` (the first
 * always goes). A segment left waits for a later run, by when more of its bytes may have gone.
 */
function cheapestFirst(collectable: readonly GcVictim[], copyBytesMax: number): GcVictim[] {
  const byLiveShare = [...collectable].sort((a, b) => a.liveBytes / a.sizeBytes - b.liveBytes / b.sizeBytes)
  const victims: GcVictim[] = []
  let copyBytes = 0
  for (const v of byLiveShare) {
    if (victims.length > 0 && copyBytes + v.liveBytes > copyBytesMax) continue
    victims.push(v)
    copyBytes += v.liveBytes
  }
  return victims.sort((a, b) => a.segment - b.segment) // copied in log order
}

/**
 * Summaries of every segment, from every record of the log: a store written before summaries
 * were kept (Store.apply keeps them since) has its segments summarized once, by reading each
 * record its record index names.
 */
async function summarizeLog(host: GcHost): Promise<void> {
  const summaries = new Map<number, { recordMax: HlcStamp; namingMax: HlcStamp }>()
  const summary = (segment: number): { recordMax: HlcStamp; namingMax: HlcStamp } => {
    let s = summaries.get(segment)
    if (s === undefined) summaries.set(segment, (s = { recordMax: 0n, namingMax: 0n }))
    return s
  }
  for (let after = logBaseOf(host.db); ; ) {
    const page = await host.records.after(after, HLC_MAX, 1024)
    for (const at of page) {
      const { stamp, mutation } = decodeRecord(await host.log.readEntry(at.position, at.sizeBytes, EntryKind.Record))
      const own = summary(at.position.segment)
      if (stamp > own.recordMax) own.recordMax = stamp
      if (mutation.type !== 'version') continue
      for (const op of mutation.ops) {
        if (op.op !== 'write' || 'blob' in op.data) continue
        const named = summary(op.data.segment)
        if (stamp > named.namingMax) named.namingMax = stamp
      }
      after = at.stamp
    }
    if (page.length < 1024) break
  }
  await host.db.batch([...summaries].map(([segment, s]) => ({ type: 'put' as const, key: keys.segmentNaming(segment), value: encodeSegmentSummary(s) })))
}

/**
 * The byte ranges of each candidate segment some block entry names (merged), and the keys of
 * those entries (B entries, and the whole maps of E entries written before skip deltas).
 */
async function liveIntervals(db: IndexDb, candidates: ReadonlyMap<number, unknown>): Promise<{ intervals: Map<number, LiveInterval[]>; referencing: Map<string, Buffer> }> {
  const ranges = new Map<number, Array<[number, number]>>()
  const referencing = new Map<string, Buffer>()
  const note = (key: Buffer, extents: BlockMap): void => {
    for (const e of extents) {
      if (!candidates.has(e.segment)) continue
      let list = ranges.get(e.segment)
      if (list === undefined) ranges.set(e.segment, (list = []))
      list.push([e.segmentOffset, e.segmentOffset + e.sizeBytes])
      referencing.set(key.toString('hex'), key)
    }
  }
  for await (const [key, value] of db.iterator({ gte: keys.blockTable(), lt: prefixEnd(keys.blockTable()) })) note(key, decodeBlockEntry(value).delta.extents)
  for await (const [key, value] of db.iterator({ gte: keys.liveBlockTable(), lt: prefixEnd(keys.liveBlockTable()) })) {
    if (value.length % EXTENT_BYTES === 0) note(key, decodeExtents(value, 0)) // a whole map of an older store
  }
  const intervals = new Map<number, LiveInterval[]>()
  for (const [segment, list] of ranges) {
    list.sort((a, b) => a[0] - b[0])
    const merged: LiveInterval[] = []
    for (const [start, end] of list) {
      const lastInterval = merged[merged.length - 1]
      if (lastInterval !== undefined && start <= lastInterval.end) lastInterval.end = Math.max(lastInterval.end, end)
      else merged.push({ start, end, copies: [] })
    }
    intervals.set(segment, merged)
  }
  return { intervals, referencing }
}

/** Moves the log base (synced: no transfer may start below it from now on), then drops the record-index entries at or below it. */
async function moveLogBase(host: GcHost, logBase: HlcStamp): Promise<void> {
  if (logBase <= logBaseOf(host.db)) return
  await host.db.batch([{ type: 'put', key: LOG_BASE_KEY, value: Buffer.from(logBase.toString()) }], { sync: true })
  for (;;) {
    const stale = await host.db.keys({ gte: keys.recordPrefix(), lte: keys.record(logBase), limit: RECORD_INDEX_DELETES_PER_BATCH }).all()
    if (stale.length === 0) break
    await host.db.batch(stale.map((key) => ({ type: 'del' as const, key })))
  }
}

/** Copies every live interval of the victims to the log's tail, within the I/O budget; durable on return. */
async function copyForward(host: GcHost, byVictim: ReadonlyMap<number, LiveInterval[]>, copyBytesPerSecond: number | undefined): Promise<void> {
  const startedMs = Date.now()
  let copied = 0
  for (const [segment, intervals] of byVictim) {
    for (const interval of intervals) {
      for (let from = interval.start; from < interval.end; ) {
        const to = Math.min(interval.end, from + COPY_ENTRY_BYTES_MAX)
        const bytes = host.log.allocate(to - from)
        await host.log.read({ segment, offset: from }, bytes, 0, to - from)
        const { position, written } = host.log.append(EntryKind.Data, bytes)
        await written
        interval.copies.push({ from, to, segment: position.segment, offset: position.offset })
        copied += to - from
        from = to
        if (copyBytesPerSecond !== undefined) {
          const aheadMs = (copied / copyBytesPerSecond) * 1000 - (Date.now() - startedMs)
          if (aheadMs > 0) await sleep(aheadMs)
        }
      }
    }
  }
  await host.log.sync()
}

/** Where the `sizeBytes` at `offset` of a victim went (null: not in a victim). */
function moved(intervals: readonly LiveInterval[] | undefined, offset: number, sizeBytes: number): MovedPieces | null {
  if (intervals === undefined) return null
  let lo = 0
  let hi = intervals.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (intervals[mid]!.start <= offset) lo = mid
    else hi = mid - 1
  }
  const interval = intervals[lo]
  if (interval === undefined || offset < interval.start || offset + sizeBytes > interval.end) throw new Error(`segment GC: bytes at ${offset} (+${sizeBytes}) of a collected segment are in no live interval`)
  const pieces: Array<{ segment: number; segmentOffset: number; sizeBytes: number }> = []
  for (const copy of interval.copies) {
    const from = Math.max(offset, copy.from)
    const to = Math.min(offset + sizeBytes, copy.to)
    if (from < to) pieces.push({ segment: copy.segment, segmentOffset: copy.offset + (from - copy.from), sizeBytes: to - from })
  }
  return pieces
}

/** An E value of an older store (a whole map) with its extents moved; null when none moved. */
function relocateWholeMap(value: Buffer, move: MoveBytes): Buffer | null {
  if (value.length % EXTENT_BYTES !== 0) return null // a pointer to a B entry: no positions
  const extents = relocateExtents(decodeExtents(value, 0), move)
  if (extents === null) return null
  const encoded = Buffer.allocUnsafe(extents.length * EXTENT_BYTES)
  encodeExtents(extents, encoded, 0)
  return encoded
}
