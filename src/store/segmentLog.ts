// The append-only segment log: every ordered record and every block of file data, in one
// sequence of CRC32C-checksummed entries spread over fixed-size segment files. It is the
// write-ahead log of the store: an entry is durable once `sync()` has returned, and the
// LevelDB index is rebuilt from it after a crash. File bytes are written here once and the
// index points at them (key-value separation, as in WiscKey).
//
// Entry layout (little-endian):
//   magic u32 | kind u8 | pad u8[3] | payloadSizeBytes u32 | crc32c u32 | payload
// The CRC covers the first 12 header bytes and the payload, so a torn or corrupted entry
// (short write, garbage after a crash) fails the check and recovery truncates there.
// A Pad entry (payload ignored) puts the next entry's payload at a page boundary, where a
// large payload is written with O_DIRECT (writeLargePayloadsDirect).

import { constants as fsConstants } from 'node:fs'
import path from 'node:path'
import { errors, FffsError } from '../errors.js'
import { crc32c, crc32cCombine, crc32cOfSuffix } from './crc32c.js'
import { nodeDisk, type Disk, type DiskFile } from './disk.js'

export const ENTRY_HEADER_BYTES = 16
const ENTRY_MAGIC = 0x31534646 // 'FFS1'
export const SEGMENT_SIZE_BYTES_DEFAULT = 256 * 1024 * 1024
const SEGMENT_SIZE_BYTES_MIN = 4 * 1024 * 1024

/**
 * The segment size for a log on a file system of `diskBytes`: a 64th of it, a power of two
 * from 4 MiB to 256 MiB. Segment GC frees space a whole segment at a time, so on a small disk
 * (a 200 MB volume) segments must be small enough to be sealed and collected long before it fills.
 */
export function segmentSizeForDisk(diskBytes: number): number {
  let size = SEGMENT_SIZE_BYTES_DEFAULT
  while (size > SEGMENT_SIZE_BYTES_MIN && size * 64 > diskBytes) size /= 2
  return size
}
export const PAGE_BYTES = 4096
/** Payloads this large (and page-aligned in memory) go to the file with O_DIRECT, when enabled. */
export const DIRECT_PAYLOAD_MIN_BYTES = 1024 * 1024

export enum EntryKind {
  Data = 1,
  Record = 2,
  Pad = 3, // alignment filler: skipped by every reader
}

/** The address of a view's first byte modulo the page size (the native addon's pageOffsetOf). */
export type PageOffsetOf = (view: Uint8Array) => number

/** `sizeBytes` of memory starting at a page boundary (what O_DIRECT reads and writes need). */
export function pageAlignedBuffer(sizeBytes: number, pageOffsetOf: PageOffsetOf): Buffer {
  const whole = Buffer.allocUnsafe(sizeBytes + PAGE_BYTES)
  const skipBytes = (PAGE_BYTES - pageOffsetOf(whole)) % PAGE_BYTES
  return whole.subarray(skipBytes, skipBytes + sizeBytes)
}

/** posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED); length 0 = to the end of the file. */
export type PageCacheDrop = (fd: number, offset: number, length: number) => void

/** Entries written in one writev, contiguous in one segment. */
interface WriteGroup {
  readonly segment: number
  readonly startOffset: number
  endOffset: number
  readonly buffers: Uint8Array[] // header, payload, header, payload, ...
  written: Promise<void>
}

/**
 * An ordinary entry this small, appended while no write is queued, is written at once on the JS
 * thread (DiskFile.writevNow): a pwritev of a record or a small file's bytes into the page cache
 * costs ~10 µs, a round trip through libuv's threadpool several times that.
 */
const WRITE_NOW_MAX_BYTES = 64 * 1024

/** Entries per writev at most (two buffers each: well inside IOV_MAX, 1024 on Linux). */
const GROUP_ENTRIES_MAX = 256

/** Where an entry's payload lives. */
export interface LogPosition {
  readonly segment: number
  readonly offset: number // payload offset inside the segment file
}

export interface LogEntry {
  readonly kind: EntryKind
  readonly position: LogPosition // of the payload
  readonly next: LogPosition // where the entry after this one starts (offset is an entry start)
  readonly payload: Buffer
}

/** A segment's file name in the log's directory. */
export function segmentName(segment: number): string {
  return `seg-${String(segment).padStart(8, '0')}.log`
}

