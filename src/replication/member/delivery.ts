// Delivery into the store: what the core delivers is appended to the log in delivery order and
// applied in order behind it, reported as written once the log's write of it returned (it is
// then in the page cache: it survives the death of the process), group-committed with one sync
// for everything appended before it (at once when something waits on the sync, else a little
// later, so a stream of small commits shares syncs), and reported as persisted. Ordered
// messages carry the payloads of payload.ts (the core adds its header):
// - data: file bytes a mount wrote, multicast as they arrive (the bulk path); each replica
//   appends them to its own log and remembers where, by blob id;
// - record: a mutation; a version's writes name blobs, which each replica replaces by its own
//   log position before appending the record. Small blobs travel inside the record that names
//   them (inline), and records submitted in one turn go as one batch;
// - reconfigure: members to add (the epoch machine ends the epoch there).
// A record carrying a SubmitId that was delivered before answers that result again (a client
// re-sent it after failing over): at most once, deterministically at every replica.

import type { ApplyResult, Mutation, VersionOp } from '../../store/records.js'
import type { LogPosition } from '../../store/segmentLog.js'
import type { HlcStamp } from '../../temporal/hlc.js'
import type { SubmitId } from '../../client/client.js'
import { decodeBatchPayload, decodeDataPayload, decodeReconfigurePayload, decodeRecordPayload, PAYLOAD_BATCH, PAYLOAD_DATA, PAYLOAD_RECONFIGURE } from '../payload.js'
import type { HeldBlob } from '../transfer.js'
import type { Clock } from '../clock.js'
import type { Replica } from './replica.js'

/** What one delivered message amounts to. */
export type Delivered =
  | { readonly kind: 'applied'; readonly results: Promise<ApplyResult[]> | ApplyResult[] } // data or records, one result each
  | { readonly kind: 'reconfigure'; readonly addIds: readonly number[] }

/** Told of every record appended to the log (delivered or transferred) and of the log being discarded. */
export interface LogObserver {
  recordLogged(stamp: HlcStamp, mutation: Mutation): void
  logDiscarded(): void
}

export interface DeliveryOptions {
  /** Everything up to `stamp` is durable (synced) in this log. */
  readonly persisted: (stamp: HlcStamp) => void
  /** Everything up to `stamp` is written to this log (not necessarily synced). */
  readonly written: (stamp: HlcStamp) => void
  /** An apply or a sync failed: the member cannot go on. */
  readonly failed: (err: Error) => void
  /** An apply finished (readers waiting for stability look again). */
  readonly applied: () => void
  /** Who hears of each delivered record once it applied, in apply order (the change feed); null: nobody now. */
  readonly appliedListener?: () => ((mutation: Mutation, by: string | undefined) => void) | null
  readonly observer?: LogObserver
  /**
   * Absent: every sync starts at once. Present: at once while `urgent()` (something waits on it:
   * answers given once synced, a client's fsync), else within `delayMs`.
   */
  readonly deferSync?: { readonly urgent: () => boolean; readonly delayMs: number; readonly clock: Clock }
}

export class Delivery {
  private readonly replica: Replica
  private readonly options: DeliveryOptions
  private readonly blobPositions = new Map<string, { position: LogPosition; sizeBytes: number }>() // delivered data not yet named by a version
  private readonly dedupe = new Map<string, Map<number, Promise<ApplyResult>>>() // clientId -> seq -> result
  private applyChain: Promise<unknown> = Promise.resolve()
  private applyBacklog = 0
  private appendedStamp: HlcStamp
  private lastWrite: Promise<void> = Promise.resolve() // the log's newest append: its writes complete in log order
  private syncedStamp: HlcStamp
  private syncing = false
  private syncTimer: { cancel(): void } | null = null
  private stopped = false

  constructor(replica: Replica, options: DeliveryOptions) {
    this.replica = replica
    this.options = options
    this.appendedStamp = this.syncedStamp = replica.store.appliedStamp
  }

  /** Records delivered and not yet applied. */
  get backlog(): number {
    return this.applyBacklog
  }

