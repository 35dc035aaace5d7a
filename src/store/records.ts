// The records of the versioned state machine: every mutation of the file system is one of
// these, stamped by the orderer and applied in order by Store.apply. They are the unit the
// replication layer multicasts; nothing else changes state.

import type { FffsErrorCode, FffsReason } from '../errors.js'
import type { HlcStamp } from '../temporal/hlc.js'
import type { RetentionPolicy } from './retention/policy.js'
import type { LogPosition } from './segmentLog.js'

export type Ino = number
export const ROOT_INO: Ino = 1
/** The longest name an entry may have, in bytes (ext4's): a longer one is ENAMETOOLONG, never absent. */
export const NAME_MAX_BYTES = 255

/**
 * What a node is. FIFOs, sockets and device nodes are inodes with attributes only: their data
 * lives in the kernel (a pipe's buffer, a socket's queue, a driver), never in the store.
 */
export type NodeKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev'

/** Set-user-ID and set-group-ID: two of the bits above the permission bits in Attr.mode (the third is sticky). */
export const S_ISUID = 0o4000
export const S_ISGID = 0o2000

/**
 * Where the bytes of a write are: a position in the segment log (what Store.apply sees), or
 * `offset` bytes into a blob a remote client sent ahead on its connection (what a cluster
 * client submits; the serving member substitutes the log position before ordering).
 */
export type DataRef = LogPosition | { readonly blob: string; readonly offset: number }

/** One step of a version: bytes written at an offset (already in the log), or a truncation. */
export type VersionOp =
  | { readonly op: 'write'; readonly offset: number; readonly sizeBytes: number; readonly data: DataRef }
  | { readonly op: 'truncate'; readonly sizeBytes: number }

/**
 * The records of a record-format file (src/sensor/) a version completes or rewrites, as the
 * FUSE front end parsed them from the version's bytes. The store indexes them so a read at
 * sensor time T sees the prefix up to the last record at or before T (docs/decisions.md,
 * "Sensor time and record formats").
 */
export interface VersionRecords {
  /** [end offset (exclusive), sensor µs] of each record, in file order; ends strictly increase. */
  readonly entries: ReadonlyArray<readonly [number, number]>
  /** The greatest sensor time of the records before the first entry; -1: none. */
  readonly baseMaxSensorUs: number
  /** Where parsing resumes at the next version: after the last complete record or malformed run. */
  readonly endBytes: number
  /** The format's parser state at endBytes (absent: its initial state). */
  readonly state?: string
}

/** Where record parsing of a record-format file stands after a version. */
export interface RecordCursor {
  readonly endBytes: number
  readonly maxSensorUs: number // greatest sensor time of the records before endBytes; -1: none
  readonly state?: string
}

/** What a sensor-time lookup picks: a version, and for a record-format file the prefix of it that is visible. */
export interface SensorPick {
  readonly stamp: HlcStamp
  readonly sizeBytes: number | null // null: the whole version
}

export type Mutation =
  /**
   * `uid`/`gid`: the creator's; in a set-group-ID directory the node takes the directory's group
   * instead (and a new directory the bit). `rdev`: a device node's number (Linux encoding).
   * `xattrs`: set at creation. `inheritXattrs`: the names of the parent's xattrs the node takes
   * as the record applies (user.fffs.record_format), where it has them and `xattrs` does not.
   * `sensorLagMaxUs`: Δ; a sensorUs below stamp − Δ is refused.
   */
  | { readonly type: 'mknod'; readonly parent: Ino; readonly name: string; readonly kind: NodeKind; readonly mode: number; readonly uid: number; readonly gid: number; readonly rdev?: number; readonly target?: string; readonly sensorUs?: number; readonly xattrs?: Readonly<Record<string, string>>; readonly inheritXattrs?: readonly string[]; readonly sensorLagMaxUs?: number }
  /** A further name for an existing node that is not a directory (a hard link). */
  | { readonly type: 'link'; readonly ino: Ino; readonly parent: Ino; readonly name: string }
  | { readonly type: 'unlink'; readonly parent: Ino; readonly name: string }
  | { readonly type: 'rmdir'; readonly parent: Ino; readonly name: string }
  | { readonly type: 'rename'; readonly fromParent: Ino; readonly fromName: string; readonly toParent: Ino; readonly toName: string }
  | { readonly type: 'setattr'; readonly ino: Ino; readonly mode?: number; readonly uid?: number; readonly gid?: number; readonly atimeMs?: number; readonly mtimeMs?: number }
  | { readonly type: 'setxattr'; readonly ino: Ino; readonly name: string; readonly valueBase64: string }
  | { readonly type: 'removexattr'; readonly ino: Ino; readonly name: string }
  /**
   * All writes and truncations of one open file between two commit points, applied atomically.
   * `records`: the record-format records it completes. `sensorLagMaxUs`: Δ; the version is
   * refused when its sensorUs or any record's time is below its stamp − Δ.
   */
  | { readonly type: 'version'; readonly ino: Ino; readonly ops: readonly VersionOp[]; readonly sensorUs?: number; readonly records?: VersionRecords; readonly sensorLagMaxUs?: number }
  | { readonly type: 'snapshot'; readonly name: string; readonly at: string /* HlcStamp, decimal */; readonly spec: string }
  /** Refused (EBUSY) while the snapshot is held. */
  | { readonly type: 'unsnapshot'; readonly name: string }
  /** A hold on a snapshot (`fffs snapshot hold NAME TAG`): it cannot be deleted until every hold is released. */
  | { readonly type: 'hold'; readonly name: string; readonly tag: string }
  | { readonly type: 'release'; readonly name: string; readonly tag: string }
  /**
   * Moves the history floor to this record's platform time − policy.keepAllFor (never back)
   * and keeps the instants the policy's tiers keep below it; reads below the floor at cuts
   * nothing pins are ERANGE from here on. The versions the policy drops go by the `compact`
   * records that follow (retention/compaction.ts).
   */
  | { readonly type: 'retain'; readonly policy: RetentionPolicy }
  /** Drops what the floor no longer needs from the nodes with inodes from where the last `compact` stopped up to `toIno` (exclusive). */
  | { readonly type: 'compact'; readonly toIno: number }
  /** A member's disk fell below its reserve (`full`), or has room again: while any member is short, records that add data are refused (ENOSPC). */
  | { readonly type: 'space'; readonly member: number; readonly full: boolean }

