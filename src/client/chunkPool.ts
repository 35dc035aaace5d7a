// Reused write buffers of the embedded log's chunks (logChunks.ts), 64 KiB to 4 MiB; memory never
// touched before costs a page fault per 4 KiB page on first use (and on the VMs this runs on
// a host fault as well), which made fresh chunks a large part of a sequential write's cost.
// A chunk comes back here once its bytes are written to the log (they are read from there
// from then on), so a long write cycles through a few buffers. Bounded: past `pooledBytesMax`
// a returned buffer is left to the garbage collector, and a pool unused for `idleMs` is
// emptied (a burst of writes does not pin its buffers for the life of the mount).

export class ChunkPool {
  private readonly free = new Map<number, Buffer[]>() // by size in bytes
  private pooledBytes = 0
  private lastUsedMs = 0
  private idleTimer: NodeJS.Timeout | null = null
  readonly pooledBytesMax: number
  readonly idleMs: number
  private readonly allocate: (sizeBytes: number) => Buffer

  /** `allocate` makes a buffer the pool has none of (arbitrary contents). */
  constructor(pooledBytesMax: number, idleMs = 10_000, allocate: (sizeBytes: number) => Buffer = (n) => Buffer.allocUnsafe(n)) {
    if (!Number.isSafeInteger(pooledBytesMax) || pooledBytesMax < 0) throw new RangeError(`ChunkPool: pooledBytesMax ${pooledBytesMax}`)
    if (!(idleMs > 0)) throw new RangeError(`ChunkPool: idleMs ${idleMs}`)
    this.pooledBytesMax = pooledBytesMax
    this.idleMs = idleMs
    this.allocate = allocate
  }

  /** A buffer of exactly `sizeBytes`, with arbitrary contents. */
  take(sizeBytes: number): Buffer {
    this.lastUsedMs = Date.now()
    const bytes = this.free.get(sizeBytes)?.pop()
    if (bytes === undefined) return this.allocate(sizeBytes)
    this.pooledBytes -= bytes.length
    return bytes
  }

  /** Hands a buffer back; the caller must not touch it again. */
  give(bytes: Buffer): void {
    this.lastUsedMs = Date.now()
    if (this.pooledBytes + bytes.length > this.pooledBytesMax) return
    let list = this.free.get(bytes.length)
    if (list === undefined) this.free.set(bytes.length, (list = []))
    list.push(bytes)
    this.pooledBytes += bytes.length
    this.armIdleTimer(this.idleMs)
  }

  get sizeBytes(): number {
    return this.pooledBytes
  }

  private armIdleTimer(delayMs: number): void {
    if (this.idleTimer !== null) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null
      const idleForMs = Date.now() - this.lastUsedMs
      if (idleForMs < this.idleMs) return this.armIdleTimer(this.idleMs - idleForMs)
      this.free.clear()
      this.pooledBytes = 0
    }, delayMs)
    this.idleTimer.unref() // never keeps the process alive
  }
}
