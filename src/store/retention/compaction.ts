// Compaction: dropping from the index what the history floor no longer needs, node by node, in
// inode ranges (one `compact` record each, so every replica drops the same entries at the same
// point of its log and no apply holds the store for long).
//
// A version of a node is kept when it is stamped after the floor, is what a cut at the floor or
// at a pinned cut below it sees of the node (while a name binds it there: nlink > 0), or is one
// of a file's newest `minVersions` versions at the floor (while the file lives there). Every
// other version goes: its attributes (A), version number (V), sensor entries (S), and the block
// entries (B) no kept version needs (a kept version needs the entry it sees of each block and
// that entry's base chain, blockHistory.ts). A node none of whose versions is kept goes whole,
// with its live entries (C, E) and, for a directory, its name history (D). A node whose newest
// version goes (it was deleted before the floor; a snapshot keeps older ones) loses its live
// entries too. A directory's name history keeps the bindings a cut at or above the floor, or at
// a pinned cut, sees; a removal left oldest is dropped as well (a lookup finds nothing either way).
//
// Reads never see this happen: which cuts are answered is decided by the floor and the pins
// (floor.ts), set by the `retain` record before any `compact` record; a version kept is never
// touched. Compaction only frees what nothing can read any more.

import type { IndexDb } from '../disk.js'
import { hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import { decodeBlockEntry } from '../blockHistory.js'
import { decodeDirEntry, inoOfKey, keys, nameOfDirEntryKey, prefixEnd, stampOfKey } from '../keys.js'
import { ROOT_INO, type Attr, type Ino } from '../records.js'
import type { BatchDel, BatchPut } from './floor.js'

/** What the floor keeps: every cut at or above `floor`, the `pins` below it (sorted), and files' newest `minVersions`. */
export interface CompactionScope {
  readonly floor: HlcStamp
  readonly pins: readonly HlcStamp[]
  readonly minVersions: number
}

export interface CompactionCounts {
  nodes: number // nodes looked at
  versionsDropped: number
  nodesRemoved: number
  blockEntriesDropped: number
  extentBytesDropped: number // bytes the dropped block entries named (a block's bytes may be named by several)
  bindingsDropped: number
}

/** What compaction dropped of a node that a read still has to know (K ino). */
export interface NodeFacts {
  /** The sensor times of dropped versions lie in [min, max]: a sensor-time read in or after that range may have picked one. */
  readonly droppedSensorMinUs: number
  readonly droppedSensorMaxUs: number
}

export function emptyCounts(): CompactionCounts {
  return { nodes: 0, versionsDropped: 0, nodesRemoved: 0, blockEntriesDropped: 0, extentBytesDropped: 0, bindingsDropped: 0 }
}

interface Version {
  readonly stamp: HlcStamp
  readonly attr: Attr
}

/** The index of the last of `stamps` (ascending) at or before `cut`; -1: none. */
function lastAtOrBefore(stamps: readonly HlcStamp[], cut: HlcStamp): number {
  let lo = 0
  let hi = stamps.length // answer in [lo - 1, hi - 1]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (stamps[mid]! <= cut) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

/** Compacts the nodes with inodes in [fromIno, toIno): the entries they no longer need are deleted through `del`. */
export async function compactRange(db: IndexDb, scope: CompactionScope, fromIno: Ino, toIno: Ino, put: BatchPut, del: BatchDel): Promise<CompactionCounts> {
  const counts = emptyCounts()
  let ino: Ino | null = null
  let versions: Version[] = []
  const flush = async (): Promise<void> => {
    if (ino !== null) await compactNode(db, scope, ino, versions, put, del, counts)
    versions = []
  }
  for await (const [key, value] of db.iterator({ gte: keys.attr(fromIno, 0n), lt: keys.attrPrefix(toIno) })) {
    const keyIno = inoOfKey(key)
    if (keyIno !== ino) {
      await flush()
      ino = keyIno
    }
    versions.push({ stamp: stampOfKey(key), attr: JSON.parse(value.toString()) as Attr })
  }
  await flush()
  return counts
}

async function compactNode(db: IndexDb, scope: CompactionScope, ino: Ino, versions: readonly Version[], put: BatchPut, del: BatchDel, counts: CompactionCounts): Promise<void> {
  counts.nodes++
  const n = versions.length
  const stamps = versions.map((v) => v.stamp)
  const named = (i: number): boolean => ino === ROOT_INO || (versions[i]!.attr.nlink ?? 1) > 0
  const keep = new Set<number>()
  for (let i = n - 1; i >= 0 && stamps[i]! > scope.floor; i--) keep.add(i)
  const atFloor = lastAtOrBefore(stamps, scope.floor)
  const livesAtFloor = atFloor >= 0 && named(atFloor)
  if (livesAtFloor) keep.add(atFloor)
  for (const pin of scope.pins) {
    const i = lastAtOrBefore(stamps, pin)
    if (i >= 0 && named(i)) keep.add(i)
  }
  if (livesAtFloor && versions[atFloor]!.attr.kind === 'file') for (let i = Math.max(0, atFloor - scope.minVersions + 1); i < atFloor; i++) keep.add(i)
  if (keep.size === n) return // everything a cut can see: nothing to drop (most nodes, at most floors)

  const removed = keep.size === 0
  if (removed) counts.nodesRemoved++
  for (let i = 0; i < n; i++) {
    if (keep.has(i)) continue
    del(keys.attr(ino, stamps[i]!))
    // The version after a kept one keeps its number's stamp: where the kept one stops being what a cut sees.
    if (!keep.has(i - 1)) del(keys.version(ino, versions[i]!.attr.version))
    counts.versionsDropped++
  }
  const keptStamps = stamps.filter((_, i) => keep.has(i))
  if (!keep.has(n - 1)) {
    // Its newest version goes: no cut at or above the floor reaches the node (deleted before it).
    del(keys.liveAttr(ino))
    for await (const key of db.keys({ gt: keys.liveBlockPrefix(ino), lt: prefixEnd(keys.liveBlockPrefix(ino)) })) del(key)
  }
  await compactBlocks(db, ino, keptStamps, del, counts)
  await compactSensorEntries(db, ino, new Set(keptStamps), removed, put, del)
  if (versions.some((v) => v.attr.kind === 'dir')) await compactBindings(db, scope, ino, removed, del, counts)
}

/** Deletes the block entries no kept version sees, directly or as a base of one it sees. */
async function compactBlocks(db: IndexDb, ino: Ino, keptStamps: readonly HlcStamp[], del: BatchDel, counts: CompactionCounts): Promise<void> {
  let block: number | null = null
  let entries: Array<{ key: Buffer; stamp: HlcStamp; value: Buffer }> = []
  const flush = (): void => {
    if (entries.length === 0) return
    const byStamp = new Map(entries.map((e) => [e.stamp, e]))
    const entryStamps = entries.map((e) => e.stamp)
    const needed = new Set<HlcStamp>()
    const queue: HlcStamp[] = []
    for (const stamp of keptStamps) {
      const i = lastAtOrBefore(entryStamps, stamp)
      if (i >= 0 && !needed.has(entryStamps[i]!)) {
        needed.add(entryStamps[i]!)
        queue.push(entryStamps[i]!)
      }
    }
    while (queue.length > 0) {
      const base = decodeBlockEntry(byStamp.get(queue.pop()!)!.value).baseStamp
      if (base === 0n || needed.has(base)) continue
      if (!byStamp.has(base)) throw new Error(`store index: block ${block} of inode ${ino}: a kept entry's base ${base} is missing`)
      needed.add(base)
      queue.push(base)
    }
    for (const e of entries) {
      if (needed.has(e.stamp)) continue
      del(e.key)
      counts.blockEntriesDropped++
      for (const extent of decodeBlockEntry(e.value).delta.extents) counts.extentBytesDropped += extent.sizeBytes
    }
    entries = []
  }
  const prefix = keys.blocksOf(ino)
  for await (const [key, value] of db.iterator({ gt: prefix, lt: prefixEnd(prefix) })) {
    const keyBlock = key.readUInt32BE(9)
    if (keyBlock !== block) {
      flush()
      block = keyBlock
    }
    entries.push({ key, stamp: stampOfKey(key), value })
  }
  flush()
}

/** Deletes sensor entries of dropped versions, remembering the latest sensor time dropped (a sensor read below it cannot be answered). */
async function compactSensorEntries(db: IndexDb, ino: Ino, kept: ReadonlySet<HlcStamp>, removed: boolean, put: BatchPut, del: BatchDel): Promise<void> {
  let droppedSensorMinUs = Number.POSITIVE_INFINITY
  let droppedSensorMaxUs = -1
  for await (const key of db.keys({ gt: keys.sensorPrefix(ino), lt: prefixEnd(keys.sensorPrefix(ino)) })) {
    if (kept.has(stampOfKey(key))) continue
    del(key)
    const sensorUs = Number(key.readBigUInt64BE(9))
    droppedSensorMinUs = Math.min(droppedSensorMinUs, sensorUs)
    droppedSensorMaxUs = Math.max(droppedSensorMaxUs, sensorUs)
  }
  if (removed) {
    del(keys.nodeFacts(ino))
    return
  }
  if (droppedSensorMaxUs < 0) return
  const facts = nodeFacts(db, ino)
  const merged: NodeFacts = { droppedSensorMinUs: Math.min(droppedSensorMinUs, facts?.droppedSensorMinUs ?? droppedSensorMinUs), droppedSensorMaxUs: Math.max(droppedSensorMaxUs, facts?.droppedSensorMaxUs ?? -1) }
  put(keys.nodeFacts(ino), Buffer.from(JSON.stringify(merged)))
}

export function nodeFacts(db: IndexDb, ino: Ino): NodeFacts | null {
  const value = db.getSync(keys.nodeFacts(ino))
  return value === undefined ? null : (JSON.parse(value.toString()) as NodeFacts)
}

/** A directory's name history: the bindings each name had at the floor, after it, and at the pins below it. */
async function compactBindings(db: IndexDb, scope: CompactionScope, dir: Ino, removed: boolean, del: BatchDel, counts: CompactionCounts): Promise<void> {
  let name: string | null = null
  let bindings: Array<{ key: Buffer; stamp: HlcStamp; removal: boolean; rowed: boolean }> = []
  const flush = (): void => {
    const stamps = bindings.map((b) => b.stamp)
    const needed = new Set<number>()
    if (!removed && bindings.some((b) => !b.rowed)) {
      bindings = [] // written before bindings carried their rows: the numbering needs them all
      return
    }
    if (!removed) {
      for (let i = bindings.length - 1; i >= 0 && stamps[i]! > scope.floor; i--) needed.add(i)
      for (const cut of [scope.floor, ...scope.pins]) {
        const i = lastAtOrBefore(stamps, cut)
        if (i >= 0) needed.add(i)
      }
      // The oldest kept binding a removal: a lookup before the next finds nothing either way.
      for (let i = 0; i < bindings.length && (!needed.has(i) || bindings[i]!.removal); i++) needed.delete(i)
    }
    bindings.forEach((b, i) => {
      if (needed.has(i)) return
      del(b.key)
      counts.bindingsDropped++
    })
    bindings = []
  }
  for await (const [key, value] of db.iterator({ gt: keys.dirPrefix(dir), lt: prefixEnd(keys.dirPrefix(dir)) })) {
    const keyName = nameOfDirEntryKey(key)
    if (keyName !== name) {
      flush()
      name = keyName
    }
    const binding = decodeDirEntry(value)
    bindings.push({ key, stamp: stampOfKey(key), removal: binding.ino === null, rowed: binding.firstRow !== null })
  }
  flush()
  if (removed) for await (const key of db.keys({ gt: keys.unboundPrefix(dir), lt: prefixEnd(keys.unboundPrefix(dir)) })) del(key)
}

/** A one-line account of a compaction (the audit and the mount's log). */
export function describeCounts(counts: CompactionCounts, floor: HlcStamp): string {
  return `floor ${hlcToIso(floor)}: ${counts.versionsDropped} versions and ${counts.nodesRemoved} nodes dropped of ${counts.nodes} looked at, ${counts.blockEntriesDropped} block entries (${counts.extentBytesDropped} bytes named), ${counts.bindingsDropped} name bindings`
}
