// One handler per FUSE operation. Each takes the path (and handle) kernel.ts gives, does its
// work through the client API, and returns a value or throws an FffsError; the errno is
// decided in one place, kernel.ts.

import { constants as fsConstants, promises as fsp } from 'node:fs'
import { errors, isLateSensorWrite } from '../errors.js'
import type { Client } from '../replication/client.js'
import { parseRecordFormat, XATTR_RECORD_FORMAT } from '../sensor/index.js'
import { ROOT_INO, S_ISGID, S_ISUID, type Attr, type Ino, type NodeKind } from '../store/records.js'
import { HLC_MAX, hlcCeilingOfUs, hlcToIso, wallClockUs } from '../temporal/hlc.js'
import { formatTimeSpec, isSpecName, parseTimeSpec, splitNameSpec } from '../temporal/spec.js'
import { OpenFiles, type OpenFile } from './openFiles.js'
import { parsePath, Resolver, SNAPSHOT_DIR, type ParsedPath, type Resolved, type TimeOptions } from './resolve.js'
import { checkSensorLag, newSensorStats, recordFormatOf, type SensorPolicy, type SensorStats } from './sensorRecords.js'

const O_ACCMODE = 3
const S_IFMT = 0o170000
const S_IXGRP = 0o010
/** The file type bits of st_mode for each kind of node. */
const S_IF: Readonly<Record<NodeKind, number>> = {
  fifo: 0o010000,
  chardev: 0o020000,
  dir: 0o040000,
  blockdev: 0o060000,
  file: 0o100000,
  symlink: 0o120000,
  socket: 0o140000,
}
const KIND_OF_S_IF = new Map(Object.entries(S_IF).map(([kind, bits]) => [bits, kind as NodeKind]))
/** (uid_t)-1 in chown(2): leave unchanged. */
const UNCHANGED_ID = 0xffffffff
const XATTR_CREATE = 1
const XATTR_REPLACE = 2
const XATTR_PREFIX = 'user.fffs.'
/** A namespace fffs keeps nothing in (see getxattr). */
const XATTR_SECURITY_PREFIX = 'security.'
const POSIX_ACL_XATTRS = new Set(['system.posix_acl_access', 'system.posix_acl_default'])
export const XATTR_VERSION = 'user.fffs.version'
export const XATTR_TIME = 'user.fffs.time'
export const XATTR_SENSOR_TIME = 'user.fffs.sensor_time'
/** On the mount root: the history floor (ISO); reads of cuts below it that nothing pins are ERANGE. */
export const XATTR_HISTORY_FLOOR = 'user.fffs.history_floor'

/** Who sent a request (the kernel's view of the calling thread): new nodes belong to uid and gid. */
export interface Caller {
  readonly uid: number
  readonly gid: number
  readonly pid: number // the calling thread's id, as the kernel reports it
  readonly umask: number
  /** The open-file owner a write, flush or release names (the kernel's hash of the caller's file table); null when none. */
  readonly lockOwner: bigint | null
}

/** The mount process itself: what the control socket and internal callers act as. */
export const MOUNT_PROCESS: Caller = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid, umask: 0o022, lockOwner: null }

export interface Stat {
  ino: number // the store inode (the kernel's node id for live nodes: src/fs/nodeTable.ts)
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  rdev: number
  mtime: number // ms
  atime: number
  ctime: number
  blksize: number
  blocks: number
}

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  fsid: number
  flag: number
  namemax: number
}

/** What the kernel asks one setattr to change (native/src/fuse.cpp OnSetattr); times in ms. */
export interface AttrChanges {
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly size?: number
  readonly atime?: number
  readonly mtime?: number
  readonly atimeNow?: boolean
  readonly mtimeNow?: boolean
}

function toStat(attr: Attr, sizeBytes = attr.sizeBytes): Stat {
  return {
    ino: attr.ino,
    mode: S_IF[attr.kind] | attr.mode,
    uid: attr.uid,
    gid: attr.gid,
    size: sizeBytes,
    // A node written before link counts were kept: 1 (for a directory, find(1)'s "not counted").
    nlink: attr.nlink ?? 1,
    rdev: attr.rdev ?? 0,
    mtime: attr.mtimeMs,
    atime: attr.atimeMs,
    ctime: attr.ctimeMs,
    blksize: 128 * 1024,
    blocks: Math.ceil(sizeBytes / 512),
  }
}

