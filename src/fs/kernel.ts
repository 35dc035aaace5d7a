// The kernel's side of the mount: fffs's FUSE session (native/src/fuse.cpp, libfuse 3's
// low-level API polled by this event loop) speaks in node ids; the handlers in operations.ts
// speak in places (resolve.ts). This file turns each request, through the table between them
// (nodeTable.ts), into one handler call and exactly one reply.

import { realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ERRNO, errors, isCompacted, isFffsError, isMalformedSpec } from '../errors.js'
import { findNativeAddon, NATIVE_BUILD_DIR } from '../nativeAddons.js'
import type { ChangeListener, ChangeNote } from '../client/client.js'
import { ROOT_INO, type Ino } from '../store/records.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { NodeTable } from './nodeTable.js'
import type { CommittedVersion } from './openFiles.js'
import type { AttrChanges, Caller, Found, KernelCache, Operations, Stat } from './operations.js'
import { KernelPages } from './kernelPages.js'
import { OpenDirs } from './listing.js'
import { SNAPSHOT_DIR, type DirEntry, type Place } from './resolve.js'
import { holdsNode } from './processes.js'

/** The request kinds, in native/src/fuse.cpp's order (enum class Op). */
enum FuseOp {
  Lookup, Forget, Getattr, Setattr, Readlink, Mkdir, Unlink, Rmdir, Symlink, Rename, Open, Read, Write, Flush,
  Release, Fsync, Opendir, Readdir, Releasedir, Statfs, Setxattr, Getxattr, Listxattr, Removexattr, Create, Mknod, Link, Exit,
  Readdirplus, Fsyncdir,
}

/** A request as the native session names it: a number it checks on every reply (0 for none expected). */
type Req = number

interface NativeFuseSession {
  mount(mountpoint: string, fsName: string, options: string): void
  unmount(): void
  replyErr(req: Req, errno: number): void
  replyEntry(req: Req, nodeId: number, stat: Stat, entryTimeoutS: number, attrTimeoutS: number): void
  replyCreate(req: Req, nodeId: number, stat: Stat, entryTimeoutS: number, attrTimeoutS: number, fh: number, directIo: boolean): void
  replyAttr(req: Req, nodeId: number, stat: Stat, timeoutS: number): void
  /** `cacheListing` (an opendir): the kernel may keep the listing it reads and serve later opens from it. */
  replyOpen(req: Req, fh: number, keepCache: boolean, noFlush: boolean, directIo: boolean, cacheListing?: boolean): void
  replyData(req: Req, data: Buffer, lengthBytes: number): void
  replyWrite(req: Req, countBytes: number): void
  replyReadlink(req: Req, target: string): void
  replyStatfs(req: Req, statfs: object): void
  replyXattrSize(req: Req, sizeBytes: number): void
  replyDirectory(req: Req, names: readonly string[], startIndex: number, sizeBytes: number): void
  /** Entries [name, nodeId (0: a name only), stat, entryTimeoutS, attrTimeoutS, offset], as many as fit; returns how many went out (the kernel holds one lookup more of each with a node). */
  replyDirectoryPlus(req: Req, entries: ReadonlyArray<readonly [string, number, Stat, number, number, number]>, sizeBytes: number): number
  /** Marks the kernel's attributes of a node out of date (its pages are left alone, so this never blocks). */
  invalidateAttributes(nodeId: number): void
  /** Drops the kernel's cached pages and attributes of a node, on a thread of the addon's (a page in a read's flight stays locked until this thread answers it). */
  dropCache(nodeId: number): Promise<void>
  /** Drops a name the kernel holds in a directory node, on the same thread (a lookup or create in the directory holds it locked until this thread answers). */
  dropEntry(parentId: number, name: string): Promise<void>
  /** Hands the kernel bytes [0, lengthBytes) of `data` as a node's cached pages, on the same thread, after what was queued before (bytes are copied at the call). */
  storePages(nodeId: number, data: Buffer, lengthBytes: number): Promise<void>
}

