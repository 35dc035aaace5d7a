// The store's index (LevelDB in production) for the simulated disk: an ordered map of byte keys
// that lives on the disk (it survives closing and a process crash) and, like LevelDB written
// without sync, may lose its most recent batches to a power loss (a prefix of the batches
// survives: LevelDB's write-ahead log is sequential).

import type { IndexDb, IndexOp, IndexRange } from '../store/disk.js'
import type { Prng } from './prng.js'

/** Batches a power loss may still take back; older ones are on the platter. */
const RECENT_BATCHES_MAX = 64

type Undo = Array<readonly [string, Buffer | undefined]>

/** The index's contents, kept by the disk. */
export class MemoryIndexData {
  private readonly sortedKeys: Buffer[] = []
  private readonly values = new Map<string, Buffer>()
  private readonly recent: Undo[] = [] // per batch, how to take it back

  get(key: Buffer): Buffer | undefined {
    return this.values.get(key.toString('latin1'))
  }

  /** `sync`: this batch and every one before it are on the platter (LevelDB syncs its log). */
  apply(ops: readonly IndexOp[], sync = false): void {
    const undo: Undo = []
    for (const op of ops) {
      const id = op.key.toString('latin1')
      undo.push([id, this.values.get(id)])
      this.set(id, op.type === 'put' ? Buffer.from(op.value) : undefined)
    }
    this.recent.push(undo)
    if (this.recent.length > RECENT_BATCHES_MAX || sync) this.recent.splice(0, sync ? this.recent.length : 1)
  }

  clear(): void {
    this.apply(this.sortedKeys.map((key) => ({ type: 'del', key })))
  }

  /** A power loss: some of the most recent batches are gone, newest first. */
  loseRecent(prng: Prng): void {
    for (let lost = prng.int(0, this.recent.length); lost > 0; lost--) {
      const undo = this.recent.pop()!
      for (let i = undo.length - 1; i >= 0; i--) this.set(undo[i]![0], undo[i]![1])
    }
    this.recent.length = 0
  }

  /** The entries in `range`, in key order (reversed on request), at most `limit`. */
  range(range: IndexRange): Array<[Buffer, Buffer]> {
    const low = range.gte !== undefined ? this.lowerBound(range.gte) : range.gt !== undefined ? this.upperBound(range.gt) : 0
    const high = range.lte !== undefined ? this.upperBound(range.lte) : range.lt !== undefined ? this.lowerBound(range.lt) : this.sortedKeys.length
    const keys = this.sortedKeys.slice(low, Math.max(low, high))
    if (range.reverse === true) keys.reverse()
    const limited = range.limit !== undefined && range.limit >= 0 ? keys.slice(0, range.limit) : keys
    return limited.map((key) => [key, this.values.get(key.toString('latin1'))!])
  }

  private set(id: string, value: Buffer | undefined): void {
    const key = Buffer.from(id, 'latin1')
    const at = this.lowerBound(key)
    const present = at < this.sortedKeys.length && this.sortedKeys[at]!.equals(key)
    if (value === undefined) {
      if (present) this.sortedKeys.splice(at, 1)
      this.values.delete(id)
      return
    }
    if (!present) this.sortedKeys.splice(at, 0, key)
    this.values.set(id, value)
  }

  /** The first position whose key is >= `key`. */
  private lowerBound(key: Buffer): number {
    let low = 0
    let high = this.sortedKeys.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (Buffer.compare(this.sortedKeys[mid]!, key) < 0) low = mid + 1
      else high = mid
    }
    return low
  }

  /** The first position whose key is > `key`. */
  private upperBound(key: Buffer): number {
    let low = 0
    let high = this.sortedKeys.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (Buffer.compare(this.sortedKeys[mid]!, key) <= 0) low = mid + 1
      else high = mid
    }
    return low
  }
}

/** One open of an index on the simulated disk. `complete` runs a write once it completes (the disk's latency and crashes). */
export class MemoryIndex implements IndexDb {
  private readonly dataOf: () => MemoryIndexData
  private readonly complete: (run: () => void) => Promise<void>
  private data: MemoryIndexData | null = null

  constructor(dataOf: () => MemoryIndexData, complete: (run: () => void) => Promise<void>) {
    this.dataOf = dataOf
    this.complete = complete
  }

  async open(): Promise<void> {
    this.data = this.dataOf()
  }

  async close(): Promise<void> {
    this.data = null
  }

  getSync(key: Buffer): Buffer | undefined {
    return this.opened().get(key)
  }

  batch(ops: IndexOp[], options: { readonly sync?: boolean } = {}): Promise<void> {
    const data = this.opened()
    const copy = ops.map((op) => ({ ...op }))
    return this.complete(() => data.apply(copy, options.sync === true))
  }

  iterator(range: IndexRange): AsyncIterable<[Buffer, Buffer]> & { all(): Promise<Array<[Buffer, Buffer]>> } {
    const entries = this.opened().range(range) // a snapshot, as a LevelDB iterator reads one
    return {
      all: async () => entries,
      [Symbol.asyncIterator]: async function* () {
        yield* entries
      },
    }
  }

  keys(range: IndexRange): AsyncIterable<Buffer> & { all(): Promise<Buffer[]> } {
    const keys = this.opened().range(range).map(([key]) => key)
    return {
      all: async () => keys,
      [Symbol.asyncIterator]: async function* () {
        yield* keys
      },
    }
  }

  clear(): Promise<void> {
    const data = this.opened()
    return this.complete(() => data.clear())
  }

  private opened(): MemoryIndexData {
    if (this.data === null) throw new Error('index used before open or after close')
    return this.data
  }
}
