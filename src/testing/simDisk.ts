// A simulated disk for one simulated machine: the store, its log and the member's small files
// run their own code on it (src/store/disk.ts is the interface), on virtual time.
//
// What the disk keeps of each file is two images: what is *written* (what reads see; in the
// kernel's page cache, so it survives the process) and what is *synced* (on the platter; it
// survives the machine). A write becomes written when it completes; a datasync makes durable
// every write that completed before the call, when it completes itself. So:
// - `crash()`: the process dies. Operations in flight never complete (their promises never
//   settle: no code of a dead process runs); what was written stays.
// - `powerLoss(prng)`: the machine dies. What was written and not synced is lost, except a
//   prefix of it in write order whose last write may be cut anywhere (a torn write); the index
//   (LevelDB, written without sync) loses some of its most recent batches.
// Slow disks: every write, sync and index batch takes a latency drawn in the configured range.
// Reads are served at once (from the written image: the page cache).
// Directories, renames, removals, allocations and the small durable files (writeTextDurably) take
// effect at once and durably: the runtime syncs the directory after each, and nothing checks what a
// machine crash between the two would leave.
// Space: the files' written bytes count against `capacityBytes` (the index does not); a write
// that would grow them past it fails with ENOSPC, as a full file system's does.

import { constants as fsConstants } from 'node:fs'
import path from 'node:path'
import type { Disk, DiskFile, DiskSpace, IndexDb } from '../store/disk.js'
import { MemoryIndex, MemoryIndexData } from './memoryIndex.js'
import type { Prng } from './prng.js'
import type { Scheduler } from './scheduler.js'

export interface SimDiskTiming {
  readonly scheduler: Scheduler
  readonly prng: Prng
  /** Latency of a write (or writev), virtual ms, uniform in [min, max]. */
  readonly writeMs: readonly [number, number]
  readonly syncMs: readonly [number, number]
  readonly indexMs: readonly [number, number]
}

/** What happened to a file since its last completed sync, in order. */
type Pending = { readonly kind: 'write'; readonly position: number; readonly bytes: Buffer } | { readonly kind: 'truncate'; readonly lengthBytes: number }

class SimFile {
  written = new Image()
  synced = new Image()
  pending: Pending[] = []
  private pendingFirstSeq = 0 // the sequence number of pending[0]

  apply(op: Pending): void {
    this.written.apply(op)
    this.pending.push(op)
  }

  /** The sequence number the next operation gets: a sync started now covers everything before it. */
  get nextSeq(): number {
    return this.pendingFirstSeq + this.pending.length
  }

  /** Makes every pending operation numbered below `seq` durable. */
  syncBefore(seq: number): void {
    const synced = this.pending.splice(0, Math.max(0, seq - this.pendingFirstSeq))
    for (const op of synced) this.synced.apply(op)
    this.pendingFirstSeq += synced.length
  }

  /** After a power loss: what survived is all there is. */
  reset(image: Image): void {
    this.pendingFirstSeq += this.pending.length
    this.pending = []
    this.written = image
    this.synced = image.copy()
  }
}

/** A file's bytes. Zeros past the last write (a file extended by a truncate or an allocation) are not kept. */
class Image {
  bytes = Buffer.alloc(0) // holds [0, storedBytes); what lies past it up to lengthBytes is zeros
  storedBytes = 0
  lengthBytes = 0

  apply(op: Pending): void {
    if (op.kind === 'truncate') {
      this.storedBytes = Math.min(this.storedBytes, op.lengthBytes)
      this.lengthBytes = op.lengthBytes
      return
    }
    const end = op.position + op.bytes.length
    this.reserve(end).fill(0, this.storedBytes, op.position)
    op.bytes.copy(this.bytes, op.position)
    this.storedBytes = Math.max(this.storedBytes, end)
    this.lengthBytes = Math.max(this.lengthBytes, end)
  }

