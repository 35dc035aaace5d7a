// Whole-store transfer: a donor's store as it stands, for a member whose log ends below the
// donor's log base (segment GC deleted the records it misses, so no record suffix can bring it
// up to date: transfer.ts refuses that). What travels is the store itself at one point, the
// donor's last applied record: its segment files as they are, from the first one segment GC left
// up to the log's tail, then every entry of its index. Positions in the index are the donor's,
// and so are the copied files', so the copy answers every read as the donor does (the floor, the
// pins and holds, snapshots, the audit, the compaction cursor and the log base are all index
// entries); the records after that point then come as an ordinary transfer (transfer.ts) from
// the image's stamp. The files go up to the tail, not to the entry after the last applied
// record: segment GC's copies, which the index names, lie past that until a record is applied.
//
// The donor holds segment GC off while it serves an image (Store.holdSegments) and checks on
// every batch that it applied nothing since the image's point: an image is served only by a
// donor that does not apply meanwhile (an epoch's donor, between epochs), and a change fails the
// transfer rather than mixing two states.
//
// The joiner writes the image beside its store (`incoming-image/`), syncs it, and marks it
// complete (`READY`, durably). Installing moves its index, then its segments, into the store's
// place; a member that starts with a READY image finishes that first, one without removes the
// partial image. So a crash at any point leaves the old store (or the empty one a discard left),
// or the whole image: never a mix.

import path from 'node:path'
import { FffsError } from '../errors.js'
import type { Disk, DiskFile, IndexDb, IndexOp } from '../store/disk.js'
import { keys } from '../store/keys.js'
import { segmentName, type LogPosition } from '../store/segmentLog.js'
import type { Store } from '../store/store.js'
import { hlcToIso, type HlcStamp } from '../temporal/hlc.js'
import type { Clock, Timer } from './clock.js'
import { TRANSFER_BATCH_BYTES } from './transfer.js'

export const IMAGE_DIR = 'incoming-image' // in the data directory, beside the store's index/ and segments/
const READY_FILE = 'READY' // in IMAGE_DIR: the image is complete and synced (its text: the image's stamp)
const STORE_PARTS = ['index', 'segments'] as const // installed in this order (the index first: see finishImageInstall)
const INDEX_ENTRIES_PER_READ = 4096
const SESSION_IDLE_MS = 60_000 // a donor lets segment GC run again once an image's joiner asked nothing for this long

/** Where an image transfer stands. Fixed by the first batch: the image's point (`stamp`, `end`); then what was sent. */
export interface ImageCursor {
  readonly session: number
  readonly stamp: string // HlcStamp, decimal: the donor's last applied record
  readonly endSegment: number // the log is copied up to here: its tail at the image's point
  readonly endOffset: number
  readonly segment: number // the next bytes to send: of this segment, from this offset (segment > endSegment: the index)
  readonly offset: number
  readonly indexAfter: string | null // hex: the last index key sent (null: none yet)
}

/** One item of a batch; its bytes are the next ones of the body. */
type ImageItem =
  | { readonly segment: number; readonly offset: number; readonly sizeBytes: number } // bytes of a segment file at `offset`
  | { readonly entries: number; readonly sizeBytes: number } // index entries: per entry u32 key length, u32 value length, key, value

export interface ImageBatch {
  readonly items: readonly ImageItem[]
  readonly cursor: ImageCursor
  readonly done: boolean
}

// ---- the donor ----

/**
 * A donor's side: the image's point taken and segment GC held off at the first batch, each next
 * batch read from the cursor. A session ends with its last batch or SESSION_IDLE_MS after its
 * last request; a cursor of no session (the donor restarted, or the joiner went quiet) is refused,
 * and the joiner starts over.
 */
export class ImageExport {
  private readonly store: Store
  private readonly clock: Clock
  private readonly batchBytes: number
  private readonly sessions = new Map<number, { release: () => void; idle: Timer | null }>()
  private nextSession = 1

