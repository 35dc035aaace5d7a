// LevelDB key layout. Every key starts with a one-byte table tag; integers are big-endian so
// byte order is numeric order, and history keys end in the 8-byte HLC stamp so "the latest
// entry at or before T" is one reverse seek.
//
//   D ino name 0x00 stamp   -> child ino | first row | its version, or     directory history
//                              first row (removed) (decodeDirEntry)
//   Z ino name              -> u32 first row of the name's next binding    names unbound now (history.ts numbering)
//   L ino name              -> child ino, stamp the binding began          live directory
//   A ino stamp             -> Attr JSON                                   attribute history
//   C ino                   -> Attr JSON                                   live attributes
//   B ino block stamp       -> skip delta of a block map (blockHistory.ts) extent history
//   E ino block             -> newest B entry of the block                 live extents
//   V ino version           -> stamp                                       version number -> stamp
//   S ino sensorUs stamp    -> version [end offset]                        sensor-time index (sensorUs: running max)
//   N name                  -> Snapshot JSON                               named snapshots
//   R stamp                 -> segment | offset | size (u32 each)          where a record is in the log (recordIndex.ts)
//   P stamp                 -> Pin JSON                                    cuts kept below the history floor (retention/)
//   H kind stamp tie        -> audit JSON                                  retention runs (kind 0: ordered) and this store's GC runs (1)
//   K ino                   -> NodeFacts JSON                              what compaction dropped of a node (retention/compaction.ts)
//   G segment               -> stamp (u64)                                 the newest record naming data in a segment (segment GC)
//   M name                  -> value                                       store metadata

import type { HlcStamp } from '../temporal/hlc.js'
import type { Ino } from './records.js'

const TAG = { Z: 0x5a, D: 0x44, L: 0x4c, A: 0x41, C: 0x43, B: 0x42, E: 0x45, V: 0x56, S: 0x53, N: 0x4e, R: 0x52, P: 0x50, H: 0x48, K: 0x4b, G: 0x47, M: 0x4d } as const

function build(tag: number, parts: ReadonlyArray<Buffer>): Buffer {
  return Buffer.concat([Buffer.of(tag), ...parts])
}
function u64(value: number | bigint): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeBigUInt64BE(BigInt(value))
  return b
}
function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(value)
  return b
}
const ZERO = Buffer.of(0)

export const keys = {
  dirPrefix: (parent: Ino) => build(TAG.D, [u64(parent)]),
  dirNamePrefix: (parent: Ino, name: string) => build(TAG.D, [u64(parent), Buffer.from(name), ZERO]),
  dirEntry: (parent: Ino, name: string, stamp: HlcStamp) => build(TAG.D, [u64(parent), Buffer.from(name), ZERO, u64(stamp)]),
  unboundName: (parent: Ino, name: string) => build(TAG.Z, [u64(parent), Buffer.from(name)]),
  unboundPrefix: (parent: Ino) => build(TAG.Z, [u64(parent)]),
  liveDirPrefix: (parent: Ino) => build(TAG.L, [u64(parent)]),
  liveDirEntry: (parent: Ino, name: string) => build(TAG.L, [u64(parent), Buffer.from(name)]),
  attrPrefix: (ino: Ino) => build(TAG.A, [u64(ino)]),
  attr: (ino: Ino, stamp: HlcStamp) => build(TAG.A, [u64(ino), u64(stamp)]),
  liveAttr: (ino: Ino) => build(TAG.C, [u64(ino)]),
  blockPrefix: (ino: Ino, block: number) => build(TAG.B, [u64(ino), u32(block)]),
  block: (ino: Ino, block: number, stamp: HlcStamp) => build(TAG.B, [u64(ino), u32(block), u64(stamp)]),
  liveBlock: (ino: Ino, block: number) => build(TAG.E, [u64(ino), u32(block)]),
  version: (ino: Ino, version: number) => build(TAG.V, [u64(ino), u32(version)]),
  sensorPrefix: (ino: Ino) => build(TAG.S, [u64(ino)]),
  sensor: (ino: Ino, sensorUs: number, stamp: HlcStamp) => build(TAG.S, [u64(ino), u64(sensorUs), u64(stamp)]),
  snapshotPrefix: () => Buffer.of(TAG.N),
  snapshot: (name: string) => build(TAG.N, [Buffer.from(name)]),
  recordPrefix: () => Buffer.of(TAG.R),
  record: (stamp: HlcStamp) => build(TAG.R, [u64(stamp)]),
  attrTable: () => Buffer.of(TAG.A),
  blockTable: () => Buffer.of(TAG.B),
  blocksOf: (ino: Ino) => build(TAG.B, [u64(ino)]),
  liveBlockTable: () => Buffer.of(TAG.E),
  liveBlockPrefix: (ino: Ino) => build(TAG.E, [u64(ino)]),
  versionPrefix: (ino: Ino) => build(TAG.V, [u64(ino)]),
  pinPrefix: () => Buffer.of(TAG.P),
  pin: (stamp: HlcStamp) => build(TAG.P, [u64(stamp)]),
  auditPrefix: (kind: number) => build(TAG.H, [Buffer.of(kind)]),
  audit: (kind: number, stamp: HlcStamp, tie = 0) => build(TAG.H, [Buffer.of(kind), u64(stamp), u64(tie)]),
  nodeFacts: (ino: Ino) => build(TAG.K, [u64(ino)]),
  segmentNamingPrefix: () => Buffer.of(TAG.G),
  segmentNaming: (segment: number) => build(TAG.G, [u32(segment)]),
  meta: (name: string) => build(TAG.M, [Buffer.from(name)]),
}

