// The client API: everything the FUSE front end and the control socket need from the layers
// below, the one face they see. The embedded client (embedded.ts) runs the store and a local
// orderer in-process; a cluster client (src/replication/remoteClient.ts, sharded.ts)
// implements the same interface against a group of `fffs serve` processes.

import { FffsError } from '../errors.js'
import type { ApplyResult, Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../store/records.js'
import type { DiskState } from '../store/diskSpace.js'
import type { LocatedBytes } from '../store/store.js'
import type { HlcStamp } from '../temporal/hlc.js'
import type { HistoryControl } from './history.js'

/**
 * Names one submit across reconnects: a client that lost its connection with a submit in
 * flight re-sends it with the same id to the next member, which must apply it at most once
 * (docs/decisions.md, "Cluster edge"). `seq` increases per client; `oldestPendingSeq` is
 * the lowest seq the client still waits for, so outcomes below it can be forgotten.
 */
export interface SubmitId {
  readonly clientId: string
  readonly seq: number
  readonly oldestPendingSeq: number
}

export interface SubmitOptions {
  /** Deduplication across reconnects (see SubmitId). */
  readonly id?: SubmitId
  /**
   * The highest stamp the submitting client has seen (HLC piggybacking): the mutation is
   * stamped above it, so a version written after reading another, on any shard, is later in
   * every cut (docs/decisions.md, "Shards").
   */
  readonly after?: HlcStamp
}

/**
 * What one applied record changed, as a mount's kernel caches see it (src/fs/kernel.ts forgets
 * what they hold of it): names bound, unbound or rebound, nodes whose attributes changed, files
 * whose contents changed, snapshot names pinned or deleted.
 */
export interface ChangeNote {
  readonly entries?: ReadonlyArray<readonly [dir: Ino, name: string]>
  readonly nodes?: readonly Ino[]
  readonly contents?: readonly Ino[]
  readonly snapshots?: readonly string[]
}

/** Told of the changes other clients make (Client.watchChanges). */
export interface ChangeListener {
  changed(note: ChangeNote): void
  /**
   * Whether every change made from now on will be told: false once the feed is lost (its
   * connection died: changes may be missed from then on), true again once a new one runs
   * (changes made in between were not told: what is cached of the live tree may be stale).
   */
  inSync(synced: boolean): void
}

/**
 * What a submit returns: the record's stamp, a new node's inode, and the attributes of the node
 * it made or changed, after it (ApplyResult's `attr`), when the client has them whole (a sharded
 * client has only one shard's half of a file's).
 */
export interface Submitted {
  readonly stamp: HlcStamp
  readonly ino?: Ino
  readonly attr?: Attr
}

// Every query is async (a cluster client answers it over the network). `appendData` alone
// returns synchronously: its reference is opaque and made locally, so a FUSE write never waits
// for a round trip; the bytes travel in the background.
export interface Client {
  walk(components: readonly string[], cut: HlcStamp): Promise<Attr>
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null>
  /** `attr` of many nodes in one call (a listing's entries: one round trip in a group), in order. */
  attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>>
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null>
  /** The node named `name` in directory `dir` at the cut, with its attributes there (lookup and attr in one step); null when none. */
  child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null>
  /** A directory's entries at the cut, sorted by name; `page`: a window of them (DirPage). */
  readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>>
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number>
  /** A buffer `read` fills fastest with `lengthBytes`, when the client has a preference (a local log's direct reads want page-aligned memory). */
  readBuffer?(lengthBytes: number): Buffer
  /** Where the bytes `read` would return lie in the local log's files (Store.locate): a member's, for a mount on its host; null when not known. */
  locate?(attr: Attr, offset: number, lengthBytes: number): Promise<LocatedBytes | null>
  /** A node's versions in `range` (default: all), oldest first unless `range.reverse`. */
  versions(ino: Ino, range?: VersionRange): Promise<Attr[]>
  /** Every binding of `name` in directory `dir` over time, oldest first (what `dir/name@T` named at each T). */
  nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]>
  stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null>
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null>
  /** The version a read at sensor time `sensorUs` sees, and for a record-format file the prefix of it (Store.sensorPick). */
  sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null>
  /** The named snapshots by name; `page`: a window of them. */
  snapshots(page?: DirPage): Promise<Snapshot[]>
  snapshot(name: string): Promise<Snapshot | null>
  /**
   * Hands file bytes to the data path and returns at once; a 'version' mutation then refers to
   * them by `ref` (or `dataRefAt(ref, n)` for the bytes from offset n). `written` resolves once
   * the bytes are handed to the log or the network. The caller must not modify `bytes`
   * afterwards (a cluster client may re-send them after a failover until the version commits).
   * `ino` is the file the bytes are for: a sharded client sends them to that file's data shard.
   */
  appendData(ino: Ino, bytes: Uint8Array): { ref: DataRef; written: Promise<void> }
  /**
   * A chunk of `sizeBytes` for file `ino`'s bytes, in the memory this client's data path wants
   * and with what it needs of them computed as they arrive (DataChunk). Absent: plain memory,
   * handed to `appendData` when sealed (chunks.ts, chunkFor).
   */
  newChunk?(ino: Ino, sizeBytes: number): DataChunk
  /** A blob handed to `appendData` that no version will name (its sender went away): a client that holds such bytes back for the version (ReplicaClient) lets go. */
  releaseData?(ref: DataRef): void
  /** Orders, persists and applies a mutation; throws the FffsError of a failed apply. */
  submit(mutation: Mutation, options?: SubmitOptions): Promise<Submitted>
  stableFrontier(): Promise<HlcStamp>
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  /** History retention: the floor, the policy, on-demand runs (history.ts). */
  readonly history?: HistoryControl
  /** Throws ENOSPC when new data would be refused (the disk below its reserve): a write learns it before it buffers. */
  refuseWhenFull?(): void
  /** The disk under the store (embedded) or the fullest of the members' (a group): what `df` and `fffs status` report. */
  diskState?(): Promise<DiskState | null>
  /**
   * Returns once every mutation this client's submits returned is synced in the log of every
   * replica (fsync): a group may answer a submit once its record is only written there
   * (GroupConfig.durability).
   */
  syncAcknowledged(maxWaitMs: number): Promise<void>
  /**
   * Tells `listener` of the changes other clients make, as they apply (a group's members push
   * them). Absent: no other client changes the tree (the embedded store). Returns the unsubscribe.
   */
  watchChanges?(listener: ChangeListener): () => void
  close(): Promise<void>
}

