// The disk a store lives on: its segment files, its index (LevelDB) and the small durable files
// a member keeps beside them (view.json, accepted.json), behind one interface. The store, the
// log and the member runtime run the same code on the real disk (`nodeDisk`) and on the
// simulation's (src/testing/simDisk.ts: latencies, what is written against what is synced,
// crashes and torn writes). The shapes are the subsets of node's FileHandle and classic-level
// the store uses, so the real ones are passed through as they are.

import { closeSync, fsyncSync, openSync, writevSync, promises as fsp, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'

/** An open file: positioned reads and writes; durable once `datasync` (or `sync`) returned. */
export interface DiskFile {
  /** The descriptor, for page-cache advice only (SegmentLog.dropSyncedPages); -1 where there is none. */
  readonly fd: number
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>
  writev(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>
  /**
   * writev on the calling thread, returning the bytes written: for small writes into the page
   * cache (~10 µs), where a round trip to libuv's threadpool would cost more than the write.
   * Absent where the disk has none (the simulation's): use `writev`.
   */
  writevNow?(buffers: Uint8Array[], position: number): number
  datasync(): Promise<void>
  sync(): Promise<void>
  truncate(lengthBytes: number): Promise<void>
  close(): Promise<void>
}

/** A key range of the index, as LevelDB takes it. */
export interface IndexRange {
  readonly gt?: Buffer
  readonly gte?: Buffer
  readonly lt?: Buffer
  readonly lte?: Buffer
  readonly reverse?: boolean
  readonly limit?: number
}

export type IndexOp = { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer } | { readonly type: 'del'; readonly key: Buffer }

/** The store's ordered key-value index (LevelDB, written without sync: the log is the truth). */
export interface IndexDb {
  open(): Promise<void>
  close(): Promise<void>
  getSync(key: Buffer): Buffer | undefined
  /** Atomic: every op or none, in one write. `sync`: durable on return, with every write before it. */
  batch(ops: IndexOp[], options?: { readonly sync?: boolean }): Promise<void>
  iterator(range: IndexRange): AsyncIterable<[Buffer, Buffer]> & { all(): Promise<Array<[Buffer, Buffer]>> }
  keys(range: IndexRange): AsyncIterable<Buffer> & { all(): Promise<Buffer[]> }
  clear(): Promise<void>
}

export interface Disk {
  mkdirp(dir: string): Promise<void>
  /** The names in a directory ([] when it does not exist). */
  list(dir: string): Promise<string[]>
  /** A file's size, or null when it does not exist. */
  sizeOf(file: string): Promise<number | null>
  /** `flags` as node's open takes them: 'a+' (create, append and read), 'r', or O_* numbers (O_DIRECT). */
  open(file: string, flags: string | number): Promise<DiskFile>
  truncate(file: string, lengthBytes: number): Promise<void>
  /** A new file of `sizeBytes` whose blocks are taken on the disk (not a sparse file), durable on return. ENOSPC when they do not fit. */
  allocate(file: string, sizeBytes: number): Promise<void>
  /** Removes a file or a directory tree; nothing there is not an error. */
  remove(target: string): Promise<void>
  /** Renames; durable once the directory is synced. */
  rename(from: string, to: string): Promise<void>
  syncDir(dir: string): Promise<void>
  /** A small file's text, or null when it does not exist or cannot be read. */
  readText(file: string): string | null
  /** Replaces a small file durably before returning (temp file, fsync, rename, directory fsync): synchronous, so nothing can be published before it is on disk. */
  writeTextDurably(file: string, text: string): void
  /** The index kept in directory `dir` (not opened yet). */
  openIndex(dir: string): IndexDb
  /** The size of the file system `dir` is on, and the bytes this process may still write to it (statfs bavail). */
  space(dir: string): Promise<DiskSpace>
  /** What tells the file at `file` from any other that was or will be there (device, inode, birth time); null when none is there. Absent on a disk other processes cannot read. */
  fileId?(file: string): Promise<string | null>
}

/** A file's identity as Disk.fileId gives it (also what a reader of the file on the same host checks). */
export function fileIdOf(stats: { dev: bigint; ino: bigint; birthtimeNs: bigint }): string {
  return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`
}

export interface DiskSpace {
  readonly totalBytes: number
  readonly availableBytes: number
}

/** The real disk: node's fs and LevelDB. */
export const nodeDisk: Disk = {
  mkdirp: async (dir) => void (await fsp.mkdir(dir, { recursive: true })),
  list: (dir) => fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err))),
  sizeOf: (file) => fsp.stat(file).then((s) => s.size, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err))),
  fileId: (file) => fsp.stat(file, { bigint: true }).then(fileIdOf, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err))),
  open: async (file, flags) => {
    const handle = await fsp.open(file, flags)
    return Object.assign(handle, { writevNow: (buffers: Uint8Array[], position: number) => writevSync(handle.fd, buffers, position) })
  },
  truncate: (file, lengthBytes) => fsp.truncate(file, lengthBytes),
  allocate: async (file, sizeBytes) => {
    // Zeros written, not a truncate: a sparse file would take no blocks (node has no fallocate).
    const handle = await fsp.open(file, 'w')
    try {
      const zeros = Buffer.alloc(Math.min(sizeBytes, 1024 * 1024))
      for (let done = 0; done < sizeBytes; done += zeros.length) await handle.write(zeros, 0, Math.min(zeros.length, sizeBytes - done), done)
      await handle.sync()
    } finally {
      await handle.close()
    }
  },
  remove: (target) => fsp.rm(target, { recursive: true, force: true }),
  rename: (from, to) => fsp.rename(from, to),
  syncDir: async (dir) => {
    const handle = await fsp.open(dir, 'r')
    await handle.sync().finally(() => handle.close())
  },
  readText: (file) => {
    try {
      return readFileSync(file, 'utf8')
    } catch {
      return null
    }
  },
  writeTextDurably: (file, text) => {
    writeFileSync(file + '.tmp', text)
    fsyncPath(file + '.tmp', 'r+')
    renameSync(file + '.tmp', file)
    fsyncPath(path.dirname(file), 'r')
  },
  openIndex: (dir) => new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' }),
  space: async (dir) => {
    const s = await fsp.statfs(dir)
    return { totalBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize }
  },
}

function fsyncPath(target: string, flags: string): void {
  const fd = openSync(target, flags)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
