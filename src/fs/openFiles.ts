// Open files. A writable open file gathers its writes and truncations into one pending
// version, committed at its commit points (commitPoints.ts). Bytes go to the data path as they
// arrive (in chunks, so sequential writes become few large appends) and the version record
// only points at them: data moves once. Reads through a handle come from one committed version
// at a time, overlaid with the handle's own uncommitted writes; a live handle moves to a newer
// version when the kernel is told of it (OpenFiles.advance), so the pages the kernel caches and
// the reads it sends agree. In a record-format file a commit also lists the records the
// version completes (sensorRecords.ts).
//
// A FUSE write is answered as soon as its bytes are copied into the chunk. The client hands out
// the chunks (Client.newChunk): what its data path needs of the bytes (the embedded log's CRCs,
// page alignment, reading them back once written) is its business, not the file system's.

import { errors, isLateSensorWrite } from '../errors.js'
import { chunkFor } from '../client/chunks.js'
import { dataRefAt, type Client, type DataChunk } from '../client/client.js'
import type { MalformedRecord } from '../sensor/index.js'
import type { Attr, Ino, Mutation, VersionOp, VersionRecords } from '../store/records.js'
import { HLC_MAX } from '../temporal/hlc.js'
import { Writers } from './commitPoints.js'
import { processOfThread, type ProcessOf } from './processes.js'
import type { Cut } from './resolve.js'
import { checkSensorLag, malformedRecordsError, parseVersionRecords, recordFormatOf, type SensorPolicy, type VersionExtent } from './sensorRecords.js'

const CHUNK_SIZE_BYTES_MIN = 64 * 1024
const CHUNK_SIZE_BYTES_MAX = 4 * 1024 * 1024
/** What an open at a frozen cut reads ahead: the kernel's first read request of a file (its readahead window). */
const READ_AHEAD_BYTES = 128 * 1024
/** How often a read is done again when commits keep moving its handle while it reads. */
const READ_ATTEMPTS_MAX = 3
/** The largest version whose bytes a commit hands on for the kernel to cache (CommittedVersion.bytes): small files, read back soon after they are written. */
const WHOLE_VERSION_BYTES_MAX = 256 * 1024

/**
 * A live version committed through a handle: the file's attributes as the commit left them,
 * and its bytes when the handle knows all of them (a file written from empty or truncated
 * first, small enough), so the kernel can be handed them as the file's pages.
 */
export interface CommittedVersion {
  readonly attr: Attr
  readonly bytes: Buffer | null
}

/** Bytes [0, sizeBytes) of a frozen version, being read since open. */
interface ReadAhead {
  readonly bytes: Buffer
  readonly done: Promise<number | null> // bytes read; null: failed (the read is done again, and fails there)
}

/** What every open file of a mount shares. */
interface OpenFileContext {
  readonly policy: SensorPolicy
  readonly processOf: ProcessOf
  /** A live version of a file was committed through one of its handles (OpenFiles.advance). */
  readonly committed: (attr: Attr) => void
}

type PendingOp =
  | { readonly op: 'write'; readonly offset: number; sizeBytes: number; readonly chunk: DataChunk; readonly chunkOffset: number }
  | { readonly op: 'truncate'; readonly sizeBytes: number }

export class OpenFile {
  readonly fd: number
  readonly ino: Ino
  readonly writable: boolean
  readonly cut: Cut
  /** The path it was opened by (log lines name it; a rename later does not update it). */
  readonly path: string
  private readonly policy: SensorPolicy
  private readonly committed: (attr: Attr) => void
  /** The committed version reads come from (under the handle's own uncommitted writes, if any). */
  pinned: Attr
  /** Sensor time that stamps the next committed version (from P@sensor:T or the xattr). */
  sensorUs: number | undefined
  /** Opened O_APPEND: every write goes at the end of the file as this handle sees it. */
  appends = false
  /** Opened O_SYNC or O_DSYNC: each version it commits is synced on every replica before the commit point returns. */
  syncs = false
  /** A write through it cleared the file's set-ID bits (Operations.write): later writes need not look again. */
  setIdCleared = false
  /** The processes that changed the file through this handle since its last commit point. */
  readonly writers: Writers
  private ops: PendingOp[] = []
  private committing: PendingOp[] = []
  private chunk: DataChunk | null = null
  private sizeBytes: number
  private commitChain: Promise<CommittedVersion | null> = Promise.resolve(null)
  private readAhead: ReadAhead | null = null

