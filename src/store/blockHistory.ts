// The history of a block's map in the LevelDB index, as skip deltas (Subversion's FSFS stores
// revisions the same way). The n-th change of a block (n = 1, 2, ...) is a B entry holding the
// delta from the block's state after change n − lowbit(n) (its *base*; 0: the empty block) to
// its state after change n, and the stamp of the base's entry. So:
//   - a read of the block at any version follows at most log2(n) base links and composes as
//     many deltas: O(log versions) gets, as before;
//   - a change writes a delta covering lowbit(n) changes: O(log n) extents on average, where a
//     whole map per change (what the index held before) made a file grown by k small appends
//     cost O(k²) bytes of index per block.
// A delta that starts by cutting the block at 0 (a whole rewrite, a truncation to 0) needs no
// base: its entry names none and its chain ends there.
//
// E (the live entry of a block) names the newest B entry and its number. Values written before
// skip deltas (a whole map per B and E entry: a multiple of 16 bytes) are read as maps; the
// next change of such a block starts its chain over (change 1, from that map).

import type { IndexDb } from './disk.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { applyDelta, composeDeltas, decodeExtents, encodeExtents, EXTENT_BYTES, NO_CHANGE, type BlockDelta, type BlockMap, type Extent } from './blockMap.js'
import { keys } from './keys.js'
import type { Ino } from './records.js'

const ENTRY_TAG = 0xb2
const ENTRY_HEADER_BYTES = 17 // tag u8 | number u32 | base stamp u64 | cut u32
const NO_CUT = 0xffff_ffff
const LIVE_BYTES = 12 // newest entry's stamp u64 | its number u32
/** Reconstructed maps kept in memory, all blocks together, counted in extents. */
const CACHED_EXTENTS_MAX = 1 << 20

/** One B entry: the `number`-th change of its block, as a delta from the entry at `baseStamp` (0n: from the empty block). */
export interface BlockEntry {
  readonly number: number // 0: a whole map written before skip deltas
  readonly baseStamp: HlcStamp
  readonly delta: BlockDelta
}

export function encodeBlockEntry(entry: BlockEntry): Buffer {
  const out = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + entry.delta.extents.length * EXTENT_BYTES)
  out.writeUInt8(ENTRY_TAG, 0)
  out.writeUInt32BE(entry.number, 1)
  out.writeBigUInt64BE(entry.baseStamp, 5)
  out.writeUInt32BE(entry.delta.cutBytes ?? NO_CUT, 13)
  encodeExtents(entry.delta.extents, out, ENTRY_HEADER_BYTES)
  return out
}

export function decodeBlockEntry(value: Buffer): BlockEntry {
  if (value.length % EXTENT_BYTES === 0) return { number: 0, baseStamp: 0n, delta: { cutBytes: 0, extents: decodeExtents(value, 0) } } // a whole map (older stores)
  if (value.readUInt8(0) !== ENTRY_TAG || (value.length - ENTRY_HEADER_BYTES) % EXTENT_BYTES !== 0) throw new Error(`store index: a block entry of ${value.length} bytes is not one`)
  const cut = value.readUInt32BE(13)
  return { number: value.readUInt32BE(1), baseStamp: value.readBigUInt64BE(5), delta: { cutBytes: cut === NO_CUT ? null : cut, extents: decodeExtents(value, ENTRY_HEADER_BYTES) } }
}

/** An E value: the block's newest entry (or, in older stores, its whole live map). */
type LiveBlock = { readonly stamp: HlcStamp; readonly number: number } | { readonly map: BlockMap }

function encodeLive(stamp: HlcStamp, number: number): Buffer {
  const out = Buffer.allocUnsafe(LIVE_BYTES)
  out.writeBigUInt64BE(stamp, 0)
  out.writeUInt32BE(number, 8)
  return out
}

function decodeLive(value: Buffer): LiveBlock {
  if (value.length === LIVE_BYTES) return { stamp: value.readBigUInt64BE(0), number: value.readUInt32BE(8) }
  return { map: decodeExtents(value, 0) }
}

const lowestBit = (n: number): number => n & -n

/** Where bytes moved to: the pieces of a moved extent, in order (a copy may have split it). */
export type MovedPieces = ReadonlyArray<{ readonly segment: number; readonly segmentOffset: number; readonly sizeBytes: number }>

/** Where segment GC copied bytes of the log: the pieces they are at now, or null where they were not moved. */
export type MoveBytes = (segment: number, segmentOffset: number, sizeBytes: number) => MovedPieces | null

/** `extents` with their log positions changed by `move`; null when none moved. */
export function relocateExtents(extents: readonly Extent[], move: MoveBytes): Extent[] | null {
  let moved = false
  const out: Extent[] = []
  for (const e of extents) {
    const pieces = move(e.segment, e.segmentOffset, e.sizeBytes)
    if (pieces === null) {
      out.push(e)
      continue
    }
    moved = true
    let offset = e.offset
    for (const piece of pieces) {
      out.push({ offset, sizeBytes: piece.sizeBytes, segment: piece.segment, segmentOffset: piece.segmentOffset })
      offset += piece.sizeBytes
    }
    if (offset !== e.offset + e.sizeBytes) throw new Error(`relocateExtents: an extent of ${e.sizeBytes} bytes moved as ${offset - e.offset}`)
  }
  return moved ? out : null
}