/** The inode a per-node key (A, B, C, E, V, S, K; D and L: the directory) begins with. */
export function inoOfKey(key: Buffer): Ino {
  return Number(key.readBigUInt64BE(1))
}

/** The smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.alloc(9, 0xff)])
}

/** The trailing 8-byte stamp of a history key. */
export function stampOfKey(key: Buffer): HlcStamp {
  return key.readBigUInt64BE(key.length - 8)
}

/** The name inside a D key: between the 9-byte prefix and the 0x00 + stamp suffix. */
export function nameOfDirEntryKey(key: Buffer): string {
  return key.subarray(9, key.length - 9).toString()
}

/** The name inside an L key. */
export function nameOfLiveDirKey(key: Buffer): string {
  return key.subarray(9).toString()
}

export function encodeIno(ino: Ino): Buffer {
  return u64(ino)
}
export function decodeIno(value: Buffer): Ino {
  return Number(value.readBigUInt64BE(0))
}
/**
 * A D value: the node a binding names (null: the name was unbound), the row of the name's
 * history (src/fs/history.ts) the binding starts at, and the node's version then; the last two
 * are null for entries written before they were kept (8 bytes: the inode; empty: a removal).
 */
export interface DirEntryValue {
  readonly ino: Ino | null
  readonly firstRow: number | null
  readonly version: number | null
}

export function encodeDirEntry(ino: Ino | null, firstRow: number | null, version: number | null): Buffer {
  if (firstRow === null) return ino === null ? Buffer.alloc(0) : u64(ino)
  if (ino === null) return u32(firstRow)
  return Buffer.concat([u64(ino), u32(firstRow), u32(version ?? 0)])
}

export function decodeDirEntry(value: Buffer): DirEntryValue {
  switch (value.length) {
    case 0:
      return { ino: null, firstRow: null, version: null }
    case 4:
      return { ino: null, firstRow: value.readUInt32BE(0), version: null }
    case 8:
      return { ino: decodeIno(value), firstRow: null, version: null }
    default:
      return { ino: decodeIno(value), firstRow: value.readUInt32BE(8), version: value.readUInt32BE(12) }
  }
}

/** An L value: the inode, then the stamp the binding began at (decodeIno reads either form). */
export function encodeLiveDirEntry(ino: Ino, since: HlcStamp): Buffer {
  return Buffer.concat([u64(ino), u64(since)])
}
/** When an L value's binding began; null for an index written before bindings carried it. */
export function liveDirEntrySince(value: Buffer): HlcStamp | null {
  return value.length >= 16 ? value.readBigUInt64BE(8) : null
}
/** A Z value: the row of a name's history its next binding starts at. */
export function encodeRow(row: number): Buffer {
  return u32(row)
}
export function decodeRow(value: Buffer): number {
  return value.readUInt32BE(0)
}
export function encodeStamp(stamp: HlcStamp): Buffer {
  return u64(stamp)
}
