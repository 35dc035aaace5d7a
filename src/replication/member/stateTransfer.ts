// State transfer, both sides, as one member does it (what travels and how: transfer.ts):
// - catching up: fetch the records this member misses from a donor, after checking its own log
//   is a prefix of the donor's (else it is discarded and everything is fetched), or the donor's
//   whole store when its log no longer reaches back to where this one ends (storeImage.ts);
// - serving: the batches, record digests and store images other members ask this member for.

import { FffsError, isFffsError } from '../../errors.js'
import { hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import type { Clock } from '../clock.js'
import { peerMethods, type Answer, type DigestReply, type FetchArgs, type FetchReply, type ImageReply } from '../protocol.js'
import { formatBytes } from '../../bytes.js'
import { describeTransfer, type TransferStatus } from '../readiness.js'
import { ImageExport, type ImageCursor } from '../storeImage.js'
import { ExportAhead, recordDigestAt, TransferImport, TransferProgress, transferSizeEstimate, type TransferCursor } from '../transfer.js'
import type { Delivery } from './delivery.js'
import type { PeerNetwork } from './peers.js'
import type { Replica } from './replica.js'

const TRANSFER_LOG_EVERY_MS = 2_000
const TRANSFER_ANNOUNCE_BYTES = 64 * 1024 * 1024 // a transfer this large is announced (with its size) when it starts
// Before asking to join a running group, a member fetches what it misses from a running member
// while the group goes on (rounds, each up to the stable frontier then); it asks once a round
// brought less than this, so the join's own transfer, during which the group's epoch changes
// and writes wait, is small.
const PRE_JOIN_GAP_BYTES = 32 * 1024 * 1024
const PRE_JOIN_ROUNDS_MAX = 8

export interface StateTransferOptions {
  readonly replica: Replica
  readonly delivery: Delivery
  readonly peers: PeerNetwork
  readonly clock: Clock
  readonly log: (line: string) => void
  /** How long a transfer waits for a donor that sends nothing. */
  readonly stallMs: number
  /** About this many bytes of file data per batch served (default transfer.ts TRANSFER_BATCH_BYTES). */
  readonly batchBytes?: number
  /** This member's stability frontier (what a transfer before a join may fetch up to). */
  readonly stableStamp: () => HlcStamp
  /** Whether this member runs in a group (else it settles its store before serving a prefix of it). */
  readonly running: () => boolean
  /** The store was replaced by an empty one (the member forgets what the old log answered). */
  readonly discarded: () => void
}

export class StateTransfer {
  private readonly options: StateTransferOptions
  private readonly exportAhead: ExportAhead // the batches of transfers this member serves, read ahead
  private readonly imageExport: ImageExport // the whole-store transfers this member serves
  private chain: Promise<unknown> = Promise.resolve() // one state transfer into the store at a time
  private progress: TransferProgress | null = null // the transfer under way
  private stopped = false

  constructor(options: StateTransferOptions) {
    this.options = options
    this.exportAhead = new ExportAhead(options.replica.store, options.clock, options.batchBytes)
    this.imageExport = new ImageExport(options.replica.store, options.clock, options.batchBytes)
  }

  /** The transfer under way ("catching up, 41% of 2.1 GB"), if any. */
  status(): TransferStatus | null {
    return this.progress?.status() ?? null
  }

  stop(): void {
    this.stopped = true
    this.imageExport.clear()
  }

  // ---- catching up ----

  /**
   * Fetches from a running member while the group goes on, in rounds up to its stable frontier,
   * until a round brings little: the join that follows then transfers only that little while
   * the group changes epoch. A failure here costs nothing but time: the join's transfer fetches
   * whatever is still missing. `stillRecovering`: the member did not move on to an epoch.
   */
  async catchUpBeforeJoining(donorId: number, stillRecovering: () => boolean): Promise<void> {
    try {
      for (let round = 0; round < PRE_JOIN_ROUNDS_MAX && stillRecovering(); round++) {
        const fetchedBytes = await this.catchUp(donorId, { upto: null, stopsEarly: () => !stillRecovering(), mayDiscard: false })
        if (fetchedBytes < PRE_JOIN_GAP_BYTES) return
      }
    } catch (err) {
      if (!this.stopped) this.options.log(`catching up from member ${donorId} before joining: ${(err as Error).message}`)
    }
  }

  /**
   * Holds exactly the donor's records up to `upto` afterwards (null: up to the donor's stable
   * frontier, before a join; then the held blobs are not fetched, and it may stop early). A log
   * that is a prefix of the donor's is extended. One that is not is discarded and everything
   * fetched (Derecho truncates to the last shared record; this store cannot drop a suffix, so it
   * starts over): the donor does not hold its last record, which a group restarted without this
   * member went on without (delivered and persisted here, never acknowledged: that needs every
   * member of the view). The donor holds the record or not by stamp and digest: the stamp alone
   * can be reused. Returns the bytes fetched. One catch-up at a time: a plan arriving during one
   * before a join waits for it (it stops early).
   *
   * Only a plan's catch-up discards (`mayDiscard`), against the plan's donor: one before a join
   * leaves a divergent log as it is (the join's transfer replaces it), since while a member
   * recovers its log is what it reports, and a plan made from that report (this member as its
   * donor, others comparing their logs with its) must find it unchanged. With `donorHoldsStart`
   * (a total restart, whose start is its donor's last record) the donor must still hold the
   * start, or nothing is compared, discarded or fetched. (Found by the simulation: a donor that
   * discarded its log after reporting it made every member discard theirs, crash-restart-3
   * seed 100053.)
   */
  catchUp(donorId: number, options: { upto: HlcStamp | null; stopsEarly?: () => boolean; mayDiscard: boolean; donorHoldsStart?: boolean }): Promise<number> {
    const run = this.chain.then(async () => {
      const { upto } = options
      if (options.donorHoldsStart === true && upto !== null && upto > 0n && (await this.donorDigest(donorId, upto)).digest === null) {
        throw new Error(`member ${donorId} no longer holds the plan's start ${upto}`)
      }
      const last = this.options.replica.store.appliedStamp
      // An empty log has nothing to compare: everything is fetched (the donor says if its log no longer starts at the beginning).
      const { holds, logBase } = last === 0n ? { holds: true, logBase: 0n } : await this.donorHolds(donorId, last)
      // Segment GC deleted the donor's records up to its log base: a log ending below it (or one
      // the donor does not hold, once there is a base) can only be replaced by the donor's whole store.
      const whole = logBase > 0n && (!holds || last < logBase)
      // A catch-up before a join changes nothing once the member moved on to a plan.
      if (this.stopsEarly(options)) return 0
      if ((!holds || whole) && !options.mayDiscard) {
        const why = whole ? `member ${donorId}'s log was collected up to ${hlcToIso(logBase)}, this one ends at ${hlcToIso(last)}` : `member ${donorId} does not hold this log's last record (${last})`
        this.options.log(`${why}: it is replaced when this member joins`)
        return 0
      }
      if (whole) {
        this.options.log(`member ${donorId}'s log was collected up to ${hlcToIso(logBase)}, this one ends at ${hlcToIso(last)}: discarding this store, fetching member ${donorId}'s whole store`)
        await this.discard()
        return this.fetchWhole(donorId, options)
      }
      if (!holds) {
        this.options.log(`member ${donorId} does not hold this log's last record (${last}): discarding this log, fetching all of member ${donorId}'s`)
        await this.discard()
      }
      if (last === 0n || !holds) return this.fetchEverything(donorId, options)
      return this.fetchFrom(donorId, last, options)
    })
    this.chain = run.catch(() => undefined)
    return run
  }

  /** Resolves once no catch-up runs (one before a join stops at its next batch once the member moved on). */
  idle(): Promise<void> {
    return this.chain.then(() => undefined)
  }

  private stopsEarly(options: { stopsEarly?: () => boolean }): boolean {
    return this.stopped || options.stopsEarly?.() === true
  }

  private async discard(): Promise<void> {
    this.exportAhead.clear() // read from the log being discarded
    await this.options.replica.discard()
    this.options.delivery.discarded()
    this.options.discarded()
  }

  /** Whether the donor's log holds this log's record at `stamp`, compared by digest (each side reads its own); and the donor's log base. */
  private async donorHolds(donorId: number, stamp: HlcStamp): Promise<{ holds: boolean; logBase: HlcStamp }> {
    const [mine, theirs] = await Promise.all([recordDigestAt(this.options.replica.store, stamp), this.donorDigest(donorId, stamp)])
    if (mine === null) throw new Error(`invariant: the log has no record at its applied stamp ${stamp}`)
    return { holds: theirs.digest === mine, logBase: theirs.logBase }
  }

  /**
   * Every record of the donor into an empty log; a donor whose log no longer starts at the
   * beginning (segment GC) refuses (`ERANGE`), and then its whole store is fetched instead (by
   * a plan's catch-up; one before a join leaves that to the join's).
   */
  private async fetchEverything(donorId: number, options: { upto: HlcStamp | null; stopsEarly?: () => boolean; mayDiscard: boolean }): Promise<number> {
    try {
      return await this.fetchFrom(donorId, 0n, options)
    } catch (err) {
      if (!isFffsError(err) || err.code !== 'ERANGE') throw err
      this.options.log(`${err.message}: ${options.mayDiscard ? `fetching member ${donorId}'s whole store` : 'it is fetched whole when this member joins'}`)
      return options.mayDiscard ? this.fetchWhole(donorId, options) : 0
    }
  }

  /** The donor's whole store, then the records after it up to `upto`. */
  private async fetchWhole(donorId: number, options: { upto: HlcStamp | null; stopsEarly?: () => boolean }): Promise<number> {
    const { stamp, bytes } = await this.fetchImage(donorId)
    if (options.upto !== null && stamp > options.upto) throw new Error(`member ${donorId}'s whole store reaches ${stamp}, past the plan's start ${options.upto}`)
    return bytes + (await this.fetchFrom(donorId, stamp, options))
  }

  private async donorDigest(donorId: number, stamp: HlcStamp): Promise<DigestReply> {
    const { result } = await this.options.peers.call(donorId, peerMethods.digest, { stamp }, this.options.stallMs)
    return result
  }

  /**
   * Whole-store transfer (storeImage.ts): the donor's store as of its last applied record,
   * written beside this one, made durable, then installed in its place. Batches as in
   * `fetchFrom`, the next requested before the current one is written. Returns the image's stamp.
   */
  private async fetchImage(donorId: number): Promise<{ stamp: HlcStamp; bytes: number }> {
    const { replica, peers, clock, log } = this.options
    const progress = (this.progress = new TransferProgress(donorId, clock))
    const image = replica.stageImage()
    const request = (cursor: ImageCursor | null): Promise<{ result: ImageReply; body: Buffer }> => {
      const reply = peers.call(donorId, peerMethods.image, { cursor }, this.options.stallMs)
      reply.catch(() => undefined) // awaited below, or dropped when the transfer fails
      return reply
    }
    try {
      await image.begin()
      let pending = request(null)
      for (;;) {
        const { result: reply, body } = await pending
        if (this.stopped) throw new Error('the member stops')
        if (reply.totalBytes !== undefined) {
          progress.expect(reply.totalBytes)
          if (reply.totalBytes >= TRANSFER_ANNOUNCE_BYTES) log(`whole-store transfer: ${describeTransfer(progress.status())}`)
        }
        if (!reply.batch.done) pending = request(reply.batch.cursor)
        await image.take(reply.batch, body)
        progress.update(image.entries, image.bytes)
        const line = progress.lineIfDue(TRANSFER_LOG_EVERY_MS)
        if (line !== null) log(`whole-store transfer: ${line}`)
        if (reply.batch.done) break
      }
      await image.finish()
    } catch (err) {
      await image.abandon()
      throw err
    } finally {
      this.progress = null
    }
    this.exportAhead.clear() // read from the store being replaced
    await replica.installImage()
    const { elapsedMs, rateBytesPerS } = progress.status()
    log(`whole-store transfer from member ${donorId}: ${formatBytes(image.bytes)} (${image.entries} index entries) in ${(elapsedMs / 1000).toFixed(1)} s (${formatBytes(rateBytesPerS)}/s), now at ${replica.store.appliedStamp}`)
    return { stamp: replica.store.appliedStamp, bytes: image.bytes }
  }

  /**
   * State transfer: every record after `after` up to `upto` from the donor (transfer.ts),
   * appended, applied and durable here, and at an epoch's start (`upto` given) the data the
   * donor holds for versions not yet ordered. The next batch is requested before the current
   * one is imported. A batch that does not come within the stall bound ends it (the donor died
   * or hangs).
   */
  private async fetchFrom(donorId: number, after: HlcStamp, options: { upto: HlcStamp | null; stopsEarly?: () => boolean }): Promise<number> {
    const { replica, delivery, peers, clock, log } = this.options
    const progress = (this.progress = new TransferProgress(donorId, clock))
    const imported = new TransferImport(replica.store, (stamp, message) => log(`transferred record ${stamp} failed here as at the donor: ${message}`), delivery.observer)
    const withBlobs = options.upto !== null
    const request = (upto: HlcStamp | null, cursor: TransferCursor | null): Promise<{ result: FetchReply; body: Buffer }> => {
      const reply = peers.call(donorId, peerMethods.fetch, { after, upto, cursor, withBlobs }, this.options.stallMs)
      reply.catch(() => undefined) // awaited below, or dropped when the transfer stops early
      return reply
    }
    let complete = false
    try {
      let pending = request(options.upto, null)
      for (;;) {
        const { result: reply, body } = await pending
        if (this.stopsEarly(options)) break
        if (reply.totalBytes !== undefined) {
          progress.expect(reply.totalBytes)
          if (reply.totalBytes >= TRANSFER_ANNOUNCE_BYTES) log(describeTransfer(progress.status()))
        }
        if (!reply.batch.done) pending = request(reply.upto, reply.batch.cursor)
        await imported.take(reply.batch, body)
        progress.update(imported.records, imported.bytes)
        const line = progress.lineIfDue(TRANSFER_LOG_EVERY_MS)
        if (line !== null) log(line)
        if (reply.batch.done) break
      }
      complete = imported.complete
      await imported.finish()
    } finally {
      this.progress = null
    }
    delivery.imported(withBlobs && complete ? imported.blobs : null)
    if (complete) replica.caughtUp()
    const { elapsedMs, rateBytesPerS } = progress.status()
    log(`state transfer from member ${donorId}: ${imported.records} records, ${formatBytes(imported.bytes)} in ${(elapsedMs / 1000).toFixed(1)} s (${formatBytes(rateBytesPerS)}/s)${complete ? '' : ', stopped early'}, now at ${replica.store.appliedStamp}`)
    return imported.bytes
  }

  // ---- serving ----

  /**
   * A batch of state transfer (transfer.ts). `upto` null: up to this member's stable frontier
   * (a member catching up before it joins; what is stable is final whatever the group does
   * next). Held blobs only at an epoch's start: versions of the next epoch name them.
   */
  serveFetch(args: FetchArgs): Promise<Answer<FetchReply>> {
    // A log being refetched is a prefix of the donor's: this member may be a donor meanwhile.
    return this.options.replica.read({ prefixIsEnough: true }, async (store) => {
      if (!this.options.running()) await this.options.delivery.settle()
      // Segment GC deleted this log's records up to its base: a log ending below it would be
      // handed the records after the base only, and silently miss those in between (catchUp
      // fetches this member's whole store instead).
      const logBase = store.logBase
      if (args.after < logBase) throw new FffsError('ERANGE', `this member's log was collected up to ${hlcToIso(logBase)} (history retention): a log ending at ${args.after === 0n ? 'nothing' : hlcToIso(args.after)} is replaced by a whole-store transfer, not extended`)
      const upto = args.upto ?? this.options.stableStamp()
      const blobs = args.withBlobs ? this.options.delivery.heldBlobs() : null
      const { batch, body } = await this.exportAhead.next({ after: args.after, upto, cursor: args.cursor, blobs })
      const totalBytes = args.cursor === null ? await transferSizeEstimate(store, args.after, upto, blobs ?? []) : undefined
      return { result: { batch, upto, ...(totalBytes !== undefined ? { totalBytes } : {}) }, body }
    })
  }

  /** The digest of this log's record at `stamp` (null: none), and this log's base. */
  serveDigest(stamp: HlcStamp): Promise<Answer<DigestReply>> {
    return this.options.replica.read({ prefixIsEnough: true }, async (store) => {
      if (!this.options.running()) await this.options.delivery.settle()
      return { result: { digest: await recordDigestAt(store, stamp), logBase: store.logBase } }
    })
  }

  /**
   * A batch of a whole-store transfer (storeImage.ts). Only a store this member holds whole is
   * served: one being refetched is a prefix of the donor's, not a store to copy.
   */
  serveImage(cursor: ImageCursor | null): Promise<Answer<ImageReply>> {
    return this.options.replica.read({}, async () => {
      if (!this.options.running()) await this.options.delivery.settle()
      const { batch, body, totalBytes } = await this.imageExport.next(cursor)
      return { result: { batch, ...(totalBytes !== undefined ? { totalBytes } : {}) }, body }
    })
  }
}