/** `payloadCrc`, when the caller has it, is crc32c(payload): the payload is then not read again. */
function encodeHeader(kind: EntryKind, payload: Uint8Array, payloadCrc: number | undefined): Buffer {
  const header = Buffer.alloc(ENTRY_HEADER_BYTES)
  header.writeUInt32LE(ENTRY_MAGIC, 0)
  header.writeUInt8(kind, 4)
  header.writeUInt32LE(payload.length, 8)
  const headerCrc = crc32c(header.subarray(0, 12))
  const crc =
    payloadCrc === undefined
      ? crc32c(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), headerCrc)
      : crc32cCombine(headerCrc, payloadCrc, payload.length)
  header.writeUInt32LE(crc, 12)
  return header
}

/** Bytes of Pad entry to put at `start` so that the entry after it has its payload at a page boundary. */
function padBefore(start: number): number {
  const gap = (PAGE_BYTES - ((start + ENTRY_HEADER_BYTES) % PAGE_BYTES)) % PAGE_BYTES
  return gap > 0 && gap < ENTRY_HEADER_BYTES ? gap + PAGE_BYTES : gap // a Pad entry needs room for its header
}

function padEntry(sizeBytes: number): Buffer {
  const payload = Buffer.alloc(sizeBytes - ENTRY_HEADER_BYTES)
  return Buffer.concat([encodeHeader(EntryKind.Pad, payload, undefined), payload])
}

export class SegmentLog {
  readonly dir: string
  segmentSizeBytes: number // entries roll over to a new segment past it (segments already written may be of another size)
  private readonly disk: Disk
  private tailSegment = 0
  private tailOffset = 0 // next entry start in tailSegment
  private writer: DiskFile | null = null
  private writerSegment = 0 // the segment `writer` is open on
  private isOpen = false // between open and close (`writer` is null for a moment while a segment changes)
  /** Read handles by segment, as promises: concurrent first reads of a segment share one open. */
  private readonly readers = new Map<number, Promise<DiskFile>>()
  private readonly directReaders = new Map<number, Promise<DiskFile>>() // O_DIRECT, for large page-aligned payloads
  /** Serialises writes so file order equals position order; fsync follows every earlier write. */
  private writeChain: Promise<void> = Promise.resolve()
  private queuedWrites = 0 // on writeChain, not yet done
  /** Where the bytes in the files end: appended entries past it are still queued on writeChain. */
  private writtenTo: LogPosition = { segment: 0, offset: 0 }
  private writeError: Error | null = null
  /**
   * The disk ran full writing the entry at `at`: it and every entry after it fail (ENOSPC), new
   * appends are refused, and once the writes queued behind it are done the log is cut back to
   * `at` and takes appends again. Unlike other write errors this is not sticky: nothing written
   * before `at` is touched, nothing after it was acknowledged.
   */
  private spaceFailure: { readonly at: LogPosition; readonly error: FffsError } | null = null
  private appendedCount = 0
  private syncedCount = 0
  private syncInFlight: Promise<void> | null = null
  /** A failed fdatasync: sticky, since a later one may succeed without the lost pages (Linux reports a writeback error once). */
  private syncError: Error | null = null
  private unsyncedBytes = 0 // appended since the last sync started
  private cacheDrop: { readonly drop: PageCacheDrop; readonly keepBytes: number; readonly syncEveryBytes: number; droppedTo: number; segment: number } | null = null
  /** Ordinary entries waiting to be written together (appendToGroup); null: the next one starts a group. */
  private group: WriteGroup | null = null
  /** Set by writeLargePayloadsDirect; `handle` is the tail segment opened O_DIRECT, when open. */
  private direct: { readonly pageOffsetOf: PageOffsetOf; handle: DiskFile | null; segment: number } | null = null

  constructor(dir: string, segmentSizeBytes = SEGMENT_SIZE_BYTES_DEFAULT, disk: Disk = nodeDisk) {
    this.dir = dir
    this.segmentSizeBytes = segmentSizeBytes
    this.disk = disk
  }