/** `ino`: a new node's; `attr`: the attributes of the node the record made or changed (mknod, link, setattr, xattrs, version), after it. */
export type ApplyResult =
  | { readonly ok: true; readonly ino?: Ino; readonly attr?: Attr }
  | { readonly ok: false; readonly code: FffsErrorCode; readonly message: string; readonly reason?: FffsReason }

/** What a change of a directory did to its entries (a directory version's `entries`; `fffs log DIR` shows it). */
export interface EntryChange {
  readonly added?: string // the name now bound (mknod, a rename's target)
  readonly removed?: string // the name now unbound (unlink, rmdir, a rename's source)
  readonly replaced?: true // `added` replaced the node it named before (rename over it)
  readonly moved?: true // a rename between two directories: the other half is in the other directory's history
}

/**
 * One binding of a name in a directory: from `stamp` on (until the next binding), the name names
 * `ino` (null: nothing). `firstRow`: the row of the name's history it starts at, and `version`
 * the node's version then (absent for bindings written before they were kept).
 */
export interface NameBinding {
  readonly stamp: HlcStamp
  readonly ino: Ino | null
  readonly firstRow?: number
  readonly version?: number
}

/** Which versions of a node to list: stamps in (after, upto], oldest first (newest first when `reverse`), at most `limit`. */
/** A window of a directory listing: the names after `after` (byte order), at most `limit` of them. */
export interface DirPage {
  readonly after?: string
  readonly limit?: number
}

/** A window of a history: the entries after the stamp `after`, at most `limit` of them. */
export interface StampPage {
  readonly after?: HlcStamp
  readonly limit?: number
}

export interface VersionRange {
  readonly after?: HlcStamp
  readonly upto?: HlcStamp
  readonly limit?: number
  readonly reverse?: boolean
}

/** The attributes of one version of a node. Every version of a node has a fresh one. */
export interface Attr {
  readonly ino: Ino
  /** A directory's parent (absent for the root); for other nodes, where it was made or last renamed to (a hard-linked node has more names). */
  readonly parent?: Ino
  readonly kind: NodeKind
  readonly mode: number // permission bits with set-user-ID, set-group-ID and sticky (0o7777); the kind is `kind`
  readonly uid: number
  readonly gid: number
  /**
   * Names referring to the node: for a directory 2 + its subdirectories, for any other node
   * its hard links; 0 once the last name is gone (open files still read it). Absent in nodes
   * written before link counts were kept: 1 (a directory's 1 means "not counted", as find(1) reads it).
   */
  readonly nlink?: number
  readonly rdev?: number // device nodes: the device number (Linux encoding, as st_rdev)
  readonly sizeBytes: number
  readonly atimeMs: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly version: number // 1, 2, 3, ... per node
  readonly stamp: string // HlcStamp of this version, decimal (JSON has no bigint)
  readonly sensorUs?: number
  readonly records?: RecordCursor // record-format files, once a version carried records
  readonly target?: string // symlinks
  readonly xattrs?: Readonly<Record<string, string>> // name -> base64 value
  readonly change: Mutation['type'] | 'create'
  /** Directories: what this version changed among the entries (absent: the directory's own change, or a store written before it was kept). */
  readonly entries?: EntryChange
  /** Sharded groups only: the stamp of the data shard's version these attributes read (src/replication/sharded.ts). */
  readonly contentStamp?: string
}

export interface Snapshot {
  readonly name: string
  readonly at: string // HlcStamp, decimal
  readonly spec: string // what the user asked for
  readonly createdStamp: string
  readonly holds?: readonly string[] // tags of `fffs snapshot hold`: while any, the snapshot cannot be deleted
}

interface EncodedRecord {
  readonly stamp: string
  readonly mutation: Mutation
}

export function encodeRecord(stamp: HlcStamp, mutation: Mutation): Buffer {
  const record: EncodedRecord = { stamp: stamp.toString(), mutation }
  return Buffer.from(JSON.stringify(record))
}

export function decodeRecord(payload: Buffer): { stamp: HlcStamp; mutation: Mutation } {
  const record = JSON.parse(payload.toString('utf8')) as EncodedRecord
  return { stamp: BigInt(record.stamp), mutation: record.mutation }
}
