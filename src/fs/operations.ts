// One handler per FUSE operation. Each takes the places (resolve.ts) of the nodes kernel.ts
// names, or a handle, does its work through the client API, and returns a value or throws an
// FffsError; the errno is decided in one place, kernel.ts. `path` arguments only name the
// node in messages and log lines.

import { constants as fsConstants, promises as fsp } from 'node:fs'
import { errors, isLateSensorWrite } from '../errors.js'
import type { Client, Submitted } from '../client/client.js'
import { parseRecordFormat, XATTR_RECORD_FORMAT } from '../sensor/index.js'
import { ROOT_INO, S_ISGID, S_ISUID, type Attr, type Ino, type Mutation, type NodeKind } from '../store/records.js'
import { HLC_MAX, hlcCeilingOfUs, hlcToIso, wallClockUs, type HlcStamp } from '../temporal/hlc.js'
import { formatTimeSpec, isSpecName, parseTimeSpec, splitNameSpec } from '../temporal/spec.js'
import { KnownAttrs } from './knownAttrs.js'
import { OpenFiles, type CommittedVersion, type OpenFile } from './openFiles.js'
import { liveIno, Resolver, SNAPSHOT_DIR, type DirEntry, type NameTrust, type Place, type Step, type TimeOptions } from './resolve.js'
import { checkSensorLag, newSensorStats, recordFormatOf, type SensorPolicy, type SensorStats } from './sensorRecords.js'

const O_ACCMODE = 3
const S_IFMT = 0o170000
const S_IXGRP = 0o010
/** What a new file or directory takes from its directory as its record applies. */
const INHERITED = { inheritXattrs: [XATTR_RECORD_FORMAT] } as const

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
const SYNC_WAIT_MAX_MS = 60_000 // fsync: how long the group may take to sync before EIO
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

/** What a lookup (or a create, mknod, link) found, for the kernel: the attributes, the place the node stands for, how long the name may be trusted. */
export interface Found {
  readonly stat: Stat
  readonly place: Place
  readonly trust: NameTrust
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

/**
 * What the kernel may have cached of the tree that a change it did not itself make turns stale:
 * a snapshot pinned or deleted through the control socket, set-ID bits the mount clears, a
 * change by another mount of the group. kernel.ts forgets it.
 */
export interface KernelCache {
  /** The name in the live directory `dir` (or in /.snapshot) may name another node now; resolves once the kernel has forgotten it. */
  forgetEntry(dir: Ino | typeof SNAPSHOT_DIR, name: string): Promise<void>
  /** The live node's attributes changed. */
  forgetAttributes(ino: Ino): void
  /** The history floor is at least `floor`: the frozen nodes below it are forgotten before this resolves. */
  floorIsAt(floor: HlcStamp): Promise<void>
}

export class Operations {
  private readonly client: Client
  /** The kernel's caches, once mounted. */
  kernelCache: KernelCache | null = null
  private readonly resolver: Resolver
  private readonly files: OpenFiles
  /** What the kernel holds of live nodes, as far as this mount knows it current: opens for reading pin their version from it. */
  private readonly known = new KnownAttrs()
  private readonly dataDir: string
  private readonly sensorPolicy: SensorPolicy
  /** When this mount started: the time shown for a root no version has touched yet (a new store's, stamp 0) instead of 1970. */
  private readonly startedMs = Date.now()