/**
 * What a lookup found, for the kernel: the attributes; `live`: a live node (else a node of a time
 * path, a snapshot or a virtual directory); `anchoredName`: the looked-up name with its relative
 * spec made absolute (`f@-5m` -> `f@2026-12-07T05:55:00.000000Z`), so that later requests through
 * the node the kernel keeps read the instant this lookup resolved (only the looked-up name can
 * have one: its parents are anchored already); null when it has none.
 */
export interface Found {
  readonly stat: Stat
  readonly live: boolean
  readonly anchoredName: string | null
}

/** /.snapshot and /.at: they belong to the owner of the root, who alone may pin a cut by mkdir in /.snapshot; they show the root's times (lookup). */
function virtualDirStat(root: Attr): Stat {
  return { ino: 0, mode: S_IF.dir | 0o755, uid: root.uid, gid: root.gid, size: 0, nlink: 2, rdev: 0, mtime: 0, atime: 0, ctime: 0, blksize: 4096, blocks: 0 }
}

/**
 * The mode after a write or truncation by a user without CAP_FSETID: no set-user-ID, and no
 * set-group-ID if group execute is set (without it, the bit marks mandatory locking), as Linux does.
 */
function withoutPrivilegeBits(mode: number): number {
  return (mode & S_IXGRP) !== 0 ? mode & ~(S_ISUID | S_ISGID) : mode & ~S_ISUID
}

/**
 * An xattr name fffs never keeps, always absent: security.* (asked about before every write(2))
 * and POSIX ACLs (`ls -l` asks for system.posix_acl_access of every file). fffs enforces no
 * ACLs (the kernel checks the mode bits alone), so storing one would only mislead.
 */
// native/src/fuse.cpp (IsUnkeptXattr) answers getxattr of these names itself: keep the two lists alike.
export function isUnkeptXattr(name: string): boolean {
  return name.startsWith(XATTR_SECURITY_PREFIX) || POSIX_ACL_XATTRS.has(name)
}

export class Operations {
  private readonly client: Client
  private readonly resolver: Resolver
  private readonly files: OpenFiles
  private readonly dataDir: string
  private readonly sensorPolicy: SensorPolicy
  /** When this mount started: the time shown for a root no version has touched yet (a new store's, stamp 0) instead of 1970. */
  private readonly startedMs = Date.now()

  constructor(client: Client, options: TimeOptions, dataDir: string, log: (line: string) => void = (line) => process.stderr.write(line + '\n')) {
    this.client = client
    this.resolver = new Resolver(client, options)
    this.dataDir = dataDir
    this.sensorPolicy = { sensorLagMaxUs: options.sensorLagMaxUs, nowUs: wallClockUs, stats: newSensorStats(), log }
    this.files = new OpenFiles(this.sensorPolicy, client.pageOffsetOf)
  }

  /** Sensor-time counters: late writes refused, malformed and indexed records. */
  get sensorStats(): Readonly<SensorStats> {
    return this.sensorPolicy.stats
  }

  // ---------------------------------------------------------------- helpers

  /** Refuses, counts and logs a sensor time older than now − Δ before anything is written. */
  private refuseIfLate(path: string, sensorUs: number | undefined, what: string): void {
    if (sensorUs === undefined) return
    try {
      checkSensorLag(this.sensorPolicy, path, sensorUs, what)
    } catch (err) {
      if (isLateSensorWrite(err)) {
        this.sensorPolicy.stats.versionsRefusedLate++
        this.sensorPolicy.log(`fffs: refused: ${(err as Error).message}`)
      }
      throw err
    }
  }

  /** What a new node inherits from its directory: the record format. */
  private inheritedXattrs(parent: Attr): { xattrs?: Record<string, string> } {
    const format = parent.xattrs?.[XATTR_RECORD_FORMAT]
    return format === undefined ? {} : { xattrs: { [XATTR_RECORD_FORMAT]: format } }
  }

  private async resolve(path: string, nonBlocking = false): Promise<Resolved> {
    return this.resolver.resolve(parsePath(path), nonBlocking)
  }

  private async node(path: string): Promise<Attr> {
    // Asked about P@sensor:T while it is being written: answered like getattr, without waiting.
    const parsed = parsePath(path)
    const writing = await this.sensorWriteInProgress(parsed)
    if (writing === 'absent') throw errors.notFound(path)
    if (writing !== null) return writing
    const resolved = await this.resolver.resolve(parsed)
    if (resolved.kind !== 'node') throw errors.invalid(`${path} is a virtual directory`)
    return resolved.attr
  }