  constructor(fd: number, attr: Attr, cut: Cut, writable: boolean, sensorUs: number | undefined, path: string, context: OpenFileContext) {
    this.fd = fd
    this.path = path
    this.policy = context.policy
    this.committed = context.committed
    this.writers = new Writers(context.processOf)
    this.ino = attr.ino
    this.pinned = attr
    this.cut = cut
    this.writable = writable
    this.sensorUs = sensorUs
    this.sizeBytes = attr.sizeBytes
  }

  /** The size a reader through this handle sees, counting uncommitted writes. */
  get visibleSizeBytes(): number {
    return this.isDirty ? this.sizeBytes : this.pinned.sizeBytes
  }

  /** Changes not yet handed to a commit. */
  get hasPendingChanges(): boolean {
    return this.ops.length > 0
  }

  get isDirty(): boolean {
    return this.ops.length > 0 || this.committing.length > 0
  }

  write(client: Client, data: Buffer, lengthBytes: number, offset: number): void {
    if (!this.writable) throw errors.badHandle(this.fd)
    if (lengthBytes === 0) return
    client.refuseWhenFull?.() // a full disk: ENOSPC now, not at the close
    // The kernel places an O_APPEND write at its cached size of the file, which a reader on this
    // mount shrinks back to the committed size when its read comes up short of this handle's
    // uncommitted bytes: the end this handle sees is the end it appends to.
    if (this.appends) offset = Math.max(offset, this.visibleSizeBytes)
    this.startChange()
    let chunk = this.chunk
    if (chunk === null || chunk.usedBytes + lengthBytes > chunk.capacityBytes) {
      const previousBytes = chunk?.capacityBytes ?? 0
      chunk?.seal()
      const sizeBytes = Math.max(lengthBytes, Math.min(CHUNK_SIZE_BYTES_MAX, Math.max(CHUNK_SIZE_BYTES_MIN, previousBytes * 2)))
      chunk = this.chunk = chunkFor(client, this.ino, sizeBytes)
    }
    const chunkOffset = chunk.usedBytes
    chunk.append(data, lengthBytes)
    const last = this.ops[this.ops.length - 1]
    if (last?.op === 'write' && last.chunk === chunk && last.offset + last.sizeBytes === offset && last.chunkOffset + last.sizeBytes === chunkOffset) {
      last.sizeBytes += lengthBytes // sequential writes stay one extent
    } else {
      this.ops.push({ op: 'write', offset, sizeBytes: lengthBytes, chunk, chunkOffset })
    }
    this.sizeBytes = Math.max(this.sizeBytes, offset + lengthBytes)
  }

  truncate(sizeBytes: number): void {
    if (!this.writable) throw errors.badHandle(this.fd)
    this.startChange()
    this.ops.push({ op: 'truncate', sizeBytes })
    this.sizeBytes = sizeBytes
  }

  /** The first change since a commit applies to the version reads come from now (another handle may have committed since). */
  private startChange(): void {
    if (!this.isDirty) this.sizeBytes = this.pinned.sizeBytes
  }

