// State transfer, both sides, as one member does it (what travels and how: transfer.ts):
// - catching up: fetch the records this member misses from a donor, after checking its own log
//   is a prefix of the donor's (else it is discarded and everything is fetched);
// - serving: the batches and record digests other members ask this member for.

import { FffsError } from '../../errors.js'
import { hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import type { Clock } from '../clock.js'
import { peerMethods, type Answer, type FetchArgs, type FetchReply } from '../protocol.js'
import { formatBytes } from '../../bytes.js'
import { describeTransfer, type TransferStatus } from '../readiness.js'
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
  private chain: Promise<unknown> = Promise.resolve() // one state transfer into the store at a time
  private progress: TransferProgress | null = null // the transfer under way
  private stopped = false

  constructor(options: StateTransferOptions) {
    this.options = options
    this.exportAhead = new ExportAhead(options.replica.store, options.clock, options.batchBytes)
  }

  /** The transfer under way ("catching up, 41% of 2.1 GB"), if any. */
  status(): TransferStatus | null {
    return this.progress?.status() ?? null
  }

  stop(): void {
    this.stopped = true
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
      if (options.donorHoldsStart === true && upto !== null && upto > 0n && (await this.donorDigest(donorId, upto)) === null) {
        throw new Error(`member ${donorId} no longer holds the plan's start ${upto}`)
      }
      const last = this.options.replica.store.appliedStamp
      const holds = last === 0n || (await this.donorHolds(donorId, last))
      // A catch-up before a join changes nothing once the member moved on to a plan.
      if (this.stopsEarly(options)) return 0
      if (!holds && !options.mayDiscard) {
        this.options.log(`member ${donorId} does not hold this log's last record (${last}): it is replaced when this member joins`)
        return 0
      }
      if (!holds) {
        this.options.log(`member ${donorId} does not hold this log's last record (${last}): discarding this log, fetching all of member ${donorId}'s`)
        await this.discard()
        return this.fetchFrom(donorId, 0n, options)
      }
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

  /** Whether the donor's log holds this log's record at `stamp`, compared by digest (each side reads its own). */
  private async donorHolds(donorId: number, stamp: HlcStamp): Promise<boolean> {
    const [mine, theirs] = await Promise.all([recordDigestAt(this.options.replica.store, stamp), this.donorDigest(donorId, stamp)])
    if (mine === null) throw new Error(`invariant: the log has no record at its applied stamp ${stamp}`)
    return theirs === mine
  }

  private async donorDigest(donorId: number, stamp: HlcStamp): Promise<string | null> {
    const { result } = await this.options.peers.call(donorId, peerMethods.digest, { stamp }, this.options.stallMs)
    return result.digest
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
      // handed the records after the base only, and silently miss those in between.
      const logBase = store.logBase
      if (args.after < logBase) throw new FffsError('ERANGE', `this member's log was collected up to ${hlcToIso(logBase)} (history retention): a log ending at ${args.after === 0n ? 'nothing' : hlcToIso(args.after)} cannot be caught up from it (a whole-store transfer is not built yet)`)
      const upto = args.upto ?? this.options.stableStamp()
      const blobs = args.withBlobs ? this.options.delivery.heldBlobs() : null
      const { batch, body } = await this.exportAhead.next({ after: args.after, upto, cursor: args.cursor, blobs })
      const totalBytes = args.cursor === null ? await transferSizeEstimate(store, args.after, upto, blobs ?? []) : undefined
      return { result: { batch, upto, ...(totalBytes !== undefined ? { totalBytes } : {}) }, body }
    })
  }

  /** The digest of this log's record at `stamp` (null: none). */
  serveDigest(stamp: HlcStamp): Promise<Answer<{ digest: string | null }>> {
    return this.options.replica.read({ prefixIsEnough: true }, async (store) => {
      if (!this.options.running()) await this.options.delivery.settle()
      return { result: { digest: await recordDigestAt(store, stamp) } }
    })
  }
}
