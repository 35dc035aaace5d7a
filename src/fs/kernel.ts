// The kernel's side of the mount: fffs's FUSE session (native/src/fuse.cpp, libfuse 3's
// low-level API polled by this event loop) speaks in node ids; the handlers in operations.ts
// speak in paths (and in inodes for a live node's attributes). This file turns each request,
// through the table between them (nodeTable.ts), into one handler call and exactly one reply.

import { realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ERRNO, errors, isCompacted, isFffsError, isMalformedSpec } from '../errors.js'
import { findNativeAddon, NATIVE_BUILD_DIR } from '../nativeAddons.js'
import type { Ino } from '../store/records.js'
import { NodeTable } from './nodeTable.js'
import type { AttrChanges, Caller, Found, Operations, Stat } from './operations.js'
import { holdsNode } from './processes.js'

/** The request kinds, in native/src/fuse.cpp's order (enum class Op). */
enum FuseOp {
  Lookup, Forget, Getattr, Setattr, Readlink, Mkdir, Unlink, Rmdir, Symlink, Rename, Open, Read, Write, Flush,
  Release, Fsync, Opendir, Readdir, Releasedir, Statfs, Setxattr, Getxattr, Listxattr, Removexattr, Create, Mknod, Link, Exit,
}

/** A request as the native session names it: a number it checks on every reply (0 for none expected). */
type Req = number

interface NativeFuseSession {
  mount(mountpoint: string, fsName: string, options: string): void
  unmount(): void
  replyErr(req: Req, errno: number): void
  replyEntry(req: Req, nodeId: number, stat: Stat, timeoutS: number): void
  replyCreate(req: Req, nodeId: number, stat: Stat, timeoutS: number, fh: number, directIo: boolean): void
  replyAttr(req: Req, nodeId: number, stat: Stat, timeoutS: number): void
  replyOpen(req: Req, fh: number, keepCache: boolean, noFlush: boolean, directIo: boolean): void
  replyData(req: Req, data: Buffer, lengthBytes: number): void
  replyWrite(req: Req, countBytes: number): void
  replyReadlink(req: Req, target: string): void
  replyStatfs(req: Req, statfs: object): void
  replyXattrSize(req: Req, sizeBytes: number): void
  replyDirectory(req: Req, names: readonly string[], startIndex: number, sizeBytes: number): void
  /** Marks the kernel's attributes of a node out of date (its pages are left alone, so this never blocks). */
  invalidateAttributes(nodeId: number): void
  /** Drops the kernel's cached pages and attributes of a node, on a thread of the addon's (a page in a read's flight stays locked until this thread answers it). */
  dropCache(nodeId: number): Promise<void>
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

/** How long the kernel may keep a name's node and attributes without asking again (libfuse 2's default). */
const CACHE_TIMEOUT_S = 1
const RENAME_NOREPLACE = 1
const O_ACCMODE = 3
const O_WRONLY = 1
const O_NONBLOCK = 0o4000

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
export class KernelSession {
  private readonly ops: Operations
  private readonly session: NativeFuseSession
  private readonly requestBuffer: Buffer
  private readonly contextBuffer: Buffer
  private readonly table = new NodeTable()
  /** The mountpoint's real path (what /proc shows for descriptors of the mount's files). */
  private mountpoint = ''
  /** Open directories: the listing taken at opendir (and again at a rewind), served in pieces. */
  private readonly dirs = new Map<number, { nodeId: number; names: string[]; served: boolean }>()
  private nextDirHandle = 1
  /** File handles opened write-only: their writes bypass the page cache (isWriteOnly). */
  private readonly directHandles = new Set<number>()
  /** Nodes the kernel may hold pages of: a read was answered, or a write went through their page cache, since they were last dropped. */
  private readonly pagesCached = new Set<number>()

  /** `onUnmountedFromOutside`: the kernel ended the session (fusermount -u, umount) without unmount(). */
  constructor(ops: Operations, private readonly onUnmountedFromOutside: () => void = () => undefined) {
    this.ops = ops
    const { FuseSession, requestBufferBytes, contextBufferBytes } = loadAddon()
    this.requestBuffer = Buffer.allocUnsafeSlow(requestBufferBytes)
    this.contextBuffer = Buffer.alloc(contextBufferBytes)
    this.session = new FuseSession(this.requestBuffer, this.contextBuffer, (op, req, nodeId, a, b, c, d, e) => this.dispatch(op, req, nodeId, a, b, c, d, e))
  }