  /** A live node that a metadata operation may change (EROFS for any other: Resolver.nodeTarget). */
  private async liveNode(path: string): Promise<Attr> {
    return (await this.resolver.nodeTarget(parsePath(path), false)).attr
  }

  /** Parent directory and new name for an operation that creates `path` (EROFS under a time path: Resolver.entryTarget). */
  private async newEntry(path: string): Promise<{ parent: Attr; name: string; sensorUs?: number }> {
    return this.resolver.entryTarget(parsePath(path), true)
  }

  /** Parent directory and existing name for an operation that removes or renames `path`. */
  private async existingEntry(path: string): Promise<{ parent: Attr; name: string }> {
    return this.resolver.entryTarget(parsePath(path), false)
  }

  // ---------------------------------------------------------------- attributes and directories

  async getattr(path: string): Promise<Stat> {
    return (await this.lookup(path)).stat
  }

  /** getattr, for the kernel's lookup of a name: what the kernel needs to keep the node (Found). */
  async lookup(path: string): Promise<Found> {
    const parsed = parsePath(path)
    const writing = await this.sensorWriteInProgress(parsed)
    if (writing === 'absent') throw errors.notFound(path) // a write creates it; nothing waits for a cut
    if (writing !== null) return { stat: this.liveStat(writing), live: false, anchoredName: null }
    const resolved = await this.resolver.resolve(parsed)
    if (resolved.kind === 'virtualDir') {
      const root = await this.client.walk([], HLC_MAX)
      return { stat: { ...virtualDirStat(root), ...this.timesOf(root) }, live: false, anchoredName: null }
    }
    const live = resolved.cut.kind === 'live'
    const anchoredName = resolved.anchoredPath === null ? null : resolved.anchoredPath.slice(resolved.anchoredPath.lastIndexOf('/') + 1)
    return { stat: live ? this.liveStat(resolved.attr) : this.statOf(resolved.attr), live, anchoredName }
  }

  /** What the kernel is told of a live node: its size counts uncommitted writes; its open handles read this version from now on. */
  private liveStat(attr: Attr): Stat {
    this.files.advance(attr)
    return this.statOf(attr, this.files.dirtySizeBytes(attr.ino) ?? attr.sizeBytes)
  }

  /** toStat, with a root no version has touched yet (a new store's) shown at this mount's start instead of 1970. */
  private statOf(attr: Attr, sizeBytes = attr.sizeBytes): Stat {
    const stat = toStat(attr, sizeBytes)
    return attr.stamp === '0' ? { ...stat, ...this.timesOf(attr) } : stat
  }

  private timesOf(attr: Attr): Pick<Stat, 'mtime' | 'atime' | 'ctime'> {
    if (attr.stamp === '0') return { mtime: this.startedMs, atime: this.startedMs, ctime: this.startedMs }
    return { mtime: attr.mtimeMs, atime: attr.atimeMs, ctime: attr.ctimeMs }
  }

  /**
   * Whether a handle was opened through a time path: a read at a cut (a time path, a snapshot:
   * what it reads never changes) or a write through `P@sensor:T`. Asked as the open or create
   * returns (a sensor time set later through the xattr is not the path's).
   */
  openedThroughTimePath(fd: number): boolean {
    const file = this.files.get(fd)
    return file.cut.kind !== 'live' || file.sensorUs !== undefined
  }

  /** A live node's attributes by inode: any of its names, or none (unlinked, still open). */
  async getattrOfInode(ino: Ino): Promise<Stat> {
    return this.liveStat(await this.liveAttr(ino))
  }

  /** Whether an open file of this mount holds changes to the node not yet committed. */
  hasUncommitted(ino: Ino): boolean {
    return this.files.dirtySizeBytes(ino) !== null
  }

  private async liveAttr(ino: Ino): Promise<Attr> {
    const attr = await this.client.attr(ino, HLC_MAX)
    if (attr === null) throw errors.notFound(`inode ${ino}`)
    return attr
  }

  /** An open handle's attributes, as its reader or writer sees them (uncommitted writes' size included). */
  fgetattr(fd: number): Stat {
    const file = this.files.get(fd)
    return toStat(file.pinned, file.visibleSizeBytes)
  }