  /**
   * Commits everything written since the last commit point as one version. Commits of one
   * handle apply in order; each resolves once its version is durable, with that version (null:
   * nothing was pending, and a commit in flight, if any, has ended).
   */
  commit(client: Client): Promise<CommittedVersion | null> {
    if (this.ops.length === 0) return this.commitChain.then(() => null, () => null) // an error is reported once, by the commit that failed
    const ops = this.ops
    this.ops = []
    this.writers.committed()
    this.chunk?.seal()
    this.chunk = null
    this.committing = this.committing.concat(ops)
    const versionOps: VersionOp[] = ops.map((op) =>
      op.op === 'truncate' ? op : { op: 'write', offset: op.offset, sizeBytes: op.sizeBytes, data: dataRefAt(op.chunk.ref!, op.chunkOffset) },
    )
    const sensorUs = this.sensorUs
    const base = this.pinned
    const run = async (): Promise<CommittedVersion> => {
      try {
        const format = recordFormatOf(this.pinned)
        let records: VersionRecords | undefined
        let malformed: readonly MalformedRecord[] = []
        if (format !== null) {
          // The live version this one applies on (another handle may have committed since open).
          const base = (await client.attr(this.ino, HLC_MAX)) ?? this.pinned
          ;({ records, malformed } = await parseVersionRecords(format, base.records, extentOf(base.sizeBytes, ops), (offset, n) => this.versionBytes(client, base, ops, offset, n)))
        }
        if (sensorUs !== undefined) checkSensorLag(this.policy, this.path, sensorUs, 'version')
        for (const [endBytes, recordUs] of records?.entries ?? []) checkSensorLag(this.policy, this.path, recordUs, `record ending at byte ${endBytes}`)
        const stamped = sensorUs !== undefined || (records?.entries.length ?? 0) > 0
        const mutation: Mutation = {
          type: 'version',
          ino: this.ino,
          ops: versionOps,
          ...(sensorUs !== undefined ? { sensorUs } : {}),
          ...(records !== undefined ? { records } : {}),
          ...(stamped ? { sensorLagMaxUs: this.policy.sensorLagMaxUs } : {}),
        }
        // Bytes in the chunks go back to the pool once written: what the kernel may cache is gathered beside the submit.
        const bytes = wholeVersionBytes(base, ops)
        const { attr } = await client.submit(mutation)
        this.pinned = attr ?? (await client.attr(this.ino, HLC_MAX)) ?? this.pinned
        this.committed(this.pinned)
        const whole = await bytes
        // Whole only if no other version came between the one the ops apply to and this one (ops that truncate first need none).
        const follows = this.pinned.version === base.version + 1 || (ops[0]?.op === 'truncate' && ops[0].sizeBytes === 0)
        const version: CommittedVersion = { attr: this.pinned, bytes: whole !== null && follows && whole.length === this.pinned.sizeBytes ? whole : null }
        this.policy.stats.recordsIndexed += records?.entries.length ?? 0
        if (format !== null && malformed.length > 0) {
          // Committed with its valid records (POSIX offsets stand, nothing after the bad record is lost); the commit still fails.
          this.policy.stats.versionsWithMalformedRecords++
          this.policy.stats.recordsMalformed += malformed.length
          const err = malformedRecordsError(format, this.path, malformed)
          this.policy.log(`fffs: ${err.message}`)
          throw err
        }
        return version
      } catch (err) {
        if (isLateSensorWrite(err)) {
          this.policy.stats.versionsRefusedLate++
          this.policy.log(`fffs: refused, not committed: ${(err as Error).message}`)
        }
        throw err
      } finally {
        this.committing = this.committing.slice(ops.length)
      }
    }
    this.commitChain = this.commitChain.then(run, run)
    return this.commitChain
  }

  /** Bytes [offset, offset + lengthBytes) of the version `ops` make of `base`. */
  private async versionBytes(client: Client, base: Attr, ops: readonly PendingOp[], offset: number, lengthBytes: number): Promise<Buffer> {
    const out = Buffer.alloc(lengthBytes)
    const baseEnd = Math.min(base.sizeBytes, offset + lengthBytes)
    if (baseEnd > offset) await client.read(base, offset, out, baseEnd - offset)
    await overlay(ops, out, offset, lengthBytes)
    return out
  }