/**
 * File bytes gathered from writes (a FUSE write is answered once its bytes are copied in), then
 * sealed: handed to the client's data path as one piece, which a version's ops name through
 * `ref`. The client chooses the memory and computes what its data path needs of the bytes
 * (the embedded log's CRC32C; page alignment for O_DIRECT), so the caller never reads them again.
 */
export interface DataChunk {
  readonly capacityBytes: number
  readonly usedBytes: number
  /** Set once sealed: the reference of byte 0 (`dataRefAt` for the others). */
  readonly ref: DataRef | null
  /** Copies `data[0, lengthBytes)` after the used bytes (they must fit); never after `seal`. */
  append(data: Buffer, lengthBytes: number): void
  /** Hands the used bytes to the data path (once; an empty chunk is never handed over). */
  seal(): void
  /** Copies bytes [offset, offset + lengthBytes) of the chunk into `into`: from memory at once, else (read back once written) when the promise resolves. */
  copyTo(offset: number, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> | undefined
}

/** The reference to the bytes `offsetBytes` into the data `ref` names. */
export function dataRefAt(ref: DataRef, offsetBytes: number): DataRef {
  return 'blob' in ref ? { blob: ref.blob, offset: ref.offset + offsetBytes } : { segment: ref.segment, offset: ref.offset + offsetBytes }
}

/** A submit's outcome: its inode and attributes, or the FffsError of a failed apply. */
export function unwrap(result: ApplyResult): { ino?: Ino; attr?: Attr } {
  if (!result.ok) throw new FffsError(result.code, result.message, result.reason)
  return { ...(result.ino !== undefined ? { ino: result.ino } : {}), ...(result.attr !== undefined ? { attr: result.attr } : {}) }
}