  /**
   * Appends a delivered message at `stamp` (a batch of `records` takes the stamps from there).
   * `recycle`: the transport may reuse a received buffer once its bytes are in the log.
   */
  deliver(stamp: HlcStamp, records: number, payload: Uint8Array, recycle?: (payload: Uint8Array) => void): Delivered {
    const store = this.replica.store
    const kind = payload[0]
    if (kind === PAYLOAD_DATA) {
      const { blob, crc, bytes } = decodeDataPayload(payload)
      const { position, written } = store.appendData(bytes, crc)
      this.lastWrite = written
      // Once in the log, nothing reads the received buffer again (the core let go of it at
      // delivery; positions, not bytes, are kept): the transport may reuse its memory.
      if (recycle !== undefined) written.then(() => recycle(payload), () => undefined)
      this.blobPositions.set(blob, { position, sizeBytes: bytes.byteLength })
      this.markAppended(stamp)
      this.reportWritten(stamp)
      return { kind: 'applied', results: [{ ok: true }] }
    }
    if (kind === PAYLOAD_RECONFIGURE) return { kind: 'reconfigure', addIds: decodeReconfigurePayload(payload) }
    if (kind === PAYLOAD_BATCH) {
      const parts = decodeBatchPayload(payload)
      if (parts.length !== records) throw new Error(`invariant: a batch of ${parts.length} records delivered with ${records} stamps`)
      const results = parts.map((part, i) => this.deliverRecord(stamp + BigInt(i), part))
      this.markAppended(stamp + BigInt(records - 1))
      this.reportWritten(stamp + BigInt(records - 1))
      return { kind: 'applied', results: Promise.all(results) }
    }
    const result = this.deliverRecord(stamp, payload)
    this.markAppended(stamp)
    this.reportWritten(stamp)
    return { kind: 'applied', results: result.then((r) => [r]) }
  }

  /** Appends one record (PAYLOAD_RECORD or _INLINE) at `stamp` and applies it in order; resolves with its result. */
  private deliverRecord(stamp: HlcStamp, payload: Uint8Array): Promise<ApplyResult> {
    const store = this.replica.store
    const { record, inlineBytes } = decodeRecordPayload(payload)
    const seen = record.submit !== undefined ? this.dedupe.get(record.submit.clientId)?.get(record.submit.seq) : undefined
    if (seen !== undefined) return seen // a client re-sent a submit after failover: at most once
    const lost = this.lostBlob(record.mutation, inlineBytes)
    if (lost !== null) {
      // Every member holds the same blobs (see `imported`), so every member refuses this alike
      // and logs nothing: the mount's close fails (EIO) instead of the whole group.
      const refused = Promise.resolve<ApplyResult>({ ok: false, code: 'EIO', message: `the data this version writes (blob ${lost}) was lost when the group restarted; write it again` })
      if (record.submit !== undefined) this.remember(record.submit, refused)
      return refused
    }
    // The record's own small blobs go into the log right before it, as delivered data would.
    for (const [blob, bytes] of inlineBytes) this.blobPositions.set(blob, { position: store.appendData(bytes).position, sizeBytes: bytes.byteLength })
    const mutation = this.withLogPositions(record.mutation)
    const logged = store.appendRecord(stamp, mutation)
    this.lastWrite = logged.written
    this.options.observer?.recordLogged(stamp, mutation)
    this.applyBacklog++
    const applying = this.applyChain.then(() => store.apply(stamp, mutation, logged))
    this.applyChain = applying
      .catch((err: Error) => this.options.failed(err))
      .finally(() => {
        this.applyBacklog--
        this.options.applied()
      })
    // Asked per record, so a member nobody watches adds no step to the apply (the simulation's schedules stay as recorded).
    const listener = this.options.appliedListener?.() ?? null
    if (listener !== null) applying.then((applied) => applied.ok && listener(mutation, record.submit?.clientId), () => undefined)
    if (record.submit !== undefined) this.remember(record.submit, applying)
    return applying
  }

  /** A blob the version names that is neither delivered here nor inside its record, or null. */
  private lostBlob(mutation: Mutation, inline: ReadonlyArray<readonly [string, Uint8Array]>): string | null {
    if (mutation.type !== 'version') return null
    for (const op of mutation.ops) {
      if (op.op !== 'write' || !('blob' in op.data)) continue
      const blob = op.data.blob
      if (!this.blobPositions.has(blob) && !inline.some(([id]) => id === blob)) return blob
    }
    return null
  }