  /**
   * Starts reading the first window of a version at a frozen cut, so the index lookups and the
   * log read overlap the reply to open and the kernel's first read request (about a fifth of
   * an open+read+close of a past version). Used by the first read that starts at 0.
   */
  startReadAhead(client: Client): void {
    if (this.cut.kind === 'live' || this.writable || this.pinned.kind !== 'file') return
    const bytes = Buffer.allocUnsafe(Math.min(this.pinned.sizeBytes, READ_AHEAD_BYTES))
    if (bytes.length === 0) return
    this.readAhead = { bytes, done: client.read(this.pinned, 0, bytes, bytes.length).catch(() => null) }
  }

  /**
   * A read of the version the handle reads from, done again from the newer one when a commit
   * moved the handle while it was under way: the kernel answered the commit by dropping the
   * file's pages and forgetting its attributes, and an answer from the older version arriving
   * after that would stand in its cache (with the zeros past that version's end readable up to
   * the size the writer's own writes gave the file).
   */
  private async readCommitted(client: Client, into: Buffer, lengthBytes: number, offset: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const version = this.pinned
      const n = await client.read(version, offset, into, lengthBytes)
      if (this.pinned === version || this.isDirty || attempt === READ_ATTEMPTS_MAX) return n
    }
  }

  async read(client: Client, into: Buffer, lengthBytes: number, offset: number): Promise<number> {
    const ahead = this.readAhead
    if (ahead !== null) {
      this.readAhead = null // one use: whatever comes next reads the log
      const aheadBytes = offset === 0 ? await ahead.done : null
      if (aheadBytes !== null) {
        const fromAhead = ahead.bytes.copy(into, 0, 0, Math.min(lengthBytes, aheadBytes))
        if (fromAhead === lengthBytes || aheadBytes === this.pinned.sizeBytes) return fromAhead
        return fromAhead + (await this.read(client, into.subarray(fromAhead), lengthBytes - fromAhead, fromAhead))
      }
    }
    if (!this.isDirty) return this.readCommitted(client, into, lengthBytes, offset)
    const n = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offset))
    into.fill(0, 0, n)
    await client.read(this.pinned, offset, into, Math.min(n, Math.max(0, this.pinned.sizeBytes - offset)))
    await overlay([...this.committing, ...this.ops], into, offset, n)
    return n
  }
}

/**
 * Applies `ops` in order to `into`, which holds bytes [offset, offset + lengthBytes) before
 * them. A write's bytes come from its chunk (in memory, or read back: asked op by op, as a
 * chunk may be recycled during an earlier op's read).
 */
async function overlay(ops: readonly PendingOp[], into: Buffer, offset: number, lengthBytes: number): Promise<void> {
  for (const op of ops) {
    if (op.op === 'truncate') {
      if (op.sizeBytes < offset + lengthBytes) into.fill(0, Math.max(0, op.sizeBytes - offset), lengthBytes)
      continue
    }
    const from = Math.max(offset, op.offset)
    const to = Math.min(offset + lengthBytes, op.offset + op.sizeBytes)
    if (from >= to) continue
    const readBack = op.chunk.copyTo(op.chunkOffset + (from - op.offset), into, from - offset, to - from)
    if (readBack !== undefined) await readBack
  }
}

/**
 * The bytes of the version `ops` make of `base`, when the ops alone decide them (`base` is
 * empty, or the first op truncates to 0) and they are few; else null. The bytes come from the
 * chunks (read back from the log once a chunk went back to the pool: DataChunk.copyTo).
 */
