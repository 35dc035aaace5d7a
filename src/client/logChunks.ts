// The embedded log's chunks (DataChunk, client.ts): the log's needs of file bytes met as they
// arrive, so the JS thread that answers FUSE never reads them again. A large chunk lives in
// shared, page-aligned memory: it is checksummed on a worker thread when sealed and written
// with O_DIRECT. A small one is checksummed piece by piece after each write's reply
// (setImmediate), while the kernel turns the reply around. Once a chunk's bytes are written its
// buffer goes back to the pool and they are read from the log: memory stays bounded however
// much is written between commit points.

import { crc32c } from '../store/crc32c.js'
import { CrcWorker } from '../store/crcWorker.js'
import type { DataRef, Ino } from '../store/records.js'
import type { PageOffsetOf } from '../store/segmentLog.js'
import { ChunkPool } from './chunkPool.js'
import { dataRefAt, type DataChunk } from './client.js'

const CHUNK_POOL_BYTES_MAX = 64 * 1024 * 1024 // enough for the writes a log stall (a journal commit) holds back
/** Chunks this large are checksummed on the CRC worker (smaller: the round trip would cost more than it saves). */
const CRC_WORKER_MIN_BYTES = 1024 * 1024

/** Where sealed chunks go: the log, with the CRC32C of the bytes (EmbeddedClient). */
export interface LoggedData {
  appendData(ino: Ino, bytes: Uint8Array, crc: number | Promise<number>): { ref: DataRef; written: Promise<void> }
  /** Reads back bytes appended once their `written` resolved. */
  readData(ref: DataRef, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void>
}

/** The chunks of one embedded log: their pool and their checksum worker. */
export class LogChunks {
  readonly pool: ChunkPool
  readonly crcWorker = new CrcWorker()

  /** `pageOffsetOf`: the log writes page-aligned large payloads with O_DIRECT (SegmentLog.writeLargePayloadsDirect); large chunks are aligned with it. */
  constructor(pageOffsetOf?: PageOffsetOf) {
    // Buffers the CRC worker can read: the large ones, in shared memory.
    this.pool = new ChunkPool(CHUNK_POOL_BYTES_MAX, undefined, (n) => (n >= CRC_WORKER_MIN_BYTES ? CrcWorker.allocShared(n, pageOffsetOf) : Buffer.allocUnsafe(n)))
  }

  take(data: LoggedData, ino: Ino, sizeBytes: number): DataChunk {
    return new LogChunk(this, data, ino, this.pool.take(sizeBytes))
  }

  /** The log is closing: stops the checksum worker (what it still owed is computed here). */
  close(): Promise<void> {
    return this.crcWorker.close()
  }
}

class LogChunk implements DataChunk {
  private readonly chunks: LogChunks
  private readonly data: LoggedData
  private readonly ino: Ino
  /** Null once the bytes are written and readable from the log, and the buffer is back in the pool. */
  private bytes: Buffer | null
  readonly capacityBytes: number
  usedBytes = 0
  ref: DataRef | null = null
  /** crc32c of bytes [0, crcBytes): kept up to date after each write, complete when sealed. */
  private crc = 0
  private crcBytes = 0
  private crcScheduled = false

  constructor(chunks: LogChunks, data: LoggedData, ino: Ino, bytes: Buffer) {
    this.chunks = chunks
    this.data = data
    this.ino = ino
    this.bytes = bytes
    this.capacityBytes = bytes.length
  }

  private get checksummedOnWorker(): boolean {
    return this.capacityBytes >= CRC_WORKER_MIN_BYTES
  }

  append(data: Buffer, lengthBytes: number): void {
    data.copy(this.bytes!, this.usedBytes, 0, lengthBytes) // never sealed yet: the bytes are here
    this.usedBytes += lengthBytes
    if (this.crcScheduled || this.checksummedOnWorker) return
    // After the reply: the checksum overlaps the kernel's turnaround to the next write.
    this.crcScheduled = true
    setImmediate(() => {
      this.crcScheduled = false
      this.updateCrc()
    })
  }

  /** Brings the CRC up to the used bytes. */
  private updateCrc(): void {
    if (this.crcBytes === this.usedBytes || this.bytes === null) return
    this.crc = crc32c(this.bytes.subarray(this.crcBytes, this.usedBytes), this.crc)
    this.crcBytes = this.usedBytes
  }

  seal(): void {
    if (this.ref !== null || this.usedBytes === 0) return
    const bytes = this.bytes!
    const payload = bytes.subarray(0, this.usedBytes)
    let crc: number | Promise<number>
    if (this.checksummedOnWorker) {
      crc = this.chunks.crcWorker.crcOf(payload)
    } else {
      this.updateCrc()
      crc = this.crc
    }
    const { ref, written } = this.data.appendData(this.ino, payload, crc)
    this.ref = ref
    written.then(
      () => {
        this.bytes = null
        this.chunks.pool.give(bytes)
      },
      () => undefined, // the log failed: keep the bytes in memory (the commit fails on its own)
    )
  }

  copyTo(offset: number, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> | undefined {
    if (this.bytes !== null) {
      this.bytes.copy(into, intoOffset, offset, offset + lengthBytes)
      return undefined
    }
    return this.data.readData(dataRefAt(this.ref!, offset), into, intoOffset, lengthBytes)
  }
}
