// Chunks of file bytes on their way to a client's data path (DataChunk, client.ts): a client
// hands out its own kind (the embedded log's: logChunks.ts), or a caller gets plain memory whose
// bytes go to `appendData` as they are (a cluster client: the network needs nothing of them).

import type { DataRef, Ino } from '../store/records.js'
import type { Client, DataChunk } from './client.js'

/** A chunk of `sizeBytes` for file `ino`: the client's own kind, or plain memory. */
export function chunkFor(client: Client, ino: Ino, sizeBytes: number): DataChunk {
  return client.newChunk?.(ino, sizeBytes) ?? new PlainChunk(client, ino, sizeBytes)
}

/** Memory handed to `appendData` when sealed and kept until dropped: a cluster client may re-send the bytes after a failover until their version commits. */
class PlainChunk implements DataChunk {
  private readonly client: Client
  private readonly ino: Ino
  private readonly bytes: Buffer
  usedBytes = 0
  ref: DataRef | null = null

  constructor(client: Client, ino: Ino, sizeBytes: number) {
    this.client = client
    this.ino = ino
    this.bytes = Buffer.allocUnsafe(sizeBytes)
  }

  get capacityBytes(): number {
    return this.bytes.length
  }

  append(data: Buffer, lengthBytes: number): void {
    data.copy(this.bytes, this.usedBytes, 0, lengthBytes)
    this.usedBytes += lengthBytes
  }

  seal(): void {
    if (this.ref !== null || this.usedBytes === 0) return
    this.ref = this.client.appendData(this.ino, this.bytes.subarray(0, this.usedBytes)).ref
  }

  copyTo(offset: number, into: Buffer, intoOffset: number, lengthBytes: number): undefined {
    this.bytes.copy(into, intoOffset, offset, offset + lengthBytes)
    return undefined
  }
}