  constructor(store: Store, clock: Clock, batchBytes = TRANSFER_BATCH_BYTES) {
    this.store = store
    this.clock = clock
    this.batchBytes = batchBytes
  }

  /** The batch after `cursor` (null: the first; then `totalBytes` estimates the whole image). */
  async next(cursor: ImageCursor | null): Promise<{ batch: ImageBatch; body: Buffer; totalBytes?: number }> {
    if (cursor === null) {
      const release = await this.store.holdSegments()
      const session = this.nextSession++
      this.sessions.set(session, { release, idle: null })
      try {
        const { stamp, end } = await this.store.imagePoint()
        const files = (await this.store.segmentFiles()).filter((f) => f.segment <= end.segment)
        const first = files[0]?.segment ?? end.segment + 1
        const totalBytes = files.reduce((sum, f) => sum + (f.segment === end.segment ? end.offset : f.sizeBytes), 0)
        const start: ImageCursor = { session, stamp: stamp.toString(), endSegment: end.segment, endOffset: end.offset, segment: first, offset: 0, indexAfter: null }
        return { ...(await this.batchAfter(start)), totalBytes }
      } catch (err) {
        this.end(session)
        throw err
      }
    }
    if (!this.sessions.has(cursor.session)) throw new FffsError('EAGAIN', `this member no longer serves that whole-store image (it restarted, or the transfer paused over ${SESSION_IDLE_MS / 1000} s): start over`)
    try {
      return await this.batchAfter(cursor)
    } catch (err) {
      this.end(cursor.session)
      throw err
    }
  }

  /** Lets segment GC run again (the member stops). */
  clear(): void {
    for (const session of [...this.sessions.keys()]) this.end(session)
  }

  private end(session: number): void {
    const held = this.sessions.get(session)
    if (held === undefined) return
    held.idle?.cancel()
    held.release()
    this.sessions.delete(session)
  }

  private async batchAfter(cursor: ImageCursor): Promise<{ batch: ImageBatch; body: Buffer }> {
    this.unchangedSince(cursor)
    const items: ImageItem[] = []
    const pieces: Array<{ readonly offset: number; readonly from: LogPosition | Buffer; readonly sizeBytes: number }> = []
    let sizeBytes = 0
    let next = cursor
    const room = (): number => this.batchBytes - sizeBytes

    // Segment files, in order, up to the image's end.
    if (next.segment <= next.endSegment) {
      const files = (await this.store.segmentFiles()).filter((f) => f.segment >= next.segment && f.segment <= next.endSegment)
      for (const file of files) {
        const lengthBytes = file.segment === next.endSegment ? next.endOffset : file.sizeBytes
        const from = file.segment === next.segment ? next.offset : 0
        if (lengthBytes > file.sizeBytes) throw new Error(`invariant: segment ${file.segment} has ${file.sizeBytes} bytes, the image's point is at ${lengthBytes}`)
        const n = Math.min(lengthBytes - from, room())
        if (n > 0) {
          items.push({ segment: file.segment, offset: from, sizeBytes: n })
          pieces.push({ offset: sizeBytes, from: { segment: file.segment, offset: from }, sizeBytes: n })
          sizeBytes += n
        }
        next = from + n < lengthBytes ? { ...next, segment: file.segment, offset: from + n } : { ...next, segment: file.segment + 1, offset: 0 }
        if (room() <= 0) break
      }
      if (room() > 0) next = { ...next, segment: next.endSegment + 1, offset: 0 }
    }

    // Then the index, every entry.
    let done = false
    while (next.segment > next.endSegment && room() > 0) {
      const entries = await this.store.indexEntries(next.indexAfter === null ? null : Buffer.from(next.indexAfter, 'hex'), INDEX_ENTRIES_PER_READ)
      let taken = 0
      let encodedBytes = 0
      for (const [key, value] of entries) {
        if (taken > 0 && encodedBytes + 8 + key.length + value.length > room()) break
        encodedBytes += 8 + key.length + value.length
        taken++
      }
      if (taken > 0) {
        const encoded = Buffer.allocUnsafe(encodedBytes)
        let at = 0
        for (const [key, value] of entries.slice(0, taken)) {
          at = encoded.writeUInt32LE(key.length, at)
          at = encoded.writeUInt32LE(value.length, at)
          at += key.copy(encoded, at)
          at += value.copy(encoded, at)
        }
        items.push({ entries: taken, sizeBytes: encodedBytes })
        pieces.push({ offset: sizeBytes, from: encoded, sizeBytes: encodedBytes })
        sizeBytes += encodedBytes
        next = { ...next, indexAfter: entries[taken - 1]![0].toString('hex') }
      }
      if (taken === entries.length && entries.length < INDEX_ENTRIES_PER_READ) {
        done = true
        break
      }
    }

    const body = this.store.allocateData(sizeBytes)
    await Promise.all(pieces.map(({ offset, from, sizeBytes: n }) => (Buffer.isBuffer(from) ? void from.copy(body, offset) : this.store.readData(from, body, offset, n))))
    this.unchangedSince(cursor) // what was read belongs to the image's point
    if (done) this.end(cursor.session)
    else this.keepAlive(cursor.session)
    return { batch: { items, cursor: next, done }, body }
  }