/** A B entry's value with its extents' log positions changed by `move` (segment GC); null when none moved. */
export function relocateBlockEntry(value: Buffer, move: MoveBytes): Buffer | null {
  const entry = decodeBlockEntry(value)
  const extents = relocateExtents(entry.delta.extents, move)
  if (extents === null) return null
  // An entry written before skip deltas stays a whole map (number 0): encodeBlockEntry writes it as a self-contained delta.
  return encodeBlockEntry({ number: entry.number, baseStamp: entry.baseStamp, delta: { cutBytes: entry.delta.cutBytes, extents } })
}

export class BlockHistory {
  private readonly db: IndexDb
  private readonly cache = new Map<string, BlockMap>() // `ino:block:entry stamp` -> map, least recently used first
  private cachedExtents = 0

  constructor(db: IndexDb) {
    this.db = db
  }

  /** The block's map as of its newest change ([] if it has none). */
  liveMap(ino: Ino, block: number): BlockMap {
    const value = this.db.getSync(keys.liveBlock(ino, block))
    if (value === undefined) return []
    const live = decodeLive(value)
    if ('map' in live) return live.map
    return this.mapOfEntry(ino, block, live.stamp, this.entryAt(ino, block, live.stamp))
  }

  /** The block's map as of the change at `entryStamp`, whose B entry is `value` (a get or a seek found it). */
  mapAt(ino: Ino, block: number, entryStamp: HlcStamp, value: Buffer): BlockMap {
    return this.mapOfEntry(ino, block, entryStamp, decodeBlockEntry(value))
  }

  /**
   * The B and E puts that record `change` of the block at `stamp`: its delta composed from the
   * entries since its base (the chain of the previous change, walked down to the base's number).
   */
  changeOps(ino: Ino, block: number, stamp: HlcStamp, change: BlockDelta): Array<{ key: Buffer; value: Buffer }> {
    const liveValue = this.db.getSync(keys.liveBlock(ino, block))
    const live = liveValue === undefined ? null : decodeLive(liveValue)
    const number = live === null || 'map' in live ? 1 : live.number + 1
    const base = number - lowestBit(number)
    const since: BlockDelta[] = [] // newest first
    let baseStamp = 0n
    if (live !== null && 'map' in live) {
      since.push({ cutBytes: 0, extents: live.map }) // change 1 starts from the whole map of an older store
    } else if (live !== null) {
      let stamp: HlcStamp = live.stamp
      for (;;) {
        const entry = this.entryAt(ino, block, stamp)
        if (entry.number <= base) {
          baseStamp = stamp
          break
        }
        since.push(entry.delta)
        if (entry.baseStamp === 0n) break // from the empty block (or a whole rewrite): nothing before counts
        stamp = entry.baseStamp
      }
      if (baseStamp === 0n && base > 0 && since[since.length - 1]!.cutBytes !== 0) throw new Error(`store index: the chain of block ${block} of inode ${ino} ends before change ${base}`)
    }
    let delta = change
    for (const d of since) delta = composeDeltas(d, delta)
    if (delta.cutBytes === 0) baseStamp = 0n // a whole rewrite needs no base
    return [
      { key: keys.block(ino, block, stamp), value: encodeBlockEntry({ number, baseStamp, delta }) },
      { key: keys.liveBlock(ino, block), value: encodeLive(stamp, number) },
    ]
  }

  /** Forgets every map it remembers (their entries' positions changed: segment GC). */
  clearCache(): void {
    this.cache.clear()
    this.cachedExtents = 0
  }

  private entryAt(ino: Ino, block: number, stamp: HlcStamp): BlockEntry {
    const value = this.db.getSync(keys.block(ino, block, stamp))
    if (value === undefined) throw new Error(`store index: block ${block} of inode ${ino} has no entry at ${stamp}, which its chain names`)
    return decodeBlockEntry(value)
  }

  private mapOfEntry(ino: Ino, block: number, stamp: HlcStamp, entry: BlockEntry): BlockMap {
    const key = `${ino}:${block}:${stamp}`
    const cached = this.cache.get(key)
    if (cached !== undefined) {
      this.cache.delete(key) // re-inserted: most recently used last
      this.cache.set(key, cached)
      return cached
    }
    const chain: BlockDelta[] = [entry.delta] // newest first
    for (let current = entry; current.baseStamp !== 0n; ) {
      current = this.entryAt(ino, block, current.baseStamp)
      chain.push(current.delta)
    }
    let map: BlockMap = []
    for (let i = chain.length - 1; i >= 0; i--) map = applyDelta(map, chain[i] ?? NO_CHANGE)
    this.remember(key, map)
    return map
  }

  private remember(key: string, map: BlockMap): void {
    if (map.length > CACHED_EXTENTS_MAX / 4) return
    this.cache.set(key, map)
    this.cachedExtents += map.length
    while (this.cachedExtents > CACHED_EXTENTS_MAX) {
      const [oldestKey, oldest] = this.cache.entries().next().value!
      this.cache.delete(oldestKey)
      this.cachedExtents -= oldest.length
    }
  }
}