async function wholeVersionBytes(base: Attr, ops: readonly PendingOp[]): Promise<Buffer | null> {
  const first = ops[0]
  if (base.kind !== 'file' || (base.sizeBytes !== 0 && !(first?.op === 'truncate' && first.sizeBytes === 0))) return null
  const { sizeBytes } = extentOf(base.sizeBytes, ops)
  if (sizeBytes === 0 || sizeBytes > WHOLE_VERSION_BYTES_MAX) return null
  const out = Buffer.alloc(sizeBytes)
  try {
    await overlay(ops, out, 0, sizeBytes)
  } catch {
    return null // the commit reports what failed, if anything did
  }
  return out
}

/** Size after `ops` and the first byte they may change. */
function extentOf(baseSizeBytes: number, ops: readonly PendingOp[]): VersionExtent {
  let sizeBytes = baseSizeBytes
  let lowestChangedBytes = Number.MAX_SAFE_INTEGER
  for (const op of ops) {
    lowestChangedBytes = Math.min(lowestChangedBytes, op.op === 'write' ? op.offset : Math.min(op.sizeBytes, sizeBytes))
    sizeBytes = op.op === 'write' ? Math.max(sizeBytes, op.offset + op.sizeBytes) : op.sizeBytes
  }
  return { sizeBytes, lowestChangedBytes }
}

/** The table of open files, by FUSE file handle and by inode. */
export class OpenFiles {
  private readonly byFd = new Map<number, OpenFile>()
  private readonly byIno = new Map<Ino, Set<OpenFile>>()
  private nextFd = 1
  private readonly context: OpenFileContext

  /** `processOf`: which process a thread that sends a request belongs to (commit points are a matter of processes). */
  constructor(policy: SensorPolicy, processOf: ProcessOf = processOfThread) {
    this.context = {
      policy,
      processOf,
      committed: (attr) => this.advance(attr),
    }
  }

  open(attr: Attr, cut: Cut, writable: boolean, path: string, sensorUs?: number): OpenFile {
    const file = new OpenFile(this.nextFd++, attr, cut, writable, sensorUs, path, this.context)
    this.byFd.set(file.fd, file)
    let set = this.byIno.get(file.ino)
    if (set === undefined) this.byIno.set(file.ino, (set = new Set()))
    set.add(file)
    if (cut.kind === 'live') this.advance(attr)
    return file
  }

  find(fd: number): OpenFile | undefined {
    return this.byFd.get(fd)
  }

  get(fd: number): OpenFile {
    const file = this.byFd.get(fd)
    if (file === undefined) throw errors.badHandle(fd)
    return file
  }

  close(fd: number): void {
    const file = this.byFd.get(fd)
    if (file === undefined) return
    this.byFd.delete(fd)
    const set = this.byIno.get(file.ino)
    set?.delete(file)
    if (set?.size === 0) this.byIno.delete(file.ino)
  }

  /**
   * `attr` is a committed live version of its file (found at an open, told the kernel by a
   * getattr, or just committed): the file's live handles with nothing uncommitted read the
   * newest version known from now on, all the same one, because the kernel keeps one set of
   * cached pages per file for all of them. It drops the pages of an older version when it sees
   * the new attributes, or when the session drops them after a commit (kernel.ts).
   */
  advance(attr: Attr): void {
    const files = [...(this.byIno.get(attr.ino) ?? [])].filter((f) => f.cut.kind === 'live' && !f.isDirty)
    const newest = files.reduce((a, f) => (f.pinned.version > a.version ? f.pinned : a), attr)
    for (const file of files) file.pinned = newest
  }

  /** Writable handles open on a node. */
  writers(ino: Ino): OpenFile[] {
    return [...(this.byIno.get(ino) ?? [])].filter((f) => f.writable)
  }

  /** The largest size any handle's uncommitted writes give the node, or null when none is dirty. */
  dirtySizeBytes(ino: Ino): number | null {
    let size: number | null = null
    for (const file of this.byIno.get(ino) ?? []) if (file.isDirty) size = Math.max(size ?? 0, file.visibleSizeBytes)
    return size
  }

  get all(): OpenFile[] {
    return [...this.byFd.values()]
  }
}