  /**
   * `P@sensor:T` (the last component of a live path) while a write through it may come,
   * answered without waiting for the sensor cut: while this mount holds P open for writing at T,
   * or while T is still open for writes (not older than now − Δ, so the cut cannot be stable
   * yet): the live file P, or 'absent' when there is none (the kernel then creates it). The
   * kernel looks a name up before it opens or creates it, and a lookup that waited for
   * T + Δ + 2δ would make every write at T late. A reader of an existing P gets the frozen
   * version from open, which waits; only this provisional answer is early. Null: resolve as usual.
   */
  private async sensorWriteInProgress(parsed: ParsedPath): Promise<Attr | 'absent' | null> {
    const target = await this.resolver.sensorWriteTarget(parsed).catch(() => null) // a missing directory: resolve says so
    if (target === null) return null
    const ino = await this.client.lookup(target.parent.ino, target.name, HLC_MAX)
    const live = ino === null ? null : await this.client.attr(ino, HLC_MAX)
    if (live !== null && live.kind !== 'file') return null
    const writable = target.sensorUs >= this.sensorPolicy.nowUs() - this.sensorPolicy.sensorLagMaxUs
    if (!writable && (live === null || !this.files.writers(live.ino).some((w) => w.sensorUs === target.sensorUs))) return null
    return live ?? 'absent'
  }

  async readdir(path: string): Promise<string[]> {
    const resolved = await this.resolve(path)
    if (resolved.kind === 'virtualDir') return ['.', '..', ...(resolved.dir === SNAPSHOT_DIR ? (await this.client.snapshots()).map((s) => s.name) : [])]
    if (resolved.attr.kind !== 'dir') throw errors.notDir(path)
    return ['.', '..', ...(await this.resolver.list(resolved.attr, resolved.cut))]
  }

  /** Returns the name the directory got: NAME for `.snapshot/NAME@SPEC`. */
  async mkdir(path: string, mode: number, caller: Caller): Promise<string | void> {
    const parsed = parsePath(path)
    if (parsed.root.kind === 'snapshot' && parsed.components.length === 0) {
      // mkdir .snapshot/NAME pins now; .snapshot/NAME@SPEC pins SPEC.
      const split = splitNameSpec(parsed.root.name, wallClockUs())
      const name = split?.name ?? parsed.root.name
      await this.createSnapshot(name, split === null ? null : formatTimeSpec(split.spec))
      return name
    }
    const { parent, name } = await this.newEntry(path)
    await this.client.submit({ type: 'mknod', parent: parent.ino, name, kind: 'dir', mode, uid: caller.uid, gid: caller.gid, ...this.inheritedXattrs(parent) })
  }

  async rmdir(path: string): Promise<void> {
    const parsed = parsePath(path)
    if (parsed.root.kind === 'snapshot' && parsed.components.length === 0) {
      await this.client.submit({ type: 'unsnapshot', name: parsed.root.name })
      return
    }
    const { parent, name } = await this.existingEntry(path)
    await this.client.submit({ type: 'rmdir', parent: parent.ino, name })
  }

  async unlink(path: string): Promise<void> {
    const { parent, name } = await this.existingEntry(path)
    await this.client.submit({ type: 'unlink', parent: parent.ino, name })
  }

  async rename(from: string, to: string): Promise<void> {
    const source = await this.existingEntry(from)
    const target = await this.newEntry(to)
    await this.client.submit({ type: 'rename', fromParent: source.parent.ino, fromName: source.name, toParent: target.parent.ino, toName: target.name })
  }

  async symlink(target: string, path: string, caller: Caller): Promise<void> {
    const { parent, name } = await this.newEntry(path)
    await this.client.submit({ type: 'mknod', parent: parent.ino, name, kind: 'symlink', mode: 0o777, uid: caller.uid, gid: caller.gid, target })
  }

  /**
   * mknod(2): a regular file, FIFO, socket (bind(2) of a unix socket makes one) or device node.
   * The kernel has applied the umask and checked the caller may make a device (CAP_MKNOD).
   */
  async mknod(path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
    const kind = KIND_OF_S_IF.get(mode & S_IFMT)
    if (kind === undefined || kind === 'dir' || kind === 'symlink') throw errors.invalid(`mknod of file type 0o${(mode & S_IFMT).toString(8)}`)
    const { parent, name } = await this.newEntry(path)
    const device = kind === 'chardev' || kind === 'blockdev' ? { rdev } : {}
    const inherited = kind === 'file' ? this.inheritedXattrs(parent) : {}
    await this.client.submit({ type: 'mknod', parent: parent.ino, name, kind, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid, ...device, ...inherited })
  }