  /** Copies up to `length` bytes from `position` into `into` at `offset`; the count copied. */
  read(into: Uint8Array, offset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.lengthBytes - position))
    const stored = Math.max(0, Math.min(n, this.storedBytes - position))
    if (stored > 0) this.bytes.copy(into, offset, position, position + stored)
    into.fill(0, offset + stored, offset + n)
    return n
  }

  copy(): Image {
    const image = new Image()
    image.bytes = Buffer.from(this.bytes.subarray(0, this.storedBytes))
    image.storedBytes = this.storedBytes
    image.lengthBytes = this.lengthBytes
    return image
  }

  private reserve(lengthBytes: number): Buffer {
    if (lengthBytes > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(lengthBytes, this.bytes.length * 2, 4096))
      this.bytes.copy(grown, 0, 0, this.storedBytes)
      this.bytes = grown
    }
    return this.bytes
  }
}

function fsError(code: string, syscall: string, target: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${target}' (simulated disk)`)
  err.code = code
  return err
}

export class SimDisk implements Disk {
  private readonly timing: SimDiskTiming | null
  private readonly files = new Map<string, SimFile>()
  private readonly dirs = new Set<string>(['/'])
  private readonly indexes = new Map<string, MemoryIndexData>()
  private generation = 0 // bumped by a crash: operations of an older generation never complete
  private nextFd = 1000
  /** What the files may hold in all (a test fills the disk by lowering it). */
  capacityBytes = 2 ** 40

  constructor(timing: SimDiskTiming | null = null) {
    this.timing = timing
  }

  // ---- faults ----

  /** The process dies: operations in flight never complete; what was written stays. */
  crash(): void {
    this.generation++
  }

  /** The machine dies: unsynced writes are lost but a prefix (torn at its end); the index loses recent batches. */
  powerLoss(prng: Prng): void {
    this.crash()
    for (const file of this.files.values()) {
      const image = file.synced.copy()
      const kept = prng.int(0, file.pending.length)
      file.pending.slice(0, kept).forEach((op, i) => {
        if (i === kept - 1 && op.kind === 'write' && prng.chance(0.5)) image.apply({ ...op, bytes: op.bytes.subarray(0, prng.int(0, op.bytes.length)) }) // torn
        else image.apply(op)
      })
      file.reset(image)
    }
    for (const index of this.indexes.values()) index.loseRecent(prng)
  }

  /**
   * The disk as one process sees it: once that process died (crash, power loss), nothing it
   * calls takes effect and nothing it waits for settles, whatever it calls (a removal, a rename,
   * an index batch), also through files and indexes it opened before. Without it, code of a dead
   * process that was between two awaits runs on and may remove a file its successor uses.
   */
  forProcess(): Disk {
    const generation = this.generation
    const dead = (): boolean => this.generation !== generation
    const never = new Promise<never>(() => undefined)
    const gate = <T>(run: () => Promise<T>): Promise<T> => (dead() ? never : run().then((value) => (dead() ? never : value)))
    const gateSync = <T>(run: () => T): T => {
      if (dead()) throw new Error('simulated disk: used by a process that died')
      return run()
    }
    const file = (handle: DiskFile): DiskFile => ({
      fd: handle.fd,
      read: (buffer, offset, length, position) => gate(() => handle.read(buffer, offset, length, position)),
      write: (buffer, offset, length, position) => gate(() => handle.write(buffer, offset, length, position)),
      writev: (buffers, position) => gate(() => handle.writev(buffers, position)),
      datasync: () => gate(() => handle.datasync()),
      sync: () => gate(() => handle.sync()),
      truncate: (lengthBytes) => gate(() => handle.truncate(lengthBytes)),
      close: () => gate(() => handle.close()),
    })
    const index = (db: IndexDb): IndexDb => ({
      open: () => gate(() => db.open()),
      close: () => gate(() => db.close()),
      getSync: (key) => gateSync(() => db.getSync(key)),
      batch: (ops, options) => gate(() => db.batch(ops, options)),
      iterator: (range) => gateSync(() => db.iterator(range)),
      keys: (range) => gateSync(() => db.keys(range)),
      clear: () => gate(() => db.clear()),
    })
    return {
      mkdirp: (dir) => gate(() => this.mkdirp(dir)),
      list: (dir) => gate(() => this.list(dir)),
      sizeOf: (target) => gate(() => this.sizeOf(target)),
      open: (target, flags) => gate(async () => file(await this.open(target, flags))),
      truncate: (target, lengthBytes) => gate(() => this.truncate(target, lengthBytes)),
      allocate: (target, sizeBytes) => gate(() => this.allocate(target, sizeBytes)),
      remove: (target) => gate(() => this.remove(target)),
      rename: (from, to) => gate(() => this.rename(from, to)),
      syncDir: (dir) => gate(() => this.syncDir(dir)),
      readText: (target) => gateSync(() => this.readText(target)),
      writeTextDurably: (target, text) => gateSync(() => this.writeTextDurably(target, text)),
      openIndex: (dir) => index(this.openIndex(dir)),
      space: (dir) => gate(() => this.space(dir)),
    }
  }