  private withLogPositions(mutation: Mutation): Mutation {
    if (mutation.type !== 'version') return mutation
    const ops = mutation.ops.map((op): VersionOp => {
      if (op.op !== 'write' || !('blob' in op.data)) return op
      const position = this.blobPositions.get(op.data.blob)?.position
      if (position === undefined) throw new Error(`version refers to blob ${op.data.blob}, never delivered here`)
      return { ...op, data: { segment: position.segment, offset: position.offset + op.data.offset } }
    })
    for (const op of mutation.ops) if (op.op === 'write' && 'blob' in op.data) this.blobPositions.delete(op.data.blob)
    return { ...mutation, ops }
  }

  /** Deterministic at every replica: the same records reach it in the same order. */
  private remember(id: SubmitId, applying: Promise<ApplyResult>): void {
    let seqs = this.dedupe.get(id.clientId)
    if (seqs === undefined) this.dedupe.set(id.clientId, (seqs = new Map()))
    for (const seq of seqs.keys()) if (seq < id.oldestPendingSeq) seqs.delete(seq)
    seqs.set(id.seq, applying)
  }

  private markAppended(stamp: HlcStamp): void {
    if (stamp > this.appendedStamp) this.appendedStamp = stamp
  }

  /** Everything delivered up to `stamp` is in the log once its newest write returned (a record refused or deduplicated wrote nothing of its own). */
  private reportWritten(stamp: HlcStamp): void {
    // A failed write fails the next sync, which reports it (failed).
    this.lastWrite.then(() => this.stopped || this.options.written(stamp), () => undefined)
  }

  /** Everything up to this stamp is synced in this log. */
  get synced(): HlcStamp {
    return this.syncedStamp
  }

  /** Group commit: one sync covers every record appended before it; `persisted` follows. Deferred while nothing waits on it (deferSync). */
  syncIfNeeded(): void {
    if (this.syncing || this.appendedStamp <= this.syncedStamp || this.stopped) return
    const defer = this.options.deferSync
    if (defer !== undefined && !defer.urgent()) {
      this.syncTimer ??= defer.clock.setTimer(defer.delayMs, () => {
        this.syncTimer = null
        this.startSync()
      })
      return
    }
    this.startSync()
  }

  private startSync(): void {
    this.syncTimer?.cancel()
    this.syncTimer = null
    if (this.syncing || this.appendedStamp <= this.syncedStamp || this.stopped) return
    this.syncing = true
    const target = this.appendedStamp
    this.replica.store.sync().then(
      () => {
        this.syncing = false
        this.syncedStamp = target
        this.options.persisted(target)
        this.syncIfNeeded()
      },
      (err: Error) => this.options.failed(err),
    )
  }

  /** Applies everything delivered and waits for the log to be durable. */
  async settle(): Promise<void> {
    await this.applyChain
    await this.replica.store.sync()
  }

  /** Data delivered and not yet named by a version (state transfer sends it along at an epoch's start). */
  heldBlobs(): HeldBlob[] {
    return [...this.blobPositions].map(([id, held]) => ({ id, ...held }))
  }

  /**
   * A state transfer appended and applied records behind this delivery's back. At an epoch's
   * start it also brought the donor's held blobs (`blobs`, where this log put them), which then
   * replace this member's: every member of an epoch must hold the same blobs, or a version
   * naming one would be logged by some members and refused by others. Members that ran the
   * epoch before hold the donor's already (they delivered the same messages); a member that
   * restarted lost its own, and one cut off from a group that restarted without it holds blobs
   * the others lost.
   */
  imported(blobs: ReadonlyMap<string, { position: LogPosition; sizeBytes: number }> | null): void {
    if (blobs !== null) {
      this.blobPositions.clear()
      for (const [id, blob] of blobs) this.blobPositions.set(id, blob)
    }
    this.lastWrite = Promise.resolve()
    this.appendedStamp = this.syncedStamp = this.replica.store.appliedStamp
  }

  /** The observer of what this member logs (state transfer reports its records to it too). */
  get observer(): LogObserver | undefined {
    return this.options.observer
  }

  /** The store was replaced by an empty one: what the old log answered is forgotten. */
  discarded(): void {
    this.options.observer?.logDiscarded()
    this.appendedStamp = this.syncedStamp = this.replica.store.appliedStamp
    this.blobPositions.clear()
    this.dedupe.clear()
  }

  /** Waits for the applies in flight; no sync starts after this. */
  async stop(): Promise<void> {
    this.stopped = true
    this.syncTimer?.cancel()
    this.syncTimer = null
    await this.applyChain.catch(() => undefined)
  }
}