  /** link(2): `path` becomes one more name of the live node `ino`. */
  async link(ino: Ino, path: string): Promise<void> {
    const { parent, name } = await this.newEntry(path)
    await this.client.submit({ type: 'link', ino, parent: parent.ino, name })
  }

  async readlink(path: string): Promise<string> {
    const attr = await this.node(path)
    if (attr.kind !== 'symlink' || attr.target === undefined) throw errors.invalid(`not a symbolic link: ${path}`)
    return attr.target
  }

  /**
   * setattr of a live node: mode, owner and times in one version of its attributes (chown's
   * clearing of set-user-ID comes as a mode in the same request), a size in a version of its
   * contents (through `fd`, the open file's version). The kernel has checked the caller may
   * (default_permissions: chown by root, chgrp to one's own groups, explicit times by the owner).
   */
  async setattr(ino: Ino, changes: AttrChanges, fd: number | undefined, caller: Caller): Promise<void> {
    const nowMs = Date.now()
    // truncate(2) asks for mtime = now with the size: the version of the contents sets it already.
    const timesWithSize = changes.size !== undefined && changes.mtimeNow === true && changes.mtime === undefined && changes.atime === undefined && changes.atimeNow !== true
    const atimeMs = changes.atimeNow === true ? nowMs : changes.atime
    const mtimeMs = timesWithSize ? undefined : changes.mtimeNow === true ? nowMs : changes.mtime
    const attributes = {
      ...(changes.mode !== undefined ? { mode: changes.mode & 0o7777 } : {}),
      ...(changes.uid !== undefined && changes.uid !== UNCHANGED_ID ? { uid: changes.uid } : {}),
      ...(changes.gid !== undefined && changes.gid !== UNCHANGED_ID ? { gid: changes.gid } : {}),
      ...(atimeMs !== undefined ? { atimeMs } : {}),
      ...(mtimeMs !== undefined ? { mtimeMs } : {}),
    }
    if (Object.keys(attributes).length > 0) await this.client.submit({ type: 'setattr', ino, ...attributes })
    if (changes.size === undefined) return
    if (fd !== undefined) return this.ftruncate(fd, changes.size, caller)
    await this.truncate(await this.liveAttr(ino), changes.size)
  }

  private async truncate(attr: Attr, sizeBytes: number): Promise<void> {
    if (attr.kind === 'dir') throw errors.isDir(`inode ${attr.ino}`)
    if (attr.kind !== 'file') throw errors.invalid(`truncate of inode ${attr.ino}, which is not a regular file`)
    if (recordFormatOf(attr) !== null) {
      // Through an open file, so the commit finds where the records now end.
      const file = this.files.open(attr, { kind: 'live' }, true, `inode ${attr.ino}`)
      try {
        file.truncate(sizeBytes)
        await file.commit(this.client)
      } finally {
        this.files.close(file.fd)
      }
      return
    }
    await this.client.submit({ type: 'version', ino: attr.ino, ops: [{ op: 'truncate', sizeBytes }] })
  }