  /**
   * Opens the log and yields, in order, every intact entry from `from` on. The first entry
   * that is incomplete or fails its checksum ends the log: it and everything after it is
   * truncated away (a torn tail is dropped, never served). Returns when the tail is ready.
   */
  async open(from: LogPosition, onEntry: (entry: LogEntry) => Promise<void>): Promise<{ truncatedBytes: number }> {
    await this.disk.mkdirp(this.dir)
    const segments = (await this.disk.list(this.dir))
      .map((name) => /^seg-(\d{8})\.log$/.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    let truncatedBytes = 0
    let position: LogPosition = from
    const last = segments.length > 0 ? segments[segments.length - 1]! : 0
    for (let segment = from.segment; segment <= last; segment++) {
      const file = path.join(this.dir, segmentName(segment))
      const sizeBytes = (await this.disk.sizeOf(file)) ?? 0
      const start = segment === from.segment ? from.offset : 0
      const end = await this.scanSegment(segment, start, sizeBytes, onEntry)
      position = { segment, offset: end }
      if (end < sizeBytes) {
        truncatedBytes += sizeBytes - end
        await this.disk.truncate(file, end)
        for (const later of segments.filter((s) => s > segment)) {
          truncatedBytes += (await this.disk.sizeOf(path.join(this.dir, segmentName(later)))) ?? 0
          await this.disk.remove(path.join(this.dir, segmentName(later)))
        }
        break
      }
    }
    this.tailSegment = position.segment
    this.tailOffset = position.offset
    this.writtenTo = { segment: position.segment, offset: position.offset }
    // The tail may end in bytes a previous process wrote and never synced (it was killed): still
    // in the page cache, lost if the machine goes down. The first sync covers them, even if this
    // process appended nothing (a member that restarted makes its log durable before it serves
    // it as an epoch's start).
    this.appendedCount = this.syncedCount + 1
    if (this.cacheDrop !== null) {
      this.cacheDrop.segment = this.tailSegment
      this.cacheDrop.droppedTo = 0
    }
    this.writer = await this.disk.open(path.join(this.dir, segmentName(this.tailSegment)), 'a+')
    this.writerSegment = this.tailSegment
    this.isOpen = true
    return { truncatedBytes }
  }

  /** Where the next entry goes. */
  get tail(): LogPosition {
    return { segment: this.tailSegment, offset: this.tailOffset }
  }

  /** The segment files there are, oldest first, with their sizes. */
  async segmentFiles(): Promise<Array<{ segment: number; sizeBytes: number }>> {
    const out: Array<{ segment: number; sizeBytes: number }> = []
    for (const name of await this.disk.list(this.dir)) {
      const match = /^seg-(\d{8})\.log$/.exec(name)
      const sizeBytes = match === null ? null : await this.disk.sizeOf(path.join(this.dir, name))
      if (match !== null && sizeBytes !== null) out.push({ segment: Number(match[1]), sizeBytes })
    }
    return out.sort((a, b) => a.segment - b.segment)
  }

  /** Every intact entry of one sealed segment, in order (segment GC reads the records of a segment it did not see written). */
  async scanSealed(segment: number, onEntry: (entry: LogEntry) => Promise<void>): Promise<void> {
    if (segment >= this.tailSegment) throw new Error(`SegmentLog.scanSealed: segment ${segment} is not sealed (the tail is ${this.tailSegment})`)
    const sizeBytes = (await this.disk.sizeOf(path.join(this.dir, segmentName(segment)))) ?? 0
    await this.scanSegment(segment, 0, sizeBytes, onEntry)
  }

  /**
   * Deletes whole sealed segments that nothing names any more (segment GC, once the index no
   * longer points into them and the reads that might have are done). Their open read handles are
   * closed first; the directory is synced after.
   */
  async removeSegments(segments: readonly number[]): Promise<void> {
    for (const segment of segments) {
      if (segment >= this.tailSegment) throw new Error(`SegmentLog.removeSegments: segment ${segment} is not sealed (the tail is ${this.tailSegment})`)
      for (const handles of [this.readers, this.directReaders]) {
        const open = handles.get(segment)
        handles.delete(segment)
        await open?.then((h) => h.close(), () => undefined)
      }
      await this.disk.remove(path.join(this.dir, segmentName(segment)))
    }
    await this.disk.syncDir(this.dir)
  }

  /** Whether the log's files reach `position` (before open: the index's `applied` must not lie beyond them). */
  async reaches(position: LogPosition): Promise<boolean> {
    if (position.offset === 0 && position.segment === 0) return true
    const sizeBytes = await this.disk.sizeOf(path.join(this.dir, segmentName(position.segment)))
    return sizeBytes !== null && sizeBytes >= position.offset
  }

  /** Reads intact entries of one segment from `start`; returns where reading stopped (onEntry returning false stops before that entry). */
  private async scanSegment(segment: number, start: number, sizeBytes: number, onEntry: (e: LogEntry) => Promise<boolean | void>): Promise<number> {
    const handle = await this.disk.open(path.join(this.dir, segmentName(segment)), 'r').catch(() => null)
    if (handle === null) return 0
    try {
      const header = Buffer.alloc(ENTRY_HEADER_BYTES)
      let offset = start
      while (offset + ENTRY_HEADER_BYTES <= sizeBytes) {
        await handle.read(header, 0, ENTRY_HEADER_BYTES, offset)
        if (header.readUInt32LE(0) !== ENTRY_MAGIC) break
        const payloadSizeBytes = header.readUInt32LE(8)
        if (offset + ENTRY_HEADER_BYTES + payloadSizeBytes > sizeBytes) break
        const payload = Buffer.allocUnsafe(payloadSizeBytes)
        await handle.read(payload, 0, payloadSizeBytes, offset + ENTRY_HEADER_BYTES)
        const crc = crc32c(payload, crc32c(header.subarray(0, 12)))
        if (crc !== header.readUInt32LE(12)) break
        const kind = header.readUInt8(4) as EntryKind
        const next = offset + ENTRY_HEADER_BYTES + payloadSizeBytes
        if (kind === EntryKind.Pad) {
          offset = next
          continue
        }
        if ((await onEntry({ kind, position: { segment, offset: offset + ENTRY_HEADER_BYTES }, next: { segment, offset: next }, payload })) === false) break
        offset = next
      }
      return offset
    } finally {
      await handle.close()
    }
  }

  /**
   * Appends an entry. The position is assigned synchronously (so callers can index it at
   * once); the bytes reach the file in position order. Not durable until `sync()`.
   * `payloadCrc` is crc32c(payload) if the caller computed it already (as bytes arrived) or is
   * computing it elsewhere (a promise: this entry and every later one wait for it): a wrong one
   * makes recovery end the log at this entry, so it must come from the very bytes.
   */
  append(kind: EntryKind, payload: Uint8Array, payloadCrc?: number | Promise<number>): { position: LogPosition; next: LogPosition; written: Promise<void> } {
    if (!this.isOpen) throw new Error('SegmentLog.append before open')
    if (this.writeError !== null) throw errors.corrupt(`log write failed earlier: ${this.writeError.message}`)
    if (this.spaceFailure !== null) throw this.spaceFailure.error
    if (this.syncError !== null) throw errors.corrupt(`log sync failed earlier: ${this.syncError.message}`)
    const entrySizeBytes = ENTRY_HEADER_BYTES + payload.length
    const direct = this.direct !== null && payload.length >= DIRECT_PAYLOAD_MIN_BYTES && this.direct.pageOffsetOf(payload) === 0
    let padBytes = direct ? padBefore(this.tailOffset) : 0
    let rollover = false
    if (this.tailOffset > 0 && this.tailOffset + padBytes + entrySizeBytes > this.segmentSizeBytes) {
      this.tailSegment += 1
      this.tailOffset = 0
      padBytes = direct ? padBefore(0) : 0
      rollover = true
    }
    const segment = this.tailSegment
    const entryOffset = this.tailOffset
    const payloadOffset = entryOffset + padBytes + ENTRY_HEADER_BYTES
    this.tailOffset += padBytes + entrySizeBytes
    const header = typeof payloadCrc === 'object' ? null : encodeHeader(kind, payload, payloadCrc)
    this.appendedCount += 1
    let written: Promise<void>
    if (padBytes === 0 && !direct && !rollover && header !== null) {
      written = this.appendToGroup(segment, entryOffset, header, payload)
    } else {
      this.group = null // the entries after this one are written after it
      written = this.chainWrite({ segment, offset: entryOffset }, async () => {
        const entryHeader = header ?? encodeHeader(kind, payload, await payloadCrc)
        if (rollover) await this.rollTo(segment)
        const writer = this.writer!
        if (padBytes === 0 && !direct) {
          await writer.writev([entryHeader, payload], entryOffset)
        } else {
          await writer.writev(padBytes > 0 ? [padEntry(padBytes), entryHeader] : [entryHeader], entryOffset)
          await this.writeDirect(segment, payload, payloadOffset)
        }
        this.writtenTo = { segment, offset: payloadOffset + payload.length }
      })
    }
    this.unsyncedBytes += padBytes + entrySizeBytes
    if (this.cacheDrop !== null && this.unsyncedBytes >= this.cacheDrop.syncEveryBytes && this.syncInFlight === null) {
      this.sync().catch(() => undefined) // background: the failure is kept in syncError and fails every later sync and append
    }
    return { position: { segment, offset: payloadOffset }, next: { segment, offset: this.tailOffset }, written }
  }

  /**
   * Queues a write of entries starting at `start` after every earlier one. A failure is sticky
   * (every later append fails), except a full disk (spaceFailure).
   */
  private chainWrite(start: LogPosition, write: () => Promise<void>): Promise<void> {
    this.queuedWrites += 1
    const run = this.writeChain.then(async () => {
      try {
        if (this.spaceFailure !== null) throw this.spaceFailure.error // queued behind the write that found the disk full: not written either
        await write()
      } catch (err) {
        throw this.writeFailed(start, err)
      } finally {
        this.queuedWrites -= 1
      }
    })
    this.writeChain = run.catch((err: Error) => {
      if (this.spaceFailure !== null && err === this.spaceFailure.error) return
      this.writeError ??= err
      throw err
    })
    return run
  }

  /** The error a failed write at `start` reports: a full disk starts the cut back (after every write queued behind it). */
  private writeFailed(start: LogPosition, err: unknown): unknown {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC' || (this.spaceFailure !== null && err === this.spaceFailure.error)) return err
    this.spaceFailure = { at: start, error: new FffsError('ENOSPC', `no space left on device: the log could not write at segment ${start.segment} offset ${start.offset}`) }
    this.writeChain = this.writeChain.then(() => this.cutBack()) // after every write queued behind this one
    return this.spaceFailure.error
  }

  /** Writes one small entry at once (WRITE_NOW_MAX_BYTES): nothing is queued before it. */
  private writeNow(segment: number, entryOffset: number, buffers: Uint8Array[]): Promise<void> {
    const writer = this.writer!
    let done = 0
    const total = buffers.reduce((sum, b) => sum + b.length, 0)
    try {
      while (done < total) {
        const rest = done === 0 ? buffers : [Buffer.concat(buffers).subarray(done)] // a short write: rare
        const bytesWritten = writer.writevNow!(rest, entryOffset + done)
        if (bytesWritten === 0) throw errors.corrupt(`log write made no progress at offset ${entryOffset + done}`)
        done += bytesWritten
      }
    } catch (err) {
      const reported = this.writeFailed({ segment, offset: entryOffset }, err)
      if (reported !== this.spaceFailure?.error) this.writeError ??= reported as Error
      return Promise.reject(reported)
    }
    this.writtenTo = { segment, offset: entryOffset + total }
    return Promise.resolve()
  }

  /**
   * After a full disk: the files end where the failed write began again, and the next append
   * starts a new segment, so no position handed out for a failed entry is ever handed out again
   * (whoever holds one must find it failed, never another entry's bytes).
   */
  private async cutBack(): Promise<void> {
    const at = this.spaceFailure!.at
    this.group = null
    const began = at.offset === 0 && at.segment > 0 // the failed write began segment at.segment
    const last = began ? at.segment - 1 : at.segment
    for (let segment = Math.max(this.tailSegment, this.writerSegment); segment > last; segment--) await this.disk.remove(path.join(this.dir, segmentName(segment)))
    if (this.writer === null || this.writerSegment !== last) {
      await this.writer?.close().catch(() => undefined)
      if (this.direct?.handle != null) {
        await this.direct.handle.close().catch(() => undefined)
        this.direct.handle = null
      }
      this.writer = await this.disk.open(path.join(this.dir, segmentName(last)), 'a+')
      this.writerSegment = last
    }
    if (!began) await this.writer.truncate(at.offset)
    this.writtenTo = { segment: last, offset: (await this.disk.sizeOf(path.join(this.dir, segmentName(last)))) ?? 0 }
    this.tailSegment = at.segment
    this.tailOffset = this.segmentSizeBytes // full: the next append rolls over to a new segment
    this.spaceFailure = null
  }

  /**
   * An ordinary entry joins the group of entries appended while the writes before them are
   * under way, and the group goes to the file in one writev when its turn comes: a burst of
   * small entries (a transfer's records, many small commits) costs one system call, not one each.
   */
  private appendToGroup(segment: number, entryOffset: number, header: Buffer, payload: Uint8Array): Promise<void> {
    if (this.queuedWrites === 0 && this.writer?.writevNow !== undefined && this.writerSegment === segment && header.length + payload.length <= WRITE_NOW_MAX_BYTES) {
      return this.writeNow(segment, entryOffset, [header, payload])
    }
    const open = this.group
    if (open !== null && open.segment === segment && open.endOffset === entryOffset && open.buffers.length < 2 * GROUP_ENTRIES_MAX) {
      open.buffers.push(header, payload)
      open.endOffset += header.length + payload.length
      return open.written
    }
    const group: WriteGroup = { segment, startOffset: entryOffset, endOffset: entryOffset + header.length + payload.length, buffers: [header, payload], written: Promise.resolve() }
    this.group = group
    group.written = this.chainWrite({ segment, offset: entryOffset }, async () => {
      if (this.group === group) this.group = null // its write begins: later entries form the next group
      await this.writer!.writev(group.buffers, group.startOffset)
      this.writtenTo = { segment, offset: group.endOffset }
    })
    return group.written
  }

  /**
   * Writes a page-aligned payload at `offset` (a page boundary, the end of the file): its
   * whole pages with O_DIRECT, the last partial page through the page cache (so no page is
   * written both ways). If O_DIRECT is refused (a file system without it), it stops being
   * used and the payload goes through the page cache.
   */
  private async writeDirect(segment: number, payload: Uint8Array, offset: number): Promise<void> {
    const direct = this.direct
    if (direct === null) return writeFully(this.writer!, payload, offset) // refused by an earlier write: laid out for it, written buffered
    const directBytes = payload.length - (payload.length % PAGE_BYTES)
    try {
      if (direct.handle === null || direct.segment !== segment) {
        await direct.handle?.close()
        direct.handle = null
        direct.handle = await this.disk.open(path.join(this.dir, segmentName(segment)), fsConstants.O_WRONLY | fsConstants.O_DIRECT)
        direct.segment = segment
      }
      await writeFully(direct.handle, payload.subarray(0, directBytes), offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
      this.direct = null
      await direct.handle?.close().catch(() => undefined)
      await this.writer!.truncate(offset) // the file ends at the payload's offset again (the writer appends)
      await writeFully(this.writer!, payload, offset)
      return
    }
    if (directBytes < payload.length) await writeFully(this.writer!, payload.subarray(directBytes), offset + directBytes)
  }

  /**
   * Writes payloads of a MiB or more whose memory is page-aligned (`pageOffsetOf` says) with
   * O_DIRECT: from the caller's memory straight to the disk, never copied into the page cache.
   * On the VMs this runs on a page-cache copy of fresh pages costs ~3 ms per MiB (each page a
   * host fault), a reused one ~0.25 ms, a direct write ~0.08 ms of CPU. Each such payload
   * starts on a page boundary (a Pad entry fills the gap; up to 4 KiB per payload).
   */
  writeLargePayloadsDirect(pageOffsetOf: PageOffsetOf): void {
    this.direct = { pageOffsetOf, handle: null, segment: -1 }
  }

  /** The writer's segment is durable up to `offset`: drop its cached pages but the kept window. */
  private dropCache(segment: number, offset: number): void {
    const c = this.cacheDrop
    if (c === null || this.writer === null) return
    if (c.segment !== segment) {
      c.segment = segment
      c.droppedTo = 0
    }
    const upTo = Math.floor((offset - c.keepBytes) / 4096) * 4096
    if (upTo <= c.droppedTo) return
    try {
      c.drop(this.writer.fd, c.droppedTo, upTo - c.droppedTo)
      c.droppedTo = upTo
    } catch {
      this.cacheDrop = null // advice only: a failure changes nothing durable; stop asking
    }
  }

  private async rollTo(segment: number): Promise<void> {
    const previous = this.writer!
    await previous.sync()
    if (this.cacheDrop !== null) {
      try {
        this.cacheDrop.drop(previous.fd, 0, 0) // the whole synced segment (length 0: to its end)
      } catch {
        this.cacheDrop = null
      }
    }
    await previous.close()
    this.writer = null
    if (this.direct?.handle != null) {
      await this.direct.handle.close()
      this.direct.handle = null
    }
    this.writer = await this.disk.open(path.join(this.dir, segmentName(segment)), 'a+')
    this.writerSegment = segment
    await this.disk.syncDir(this.dir)
  }

  /**
   * After each sync, drop the synced pages of the tail segment from the page cache except the
   * newest `keepBytes` (reads of just-written data stay cached). The log then recycles a
   * bounded set of cache pages instead of growing the cache with pages never touched before,
   * which cost ~3 ms per MiB on the VMs this runs on (each one a host fault) against ~0.3
   * reused. Synced pages are clean, so this never costs durability; reads of older data go to
   * the disk. `drop` is posix_fadvise(DONTNEED) (the disk addon's dropPageCache, diskAddon.ts).
   *
   * Dirty pages cannot be dropped, so with `syncEveryBytes` the log also starts a background
   * sync whenever that many bytes were appended since the last one began: a long write
   * between commit points (one file written for seconds) then recycles pages too. Syncing
   * earlier than asked never weakens durability; it also leaves less for the commit's sync.
   */
  dropSyncedPages(drop: PageCacheDrop, keepBytes: number, syncEveryBytes = Number.POSITIVE_INFINITY): void {
    if (!(keepBytes >= 0) || !(syncEveryBytes > 0)) throw new RangeError(`dropSyncedPages: keepBytes ${keepBytes}, syncEveryBytes ${syncEveryBytes}`)
    this.cacheDrop = { drop, keepBytes, syncEveryBytes, droppedTo: 0, segment: this.tailSegment }
  }

  /** Makes every entry appended so far durable. Concurrent callers share one fdatasync (group commit). */
  async sync(): Promise<void> {
    const wanted = this.appendedCount
    while (this.syncedCount < wanted) {
      if (this.syncError !== null) throw errors.corrupt(`log sync failed earlier: ${this.syncError.message}`)
      if (this.syncInFlight === null) {
        this.unsyncedBytes = 0
        const covering = this.appendedCount
        const coveringSegment = this.tailSegment
        const coveringOffset = this.tailOffset
        let synced: DiskFile | null = null
        this.syncInFlight = this.writeChain
          .then(() => (this.writer === null ? undefined : (synced = this.writer).datasync())) // null: a segment change failed (full disk) after syncing the segment before
          .then(() => {
            this.syncedCount = Math.max(this.syncedCount, covering)
            if (synced === this.writer) this.dropCache(coveringSegment, coveringOffset)
          })
          .catch((err: Error) => {
            this.syncError ??= err
            throw err
          })
          .finally(() => {
            this.syncInFlight = null
          })
      }
      await this.syncInFlight
    }
  }

  /** A buffer to read `lengthBytes` into: page-aligned when the read is large enough for read() to take it past the page cache (O_DIRECT). */
  readBuffer(lengthBytes: number): Buffer {
    if (this.direct === null || lengthBytes < DIRECT_PAYLOAD_MIN_BYTES) return Buffer.allocUnsafe(lengthBytes)
    return pageAlignedBuffer(lengthBytes, this.direct.pageOffsetOf)
  }

  /** The file a segment is kept in. */
  segmentFile(segment: number): string {
    return path.join(this.dir, segmentName(segment))
  }

  /**
   * Resolves once bytes [position, + lengthBytes) are in their segment's file. An entry is
   * readable as soon as it is appended (a replica applies a record whose data it appended in
   * the same turn, and live reads follow at once): queued writes go first.
   */
  async written(position: LogPosition, lengthBytes: number): Promise<void> {
    const endBytes = position.offset + lengthBytes
    if (position.segment > this.writtenTo.segment || (position.segment === this.writtenTo.segment && endBytes > this.writtenTo.offset)) {
      await this.writeChain.catch(() => undefined)
    }
  }

  /** Reads `lengthBytes` of a payload starting `offsetInPayload` bytes in. */
  async read(position: LogPosition, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> {
    await this.written(position, lengthBytes)
    let done = 0
    // Whole pages of a large payload that starts at a page boundary (written with O_DIRECT), into
    // page-aligned memory: read with O_DIRECT too, not through the page cache (fresh cache pages
    // cost a host fault each on these VMs; a cold read of a GB went at a quarter of the disk's rate).
    const directBytes = lengthBytes - (lengthBytes % PAGE_BYTES)
    if (this.direct !== null && lengthBytes >= DIRECT_PAYLOAD_MIN_BYTES && position.offset % PAGE_BYTES === 0 && this.direct.pageOffsetOf(into.subarray(intoOffset)) === 0) {
      done = await this.readFully(this.directReaders, fsConstants.O_RDONLY | fsConstants.O_DIRECT, position, into, intoOffset, directBytes).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EINVAL') throw err
        return 0 // a file system without O_DIRECT: through the cache
      })
    }
    await this.readFully(this.readers, 'r', { segment: position.segment, offset: position.offset + done }, into, intoOffset + done, lengthBytes - done)
  }

  /** Reads `lengthBytes` at `position` through the segment's handle in `handles` (opened with `flags` once); returns the length. */
  private async readFully(handles: Map<number, Promise<DiskFile>>, flags: string | number, position: LogPosition, into: Buffer, intoOffset: number, lengthBytes: number): Promise<number> {
    let opening = handles.get(position.segment)
    if (opening === undefined) {
      const open = this.disk.open(path.join(this.dir, segmentName(position.segment)), flags)
      handles.set(position.segment, open)
      // A failed open is forgotten, so the next read tries again (unless close() has moved on).
      open.catch(() => {
        if (handles.get(position.segment) === open) handles.delete(position.segment)
      })
      opening = open
    }
    const reader = await opening
    let done = 0
    while (done < lengthBytes) {
      const { bytesRead } = await reader.read(into, intoOffset + done, lengthBytes - done, position.offset + done)
      if (bytesRead === 0) throw errors.corrupt(`segment ${position.segment} ends before offset ${position.offset + done}`)
      done += bytesRead
    }
    return lengthBytes
  }

  /**
   * A buffer to read payloads into: page-aligned when this log writes large payloads with
   * O_DIRECT (a page-aligned payload read into a page boundary of it is then read directly).
   */
  allocate(sizeBytes: number): Buffer {
    if (this.direct === null) return Buffer.allocUnsafe(sizeBytes)
    const block = Buffer.allocUnsafeSlow(sizeBytes + PAGE_BYTES)
    const start = (PAGE_BYTES - this.direct.pageOffsetOf(block)) % PAGE_BYTES
    return block.subarray(start, start + sizeBytes)
  }

  /**
   * The payload of the `kind` entry whose `sizeBytes` payload is at `position` (as an index
   * remembers it), read with its header in one read and checked against it and the CRC.
   */
  async readEntry(position: LogPosition, sizeBytes: number, kind: EntryKind): Promise<Buffer> {
    const entry = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + sizeBytes)
    await this.read({ segment: position.segment, offset: position.offset - ENTRY_HEADER_BYTES }, entry, 0, entry.length)
    const where = `log entry at ${position.segment}:${position.offset}`
    if (entry.readUInt32LE(0) !== ENTRY_MAGIC || entry.readUInt8(4) !== kind || entry.readUInt32LE(8) !== sizeBytes) {
      throw errors.corrupt(`${where} is not the ${sizeBytes}-byte entry of kind ${kind} the index names`)
    }
    if (crc32c(entry.subarray(ENTRY_HEADER_BYTES), crc32c(entry.subarray(0, 12))) !== entry.readUInt32LE(12)) throw errors.corrupt(`${where}: checksum mismatch`)
    return entry.subarray(ENTRY_HEADER_BYTES)
  }