  /** Bytes written to `file` and not yet synced (for tests of durability). */
  unsyncedOperations(file: string): number {
    return this.files.get(path.resolve(file))?.pending.length ?? 0
  }

  // ---- Disk ----

  async mkdirp(dir: string): Promise<void> {
    for (let at = path.resolve(dir); !this.dirs.has(at); at = path.dirname(at)) this.dirs.add(at)
  }

  async list(dir: string): Promise<string[]> {
    const at = path.resolve(dir)
    const names = new Set<string>()
    for (const entry of [...this.files.keys(), ...this.dirs, ...this.indexes.keys()]) if (entry !== at && path.dirname(entry) === at) names.add(path.basename(entry))
    return [...names].sort()
  }

  async sizeOf(file: string): Promise<number | null> {
    return this.files.get(path.resolve(file))?.written.lengthBytes ?? null
  }

  async open(file: string, flags: string | number): Promise<DiskFile> {
    const at = path.resolve(file)
    if (this.dirs.has(at)) return this.handle(at, null) // a directory, opened to be synced
    let simFile = this.files.get(at)
    if (simFile === undefined) {
      const creates = flags === 'a+' || (typeof flags === 'number' && (flags & fsConstants.O_CREAT) !== 0)
      if (!creates) throw fsError('ENOENT', 'open', at)
      if (!this.dirs.has(path.dirname(at))) throw fsError('ENOENT', 'open', at)
      simFile = new SimFile()
      this.files.set(at, simFile)
    }
    return this.handle(at, simFile)
  }

  async truncate(file: string, lengthBytes: number): Promise<void> {
    const simFile = this.files.get(path.resolve(file))
    if (simFile === undefined) throw fsError('ENOENT', 'truncate', file)
    simFile.apply({ kind: 'truncate', lengthBytes })
  }

  /** Takes effect at once and durably, as a directory operation does (an allocation changes metadata only; no bytes are kept). */
  async allocate(file: string, sizeBytes: number): Promise<void> {
    const at = path.resolve(file)
    if (!this.dirs.has(path.dirname(at))) throw fsError('ENOENT', 'open', at)
    if (this.usedBytes() - (this.files.get(at)?.written.lengthBytes ?? 0) + sizeBytes > this.capacityBytes) throw fsError('ENOSPC', 'fallocate', at)
    const simFile = new SimFile()
    simFile.apply({ kind: 'truncate', lengthBytes: sizeBytes })
    simFile.syncBefore(simFile.nextSeq)
    this.files.set(at, simFile)
  }

  async remove(target: string): Promise<void> {
    const at = path.resolve(target)
    const under = (entry: string): boolean => entry === at || entry.startsWith(at + '/')
    for (const entry of [...this.files.keys()]) if (under(entry)) this.files.delete(entry)
    for (const entry of [...this.indexes.keys()]) if (under(entry)) this.indexes.delete(entry)
    for (const entry of [...this.dirs]) if (under(entry) && entry !== '/') this.dirs.delete(entry)
  }

  async rename(from: string, to: string): Promise<void> {
    const source = path.resolve(from)
    const target = path.resolve(to)
    if (!this.dirs.has(path.dirname(target))) throw fsError('ENOENT', 'rename', target)
    const moved = (entry: string): string | null => (entry === source ? target : entry.startsWith(source + '/') ? target + entry.slice(source.length) : null)
    let found = false
    for (const map of [this.files, this.indexes] as Array<Map<string, unknown>>) {
      for (const [entry, value] of [...map]) {
        const to = moved(entry)
        if (to === null) continue
        map.delete(entry)
        map.set(to, value)
        found = true
      }
    }
    for (const entry of [...this.dirs]) {
      const to = moved(entry)
      if (to === null) continue
      this.dirs.delete(entry)
      this.dirs.add(to)
      found = true
    }
    if (!found) throw fsError('ENOENT', 'rename', source)
  }