// Arguments after (op, req, nodeId), per op: see the On* functions in native/src/fuse.cpp.
type OnRequest = (op: FuseOp, req: Req, nodeId: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => void

interface FuseAddon {
  FuseSession: new (requestBuffer: Buffer, contextBuffer: Buffer, onRequest: OnRequest) => NativeFuseSession
  /** How large the buffer every request is read into must be (libfuse reads up to its own bufsize). */
  requestBufferBytes: number
  /** How large the buffer the sender of each request is written into must be (readCaller's layout). */
  contextBufferBytes: number
}

/**
 * The sender of the request being dispatched, as native/src/fuse.cpp (WriteContext) writes it
 * before each call: uid u32 | gid u32 | pid u32 | umask u32 | lock owner u64 | has lock owner u32.
 * Read synchronously at dispatch: the next request overwrites it.
 */
function readCaller(context: Buffer): Caller {
  return {
    uid: context.readUInt32LE(0),
    gid: context.readUInt32LE(4),
    pid: context.readUInt32LE(8),
    umask: context.readUInt32LE(12),
    lockOwner: context.readUInt32LE(24) !== 0 ? context.readBigUInt64LE(16) : null,
  }
}

const ADDON_FILE = 'fffs_fuse.node'

function loadAddon(): FuseAddon {
  const path = findNativeAddon(ADDON_FILE)
  if (path === undefined) throw new Error(`the FUSE addon is not built (${join(NATIVE_BUILD_DIR, ADDON_FILE)}); run: npm run build:native`)
  try {
    return createRequire(import.meta.url)(path) as FuseAddon
  } catch (err) {
    throw new Error(`cannot load ${path} (is libfuse 3 installed? apt-get install libfuse3-3): ${(err as Error).message}`)
  }
}

/**
 * How long the kernel may keep a name's node and a node's attributes without asking again.
 * What a frozen cut holds never changes: for ever (a year: the kernel keeps nothing that long).
 * The live tree: as long for as the kernel is told of every change it does not make itself
 * (an embedded mount makes them all; a group's members tell of the others: liveTrusted), else
 * briefly, as NFS's attribute cache does.
 */
const FOREVER_S = 365 * 24 * 3600
const BRIEF_S = 1
const RENAME_NOREPLACE = 1
/** How often the mount looks whether the history floor moved (followFloor). */
const FLOOR_CHECK_MS = 500
/** What a readdirplus entry without a node shows: its name, and for `.` and `..` the type (a directory). */
const UNKNOWN_STAT: Stat = { ino: 0, mode: 0, uid: 0, gid: 0, size: 0, nlink: 0, rdev: 0, mtime: 0, atime: 0, ctime: 0, blksize: 0, blocks: 0 }
const DIRECTORY_STAT: Stat = { ...UNKNOWN_STAT, mode: 0o040000 }
const O_ACCMODE = 3
const O_WRONLY = 1

/**
 * Write-only opens bypass the kernel's page cache (FOPEN_DIRECT_IO): the pages of a file are
 * shared by every open of it on the mount, and a write through the cache would show readers
 * bytes no version holds yet (or ever, when the commit fails). A read-write open keeps the
 * cache: mmap(MAP_SHARED) needs it (sqlite's -shm file), and the kernel allows no mmap of a
 * direct-I/O file here (libfuse 3.14 cannot ask for FUSE_DIRECT_IO_ALLOW_MMAP).
 */
function isWriteOnly(flags: number): boolean {
  return (flags & O_ACCMODE) === O_WRONLY
}

/** The positive errno for a failed handler; bugs and EIO are logged (bugs answered EIO), never swallowed. */
function errnoOf(err: unknown): number {
  if (isFffsError(err)) {
    // The caller learns nothing more than the errno: for EIO, a malformed time spec and a read below the history floor, the mount says why.
    if (err.code === 'EIO' || isMalformedSpec(err) || isCompacted(err)) process.stderr.write(`fffs: ${err.code}: ${err.message}\n`)
    return err.errno
  }
  process.stderr.write(`fffs: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return ERRNO.EIO
}

/** Serves one mount: requests from the kernel to `ops`, answers back. */
export class KernelSession implements KernelCache {
  private readonly ops: Operations
  private readonly session: NativeFuseSession
  private readonly requestBuffer: Buffer
  private readonly contextBuffer: Buffer
  private readonly table = new NodeTable()
  /** The mountpoint's real path (what /proc shows for descriptors of the mount's files). */
  private mountpoint = ''
  private readonly dirs = new OpenDirs()
  /** Whether the kernel hears of every change to the live tree it does not make itself (FOREVER_S); an embedded mount's tree changes only through it. */
  private liveTrusted = true
  /**
   * Moves at every change the kernel did not make itself. A reply to a request that began
   * before it may carry what the change replaced: the kernel gets it uncached (the notification
   * about the change may have reached the kernel before the reply).
   */
  private changeEpoch = 0
  private unwatchChanges: (() => void) | null = null
  private floorTimer: NodeJS.Timeout | null = null
  private floorKnown: HlcStamp = 0n // the history floor the kernel's frozen nodes were last checked against
  /** File handles opened write-only: their writes bypass the page cache (isWriteOnly). */
  private readonly directHandles = new Set<number>()
  /** What the kernel may hold of nodes' pages, of which version, and bytes of versions just committed here to hand it. */
  private readonly pages = new KernelPages()

  /** `onUnmountedFromOutside`: the kernel ended the session (fusermount -u, umount) without unmount(). */
  constructor(ops: Operations, private readonly onUnmountedFromOutside: () => void = () => undefined) {
    this.ops = ops
    const { FuseSession, requestBufferBytes, contextBufferBytes } = loadAddon()
    this.requestBuffer = Buffer.allocUnsafeSlow(requestBufferBytes)
    this.contextBuffer = Buffer.alloc(contextBufferBytes)
    this.session = new FuseSession(this.requestBuffer, this.contextBuffer, (op, req, nodeId, a, b, c, d, e) => this.dispatch(op, req, nodeId, a, b, c, d, e))
    ops.kernelCache = this
  }

  /** Follows the changes other clients of a group make (`watch`: Client.watchChanges); until its feed runs, the live tree is cached briefly. */
  followChanges(watch: ((listener: ChangeListener) => () => void) | undefined): void {
    if (watch === undefined) return
    this.liveTrusted = false
    this.ops.liveTold(false)
    this.unwatchChanges = watch({ changed: (note) => this.changed(note), inSync: (synced) => this.inSync(synced) })
  }

  /**
   * Follows the history floor (`floor`: Client.history.knownFloor, asked every FLOOR_CHECK_MS):
   * the kernel keeps a frozen node for ever, so when the floor passes its cut the node's name,
   * attributes and pages are dropped, and the next lookup asks the store, which answers ERANGE
   * for what compaction dropped.
   */
  followFloor(floor: (() => HlcStamp) | undefined): void {
    if (floor === undefined) return
    this.floorKnown = floor()
    this.floorTimer = setInterval(() => void this.floorIsAt(floor()), FLOOR_CHECK_MS)
    this.floorTimer.unref()
  }

  async floorIsAt(floor: HlcStamp): Promise<void> {
    if (floor <= this.floorKnown) return
    this.floorKnown = floor
    const forgotten: Promise<void>[] = []
    for (const { id, names } of [...this.table.frozenBelow(floor)]) {
      this.pages.mayHold(id, null)
      forgotten.push(this.forgetCached(id))
      for (const { parent, name } of names) forgotten.push(this.session.dropEntry(parent, name))
    }
    await Promise.all(forgotten)
  }

  /** `options`: FUSE mount options, comma-separated (src/fs/mount.ts). */
  mount(mountpoint: string, fsName: string, options: string): void {
    this.mountpoint = realpathSync(mountpoint) // before mounting: afterwards the lookup would be a request to this mount
    this.session.mount(mountpoint, fsName, options)
  }

  // ---------------------------------------------------------------- what the kernel did not see change (KernelCache)

  async forgetEntry(dir: Ino | typeof SNAPSHOT_DIR, name: string): Promise<void> {
    this.changeEpoch++
    const parentId = dir === SNAPSHOT_DIR ? this.table.child(ROOT_INO, SNAPSHOT_DIR) : dir
    if (parentId === undefined || this.table.find(parentId) === undefined) return
    const child = this.table.child(parentId, name)
    // The node the name named: its link count or ctime moved too (unlink, a rename over it).
    if (child !== undefined && this.table.place(child).kind === 'live') this.forgetAttributes(child)
    await this.session.dropEntry(parentId, name)
  }

  forgetAttributes(ino: Ino): void {
    this.changeEpoch++
    if (this.table.find(ino) !== undefined) this.session.invalidateAttributes(ino)
  }

  /** Another client changed the tree (the group's change feed). */
  private changed(note: ChangeNote): void {
    this.changeEpoch++
    this.ops.liveChanged()
    for (const [dir, name] of note.entries ?? []) void this.forgetEntry(dir, name)
    for (const ino of note.nodes ?? []) this.forgetAttributes(ino)
    for (const ino of note.contents ?? []) {
      this.pages.changed(ino)
      this.pages.mayHold(ino, null) // a reader may hold pages of the version before
      void this.forgetCached(ino)
    }
    for (const name of note.snapshots ?? []) void this.forgetEntry(SNAPSHOT_DIR, name)
  }

  /** The change feed stopped or (re)started: in between, changes may have gone untold, so the kernel forgets the live tree it holds. */
  private inSync(synced: boolean): void {
    this.changeEpoch++
    this.liveTrusted = synced
    this.ops.liveTold(synced)
    if (!synced) return
    for (const { id, names } of this.table.liveEntries()) {
      this.pages.mayHold(id, null)
      void this.forgetCached(id)
      for (const { parent, name } of names) void this.session.dropEntry(parent, name)
    }
  }

  /** Idempotent; after an unmount from outside (fusermount -u) there is nothing left to do. */
  unmount(): void {
    this.unwatchChanges?.()
    this.unwatchChanges = null
    if (this.floorTimer !== null) clearInterval(this.floorTimer)
    this.floorTimer = null
    this.session.unmount()
  }

  /** Runs a handler and ends in exactly one reply: `reply(value)` or the errno. */
  private serve<T>(req: Req, run: () => Promise<T> | T, reply: (value: T) => void): void {
    let result: Promise<T> | T
    try {
      result = run()
    } catch (err) {
      this.session.replyErr(req, errnoOf(err))
      return
    }
    const fail = (err: unknown): void => this.session.replyErr(req, errnoOf(err))
    const answer = (value: T): void => {
      try {
        reply(value)
      } catch (err) {
        fail(err)
      }
    }
    if (result instanceof Promise) result.then(answer, fail)
    else answer(result)
  }

  private readonly ok = (req: Req) => (): void => this.session.replyErr(req, 0)

  /** The entry of a node the kernel now holds under `name` in `parent` (one lookup more), or ENOENT. `epoch`: changeEpoch when the request began. */
  private entry(req: Req, parent: number, name: string, found: Found | null, epoch: number): void {
    if (found === null) return this.session.replyErr(req, ERRNO.ENOENT)
    this.session.replyEntry(req, this.table.remember(parent, name, found.place), found.stat, this.entryTimeoutS(found, epoch), this.attrTimeoutS(found.place, found.stat, epoch))
  }

  /** Creates with `make`, then answers the lookup the kernel does not send: the new node's entry. */
  private made(req: Req, parent: number, name: string, make: () => Promise<Found>): void {
    const epoch = this.changeEpoch
    this.serve(req, make, (found) => this.entry(req, parent, name, found, epoch))
  }

  // ---------------------------------------------------------------- how long the kernel may keep what it is told

  private entryTimeoutS(found: Found, epoch: number): number {
    switch (found.trust) {
      case 'relative': // `f@-5m` names another cut at its next lookup
      case 'provisional':
        return 0
      case 'rebindable':
        return BRIEF_S
      case 'stable':
        return found.place.kind === 'live' ? this.liveTimeoutS(epoch) : FOREVER_S
    }
  }

  /**
   * Not at all while the file has uncommitted changes here (an ftruncate through a handle),
   * whose commit at close changes its times with no write the kernel would see.
   */
  private attrTimeoutS(place: Place, stat: Stat, epoch: number): number {
    switch (place.kind) {
      case 'frozen':
        return FOREVER_S
      case 'live':
        return this.ops.hasUncommitted(stat.ino) ? 0 : this.liveTimeoutS(epoch)
      case 'sensorWrite': // the live P until T is past, then P at the cut
        return 0
      case 'snapshots':
      case 'times':
        return BRIEF_S // the root's times
    }
  }

  /** For ever while the kernel hears of every change; not at all for a reply that a change may have overtaken. */
  private liveTimeoutS(epoch: number): number {
    if (epoch !== this.changeEpoch) return 0
    return this.liveTrusted ? FOREVER_S : BRIEF_S
  }

  /** The path of `name` in `parent`, for messages and log lines. */
  private childPath(parent: number, name: string): string {
    const base = this.table.path(parent)
    return base === '/' ? '/' + name : `${base}/${name}`
  }

  private dispatch(op: FuseOp, req: Req, nodeId: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown): void {
    const table = this.table
    const ops = this.ops
    const place = (): Place => table.place(nodeId)
    const path = (): string => table.path(nodeId)
    const caller = readCaller(this.contextBuffer)
    const epoch = this.changeEpoch
    switch (op) {
      case FuseOp.Lookup: {
        const name = a as string
        return this.serve(req, () => ops.lookup(place(), name), (found) => this.entry(req, nodeId, name, found, epoch))
      }
      case FuseOp.Forget:
        table.forget(nodeId, a as number)
        if (table.find(nodeId) === undefined) this.pages.dropped(nodeId) // the kernel let go of the node and its pages (bytes kept of its latest version stay for its next open)
        return
      case FuseOp.Getattr:
        return this.serve(req, () => ops.getattr(place(), a as number | undefined), (stat) => this.session.replyAttr(req, nodeId, stat, this.attrTimeoutS(place(), stat, epoch)))
      case FuseOp.Setattr:
        return this.serve(req, () => ops.setattr(place(), a as AttrChanges, b as number | undefined, caller, path()), (stat) => this.session.replyAttr(req, nodeId, stat, this.attrTimeoutS(place(), stat, epoch)))
      case FuseOp.Readlink:
        return this.serve(req, () => ops.readlink(place(), path()), (target) => this.session.replyReadlink(req, target))
      case FuseOp.Mkdir:
        return this.made(req, nodeId, a as string, () => ops.mkdir(place(), a as string, b as number, caller))
      case FuseOp.Symlink:
        return this.made(req, nodeId, a as string, () => ops.symlink(place(), a as string, b as string, caller))
      case FuseOp.Mknod:
        return this.made(req, nodeId, a as string, () => ops.mknod(place(), a as string, b as number, c as number, caller))
      case FuseOp.Link: // the new name's entry is the same node: the kernel holds one lookup more on it
        return this.made(req, a as number, b as string, () => ops.link(place(), table.place(a as number), b as string, path()))
      case FuseOp.Unlink:
      case FuseOp.Rmdir: {
        const name = a as string
        const remove = (): Promise<void> => (op === FuseOp.Unlink ? ops.unlink(place(), name) : ops.rmdir(place(), name))
        return this.serve(req, remove, () => {
          table.detach(nodeId, name)
          this.session.replyErr(req, 0)
        })
      }
      case FuseOp.Rename: {
        const flags = d as number
        return this.serve(
          req,
          () => {
            if ((flags & ~RENAME_NOREPLACE) !== 0) throw errors.invalid(`rename flags ${flags}: fffs renames, or renames without replacing, and nothing else`)
            return ops.rename(place(), a as string, table.place(b as number), c as string, (flags & RENAME_NOREPLACE) !== 0)
          },
          () => {
            table.move(nodeId, a as string, b as number, c as string)
            this.session.replyErr(req, 0)
          },
        )
      }
      case FuseOp.Open: {
        const flags = a as number
        const readOnly = (flags & O_ACCMODE) === 0
        const open = async (): Promise<{ fd: number; keepCache: boolean }> => {
          const fd = await ops.open(place(), flags, caller, path())
          // What a frozen node holds never changes: the pages the kernel cached of it stay right;
          // a live node's stay right while they hold the version this open reads.
          const pinned = readOnly ? ops.readsVersion(fd) : null
          if (pinned === null) return { fd, keepCache: readOnly && table.find(nodeId)?.place.kind === 'frozen' }
          return { fd, keepCache: this.pages.opening(nodeId, pinned, (bytes) => this.session.storePages(nodeId, bytes, bytes.length)) }
        }
        return this.serve(req, open, ({ fd, keepCache }) => {
          if (isWriteOnly(flags)) this.directHandles.add(fd)
          this.session.replyOpen(req, fd, keepCache, readOnly, isWriteOnly(flags))
        })
      }
      case FuseOp.Create: {
        const name = a as string
        const flags = c as number
        return this.serve(req, () => ops.create(place(), name, b as number, caller, flags, this.childPath(nodeId, name)), ({ fd, found }) => {
          const id = table.remember(nodeId, name, found.place)
          if (isWriteOnly(flags)) this.directHandles.add(fd)
          this.session.replyCreate(req, id, found.stat, this.entryTimeoutS(found, epoch), this.attrTimeoutS(found.place, found.stat, epoch), fd, isWriteOnly(flags))
        })
      }
      case FuseOp.Read: {
        const fd = a as number
        const lengthBytes = b as number
        // Counted from now: a commit while this read is in flight must drop the page it fills (the read may be of the older version).
        const version = ops.readsVersion(fd)
        this.pages.mayHold(nodeId, version)
        const kept = this.pages.bytesOf(nodeId, version) // a version just committed here, whose pages are on their way to the kernel
        if (kept !== undefined) {
          const offset = Math.min(c as number, kept.length)
          return this.session.replyData(req, kept.subarray(offset), Math.min(lengthBytes, kept.length - offset))
        }
        const into = ops.readBuffer(lengthBytes)
        return this.serve(req, () => ops.read(fd, into, lengthBytes, c as number), (n) => {
          this.pages.mayHold(nodeId, ops.readsVersion(fd)) // a commit may have moved the handle while it read
          this.session.replyData(req, into, n)
        })
      }
      case FuseOp.Write: {
        // The bytes are a range of the request buffer until the next request: write() copies them now.
        const at = b as number
        const lengthBytes = c as number
        if (!this.directHandles.has(a as number)) this.pages.mayHold(nodeId, null)
        return this.serve(req, () => ops.write(a as number, this.requestBuffer.subarray(at, at + lengthBytes), lengthBytes, d as number, caller, e as boolean), (n) => this.session.replyWrite(req, n))
      }
      case FuseOp.Flush: {
        const holdsAnother = (): boolean => holdsNode(caller.pid, this.mountpoint, nodeId)
        return this.serve(req, () => this.committing(nodeId, ops.flush(a as number, caller, holdsAnother)), this.ok(req))
      }
      case FuseOp.Fsync:
        return this.serve(req, () => this.committing(nodeId, ops.fsync(a as number)), this.ok(req))
      case FuseOp.Fsyncdir:
        return this.serve(req, () => ops.fsyncdir(), this.ok(req))
      case FuseOp.Release:
        this.directHandles.delete(a as number)
        return this.serve(req, () => this.committing(nodeId, ops.release(a as number)), this.ok(req))
      case FuseOp.Opendir:
        return this.serve(req, () => ops.readdir(place()), (entries) => {
          // The kernel may keep a listing it is told of every change to (a live one's: liveTrusted; it sees its own).
          const kind = table.find(nodeId)?.place.kind
          const cacheListing = kind === 'frozen' || (kind === 'live' && this.liveTimeoutS(epoch) === FOREVER_S)
          this.session.replyOpen(req, this.dirs.open(nodeId, entries), cacheListing, false, false, cacheListing)
        })
      case FuseOp.Readdir:
        return this.serve(req, () => this.dirs.read(a as number, c as number, this.relist), (names) => this.session.replyDirectory(req, names, c as number, b as number))
      case FuseOp.Readdirplus:
        return this.serve(req, () => this.dirs.readPlus(a as number, c as number, this.relist, (id, entries) => ops.listed(table.place(id), entries)), (listing) => this.listedPlus(req, listing, b as number, epoch))
      case FuseOp.Releasedir:
        this.dirs.close(a as number)
        return this.session.replyErr(req, 0)
      case FuseOp.Statfs:
        return this.serve(req, () => ops.statfs(), (st) => this.session.replyStatfs(req, st))
      case FuseOp.Setxattr:
        return this.serve(req, () => ops.setxattr(place(), a as string, b as Buffer, c as number, path()), this.ok(req))
      case FuseOp.Removexattr:
        return this.serve(req, () => ops.removexattr(place(), a as string, path()), this.ok(req))
      case FuseOp.Getxattr:
        return this.serve(req, () => ops.getxattr(place(), a as string), (value) => this.xattrReply(req, value, b as number))
      case FuseOp.Listxattr:
        return this.serve(req, () => ops.listxattr(place()), (names) => this.xattrReply(req, Buffer.from(names.map((n) => n + '\0').join('')), a as number))
      case FuseOp.Exit:
        return this.onUnmountedFromOutside()
    }
  }

  /**
   * A flush, fsync or release of a handle on `nodeId`. When it committed a version, the kernel
   * forgets what it cached of the file before the reply: its attributes, so any read(2) after
   * the close asks for them again (and sees the new size), and the pages it may hold of an older
   * version (live handles read the new one from now on: OpenFiles.advance), so no read after the
   * close is served from them. Without that, a reader's getattr whose reply the kernel drops
   * as stale (a write raced it) would leave the old pages in place. A node of which no page was
   * read since the last drop needs only its attributes invalidated, which is cheaper. The live
   * node is the file's inode; a handle opened through `P@sensor:T` has a node of its own too.
   * The bytes of a small version committed whole are kept for the file's next open (KernelPages).
   */
  private async committing(nodeId: number, commit: Promise<CommittedVersion | null>): Promise<void> {
    const place = this.table.find(nodeId)?.place
    let ino: Ino | null = place?.kind === 'live' ? place.ino : null // a commit that failed may have applied its version (malformed records)
    let committed: CommittedVersion | null = null
    try {
      committed = await commit
      ino = committed?.attr.ino ?? null
    } finally {
      if (ino !== null) {
        this.pages.changed(ino, committed?.bytes != null ? { stamp: committed.attr.stamp, bytes: committed.bytes } : undefined)
        await Promise.all([...new Set([nodeId, ino])].map((id) => this.forgetCached(id)))
      }
    }
  }

  private async forgetCached(nodeId: number): Promise<void> {
    if (this.table.find(nodeId) === undefined) return // the kernel holds no such node
    if (!this.pages.dropped(nodeId)) return this.session.invalidateAttributes(nodeId)
    await this.session.dropCache(nodeId) // a read answered from here on may cache pages again
  }

  private readonly relist = (nodeId: number): Promise<readonly DirEntry[]> => this.ops.readdir(this.table.place(nodeId))

  /** A readdirplus reply: the entries that fit, each with a node the kernel then holds (one lookup more), as a lookup would answer. */
  private listedPlus(req: Req, listing: Awaited<ReturnType<OpenDirs['readPlus']>>, sizeBytes: number, epoch: number): void {
    // The ids the nodes have, or get when they are remembered below: a live node's is its inode.
    const ids = this.table.plan(listing.nodeId, listing.entries.map(({ entry, found }) => (found === null ? null : [entry.name, found.place] as const)))
    const entries = listing.entries.map(({ entry, offset, found }, i) => {
      if (found === null) return [entry.name, 0, entry.name === '.' || entry.name === '..' ? DIRECTORY_STAT : UNKNOWN_STAT, 0, 0, offset] as const
      return [entry.name, ids[i]!, found.stat, this.entryTimeoutS(found, epoch), this.attrTimeoutS(found.place, found.stat, epoch), offset] as const
    })
    const sent = this.session.replyDirectoryPlus(req, entries, sizeBytes)
    for (let i = 0; i < sent; i++) {
      const found = listing.entries[i]!.found
      if (found !== null && this.table.remember(listing.nodeId, listing.entries[i]!.entry.name, found.place) !== entries[i]![1]) throw new Error('internal: a listed node got another id than the one the kernel was told')
    }
  }

  /** getxattr/listxattr: a size query (size 0) gets the length, a short buffer ERANGE. */
  private xattrReply(req: Req, value: Buffer, sizeBytes: number): void {
    if (sizeBytes === 0) return this.session.replyXattrSize(req, value.length)
    if (value.length > sizeBytes) return this.session.replyErr(req, ERRNO.ERANGE)
    this.session.replyData(req, value, value.length)
  }
}