  /**
   * The CRC32C of the `sizeBytes` bytes at `position` without reading them, when they are
   * exactly the payload of one Data entry (its header, read alone, says so: a version's write
   * op usually names a whole entry); null when they are not (read and checksum them instead).
   */
  async payloadCrc(position: LogPosition, sizeBytes: number): Promise<number | null> {
    if (position.offset < ENTRY_HEADER_BYTES) return null
    const header = Buffer.allocUnsafe(ENTRY_HEADER_BYTES)
    await this.read({ segment: position.segment, offset: position.offset - ENTRY_HEADER_BYTES }, header, 0, ENTRY_HEADER_BYTES)
    if (header.readUInt32LE(0) !== ENTRY_MAGIC || header.readUInt8(4) !== EntryKind.Data || header.readUInt32LE(8) !== sizeBytes) return null
    return crc32cOfSuffix(header.readUInt32LE(12), crc32c(header.subarray(0, 12)), sizeBytes)
  }

  /**
   * Reads intact entries from `from` (an entry start) up to the current tail, without
   * changing the log; `onEntry` returns false to stop. Only entries made durable by `sync()`
   * are certain to be on disk. Returns where the next unread entry starts.
   */
  async scan(from: LogPosition, onEntry: (entry: LogEntry) => Promise<boolean>): Promise<LogPosition> {
    for (let segment = from.segment; segment <= this.tailSegment; segment++) {
      const start = segment === from.segment ? from.offset : 0
      const end = segment === this.tailSegment ? this.tailOffset : ((await this.disk.sizeOf(path.join(this.dir, segmentName(segment)))) ?? 0)
      let stopped = false
      const reached = await this.scanSegment(segment, start, end, async (entry) => (stopped = !(await onEntry(entry))) ? false : true)
      if (stopped || segment === this.tailSegment) return { segment, offset: reached }
    }
    return from
  }

  async close(): Promise<void> {
    this.isOpen = false
    await this.writeChain.catch(() => undefined)
    await this.writer?.close()
    this.writer = null
    await this.direct?.handle?.close()
    if (this.direct !== null) this.direct.handle = null
    const readers = [...this.readers.values(), ...this.directReaders.values()]
    this.readers.clear()
    this.directReaders.clear()
    for (const reader of await Promise.allSettled(readers)) if (reader.status === 'fulfilled') await reader.value.close()
  }
}

/** pwrite until every byte is written (a short write is legal, if rare). */
async function writeFully(handle: DiskFile, bytes: Uint8Array, offset: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, offset + done)
    if (bytesWritten === 0) throw errors.corrupt(`log write made no progress at offset ${offset + done}`)
    done += bytesWritten
  }
}
