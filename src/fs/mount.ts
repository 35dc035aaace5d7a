// Mounting: the fuse-native op table (one entry per FUSE operation, each ending in exactly
// one callback), the errno decided in one place, and the mount options fuse-native does not
// expose (big_writes, max_write/max_read, atomic_o_trunc).

import Fuse from 'fuse-native'
import { ERRNO, isFffsError } from '../errors.js'
import type { Client } from '../replication/client.js'
import { isUnkeptXattr, Operations } from './operations.js'
import type { TimeOptions } from './resolve.js'

const EIO = 5
/** libfuse 2.9 caps requests at the kernel's limit (128 KiB here); ask for the most. */
const MAX_REQUEST_BYTES = 1024 * 1024

/**
 * The libfuse options fffs mounts with; fuse-native has no switch for most of them, so they
 * are appended to its own option string. Shared with the bench's null file system so both
 * take the same kernel path.
 */
export function withFffsMountOptions(base: string, fsName: string): string {
  const ours = [
    'big_writes',
    `max_write=${MAX_REQUEST_BYTES}`,
    `max_read=${MAX_REQUEST_BYTES}`,
    'atomic_o_trunc', // O_TRUNC reaches open(), so truncate + rewrite is one version
    'auto_cache', // keep cached pages while mtime and size are unchanged: frozen paths never change
    `fsname=${fsName}`,
    `subtype=${fsName}`,
  ].join(',')
  return base === '' ? `-o${ours}` : `${base},${ours}`
}

class FffsFuse extends Fuse {
  protected override _fuseOptions(): string {
    return withFffsMountOptions(super._fuseOptions(), 'fffs')
  }
}

/** Negative errno for fuse-native; bugs and EIO are logged (bugs reported as EIO), never swallowed silently. */
function errnoOf(err: unknown): number {
  if (isFffsError(err)) {
    // EIO tells the caller nothing: the mount's log says what failed.
    if (err.code === 'EIO') process.stderr.write(`fffs: EIO: ${err.message}\n`)
    return -err.errno
  }
  process.stderr.write(`fffs: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return -EIO
}

type Cb = (...args: unknown[]) => void

/** Runs a handler and ends in exactly one callback: `reply(value)` or the errno. */
function call<T>(cb: Cb, run: () => Promise<T> | T, reply: (value: T) => void): void {
  let result: Promise<T> | T
  try {
    result = run()
  } catch (err) {
    cb(errnoOf(err))
    return
  }
  if (result instanceof Promise) result.then(reply, (err: unknown) => cb(errnoOf(err)))
  else reply(result)
}

function opTable(ops: Operations): Record<string, Cb> {
  const table = {
    getattr: (path: string, cb: Cb) => call(cb, () => ops.getattr(path), (st) => cb(0, st)),
    fgetattr: (path: string, _fd: number, cb: Cb) => call(cb, () => ops.getattr(path), (st) => cb(0, st)),
    readdir: (path: string, cb: Cb) => call(cb, () => ops.readdir(path), (names) => cb(0, names)),
    open: (path: string, flags: number, cb: Cb) => call(cb, () => ops.open(path, flags), (fd) => cb(0, fd)),
    create: (path: string, mode: number, cb: Cb) => call(cb, () => ops.create(path, mode), (fd) => cb(0, fd)),
    read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => call(cb, () => ops.read(fd, buf, len, pos), (n) => cb(n)),
    write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => call(cb, () => ops.write(fd, buf, len, pos), (n) => cb(n)),
    flush: (_path: string, fd: number, cb: Cb) => call(cb, () => ops.flush(fd), () => cb(0)),
    fsync: (_path: string, _datasync: number, fd: number, cb: Cb) => call(cb, () => ops.fsync(fd), () => cb(0)),
    release: (_path: string, fd: number, cb: Cb) => call(cb, () => ops.release(fd), () => cb(0)),
    truncate: (path: string, size: number, cb: Cb) => call(cb, () => ops.truncate(path, size), () => cb(0)),
    ftruncate: (_path: string, fd: number, size: number, cb: Cb) => call(cb, () => ops.ftruncate(fd, size), () => cb(0)),
    unlink: (path: string, cb: Cb) => call(cb, () => ops.unlink(path), () => cb(0)),
    mkdir: (path: string, mode: number, cb: Cb) => call(cb, () => ops.mkdir(path, mode), () => cb(0)),
    rmdir: (path: string, cb: Cb) => call(cb, () => ops.rmdir(path), () => cb(0)),
    rename: (from: string, to: string, cb: Cb) => call(cb, () => ops.rename(from, to), () => cb(0)),
    symlink: (target: string, path: string, cb: Cb) => call(cb, () => ops.symlink(target, path), () => cb(0)),
    readlink: (path: string, cb: Cb) => call(cb, () => ops.readlink(path), (target) => cb(0, target)),
    chmod: (path: string, mode: number, cb: Cb) => call(cb, () => ops.chmod(path, mode), () => cb(0)),
    chown: (path: string, uid: number, gid: number, cb: Cb) => call(cb, () => ops.chown(path, uid, gid), () => cb(0)),
    utimens: (path: string, atime: number, mtime: number, cb: Cb) => call(cb, () => ops.utimens(path, atime, mtime), () => cb(0)),
    statfs: (_path: string, cb: Cb) => call(cb, () => ops.statfs(), (st) => cb(0, st)),
    // The kernel asks for security.capability before every write(2): answered without building an error.
    getxattr: (path: string, name: string, _position: number, cb: Cb) => (isUnkeptXattr(name) ? cb(-ERRNO.ENODATA) : call(cb, () => ops.getxattr(path, name), (value) => cb(0, value))),
    listxattr: (path: string, cb: Cb) => call(cb, () => ops.listxattr(path), (names) => cb(0, names)),
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) => call(cb, () => ops.setxattr(path, name, value, flags), () => cb(0)),
    removexattr: (path: string, name: string, cb: Cb) => call(cb, () => ops.removexattr(path, name), () => cb(0)),
  }
  return table as unknown as Record<string, Cb> // fuse-native takes loosely typed callbacks
}

export interface MountedFs {
  readonly mountpoint: string
  readonly operations: Operations
  unmount(): Promise<void>
}

export async function mountFs(mountpoint: string, client: Client, options: TimeOptions, dataDir: string): Promise<MountedFs> {
  const operations = new Operations(client, options, dataDir)
  // fuse-native answers EIO to an op still running after `timeout`: longer than any stable-read wait.
  const fuse = new FffsFuse(mountpoint, opTable(operations), { mkdir: true, force: true, timeout: options.maxWaitMs + 30_000 })
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())))
  let unmounted: Promise<void> | null = null
  return {
    mountpoint: fuse.mnt,
    operations,
    unmount: () =>
      (unmounted ??= (async () => {
        await operations.commitAll()
        await new Promise<void>((resolve) => fuse.unmount(() => resolve()))
        await operations.stop()
      })()),
  }
}
