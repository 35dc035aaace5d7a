// A block map says where the bytes of one fixed-size block of a file live in the segment
// log: sorted, non-overlapping extents; gaps read as zeros. A version rewrites only the
// maps of the blocks it touched, so a read at any time T is one index lookup per block.

import type { LogPosition } from './segmentLog.js'

export const BLOCK_SIZE_BYTES = 1024 * 1024

export interface Extent {
  readonly offset: number // within the block
  readonly sizeBytes: number
  readonly segment: number
  readonly segmentOffset: number // where the extent's first byte lives in the segment
}

export type BlockMap = readonly Extent[]

const EXTENT_BYTES = 16

export function encodeBlockMap(map: BlockMap): Buffer {
  const out = Buffer.allocUnsafe(map.length * EXTENT_BYTES)
  map.forEach((e, i) => {
    const at = i * EXTENT_BYTES
    out.writeUInt32BE(e.offset, at)
    out.writeUInt32BE(e.sizeBytes, at + 4)
    out.writeUInt32BE(e.segment, at + 8)
    out.writeUInt32BE(e.segmentOffset, at + 12)
  })
  return out
}

export function decodeBlockMap(value: Buffer | undefined): BlockMap {
  if (value === undefined || value.length === 0) return []
  const map: Extent[] = []
  for (let at = 0; at < value.length; at += EXTENT_BYTES) {
    map.push({
      offset: value.readUInt32BE(at),
      sizeBytes: value.readUInt32BE(at + 4),
      segment: value.readUInt32BE(at + 8),
      segmentOffset: value.readUInt32BE(at + 12),
    })
  }
  return map
}

/** Keeps the parts of `map` outside [start, end). */
function cut(map: BlockMap, start: number, end: number): Extent[] {
  const out: Extent[] = []
  for (const e of map) {
    const eEnd = e.offset + e.sizeBytes
    if (eEnd <= start || e.offset >= end) {
      out.push(e)
      continue
    }
    if (e.offset < start) out.push({ ...e, sizeBytes: start - e.offset })
    if (eEnd > end) out.push({ ...e, offset: end, sizeBytes: eEnd - end, segmentOffset: e.segmentOffset + (end - e.offset) })
  }
  return out
}

/** Overlays bytes at [offset, offset + sizeBytes) of the block, stored at `data` in the log. */
export function overlay(map: BlockMap, offset: number, sizeBytes: number, data: LogPosition): BlockMap {
  if (sizeBytes === 0) return map
  const merged = cut(map, offset, offset + sizeBytes)
  merged.push({ offset, sizeBytes, segment: data.segment, segmentOffset: data.offset })
  merged.sort((a, b) => a.offset - b.offset)
  return coalesce(merged)
}

/** Drops every byte at or after `sizeBytes` within the block. */
export function truncateBlock(map: BlockMap, sizeBytes: number): BlockMap {
  return cut(map, sizeBytes, BLOCK_SIZE_BYTES)
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
