// CRC32C of large buffers on a worker thread. The FUSE front end answers every write from the
// one JS thread, so a checksum computed there (~0.25 ms per MiB) delays the next write; a
// buffer backed by a SharedArrayBuffer can be checksummed beside it instead. If the worker
// fails, every checksum it owes, and every later one, is computed on the calling thread: a
// checksum is never lost, only moved back.

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { crc32c } from './crc32c.js'
import { PAGE_BYTES, type PageOffsetOf } from './segmentLog.js'

const CRC_MODULE = createRequire(import.meta.url).resolve('@node-rs/crc32')

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { crc32c } = require(${JSON.stringify(CRC_MODULE)})
parentPort.on('message', ({ id, buffer, offset, length }) => {
  parentPort.postMessage({ id, crc: crc32c(Buffer.from(buffer, offset, length)) })
})
`

interface Pending {
  readonly bytes: Buffer
  resolve(crc: number): void
}

export class CrcWorker {
  private worker: Worker | null = null
  private failed = false
  private nextId = 1
  private readonly pending = new Map<number, Pending>()

  /** A buffer `crcOf` checksums off this thread: `sizeBytes`, arbitrary contents, shared memory. */
  static allocShared(sizeBytes: number, pageOffsetOf?: PageOffsetOf): Buffer {
    if (pageOffsetOf === undefined) return Buffer.from(new SharedArrayBuffer(sizeBytes))
    // Page-aligned (for O_DIRECT writes): a page more, and the view starts at the first page boundary.
    const whole = Buffer.from(new SharedArrayBuffer(sizeBytes + PAGE_BYTES))
    const skipBytes = (PAGE_BYTES - pageOffsetOf(whole)) % PAGE_BYTES
    return whole.subarray(skipBytes, skipBytes + sizeBytes)
  }

  /** crc32c(bytes); on the worker when `bytes` lies in shared memory. `bytes` must not change until it resolves. */
  crcOf(bytes: Buffer): Promise<number> {
    if (!(bytes.buffer instanceof SharedArrayBuffer) || this.failed) return Promise.resolve(crc32c(bytes))
    const worker = this.start()
    const id = this.nextId++
    return new Promise<number>((resolve) => {
      this.pending.set(id, { bytes, resolve })
      worker.postMessage({ id, buffer: bytes.buffer, offset: bytes.byteOffset, length: bytes.length })
    })
  }

  private start(): Worker {
    if (this.worker !== null) return this.worker
    const worker = new Worker(WORKER_SOURCE, { eval: true })
    worker.unref() // never keeps the process alive; pending checksums belong to writes that do
    worker.on('message', ({ id, crc }: { id: number; crc: number }) => {
      const pending = this.pending.get(id)
      if (pending === undefined) return
      this.pending.delete(id)
      pending.resolve(crc)
    })
    const fail = (): void => {
      this.failed = true
      this.worker = null
      for (const [id, pending] of this.pending) {
        this.pending.delete(id)
        pending.resolve(crc32c(pending.bytes))
      }
    }
    worker.on('error', fail)
    worker.on('exit', fail)
    this.worker = worker
    return worker
  }

  async close(): Promise<void> {
    const worker = this.worker
    if (worker === null) return
    await worker.terminate() // 'exit' computes whatever was still owed here
  }
}