  /**
   * The disk the store is on, as df shows it: its size and free space, and as available what fffs
   * takes before it refuses writes (the free space above the reserve kept for deletes and retention).
   */
  async statfs(): Promise<StatFs> {
    const s = await fsp.statfs(this.dataDir)
    const disk = await this.client.diskState?.()
    const reserveBlocks = disk == null ? 0 : Math.ceil(disk.reserveBytes / s.bsize)
    const bavail = Math.max(0, s.bavail - reserveBlocks)
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0x66666673, flag: 0, namemax: 255 }
  }

  // ---------------------------------------------------------------- files

  async open(path: string, flags: number, caller: Caller): Promise<number> {
    const parsed = parsePath(path)
    const writable = (flags & O_ACCMODE) !== fsConstants.O_RDONLY
    if (writable) {
      const { attr, sensorUs } = await this.resolver.nodeTarget(parsed, true)
      if (attr.kind === 'dir') throw errors.isDir(path)
      this.refuseIfLate(path, sensorUs, 'write')
      const truncates = (flags & fsConstants.O_TRUNC) !== 0
      // A truncation by another user clears set-user-ID/set-group-ID, as the kernel does for
      // truncate(2); with atomic_o_trunc it sends no setattr for an O_TRUNC open. Root keeps them (CAP_FSETID).
      if (truncates && caller.uid !== 0 && withoutPrivilegeBits(attr.mode) !== attr.mode) await this.client.submit({ type: 'setattr', ino: attr.ino, mode: withoutPrivilegeBits(attr.mode) })
      const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
      file.appends = (flags & fsConstants.O_APPEND) !== 0
      if (truncates) this.truncateAtOpen(file, caller) // atomic_o_trunc
      return file.fd
    }
    const resolved = await this.resolver.resolve(parsed, (flags & fsConstants.O_NONBLOCK) !== 0)
    if (resolved.kind !== 'node') return this.files.open(await this.client.walk([], HLC_MAX), { kind: 'live' }, false, path).fd
    const file = this.files.open(resolved.attr, resolved.cut, false, path)
    file.startReadAhead(this.client)
    return file.fd
  }

  /** An O_TRUNC open's truncation: part of the version that open writes (commitPoints.ts). */
  private truncateAtOpen(file: OpenFile, caller: Caller): void {
    file.truncate(0)
    file.writers.openedTruncating(caller.pid)
  }

  async create(path: string, mode: number, caller: Caller, flags = 0): Promise<number> {
    const { parent, name, sensorUs } = await this.newEntry(path)
    this.refuseIfLate(path, sensorUs, 'write')
    if (sensorUs !== undefined) {
      // P@sensor:T names P at a sensor time it may not have had yet: open P itself if it exists.
      const existing = await this.client.lookup(parent.ino, name, HLC_MAX)
      const attr = existing === null ? null : await this.client.attr(existing, HLC_MAX)
      if (attr !== null) {
        if (attr.kind === 'dir') throw errors.isDir(path)
        // The kernel creates only what it could not find: the new version starts empty, as a new file would.
        const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
        file.appends = (flags & fsConstants.O_APPEND) !== 0
        this.truncateAtOpen(file, caller)
        return file.fd
      }
    }
    const sensor = sensorUs !== undefined ? { sensorUs, sensorLagMaxUs: this.sensorPolicy.sensorLagMaxUs } : {}
    const { ino } = await this.client
      .submit({ type: 'mknod', parent: parent.ino, name, kind: 'file', mode, uid: caller.uid, gid: caller.gid, ...sensor, ...this.inheritedXattrs(parent) })
      .catch((err: unknown) => {
        if (isLateSensorWrite(err)) this.sensorPolicy.stats.versionsRefusedLate++
        throw err
      })
    const attr = await this.client.attr(ino!, HLC_MAX)
    if (attr === null) throw errors.notFound(path)
    const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
    file.appends = (flags & fsConstants.O_APPEND) !== 0
    return file.fd
  }

  async read(fd: number, into: Buffer, lengthBytes: number, offset: number): Promise<number> {
    return this.files.get(fd).read(this.client, into, lengthBytes, offset)
  }

  /**
   * `clearsSetId`: the kernel marked the write as one by a caller without CAP_FSETID, which
   * must clear set-user-ID/set-group-ID (it leaves that to the file system for the direct I/O of
   * a write-only open; a write through the page cache has it done by a setattr first).
   */
  write(fd: number, data: Buffer, lengthBytes: number, offset: number, caller: Caller, clearsSetId = false): number | Promise<number> {
    const file = this.files.get(fd)
    file.write(this.client, data, lengthBytes, offset)
    file.writers.changed(caller.pid)
    if (!clearsSetId || file.setIdCleared || withoutPrivilegeBits(file.pinned.mode) === file.pinned.mode) return lengthBytes
    return this.clearSetId(file).then(() => lengthBytes)
  }

  /** One attribute version without the set-ID bits, as the kernel's own setattr before a write through the page cache makes. */
  private async clearSetId(file: OpenFile): Promise<void> {
    file.setIdCleared = true
    const attr = await this.liveAttr(file.ino)
    const mode = withoutPrivilegeBits(attr.mode)
    if (mode !== attr.mode) await this.client.submit({ type: 'setattr', ino: attr.ino, mode })
  }

  private ftruncate(fd: number, sizeBytes: number, caller: Caller): void {
    const file = this.files.get(fd)
    file.truncate(sizeBytes)
    file.writers.changed(caller.pid)
  }

  /**
   * A close(2) of one of the handle's descriptors. It commits what is pending when it is a
   * commit point (commitPoints.ts; `holdsAnother`: the closing process holds the file through
   * another descriptor). The inode it committed a version of, or null.
   */
  async flush(fd: number, caller: Caller, holdsAnother: () => boolean): Promise<Ino | null> {
    const file = this.files.get(fd)
    const pending = file.hasPendingChanges
    if (pending && !file.writers.isCommitPoint(caller.pid, holdsAnother)) return null // another process's changes: its close commits them
    await file.commit(this.client) // with nothing pending, this waits for a commit still in flight
    return pending ? file.ino : null
  }

  /** fsync/fdatasync: always a commit point. The inode it committed a version of, or null. */
  async fsync(fd: number): Promise<Ino | null> {
    const file = this.files.get(fd)
    const pending = file.hasPendingChanges
    await file.commit(this.client)
    return pending ? file.ino : null
  }

  /** The last close: commits what is pending. The inode it committed a version of, or null. */
  async release(fd: number): Promise<Ino | null> {
    const file = this.files.get(fd)
    try {
      const pending = file.hasPendingChanges
      await file.commit(this.client)
      return pending ? file.ino : null
    } finally {
      this.files.close(fd)
    }
  }

  /** Commits every open file (unmount). */
  async commitAll(): Promise<void> {
    await Promise.allSettled(this.files.all.map((f: OpenFile) => f.commit(this.client)))
  }

  /** After unmount: nothing is written through these operations again. */
  async stop(): Promise<void> {
    await this.files.stop()
  }

  // ---------------------------------------------------------------- extended attributes

  /**
   * fffs keeps no security.* attributes (file capabilities, LSM labels) and no POSIX ACLs:
   * setting one is refused, and reading one is answered at once, without resolving the path.
   * The kernel reads security.capability before every write(2) to a FUSE file (FUSE clears
   * SB_NOSEC, so nothing caches the answer); a path walk there cost each 1 MiB write ~0.1 ms.
   * `ls -l` reads system.posix_acl_access of every file it lists.
   */
  getxattr(path: string, name: string): Promise<Buffer> {
    if (isUnkeptXattr(name)) throw errors.noAttr(name)
    return this.storedXattr(path, name)
  }

  private async storedXattr(path: string, name: string): Promise<Buffer> {
    const attr = await this.node(path)
    if (name === XATTR_HISTORY_FLOOR) {
      const floor = attr.ino === ROOT_INO && path === '/' ? await this.client.history?.floor() : undefined
      if (floor === undefined || floor === 0n) throw errors.noAttr(name) // not the mount root, or nothing compacted yet
      return Buffer.from(hlcToIso(floor))
    }
    if (name === XATTR_VERSION) return Buffer.from(String(attr.version))
    if (name === XATTR_TIME) return Buffer.from(hlcToIso(BigInt(attr.stamp)))
    if (name === XATTR_SENSOR_TIME) {
      if (attr.sensorUs === undefined) throw errors.noAttr(name)
      return Buffer.from(formatTimeSpec({ kind: 'platform', timeUs: attr.sensorUs }))
    }
    const value = attr.xattrs?.[name]
    if (value === undefined) throw errors.noAttr(name)
    return Buffer.from(value, 'base64')
  }

  /**
   * The user's own attributes. fffs's (user.fffs.*) are readable by name but not listed, as
   * other file systems keep virtual attributes, so a copy (`cp -a`, `rsync -X`) neither carries
   * them as data nor sets them on a restore: the version facts (.version, .time, .sensor_time)
   * are computed, and .record_format tells fffs to index records as they arrive, which a restore
   * of old records cannot be (their sensor times are older than Δ: refused as late).
   */
  async listxattr(path: string): Promise<string[]> {
    const attr = await this.node(path)
    return Object.keys(attr.xattrs ?? {}).filter((n) => !n.startsWith(XATTR_PREFIX) && !isUnkeptXattr(n))
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    if (name === XATTR_SENSOR_TIME) return this.stampSensorTime(path, value)
    if (isUnkeptXattr(name)) throw errors.notSupported(`${name}: fffs keeps no security.* attributes and no POSIX ACLs`)
    if (name.startsWith(XATTR_PREFIX) && name !== XATTR_RECORD_FORMAT) throw errors.invalid(`${name} is maintained by fffs and read-only`)
    const attr = await this.liveNode(path)
    const exists = attr.xattrs?.[name] !== undefined
    if ((flags & XATTR_CREATE) !== 0 && exists) throw errors.exists(`attribute ${name}`)
    if ((flags & XATTR_REPLACE) !== 0 && !exists) throw errors.noAttr(name)
    if (name === XATTR_RECORD_FORMAT) value = this.checkRecordFormat(path, attr, value)
    await this.client.submit({ type: 'setxattr', ino: attr.ino, name, valueBase64: value.toString('base64') })
    if (name === XATTR_RECORD_FORMAT) await this.refreshWriters(attr.ino)
  }

  /** Writers already open parse their next commit with the format as it is now (they read it from their attributes). */
  private async refreshWriters(ino: Ino): Promise<void> {
    const writers = this.files.writers(ino)
    if (writers.length === 0) return
    const now = await this.client.attr(ino, HLC_MAX)
    if (now !== null) for (const writer of writers) writer.pinned = now
  }

  /**
   * A record format goes on a directory (new files and directories below inherit it) or on
   * an empty file: records are found as bytes are appended, never in bytes already there.
   * Stored in its canonical form.
   */
  private checkRecordFormat(path: string, attr: Attr, value: Buffer): Buffer {
    if (attr.kind === 'symlink') throw errors.invalid(`${XATTR_RECORD_FORMAT} goes on a directory or a regular file, not the symlink ${path}`)
    const format = parseRecordFormat(value.toString('utf8'))
    if (attr.kind === 'file' && (attr.sizeBytes > 0 || this.files.dirtySizeBytes(attr.ino) !== null)) {
      throw errors.invalid(`${XATTR_RECORD_FORMAT} on ${path}: the file already has bytes; set it on the directory before creating files, or on an empty file`)
    }
    return Buffer.from(format.text)
  }

  /** Setting user.fffs.sensor_time stamps the version every open writer of the file is writing. */
  private async stampSensorTime(path: string, value: Buffer): Promise<void> {
    const attr = await this.liveNode(path)
    const text = value.toString('utf8').replace(/\0+$/, '').trim()
    const spec = parseTimeSpec(text.startsWith('sensor:') ? text : `sensor:${text}`)
    if (spec.kind !== 'sensor') throw errors.invalid(`${XATTR_SENSOR_TIME} takes a time, got '${text}'`)
    const writers = this.files.writers(attr.ino)
    if (writers.length === 0) throw errors.invalid(`${XATTR_SENSOR_TIME} stamps the version being written: open ${path} for writing first`)
    this.refuseIfLate(path, spec.timeUs, XATTR_SENSOR_TIME)
    for (const writer of writers) writer.sensorUs = spec.timeUs
  }

  async removexattr(path: string, name: string): Promise<void> {
    if (name.startsWith(XATTR_PREFIX) && name !== XATTR_RECORD_FORMAT) throw errors.invalid(`${name} is maintained by fffs and read-only`)
    if (isUnkeptXattr(name)) throw errors.noAttr(name)
    const attr = await this.liveNode(path)
    await this.client.submit({ type: 'removexattr', ino: attr.ino, name })
    if (name === XATTR_RECORD_FORMAT) await this.refreshWriters(attr.ino)
  }

  // ---------------------------------------------------------------- snapshots

  /** Pins a cut under a name: at a platform time, or (spec null) now, the current stable frontier, so no wait. */
  async createSnapshot(name: string, specText: string | null): Promise<{ name: string; at: string }> {
    if (name.length === 0 || name.includes('/') || name === '.' || name === '..' || isSpecName(name)) throw errors.invalid(`invalid snapshot name '${name}'`)
    let at = await this.client.stableFrontier()
    if (specText !== null) {
      const spec = parseTimeSpec(specText)
      if (spec.kind !== 'platform') throw errors.invalid(`a snapshot is pinned at a platform time, got '${specText}'`)
      // A cut that has not happened yet could not be read until it had: refused rather than pinned.
      const nowUs = wallClockUs()
      if (spec.timeUs > nowUs) throw errors.invalid(`snapshot ${name} at ${formatTimeSpec(spec)} is in the future (now is ${formatTimeSpec({ kind: 'platform', timeUs: nowUs })}): a snapshot pins a past cut`)
      at = hlcCeilingOfUs(spec.timeUs)
    }
    await this.client.submit({ type: 'snapshot', name, at: at.toString(), spec: specText ?? 'now' })
    return { name, at: hlcToIso(at) }
  }
}