  private unchangedSince(cursor: ImageCursor): void {
    const applied = this.store.appliedStamp
    if (applied.toString() !== cursor.stamp) throw new FffsError('EAGAIN', `this member applied records (now at ${hlcToIso(applied)}) during a whole-store transfer of its store at ${hlcToIso(BigInt(cursor.stamp))}: start over`)
  }

  private keepAlive(session: number): void {
    const held = this.sessions.get(session)
    if (held === undefined) return
    held.idle?.cancel()
    held.idle = this.clock.setTimer(SESSION_IDLE_MS, () => this.end(session))
  }
}

// ---- the joiner ----

/**
 * A joiner's side: the image written into IMAGE_DIR as it comes (segment bytes appended to their
 * files, index entries put into a new index there), synced and marked complete by `finish`.
 */
export class ImageImport {
  private readonly disk: Disk
  private readonly dir: string
  private index: IndexDb | null = null
  private file: { readonly segment: number; readonly handle: DiskFile; sizeBytes: number } | null = null
  stamp: HlcStamp | null = null // the image's point, once the first batch came
  bytes = 0 // of batch bodies taken
  entries = 0 // index entries taken

  /** `dataDir`: the member's data directory (the image goes to its IMAGE_DIR). */
  constructor(disk: Disk, dataDir: string) {
    this.disk = disk
    this.dir = path.join(dataDir, IMAGE_DIR)
  }

  /** An empty IMAGE_DIR (a partial image of an earlier attempt removed). */
  async begin(): Promise<void> {
    await this.disk.remove(this.dir)
    await this.disk.mkdirp(path.join(this.dir, 'segments'))
    this.index = this.disk.openIndex(path.join(this.dir, 'index'))
    await this.index.open()
  }

