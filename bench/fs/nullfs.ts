// A null fuse-native file system: the ceiling of the binding fffs used to mount with (the
// issue's baseline). Writes are accepted and discarded (only the size is kept), reads serve
// zeros. Mounted with the options fffs used on it (the largest requests libfuse 2 allows), so
// what differs from fffs is fffs's own work and its FUSE layer (src/fs/kernel.ts). A name with an `@` in it (a time path in fffs) is a 4 KiB file of zeros, so
// the time-travel baseline opens fresh names through the same lookup, open, read, flush and
// release. Run as its own process (`node dist/bench/fs/nullfs.js DIR`): a FUSE
// daemon must not share an event loop with the synchronous fs calls that drive it.
// Prints "nullfs: mounted DIR" when ready; SIGTERM/SIGINT unmount.

import Fuse from 'fuse-native'

/** libfuse 2.9 caps requests at the kernel's limit (128 KiB here); ask for the most. */
const MAX_REQUEST_BYTES = 1024 * 1024

/** The libfuse 2 options fffs mounted with when it used fuse-native, appended to fuse-native's own. */
function withFffsMountOptions(base: string, fsName: string): string {
  const ours = ['big_writes', `max_write=${MAX_REQUEST_BYTES}`, `max_read=${MAX_REQUEST_BYTES}`, 'atomic_o_trunc', 'auto_cache', `fsname=${fsName}`, `subtype=${fsName}`].join(',')
  return base === '' ? `-o${ours}` : `${base},${ours}`
}

class NullFuse extends Fuse {
  protected override _fuseOptions(): string {
    return withFffsMountOptions(super._fuseOptions(), 'nullfs')
  }
}

type Cb = (...args: unknown[]) => void
interface Node {
  dir: boolean
  size: number
  mode: number
  mtime: Date
}

const ENOENT = -2
const EEXIST = -17
const ENOTEMPTY = -39

export function nullOps(): Record<string, Cb> {
  const nodes = new Map<string, Node>([['/', { dir: true, size: 4096, mode: 0o40755, mtime: new Date() }]])
  let nextFd = 10
  const stat = (n: Node) => ({ mtime: n.mtime, atime: n.mtime, ctime: n.mtime, nlink: n.dir ? 2 : 1, size: n.size, mode: n.mode, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 })
  const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/'
  const timePathNode: Node = { dir: false, size: 4096, mode: 0o100444, mtime: new Date() }
  const node = (p: string) => nodes.get(p) ?? (p.includes('@') ? timePathNode : undefined)
  const ops = {
    getattr: (p: string, cb: Cb) => {
      const n = node(p)
      n === undefined ? cb(ENOENT) : cb(0, stat(n))
    },
    fgetattr: (p: string, _fd: number, cb: Cb) => {
      const n = node(p)
      n === undefined ? cb(ENOENT) : cb(0, stat(n))
    },
    readdir: (p: string, cb: Cb) => {
      const prefix = p === '/' ? '/' : p + '/'
      const names: string[] = []
      for (const key of nodes.keys()) if (key !== p && key.startsWith(prefix) && !key.slice(prefix.length).includes('/')) names.push(key.slice(prefix.length))
      cb(0, names)
    },
    open: (p: string, _flags: number, cb: Cb) => (node(p) !== undefined ? cb(0, nextFd++) : cb(ENOENT)),
    create: (p: string, mode: number, cb: Cb) => {
      nodes.set(p, { dir: false, size: 0, mode: 0o100000 | (mode & 0o7777), mtime: new Date() })
      cb(0, nextFd++)
    },
    read: (p: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const n = node(p)
      const count = n === undefined ? 0 : Math.max(0, Math.min(len, n.size - pos))
      buf.fill(0, 0, count)
      cb(count)
    },
    write: (p: string, _fd: number, _buf: Buffer, len: number, pos: number, cb: Cb) => {
      const n = nodes.get(p)
      if (n !== undefined && pos + len > n.size) n.size = pos + len
      cb(len)
    },
    flush: (_p: string, _fd: number, cb: Cb) => cb(0),
    fsync: (_p: string, _ds: number, _fd: number, cb: Cb) => cb(0),
    release: (_p: string, _fd: number, cb: Cb) => cb(0),
    truncate: (p: string, size: number, cb: Cb) => {
      const n = nodes.get(p)
      if (n !== undefined) n.size = size
      cb(n === undefined ? ENOENT : 0)
    },
    ftruncate: (p: string, _fd: number, size: number, cb: Cb) => {
      const n = nodes.get(p)
      if (n !== undefined) n.size = size
      cb(0)
    },
    unlink: (p: string, cb: Cb) => cb(nodes.delete(p) ? 0 : ENOENT),
    mkdir: (p: string, mode: number, cb: Cb) => {
      if (nodes.has(p)) return cb(EEXIST)
      if (!nodes.has(parentOf(p))) return cb(ENOENT)
      nodes.set(p, { dir: true, size: 4096, mode: 0o40000 | (mode & 0o7777), mtime: new Date() })
      cb(0)
    },
    rmdir: (p: string, cb: Cb) => {
      for (const key of nodes.keys()) if (key.startsWith(p + '/')) return cb(ENOTEMPTY)
      cb(nodes.delete(p) ? 0 : ENOENT)
    },
    chmod: (_p: string, _mode: number, cb: Cb) => cb(0),
    chown: (_p: string, _u: number, _g: number, cb: Cb) => cb(0),
    utimens: (_p: string, _a: number, _m: number, cb: Cb) => cb(0),
    statfs: (_p: string, cb: Cb) => cb(0, { bsize: 4096, frsize: 4096, blocks: 1 << 30, bfree: 1 << 30, bavail: 1 << 30, files: 1 << 20, ffree: 1 << 20, favail: 1 << 20, fsid: 0, flag: 0, namemax: 255 }),
  }
  return ops as unknown as Record<string, Cb>
}

async function main(): Promise<void> {
  const dir = process.argv[2]
  if (dir === undefined) throw new Error('usage: nullfs.js MOUNTPOINT')
  const fuse = new NullFuse(dir, nullOps(), { mkdir: true, force: true, timeout: 60_000 })
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())))
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    fuse.unmount(() => {
      process.stderr.write(`nullfs: unmounted ${dir}\n`)
      process.exit(0)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdout.write(`nullfs: mounted ${fuse.mnt}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`nullfs: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