  async syncDir(dir: string): Promise<void> {
    if (!this.dirs.has(path.resolve(dir))) throw fsError('ENOENT', 'fsync', dir)
  }

  readText(file: string): string | null {
    const simFile = this.files.get(path.resolve(file))
    if (simFile === undefined) return null
    const text = Buffer.alloc(simFile.written.lengthBytes)
    simFile.written.read(text, 0, text.length, 0)
    return text.toString('utf8')
  }

  writeTextDurably(file: string, text: string): void {
    const at = path.resolve(file)
    if (!this.dirs.has(path.dirname(at))) throw fsError('ENOENT', 'open', at)
    const simFile = new SimFile()
    simFile.apply({ kind: 'write', position: 0, bytes: Buffer.from(text) })
    simFile.syncBefore(simFile.nextSeq)
    this.files.set(at, simFile)
  }

  async space(_dir: string): Promise<DiskSpace> {
    return { totalBytes: this.capacityBytes, availableBytes: Math.max(0, this.capacityBytes - this.usedBytes()) }
  }

  private usedBytes(): number {
    let used = 0
    for (const file of this.files.values()) used += file.written.lengthBytes
    return used
  }

  openIndex(dir: string): IndexDb {
    const at = path.resolve(dir)
    return new MemoryIndex(() => {
      let data = this.indexes.get(at)
      if (data === undefined) this.indexes.set(at, (data = new MemoryIndexData()))
      return data
    }, (run) => this.complete(this.timing?.indexMs, run))
  }

  // ---- internals ----

  /** Runs `run` once an operation of `latency` completes, unless the process died meanwhile. */
  private complete<T>(latency: readonly [number, number] | undefined, run: () => T): Promise<T> {
    const generation = this.generation
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        if (generation !== this.generation) return // the process died: never settles
        try {
          resolve(run())
        } catch (err) {
          reject(err)
        }
      }
      if (this.timing === null || latency === undefined) {
        void Promise.resolve().then(finish)
        return
      }
      this.timing.scheduler.after(this.timing.prng.int(latency[0], latency[1]), finish)
    })
  }

  private handle(at: string, simFile: SimFile | null): DiskFile {
    const disk = this
    const file = (): SimFile => {
      if (simFile === null) throw fsError('EISDIR', 'io', at)
      if (disk.files.get(at) !== simFile) throw fsError('ENOENT', 'io', at) // removed or renamed since it was opened
      return simFile
    }
    const filePath = at
    const write = (buffers: readonly Uint8Array[], position: number): Promise<{ bytesWritten: number }> => {
      const target = file()
      return this.complete(this.timing?.writeMs, () => {
        const endBytes = position + buffers.reduce((sum, b) => sum + b.byteLength, 0)
        if (this.usedBytes() + Math.max(0, endBytes - target.written.lengthBytes) > this.capacityBytes) throw fsError('ENOSPC', 'write', filePath)
        let at = position
        for (const buffer of buffers) {
          target.apply({ kind: 'write', position: at, bytes: Buffer.from(buffer) })
          at += buffer.byteLength
        }
        return { bytesWritten: at - position }
      })
    }
    const sync = (): Promise<void> => {
      if (simFile === null) return this.complete(undefined, () => undefined)
      const target = file()
      const covering = target.nextSeq
      return this.complete(this.timing?.syncMs, () => target.syncBefore(covering))
    }
    return {
      fd: this.nextFd++,
      read: async (buffer, offset, length, position) => ({ bytesRead: file().written.read(buffer, offset, length, position) }),
      write: (buffer, offset, length, position) => write([buffer.subarray(offset, offset + length)], position),
      writev: (buffers, position) => write(buffers, position),
      datasync: sync,
      sync,
      truncate: async (lengthBytes) => file().apply({ kind: 'truncate', lengthBytes }),
      close: async () => undefined,
    }
  }
}