  async take(batch: ImageBatch, body: Buffer): Promise<void> {
    const index = this.index
    if (index === null) throw new Error('ImageImport.take before begin')
    this.stamp ??= BigInt(batch.cursor.stamp)
    if (this.stamp.toString() !== batch.cursor.stamp) throw new Error(`invariant: a whole-store image of ${this.stamp} went on with a batch of ${batch.cursor.stamp}`)
    let offset = 0
    const bytesOf = (sizeBytes: number): Buffer => {
      if (offset + sizeBytes > body.length) throw new Error(`whole-store image batch body ends at ${body.length} bytes, its items name ${offset + sizeBytes}`)
      const bytes = body.subarray(offset, offset + sizeBytes)
      offset += sizeBytes
      return bytes
    }
    for (const item of batch.items) {
      if ('segment' in item) {
        const file = await this.segmentFile(item.segment)
        if (item.offset !== file.sizeBytes) throw new Error(`whole-store image: bytes of segment ${item.segment} at ${item.offset}, ${file.sizeBytes} written there`)
        await file.handle.write(bytesOf(item.sizeBytes), 0, item.sizeBytes, item.offset)
        file.sizeBytes += item.sizeBytes
      } else {
        const encoded = bytesOf(item.sizeBytes)
        const ops: IndexOp[] = []
        for (let at = 0, i = 0; i < item.entries; i++) {
          const keyBytes = encoded.readUInt32LE(at)
          const valueBytes = encoded.readUInt32LE(at + 4)
          const key = Buffer.from(encoded.subarray(at + 8, at + 8 + keyBytes))
          ops.push({ type: 'put', key, value: Buffer.from(encoded.subarray(at + 8 + keyBytes, at + 8 + keyBytes + valueBytes)) })
          at += 8 + keyBytes + valueBytes
        }
        await index.batch(ops)
        this.entries += item.entries
      }
    }
    if (offset !== body.length) throw new Error(`whole-store image batch body has ${body.length} bytes, its items name ${offset}`)
    this.bytes += body.length
  }

  /** Makes the image durable and marks it complete (installed by finishImageInstall). */
  async finish(): Promise<void> {
    const index = this.index
    if (index === null || this.stamp === null) throw new Error('ImageImport.finish before any batch')
    await this.closeFile(true)
    await this.disk.syncDir(path.join(this.dir, 'segments'))
    // A synced write makes every earlier write of the index durable with it; `applied` is in every image.
    const applied = index.getSync(keys.meta('applied'))
    if (applied === undefined) throw new Error('whole-store image: its index has no applied position')
    await index.batch([{ type: 'put', key: keys.meta('applied'), value: applied }], { sync: true })
    await index.close()
    this.index = null
    await this.disk.syncDir(this.dir)
    this.disk.writeTextDurably(path.join(this.dir, READY_FILE), this.stamp.toString())
  }

  /** Closes what is open (the partial image stays until the next begin, or the next start removes it). */
  async abandon(): Promise<void> {
    await this.closeFile(false).catch(() => undefined)
    await this.index?.close().catch(() => undefined)
    this.index = null
  }

  private async segmentFile(segment: number): Promise<{ readonly segment: number; readonly handle: DiskFile; sizeBytes: number }> {
    if (this.file?.segment === segment) return this.file
    await this.closeFile(true)
    const file = path.join(this.dir, 'segments', segmentName(segment))
    this.file = { segment, handle: await this.disk.open(file, 'a+'), sizeBytes: (await this.disk.sizeOf(file)) ?? 0 }
    return this.file
  }

  private async closeFile(sync: boolean): Promise<void> {
    const file = this.file
    this.file = null
    if (file === null) return
    try {
      if (sync) await file.handle.datasync()
    } finally {
      await file.handle.close()
    }
  }
}

/**
 * Run before the store in `dataDir` opens, and to install an image just finished: a complete
 * image (READY) replaces the store's index, then its segments (each rename made durable before
 * the next; one already moved is not moved again), and the image directory goes; an incomplete
 * one is removed. The index goes first: a crash between the two leaves READY and the image's
 * segments, and the next start finishes the move before anything opens the store. Returns the
 * image's stamp when one was installed.
 */
export async function finishImageInstall(disk: Disk, dataDir: string): Promise<HlcStamp | null> {
  const dir = path.join(dataDir, IMAGE_DIR)
  const names = await disk.list(dir)
  if (names.length === 0) return null
  const ready = disk.readText(path.join(dir, READY_FILE))
  if (ready === null) {
    await disk.remove(dir)
    return null
  }
  for (const part of STORE_PARTS) {
    if (!names.includes(part)) continue
    await disk.remove(path.join(dataDir, part))
    await disk.rename(path.join(dir, part), path.join(dataDir, part))
    await disk.syncDir(dataDir)
  }
  await disk.remove(path.join(dir, READY_FILE))
  await disk.syncDir(dir)
  await disk.remove(dir)
  return BigInt(ready.trim())
}