  /** `options`: FUSE mount options, comma-separated (src/fs/mount.ts). */
  mount(mountpoint: string, fsName: string, options: string): void {
    this.mountpoint = realpathSync(mountpoint) // before mounting: afterwards the lookup would be a request to this mount
    this.session.mount(mountpoint, fsName, options)
  }

  /** Idempotent; after an unmount from outside (fusermount -u) there is nothing left to do. */
  unmount(): void {
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

  private entry(req: Req, parent: number, name: string, found: Found): void {
    this.session.replyEntry(req, this.remember(parent, name, found), found.stat, CACHE_TIMEOUT_S)
  }

  /**
   * The node id for a name the kernel now holds: a live node's is its inode, a time path's its
   * own; a relative spec in the name stays resolved as this lookup resolved it (`anchoredName`).
   */
  private remember(parent: number, name: string, found: Found): number {
    return this.table.remember(parent, name, found.live ? found.stat.ino : null, found.anchoredName)
  }

  /**
   * Creates with `make`, then answers the lookup the kernel does not send: the new node's entry.
   * `make` returns the name the entry got when it is not `name` (`mkdir .snapshot/s@-1h` makes s).
   */
  private made(req: Req, parent: number, name: string, make: (path: string) => Promise<string | void>): void {
    this.serve(req, async () => {
      const made = await make(this.table.childPath(parent, name))
      const anchored = typeof made === 'string' && made !== name ? made : null
      const found = await this.ops.lookup(this.table.childPath(parent, anchored ?? name))
      return { ...found, anchoredName: anchored }
    }, (found) => this.entry(req, parent, name, found))
  }

  private dispatch(op: FuseOp, req: Req, nodeId: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown): void {
    const table = this.table
    const ops = this.ops
    const path = (): string => table.path(nodeId)
    const caller = readCaller(this.contextBuffer)
    switch (op) {
      case FuseOp.Lookup: {
        const name = a as string
        return this.serve(req, () => ops.lookup(table.childPath(nodeId, name)), (found) => this.entry(req, nodeId, name, found))
      }
      case FuseOp.Forget:
        table.forget(nodeId, a as number)
        if (table.find(nodeId) === undefined) this.pagesCached.delete(nodeId) // the kernel let go of the node, its pages too
        return
      case FuseOp.Getattr:
        return this.serve(req, () => this.attr(nodeId, a as number | undefined), (stat) => this.session.replyAttr(req, nodeId, stat, this.attrTimeoutS(stat)))
      case FuseOp.Setattr:
        return this.serve(req, () => this.setattr(nodeId, a as AttrChanges, b as number | undefined, caller), (stat) => this.session.replyAttr(req, nodeId, stat, this.attrTimeoutS(stat)))
      case FuseOp.Readlink:
        return this.serve(req, () => ops.readlink(path()), (target) => this.session.replyReadlink(req, target))
      case FuseOp.Mkdir:
        return this.made(req, nodeId, a as string, (p) => ops.mkdir(p, b as number, caller))
      case FuseOp.Symlink:
        return this.made(req, nodeId, a as string, (p) => ops.symlink(b as string, p, caller))
      case FuseOp.Mknod:
        return this.made(req, nodeId, a as string, (p) => ops.mknod(p, b as number, c as number, caller))
      case FuseOp.Link: // the new name's entry is the same node: the kernel holds one lookup more on it
        return this.made(req, a as number, b as string, (p) => ops.link(this.liveIno(nodeId), p))
      case FuseOp.Unlink:
      case FuseOp.Rmdir: {
        const name = a as string
        const remove = (target: string): Promise<void> => (op === FuseOp.Unlink ? ops.unlink(target) : ops.rmdir(target))
        return this.serve(req, () => remove(table.childPath(nodeId, name)), () => {
          table.detach(nodeId, name)
          this.session.replyErr(req, 0)
        })
      }
      case FuseOp.Rename:
        return this.serve(req, () => this.rename(nodeId, a as string, b as number, c as string, d as number), () => {
          table.move(nodeId, a as string, b as number, c as string)
          this.session.replyErr(req, 0)
        })
      case FuseOp.Open:
        return this.serve(req, () => this.open(nodeId, a as number, caller), ({ fd, keepCache, noFlush }) => {
          table.find(nodeId)?.handles.add(fd)
          if (isWriteOnly(a as number)) this.directHandles.add(fd)
          this.session.replyOpen(req, fd, keepCache, noFlush, isWriteOnly(a as number))
        })
      case FuseOp.Create: {
        const name = a as string
        const flags = c as number
        return this.serve(req, async () => {
          const fd = await ops.create(table.childPath(nodeId, name), b as number, caller, flags)
          return { fd, stat: ops.fgetattr(fd) }
        }, ({ fd, stat }) => {
          const id = this.remember(nodeId, name, { stat, live: !ops.openedThroughTimePath(fd), anchoredName: null }) // P@sensor:T keeps a node of its own
          table.node(id).handles.add(fd)
          if (isWriteOnly(flags)) this.directHandles.add(fd)
          this.session.replyCreate(req, id, stat, CACHE_TIMEOUT_S, fd, isWriteOnly(flags))
        })
      }
      case FuseOp.Read: {
        const lengthBytes = b as number
        const into = Buffer.allocUnsafe(lengthBytes)
        return this.serve(req, () => ops.read(a as number, into, lengthBytes, c as number), (n) => {
          this.pagesCached.add(nodeId)
          this.session.replyData(req, into, n)
        })
      }
      case FuseOp.Write: {
        // The bytes are a range of the request buffer until the next request: write() copies them now.
        const at = b as number
        const lengthBytes = c as number
        if (!this.directHandles.has(a as number)) this.pagesCached.add(nodeId)
        return this.serve(req, () => ops.write(a as number, this.requestBuffer.subarray(at, at + lengthBytes), lengthBytes, d as number, caller, e as boolean), (n) => this.session.replyWrite(req, n))
      }
      case FuseOp.Flush: {
        const holdsAnother = (): boolean => holdsNode(caller.pid, this.mountpoint, nodeId)
        return this.serve(req, () => this.committing(nodeId, ops.flush(a as number, caller, holdsAnother)), this.ok(req))
      }
      case FuseOp.Fsync:
        return this.serve(req, () => this.committing(nodeId, ops.fsync(a as number)), this.ok(req))
      case FuseOp.Release:
        table.find(nodeId)?.handles.delete(a as number)
        this.directHandles.delete(a as number)
        return this.serve(req, () => this.committing(nodeId, ops.release(a as number)), this.ok(req))
      case FuseOp.Opendir:
        return this.serve(req, () => ops.readdir(path()), (names) => {
          const handle = this.nextDirHandle++
          this.dirs.set(handle, { nodeId, names, served: false })
          this.session.replyOpen(req, handle, false, false, false)
        })
      case FuseOp.Readdir:
        return this.serve(req, () => this.listing(a as number, c as number), (names) => this.session.replyDirectory(req, names, c as number, b as number))
      case FuseOp.Releasedir:
        this.dirs.delete(a as number)
        return this.session.replyErr(req, 0)
      case FuseOp.Statfs:
        return this.serve(req, () => ops.statfs(), (st) => this.session.replyStatfs(req, st))
      case FuseOp.Setxattr:
        return this.serve(req, () => ops.setxattr(path(), a as string, b as Buffer, c as number), this.ok(req))
      case FuseOp.Removexattr:
        return this.serve(req, () => ops.removexattr(path(), a as string), this.ok(req))
      case FuseOp.Getxattr:
        return this.serve(req, () => ops.getxattr(path(), a as string), (value) => this.xattrReply(req, value, b as number))
      case FuseOp.Listxattr:
        return this.serve(req, () => ops.listxattr(path()), (names) => this.xattrReply(req, Buffer.from(names.map((n) => n + '\0').join('')), a as number))
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
   */
  private async committing(nodeId: number, commit: Promise<Ino | null>): Promise<void> {
    let ino: Ino | null = this.table.find(nodeId)?.ino ?? null // a commit that failed may have applied its version (malformed records)
    try {
      ino = await commit
    } finally {
      if (ino !== null) await Promise.all([...new Set([nodeId, ino])].map((id) => this.forgetCached(id)))
    }
  }

  private async forgetCached(nodeId: number): Promise<void> {
    if (this.table.find(nodeId) === undefined) return // the kernel holds no such node
    if (!this.pagesCached.delete(nodeId)) return this.session.invalidateAttributes(nodeId)
    await this.session.dropCache(nodeId) // a read answered from here on may cache pages again
  }

  /**
   * How long the kernel may keep attributes: not at all while the file has uncommitted changes
   * (an ftruncate through a handle), whose commit at close changes its times with no write
   * the kernel would see.
   */
  private attrTimeoutS(stat: Stat): number {
    return this.ops.hasUncommitted(stat.ino) ? 0 : CACHE_TIMEOUT_S
  }

  /** The store inode of a live node; a node of a time path is read-only. */
  private liveIno(nodeId: number): number {
    const ino = this.table.node(nodeId).ino
    if (ino === null) throw errors.readOnlyTimePath(this.table.path(nodeId))
    return ino
  }

  /**
   * A node's attributes: a live node's by its inode (whichever of its names are gone); a
   * time-path node whose name is gone answers from an open handle, as fstat expects (the
   * kernel names the handle only on some paths).
   */
  private attr(nodeId: number, fd: number | undefined): Promise<Stat> | Stat {
    const node = this.table.node(nodeId)
    if (node.ino !== null) return this.ops.getattrOfInode(node.ino)
    if (this.table.detached(nodeId)) {
      const handle = fd ?? node.handles.values().next().value
      if (handle === undefined) throw errors.notFound(this.table.path(nodeId))
      return this.ops.fgetattr(handle)
    }
    return this.ops.getattr(this.table.path(nodeId))
  }

  /** One setattr: the attributes in one version of the node, a size change in a version of its contents. */
  private async setattr(nodeId: number, changes: AttrChanges, fd: number | undefined, caller: Caller): Promise<Stat> {
    await this.ops.setattr(this.liveIno(nodeId), changes, fd, caller)
    return this.attr(nodeId, fd)
  }

  private async rename(parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if ((flags & ~RENAME_NOREPLACE) !== 0) throw errors.invalid(`rename flags ${flags}: fffs renames, or renames without replacing, and nothing else`)
    const to = this.table.childPath(newParent, newName)
    if ((flags & RENAME_NOREPLACE) !== 0) {
      const exists = await this.ops.getattr(to).then(() => true, (err: unknown) => (isFffsError(err) && err.errno === ERRNO.ENOENT ? false : Promise.reject(err)))
      if (exists) throw errors.exists(to)
    }
    await this.ops.rename(this.table.childPath(parent, name), to)
  }

  /**
   * A read-only open of a frozen path keeps the kernel's cached pages while the node's version
   * (mtime and size) is the one they were read from: what a stable cut holds never changes,
   * but a snapshot name can be deleted and pinned again at another cut. Live files start
   * uncached at every open (another writer may have committed). Read-only opens skip the
   * flush round trip at close: they have nothing to commit.
   */
  private async open(nodeId: number, flags: number, caller: Caller): Promise<{ fd: number; keepCache: boolean; noFlush: boolean }> {
    const path = this.table.path(nodeId)
    const fd = await this.ops.open(path, flags, caller)
    const readOnly = (flags & O_ACCMODE) === 0
    if (!readOnly || (flags & O_NONBLOCK) !== 0 || !this.ops.openedThroughTimePath(fd)) return { fd, keepCache: false, noFlush: readOnly }
    const node = this.table.node(nodeId)
    const stat = this.ops.fgetattr(fd)
    const version = `${stat.mtime}:${stat.size}`
    const keepCache = node.cachedAs === version
    node.cachedAs = version
    return { fd, keepCache, noFlush: true }
  }

  /** The listing of an open directory; a readdir from offset 0 after the first (a rewind) lists it again. */
  private async listing(handle: number, offset: number): Promise<string[]> {
    const dir = this.dirs.get(handle)
    if (dir === undefined) throw errors.badHandle(handle)
    if (offset === 0 && dir.served) dir.names = await this.ops.readdir(this.table.path(dir.nodeId))
    dir.served = true
    return dir.names
  }

  /** getxattr/listxattr: a size query (size 0) gets the length, a short buffer ERANGE. */
  private xattrReply(req: Req, value: Buffer, sizeBytes: number): void {
    if (sizeBytes === 0) return this.session.replyXattrSize(req, value.length)
    if (value.length > sizeBytes) return this.session.replyErr(req, ERRNO.ERANGE)
    this.session.replyData(req, value, value.length)
  }
}