  constructor(client: Client, options: TimeOptions, dataDir: string, log: (line: string) => void = (line) => process.stderr.write(line + '\n')) {
    this.client = client
    this.dataDir = dataDir
    this.sensorPolicy = { sensorLagMaxUs: options.sensorLagMaxUs, nowUs: wallClockUs, stats: newSensorStats(), log }
    this.files = new OpenFiles(this.sensorPolicy)
    this.resolver = new Resolver(client, options, {
      sensorLagMaxUs: options.sensorLagMaxUs,
      nowUs: () => this.sensorPolicy.nowUs(),
      writingAt: (ino, sensorUs) => this.files.writers(ino).some((w) => w.sensorUs === sensorUs),
    })
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


  /** Every change this mount makes goes through here: what it knew of live nodes may be stale from its start on, and is after it. */
  private async submit(mutation: Mutation): Promise<Submitted> {
    this.known.forget()
    try {
      return await this.client.submit(mutation)
    } finally {
      this.known.forget()
    }
  }

  /** Another client changed the live tree (kernel.ts, told by the group's change feed). */
  liveChanged(): void {
    this.known.forget()
  }

  /** Whether every change of another client is told to this mount from now on (the change feed runs, in sync). */
  liveTold(told: boolean): void {
    this.known.trust(told)
  }

  /** A node's attributes, for xattrs and readlink: a live node's now, a frozen node's at its cut. */
  private async attrOf(place: Place): Promise<Attr> {
    const attr = await this.resolver.attrOf(place)
    if (attr === null) throw errors.invalid(`${place.kind === 'snapshots' ? '/.snapshot' : '/.at'} is a virtual directory`)
    return attr
  }

  // ---------------------------------------------------------------- attributes and directories

  /** The kernel's lookup of a name: what it needs to keep the node (Found); null when there is none. */
  async lookup(parent: Place, name: string): Promise<Found | null> {
    const since = this.known.since
    const step = await this.resolver.lookup(parent, name)
    return step === null ? null : this.found(step, since)
  }

  /** `since`: where the fetch of the step began (KnownAttrs.since), to learn a live node's attributes from it. */
  private async found(step: Step, since?: number): Promise<Found> {
    return { stat: await this.statOfStep(step, since), place: step.place, trust: step.trust }
  }

  /** What the kernel is told of a step's node: live attributes advance open handles; /.snapshot and /.at show the root's owner and times. */
  private async statOfStep(step: Step, since?: number): Promise<Stat> {
    if (step.attr === null) {
      const root = await this.liveAttr(ROOT_INO)
      return { ...virtualDirStat(root), ...this.timesOf(root) }
    }
    return this.statOfNode(step.place, step.attr, since)
  }

  private statOfNode(place: Place, attr: Attr, since?: number): Stat {
    if (place.kind === 'live' && since !== undefined) this.known.learned(attr, since)
    return place.kind === 'frozen' ? this.statOf(attr) : this.liveStat(attr)
  }

  /**
   * A node's attributes. A `P@sensor:T` node that `fd` is open on answers from the handle, as
   * fstat expects (the kernel names the handle only on some paths).
   */
  async getattr(place: Place, fd?: number): Promise<Stat> {
    switch (place.kind) {
      case 'live': {
        const attr = await this.liveAttr(place.ino)
        const stat = this.liveStat(attr)
        // Asked for a read through a read-only handle (the kernel names the handle on a read's
        // path): the size that handle can read, without another handle's uncommitted writes.
        // The kernel drops the file's cached pages when the size it is told moves, so a page a
        // read filled from the committed version (zeros past its end) cannot stand while the
        // kernel takes the file to be longer.
        const reader = fd === undefined ? undefined : this.files.find(fd)
        return reader !== undefined && !reader.writable ? this.statOf(attr, reader.visibleSizeBytes) : stat
      }
      case 'frozen':
        return this.statOf(place.attr)
      case 'sensorWrite':
        if (fd !== undefined) return this.fgetattr(fd)
        return this.statOfStep(await this.resolver.sensorWriteStep(place))
      case 'snapshots':
      case 'times':
        return this.statOfStep({ place, attr: null, trust: 'stable', anchoredName: null })
    }
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

  /** Whether an open file of this mount holds changes to the node not yet committed. */
  hasUncommitted(ino: Ino): boolean {
    return this.files.dirtySizeBytes(ino) !== null
  }

  private async liveAttr(ino: Ino): Promise<Attr> {
    const since = this.known.since
    const attr = await this.client.attr(ino, HLC_MAX)
    if (attr === null) throw errors.notFound(`inode ${ino}`)
    this.known.learned(attr, since)
    return attr
  }

  /** An open handle's attributes, as its reader or writer sees them (uncommitted writes' size included). */
  fgetattr(fd: number): Stat {
    const file = this.files.get(fd)
    return toStat(file.pinned, file.visibleSizeBytes)
  }

  /** A directory's entries (`.` and `..` left to the caller). */
  async readdir(place: Place): Promise<DirEntry[]> {
    return this.resolver.entries(place)
  }

  /** What the kernel keeps of listed entries (readdirplus), their attributes read together; null: a name only. */
  async listed(place: Place, entries: readonly DirEntry[]): Promise<Array<Found | null>> {
    const since = this.known.since
    const steps = await this.resolver.entrySteps(place, entries)
    return steps.map((step) => (step === null ? null : { stat: this.statOfNode(step.place, step.attr!, since), place: step.place, trust: step.trust }))
  }

  /** mkdir in `parent`; in /.snapshot, NAME pins now and NAME@SPEC pins SPEC (the entry is NAME's). */
  async mkdir(parent: Place, name: string, mode: number, caller: Caller): Promise<Found> {
    if (parent.kind === 'snapshots') {
      const split = splitNameSpec(name, wallClockUs())
      const made = await this.pinSnapshot(split?.name ?? name, split === null ? null : formatTimeSpec(split.spec))
      return this.madeNode(parent, made.name)
    }
    const target = await this.resolver.entryTarget(parent, name, true)
    return this.madeLive(await this.submit({ type: 'mknod', parent: target.dir, name: target.name, kind: 'dir', mode, uid: caller.uid, gid: caller.gid, ...INHERITED }))
  }

  /** The node a creation made, looked up (a snapshot root). */
  private async madeNode(parent: Place, name: string): Promise<Found> {
    const found = await this.lookup(parent, name)
    if (found === null) throw errors.notFound(name)
    return found
  }

  /** The live node a creation made (`ino`: the node linked to, for a link). */
  private async madeLive(made: Submitted, ino: Ino = made.ino!): Promise<Found> {
    return this.found({ place: { kind: 'live', ino }, attr: made.attr ?? (await this.liveAttr(ino)), trust: 'stable', anchoredName: null })
  }

  async rmdir(parent: Place, name: string): Promise<void> {
    if (parent.kind === 'snapshots') {
      await this.submit({ type: 'unsnapshot', name })
      return
    }
    const target = await this.resolver.entryTarget(parent, name, false)
    await this.submit({ type: 'rmdir', parent: target.dir, name: target.name })
  }

  async unlink(parent: Place, name: string): Promise<void> {
    const target = await this.resolver.entryTarget(parent, name, false)
    await this.submit({ type: 'unlink', parent: target.dir, name: target.name })
  }

  /** `noReplace`: renameat2's RENAME_NOREPLACE (EEXIST when the target exists). */
  async rename(parent: Place, name: string, newParent: Place, newName: string, noReplace: boolean): Promise<void> {
    const source = await this.resolver.entryTarget(parent, name, false)
    const target = await this.resolver.entryTarget(newParent, newName, true)
    if (noReplace && (await this.client.lookup(target.dir, target.name, HLC_MAX)) !== null) throw errors.exists(newName)
    await this.submit({ type: 'rename', fromParent: source.dir, fromName: source.name, toParent: target.dir, toName: target.name })
  }

  async symlink(parent: Place, name: string, target: string, caller: Caller): Promise<Found> {
    const entry = await this.resolver.entryTarget(parent, name, true)
    return this.madeLive(await this.submit({ type: 'mknod', parent: entry.dir, name: entry.name, kind: 'symlink', mode: 0o777, uid: caller.uid, gid: caller.gid, target }))
  }

  /**
   * mknod(2): a regular file, FIFO, socket (bind(2) of a unix socket makes one) or device node.
   * The kernel has applied the umask and checked the caller may make a device (CAP_MKNOD).
   */
  async mknod(parent: Place, name: string, mode: number, rdev: number, caller: Caller): Promise<Found> {
    const kind = KIND_OF_S_IF.get(mode & S_IFMT)
    if (kind === undefined || kind === 'dir' || kind === 'symlink') throw errors.invalid(`mknod of file type 0o${(mode & S_IFMT).toString(8)}`)
    const entry = await this.resolver.entryTarget(parent, name, true)
    const device = kind === 'chardev' || kind === 'blockdev' ? { rdev } : {}
    const inherited = kind === 'file' ? INHERITED : {}
    return this.madeLive(await this.submit({ type: 'mknod', parent: entry.dir, name: entry.name, kind, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid, ...device, ...inherited }))
  }

  /** link(2): `newName` in `newParent` becomes one more name of the live node `place` (EROFS for a node of a time path). */
  async link(place: Place, newParent: Place, newName: string, path: string): Promise<Found> {
    const ino = liveIno(place, path)
    const entry = await this.resolver.entryTarget(newParent, newName, true)
    return this.madeLive(await this.submit({ type: 'link', ino, parent: entry.dir, name: entry.name }), ino)
  }

  async readlink(place: Place, path: string): Promise<string> {
    const attr = await this.attrOf(place)
    if (attr.kind !== 'symlink' || attr.target === undefined) throw errors.invalid(`not a symbolic link: ${path}`)
    return attr.target
  }

  /**
   * setattr of a live node: mode, owner and times in one version of its attributes (chown's
   * clearing of set-user-ID comes as a mode in the same request), a size in a version of its
   * contents (through `fd`, the open file's version). The kernel has checked the caller may
   * (default_permissions: chown by root, chgrp to one's own groups, explicit times by the owner).
   * Returns the node's attributes after it.
   */
  async setattr(place: Place, changes: AttrChanges, fd: number | undefined, caller: Caller, path: string): Promise<Stat> {
    const ino = liveIno(place, path)
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
    const changed = Object.keys(attributes).length > 0 ? await this.submit({ type: 'setattr', ino, ...attributes }) : null
    if (changes.size !== undefined) {
      if (fd !== undefined) this.ftruncate(fd, changes.size, caller)
      else await this.truncate(await this.liveAttr(ino), changes.size)
    }
    return changes.size === undefined && changed?.attr !== undefined ? this.liveStat(changed.attr) : this.getattr(place)
  }

  private async truncate(attr: Attr, sizeBytes: number): Promise<void> {
    if (attr.kind === 'dir') throw errors.isDir(`inode ${attr.ino}`)
    if (attr.kind !== 'file') throw errors.invalid(`truncate of inode ${attr.ino}, which is not a regular file`)
    if (recordFormatOf(attr) !== null) {
      // Through an open file, so the commit finds where the records now end.
      const file = this.files.open(attr, { kind: 'live' }, true, `inode ${attr.ino}`)
      try {
        file.truncate(sizeBytes)
        await this.commit(file, true)
      } finally {
        this.files.close(file.fd)
      }
      return
    }
    await this.submit({ type: 'version', ino: attr.ino, ops: [{ op: 'truncate', sizeBytes }] })
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

  /** `path` names the file in log lines. */
  async open(place: Place, flags: number, caller: Caller, path: string): Promise<number> {
    const writable = (flags & O_ACCMODE) !== fsConstants.O_RDONLY
    if (writable) {
      const { attr, sensorUs } = await this.resolver.nodeTarget(place, true, path)
      if (attr.kind === 'dir') throw errors.isDir(path)
      this.refuseIfLate(path, sensorUs, 'write')
      const truncates = (flags & fsConstants.O_TRUNC) !== 0
      // A truncation by another user clears set-user-ID/set-group-ID, as the kernel does for
      // truncate(2); with atomic_o_trunc it sends no setattr for an O_TRUNC open. Root keeps them (CAP_FSETID).
      if (truncates && caller.uid !== 0 && withoutPrivilegeBits(attr.mode) !== attr.mode) await this.setMode(attr.ino, withoutPrivilegeBits(attr.mode))
      const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
      file.appends = (flags & fsConstants.O_APPEND) !== 0
      file.syncs = syncsEachCommit(flags)
      if (truncates) this.truncateAtOpen(file, caller)
      return file.fd
    }
    switch (place.kind) {
      case 'live':
        // The version the kernel's attributes describe, when nothing changed since it was told them.
        return this.files.open(this.known.get(place.ino) ?? (await this.liveAttr(place.ino)), { kind: 'live' }, false, path).fd
      case 'sensorWrite':
        // Read, `P@sensor:T` is P at the sensor cut, waited for (the lookup answered early for a writer's sake).
        return this.openFrozen(await this.resolver.sensorRead(place, (flags & fsConstants.O_NONBLOCK) !== 0 ? 'nonBlocking' : 'block'), path)
      case 'frozen':
        return this.openFrozen({ place, attr: place.attr, trust: 'stable', anchoredName: null }, path)
      case 'snapshots':
      case 'times':
        return this.files.open(await this.liveAttr(ROOT_INO), { kind: 'live' }, false, path).fd
    }
  }

  private openFrozen(step: Step, path: string): number {
    if (step.place.kind !== 'frozen') throw new Error(`internal: ${path} is not frozen`)
    const file = this.files.open(step.place.attr, step.place.cut, false, path)
    file.startReadAhead(this.client)
    return file.fd
  }

  /** An O_TRUNC open's truncation: part of the version that open writes (commitPoints.ts). */
  private truncateAtOpen(file: OpenFile, caller: Caller): void {
    file.truncate(0)
    file.writers.openedTruncating(caller.pid)
  }

  /** create(2) of `name` in `parent`: the handle, and the node made (a `P@sensor:T` create writes P, under a node of its own). */
  async create(parent: Place, name: string, mode: number, caller: Caller, flags: number, path: string): Promise<{ fd: number; found: Found }> {
    const { dir, name: entryName, sensorUs } = await this.resolver.entryTarget(parent, name, true)
    this.refuseIfLate(path, sensorUs, 'write')
    // What the kernel keeps for the name: the live node, or for `P@sensor:T` a node of its own (were
    // it P's inode, P's open would go through whichever of the node's names came first, and `cat P` would read P at T).
    const placeOf = (ino: Ino): Place => (sensorUs !== undefined ? { kind: 'sensorWrite', dir, name: entryName, sensorUs } : { kind: 'live', ino })
    if (sensorUs !== undefined) {
      // P@sensor:T names P at a sensor time it may not have had yet: open P itself if it exists.
      const attr = await this.client.child(dir, entryName, HLC_MAX)
      if (attr !== null) {
        if (attr.kind === 'dir') throw errors.isDir(path)
        // The kernel creates only what it could not find: the new version starts empty, as a new file would.
        const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
        file.appends = (flags & fsConstants.O_APPEND) !== 0
        file.syncs = syncsEachCommit(flags)
        this.truncateAtOpen(file, caller)
        return { fd: file.fd, found: { stat: this.fgetattr(file.fd), place: placeOf(attr.ino), trust: 'provisional' } }
      }
    }
    const sensor = sensorUs !== undefined ? { sensorUs, sensorLagMaxUs: this.sensorPolicy.sensorLagMaxUs } : {}
    const made = await this.submit({ type: 'mknod', parent: dir, name: entryName, kind: 'file', mode, uid: caller.uid, gid: caller.gid, ...sensor, ...INHERITED }).catch((err: unknown) => {
      if (isLateSensorWrite(err)) this.sensorPolicy.stats.versionsRefusedLate++
      throw err
    })
    const attr = made.attr ?? (await this.liveAttr(made.ino!))
    const file = this.files.open(attr, { kind: 'live' }, true, path, sensorUs)
    file.appends = (flags & fsConstants.O_APPEND) !== 0
    file.syncs = syncsEachCommit(flags)
    return { fd: file.fd, found: { stat: this.fgetattr(file.fd), place: placeOf(attr.ino), trust: sensorUs === undefined ? 'stable' : 'provisional' } }
  }

  async read(fd: number, into: Buffer, lengthBytes: number, offset: number): Promise<number> {
    return this.files.get(fd).read(this.client, into, lengthBytes, offset)
  }

  /** A buffer for a read of `lengthBytes` (page-aligned when the client reads large ranges into such memory past the page cache). */
  readBuffer(lengthBytes: number): Buffer {
    return this.client.readBuffer?.(lengthBytes) ?? Buffer.allocUnsafe(lengthBytes)
  }

  /** The stamp of the live version reads through `fd` return now; null for a handle at a cut, or one with uncommitted writes (its reads overlay them). */
  readsVersion(fd: number): string | null {
    const file = this.files.find(fd)
    return file === undefined || file.cut.kind !== 'live' || file.isDirty ? null : file.pinned.stamp
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
    if (mode !== attr.mode) await this.setMode(attr.ino, mode)
  }

  /** A mode the mount sets on its own (set-ID bits cleared): the kernel did not ask, so it is told. */
  private async setMode(ino: Ino, mode: number): Promise<void> {
    await this.submit({ type: 'setattr', ino, mode })
    this.kernelCache?.forgetAttributes(ino)
  }

  private ftruncate(fd: number, sizeBytes: number, caller: Caller): void {
    const file = this.files.get(fd)
    file.truncate(sizeBytes)
    file.writers.changed(caller.pid)
  }

  /**
   * A close(2) of one of the handle's descriptors. It commits what is pending when it is a
   * commit point (commitPoints.ts; `holdsAnother`: the closing process holds the file through
   * another descriptor). The version it committed, or null.
   */
  async flush(fd: number, caller: Caller, holdsAnother: () => boolean): Promise<CommittedVersion | null> {
    const file = this.files.get(fd)
    const pending = file.hasPendingChanges
    if (pending && !file.writers.isCommitPoint(caller.pid, holdsAnother)) return null // another process's changes: its close commits them
    const committed = await this.commit(file, pending) // with nothing pending, this waits for a commit still in flight
    if (pending && file.syncs) await this.client.syncAcknowledged(SYNC_WAIT_MAX_MS)
    return committed
  }

  /**
   * fsync/fdatasync: always a commit point, and what it committed, with everything else this
   * mount had acknowledged, is synced on every replica before it returns (a group may
   * acknowledge a close once it is only written there). The version it committed, or null.
   */
  async fsync(fd: number): Promise<CommittedVersion | null> {
    const file = this.files.get(fd)
    const committed = await this.commit(file, file.hasPendingChanges)
    await this.client.syncAcknowledged(SYNC_WAIT_MAX_MS)
    return committed
  }

  /** fsync of a directory: the names this mount made, removed or renamed are synced on every replica. */
  async fsyncdir(): Promise<void> {
    await this.client.syncAcknowledged(SYNC_WAIT_MAX_MS)
  }

  /** A commit point of `file`: a version committed (`pending`) changed the file, even when the commit failed after applying it (malformed records). */
  private async commit(file: OpenFile, pending: boolean): Promise<CommittedVersion | null> {
    try {
      const committed = await file.commit(this.client)
      return pending ? committed : null
    } finally {
      if (pending) this.known.forget()
    }
  }

  /** The last close: commits what is pending. The version it committed, or null. */
  async release(fd: number): Promise<CommittedVersion | null> {
    const file = this.files.get(fd)
    try {
      const pending = file.hasPendingChanges
      const committed = await this.commit(file, pending)
      if (pending && file.syncs) await this.client.syncAcknowledged(SYNC_WAIT_MAX_MS)
      return committed
    } finally {
      this.files.close(fd)
    }
  }

  /** Commits every open file (unmount). */
  async commitAll(): Promise<void> {
    await Promise.allSettled(this.files.all.map((f: OpenFile) => f.commit(this.client)))
  }

  // ---------------------------------------------------------------- extended attributes

  /**
   * fffs keeps no security.* attributes (file capabilities, LSM labels) and no POSIX ACLs:
   * setting one is refused, and reading one is answered at once, without resolving the path.
   * The kernel reads security.capability before every write(2) to a FUSE file (FUSE clears
   * SB_NOSEC, so nothing caches the answer); a path walk there cost each 1 MiB write ~0.1 ms.
   * `ls -l` reads system.posix_acl_access of every file it lists.
   */
  getxattr(place: Place, name: string): Promise<Buffer> {
    if (isUnkeptXattr(name)) throw errors.noAttr(name)
    return this.storedXattr(place, name)
  }

  private async storedXattr(place: Place, name: string): Promise<Buffer> {
    if (name === XATTR_HISTORY_FLOOR) {
      const floor = place.kind === 'live' && place.ino === ROOT_INO ? await this.client.history?.floor() : undefined
      if (floor === undefined || floor === 0n) throw errors.noAttr(name) // not the mount root, or nothing compacted yet
      await this.kernelCache?.floorIsAt(floor) // whoever learns the floor here finds the kernel's frozen nodes below it gone
      return Buffer.from(hlcToIso(floor))
    }
    const attr = await this.attrOf(place)
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
  async listxattr(place: Place): Promise<string[]> {
    const attr = await this.attrOf(place)
    return Object.keys(attr.xattrs ?? {}).filter((n) => !n.startsWith(XATTR_PREFIX) && !isUnkeptXattr(n))
  }

  async setxattr(place: Place, name: string, value: Buffer, flags: number, path: string): Promise<void> {
    if (name === XATTR_SENSOR_TIME) return this.stampSensorTime(place, value, path)
    if (isUnkeptXattr(name)) throw errors.notSupported(`${name}: fffs keeps no security.* attributes and no POSIX ACLs`)
    if (name.startsWith(XATTR_PREFIX) && name !== XATTR_RECORD_FORMAT) throw errors.invalid(`${name} is maintained by fffs and read-only`)
    const { attr } = await this.resolver.nodeTarget(place, false, path)
    const exists = attr.xattrs?.[name] !== undefined
    if ((flags & XATTR_CREATE) !== 0 && exists) throw errors.exists(`attribute ${name}`)
    if ((flags & XATTR_REPLACE) !== 0 && !exists) throw errors.noAttr(name)
    if (name === XATTR_RECORD_FORMAT) value = this.checkRecordFormat(path, attr, value)
    await this.submit({ type: 'setxattr', ino: attr.ino, name, valueBase64: value.toString('base64') })
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
  private async stampSensorTime(place: Place, value: Buffer, path: string): Promise<void> {
    const { attr } = await this.resolver.nodeTarget(place, false, path)
    const text = value.toString('utf8').replace(/\0+$/, '').trim()
    const spec = parseTimeSpec(text.startsWith('sensor:') ? text : `sensor:${text}`)
    if (spec.kind !== 'sensor') throw errors.invalid(`${XATTR_SENSOR_TIME} takes a time, got '${text}'`)
    const writers = this.files.writers(attr.ino)
    if (writers.length === 0) throw errors.invalid(`${XATTR_SENSOR_TIME} stamps the version being written: open ${path} for writing first`)
    this.refuseIfLate(path, spec.timeUs, XATTR_SENSOR_TIME)
    for (const writer of writers) writer.sensorUs = spec.timeUs
  }

  async removexattr(place: Place, name: string, path: string): Promise<void> {
    if (name.startsWith(XATTR_PREFIX) && name !== XATTR_RECORD_FORMAT) throw errors.invalid(`${name} is maintained by fffs and read-only`)
    if (isUnkeptXattr(name)) throw errors.noAttr(name)
    const { attr } = await this.resolver.nodeTarget(place, false, path)
    await this.submit({ type: 'removexattr', ino: attr.ino, name })
    if (name === XATTR_RECORD_FORMAT) await this.refreshWriters(attr.ino)
  }

  // ---------------------------------------------------------------- snapshots

  /** Pins a cut under a name: at a platform time, or (spec null) now, the current stable frontier, so no wait. */
  async createSnapshot(name: string, specText: string | null): Promise<{ name: string; at: string }> {
    const made = await this.pinSnapshot(name, specText)
    await this.kernelCache?.forgetEntry(SNAPSHOT_DIR, name) // another cut's, if the name was deleted and pinned again since the kernel looked it up
    return made
  }

  /** Deletes a snapshot (`fffs snapshot delete`; rmdir of /.snapshot/NAME goes through the kernel, which forgets the name itself). */
  async deleteSnapshot(name: string): Promise<void> {
    await this.submit({ type: 'unsnapshot', name })
    await this.kernelCache?.forgetEntry(SNAPSHOT_DIR, name)
  }

  private async pinSnapshot(name: string, specText: string | null): Promise<{ name: string; at: string }> {
    if (name.length === 0 || name.includes('/') || name === '.' || name === '..' || isSpecName(name)) throw errors.invalid(`invalid snapshot name '${name}'`)
    // "Now" holds every change acknowledged before it: the frontier passes them once they are synced.
    await this.client.syncAcknowledged(SYNC_WAIT_MAX_MS)
    let at = await this.client.stableFrontier()
    if (specText !== null) {
      const spec = parseTimeSpec(specText)
      if (spec.kind !== 'platform') throw errors.invalid(`a snapshot is pinned at a platform time, got '${specText}'`)
      // A cut that has not happened yet could not be read until it had: refused rather than pinned.
      const nowUs = wallClockUs()
      if (spec.timeUs > nowUs) throw errors.invalid(`snapshot ${name} at ${formatTimeSpec(spec)} is in the future (now is ${formatTimeSpec({ kind: 'platform', timeUs: nowUs })}): a snapshot pins a past cut`)
      at = hlcCeilingOfUs(spec.timeUs)
    }
    await this.submit({ type: 'snapshot', name, at: at.toString(), spec: specText ?? 'now' })
    return { name, at: hlcToIso(at) }
  }
}

/** O_SYNC and O_DSYNC (O_SYNC includes O_DSYNC's bit on Linux). */
function syncsEachCommit(flags: number): boolean {
  return (flags & fsConstants.O_DSYNC) !== 0
}
