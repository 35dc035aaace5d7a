// A block map says where the bytes of one fixed-size block of a file live in the segment
// log: sorted, non-overlapping extents; gaps read as zeros. A change of a block is a *delta*:
// cut the block at `cutBytes` (a truncation: everything from there on is dropped), then lay
// `extents` over what is left. Deltas compose (the changes of several versions are one delta),
// which is what lets the index store a block's history as skip deltas (blockHistory.ts): the
// index cost of a version is proportional to what it changed, not to the block's size.

import type { LogPosition } from './segmentLog.js'

export const BLOCK_SIZE_BYTES = 1024 * 1024

export interface Extent {
  readonly offset: number // within the block
  readonly sizeBytes: number
  readonly segment: number
  readonly segmentOffset: number // where the extent's first byte lives in the segment
}

export type BlockMap = readonly Extent[]

/** A change of a block: drop everything at or after `cutBytes` (null: nothing), then overlay `extents`. */
export interface BlockDelta {
  readonly cutBytes: number | null
  readonly extents: BlockMap
}

export const NO_CHANGE: BlockDelta = { cutBytes: null, extents: [] }

export const EXTENT_BYTES = 16

export function encodeExtents(map: BlockMap, out: Buffer, at: number): void {
  map.forEach((e, i) => {
    const o = at + i * EXTENT_BYTES
    out.writeUInt32BE(e.offset, o)
    out.writeUInt32BE(e.sizeBytes, o + 4)
    out.writeUInt32BE(e.segment, o + 8)
    out.writeUInt32BE(e.segmentOffset, o + 12)
  })
}

export function decodeExtents(value: Buffer, at: number): Extent[] {
  const map: Extent[] = []
  for (let o = at; o + EXTENT_BYTES <= value.length; o += EXTENT_BYTES) {
    map.push({ offset: value.readUInt32BE(o), sizeBytes: value.readUInt32BE(o + 4), segment: value.readUInt32BE(o + 8), segmentOffset: value.readUInt32BE(o + 12) })
  }
  return map
}

/** The parts of `map` before `cutBytes` (null: all of it). */
export function truncateExtents(map: BlockMap, cutBytes: number | null): BlockMap {
  if (cutBytes === null) return map
  const out: Extent[] = []
  for (const e of map) {
    if (e.offset >= cutBytes) break
    out.push(e.offset + e.sizeBytes <= cutBytes ? e : { ...e, sizeBytes: cutBytes - e.offset })
  }
  return out
}

/**
 * `top` laid over `base` (both sorted and non-overlapping): top's extents, and the parts of
 * base's that no top extent covers. One sweep of both, so a change costs the size of the maps,
 * never their product.
 */
export function overlayExtents(base: BlockMap, top: BlockMap): BlockMap {
  if (top.length === 0) return base
  if (base.length === 0) return top
  const uncovered: Extent[] = []
  let t = 0
  for (const e of base) {
    let start = e.offset
    const end = e.offset + e.sizeBytes
    while (t < top.length && top[t]!.offset + top[t]!.sizeBytes <= start) t++
    for (let k = t; k < top.length && top[k]!.offset < end && start < end; k++) {
      const cover = top[k]!
      if (cover.offset > start) uncovered.push(piece(e, start, cover.offset))
      start = Math.max(start, cover.offset + cover.sizeBytes)
    }
    if (start < end) uncovered.push(piece(e, start, end))
  }
  // Both lists are sorted and disjoint from each other now: merge, then join log neighbours.
  const merged: Extent[] = []
  for (let i = 0, j = 0; i < uncovered.length || j < top.length; ) {
    if (j >= top.length || (i < uncovered.length && uncovered[i]!.offset < top[j]!.offset)) merged.push(uncovered[i++]!)
    else merged.push(top[j++]!)
  }
  return coalesce(merged)
}

/** The part [from, to) of extent `e` (within it). */
function piece(e: Extent, from: number, to: number): Extent {
  return { offset: from, sizeBytes: to - from, segment: e.segment, segmentOffset: e.segmentOffset + (from - e.offset) }
}

/** `first`, then `then`: one delta. */
export function composeDeltas(first: BlockDelta, then: BlockDelta): BlockDelta {
  const cutBytes = first.cutBytes === null ? then.cutBytes : then.cutBytes === null ? first.cutBytes : Math.min(first.cutBytes, then.cutBytes)
  return { cutBytes, extents: overlayExtents(truncateExtents(first.extents, then.cutBytes), then.extents) }
}

/** The block `map` after `delta`. */
export function applyDelta(map: BlockMap, delta: BlockDelta): BlockMap {
  return overlayExtents(truncateExtents(map, delta.cutBytes), delta.extents)
}

/** A delta that writes bytes at [offset, offset + sizeBytes) of the block, stored at `data` in the log. */
export function writeDelta(offset: number, sizeBytes: number, data: LogPosition): BlockDelta {
  return sizeBytes === 0 ? NO_CHANGE : { cutBytes: null, extents: [{ offset, sizeBytes, segment: data.segment, segmentOffset: data.offset }] }
}

/** A delta that drops every byte of the block at or after `sizeBytes`. */
export function truncateDelta(sizeBytes: number): BlockDelta {
  return { cutBytes: Math.max(0, sizeBytes), extents: [] }
}

/** Joins neighbours that are also neighbours in the log (sequential writes stay one extent). */
function coalesce(map: Extent[]): Extent[] {
  const out: Extent[] = []
  for (const e of map) {
    const last = out[out.length - 1]
    if (last !== undefined && last.offset + last.sizeBytes === e.offset && last.segment === e.segment && last.segmentOffset + last.sizeBytes === e.segmentOffset) {
      out[out.length - 1] = { ...last, sizeBytes: last.sizeBytes + e.sizeBytes }
    } else {
      out.push(e)
    }
  }
  return out
}
