// The replication protocol of one group (one shard), as a pure state machine: events in
// (row changes, delivered messages, suspicions, ticks, client submissions, persistence
// reports), actions out (set and push the own row, send, deliver, write the trim, install a
// view, reply). No sockets, timers or disks in here: the member runtime executes the actions
// against the native transport and the store, and the simulation tests execute them against
// the simulated network and an in-memory disk.
//
// Normal case (Derecho's ordered multicast):
// - Members of the view take turns round-robin: message k of the sender at view position p
//   has global index k × n + p. A member with nothing to say sends null messages so the
//   rotation never waits on it.
// - Each member counts, per sender, the messages it received contiguously (`received`). A
//   message is stable when every member of the view received it (min over rows); stable
//   messages are delivered in global order. Delivery assigns the record's HLC stamp,
//   max(previous stamp + 1, sender's clock at send), the same at every replica. A batch (a
//   submit of `records` > 1, an AppBatch message) takes that many consecutive stamps from
//   there: one message, one row update and one reply carry several records.
// - The runtime writes delivered records to its log and reports it (`written_stamp`), then syncs
//   them and reports that (`persisted_stamp`); the global frontiers are the mins over the view. A
//   submission is answered once the written frontier passed its record (or the persisted one,
//   when the group acknowledges only synced records: `acknowledge`); a sync waiter
//   (`syncedEverywhereStamp`) waits for the persisted one.
// - `hlc_floor`: no record this member will still send or deliver can get a stamp at or below
//   it. The stability frontier of a replica is the min over the view's floors, its own
//   computed fresh, and never above the global persistence frontier while delivered records
//   are not yet durable everywhere.
//
// View change (Derecho's wedge and ragged-edge cleanup; the agreement is single-decree Paxos
// written into the table, so two views with one id can never be installed):
// - A suspicion (the transport's or any row's) is adopted, pushed, and wedges the member: it
//   stops counting and sending messages of the view.
// - The leader is the lowest-ranked member not suspected. It takes a ballot above every
//   ballot seen (prepare); members promise the highest ballot they see. With promises from
//   a majority of the view the leader proposes the value with the highest accepted ballot
//   among them, or, if none, its own: the unsuspected members (a majority, or nothing:
//   partition safety) and, once they are all wedged, the ragged trim (per sender, the min
//   received over them). Members accept a proposal whose ballot is at least what they
//   promised, writing it durably first (a total restart reads it: recovery.ts planEpoch);
//   with acceptances from a majority the leader commits. A new leader thus re-proposes
//   whatever a failed leader may have had chosen.
// - Learning a decision: write the trim durably, deliver up to it in round-robin order,
//   install the next view, send again what of the own messages was trimmed away. A member
//   the decision leaves out is told so (`excluded`) and must rejoin as a new member.

import { HybridClock, hlcOf, type HlcStamp } from '../../temporal/hlc.js'
import type { SstView } from '../transport/types.js'
import { BATCH_RECORDS_MAX, decodeMessage, encodeMessage, MessageKind } from './message.js'
import { COLUMN } from './schema.js'

export interface View {
  readonly vid: number
  readonly members: readonly number[] // epoch ranks, ascending; the view position is the index here
}

export type CoreEvent =
  | { readonly kind: 'rows' }
  | { readonly kind: 'message'; readonly fromRank: number; readonly bytes: Uint8Array }
  | { readonly kind: 'suspect'; readonly rank: number }
  | { readonly kind: 'tick' }
  /** `after`: the submitting client's clock; the message is sent, hence stamped, above it.
   * `records`: how many records the payload holds (default 1); it takes that many consecutive
   * stamps, so a batch of records costs one ordered message and one reply. */
  | { readonly kind: 'submit'; readonly requestId: number; readonly payload: Uint8Array; readonly after?: HlcStamp; readonly records?: number }
  | { readonly kind: 'persisted'; readonly stamp: HlcStamp }
  /** Every record up to `stamp` is written to the local log (not necessarily synced). */
  | { readonly kind: 'written'; readonly stamp: HlcStamp }
  /** A client of this member waits until every record up to `stamp` is synced at every member (fsync). */
  | { readonly kind: 'syncWanted'; readonly stamp: HlcStamp }

export type CoreAction =
  | { readonly kind: 'setU64'; readonly column: string; readonly value: bigint; readonly index?: number }
  | { readonly kind: 'setBool'; readonly column: string; readonly value: boolean; readonly index?: number }
  /** `lazy`: only columns nobody waits on changed (LAZY_COLUMNS); the runtime may push later, with the next urgent push or within a short bound. */
  | { readonly kind: 'push'; readonly lazy?: true }
  | { readonly kind: 'send'; readonly bytes: Uint8Array; readonly large: boolean }
  /** Apply and persist this record; report `persisted` once it is durable (in delivery order).
   * `view` is the view it was delivered in, `viewSeq` its position there. Not `currentView` read
   * after `handle` returns: a ragged-edge cleanup delivers messages of the old view and installs
   * the next one in the same step, and a reconfigure must be planned from the view it was
   * delivered in at every member (the simulation found plans differing across members). */
  /** A batch (`records` > 1) has the stamps `stamp` .. `stamp` + records − 1, one per record in payload order. */
  | { readonly kind: 'deliver'; readonly stamp: HlcStamp; readonly records?: number; readonly senderRank: number; readonly payload: Uint8Array; readonly requestId?: number; readonly view: View; readonly viewSeq: number }
  /** Write durably, before the deliveries that follow, that view `vid` ends at this trim. */
  | { readonly kind: 'persistTrim'; readonly vid: number; readonly trim: readonly number[] }
  /** Write durably, before the row that follows is pushed, that this member accepted `members`
   * (ranks) as view `vid` + 1 with `ballot`. A total restart must see it (planEpoch): the accepted
   * view may have been chosen and installed only by members absent from the restart. */
  | { readonly kind: 'persistAccepted'; readonly vid: number; readonly ballot: bigint; readonly members: readonly number[] }
  | { readonly kind: 'installView'; readonly view: View }
  | { readonly kind: 'reply'; readonly requestId: number; readonly stamp: HlcStamp }
  | { readonly kind: 'reject'; readonly requestId: number; readonly reason: string }
  /** This member is not in the next view (or fell too far behind): stop and rejoin. */
  | { readonly kind: 'excluded'; readonly reason: string }

export interface GroupCoreOptions {
  readonly selfRank: number
  readonly epochSize: number // rows in the table
  readonly view: View
  readonly sst: SstView // read-only: the own row is kept here and written through actions
  readonly lastStamp: HlcStamp // stamp of the last record in the local log (delivered and persisted)
  readonly nowUs: number
  readonly smallMessageMaxBytes: number // larger messages take the large-object channel
  /** When a submission is answered: once its record is written at every member of the view, or synced there. */
  readonly acknowledge: 'written' | 'synced'
}

interface Received {
  readonly kind: MessageKind
  readonly hlc: HlcStamp
  readonly records: number // stamps it takes: 0 for a null message
  readonly payload: Uint8Array
}

interface OwnMessage {
  readonly requestId: number
  readonly payload: Uint8Array
  readonly records: number
  index: number | null // in the current view; null: not sent in it yet
  hlc: HlcStamp
}

interface Decision {
  readonly members: readonly number[]
  readonly trim: readonly number[]
}

/** What `fffs status` shows of this member. */
export interface CoreStatus {
  readonly view: View
  readonly rank: number
  readonly leaderRank: number | null
  readonly wedged: boolean
  readonly excluded: boolean
  readonly suspected: readonly number[]
  readonly sent: number
  readonly received: readonly number[]
  readonly delivered: number
  readonly deliveredStamp: HlcStamp
  readonly persistedStamp: HlcStamp
  readonly globalPersistedStamp: HlcStamp
  readonly globalWrittenStamp: HlcStamp
  readonly stableStamp: HlcStamp
  readonly pendingRequests: number
}

/** A submit's record count: 1 by default; a batch holds 2..BATCH_RECORDS_MAX. */
function submittedRecords(records: number | undefined): number {
  if (records === undefined) return 1
  if (!Number.isInteger(records) || records < 1 || records > BATCH_RECORDS_MAX) throw new Error(`a submit of ${records} records`)
  return records
}

const BALLOT_RANK_SPAN = 256n // ballot = round × span + rank + 1: unique per proposer, never 0
// The floor follows the clock, so it rises on every event; publishing each rise made each row
// push at a peer publish again there (an idle 3-member group exchanged ~8000 pushes/s per
// member, ~30% CPU each, and more than that under load). A floor published later is still true
// (it only delays stability), so rises go out at most this often, on whatever event comes next
// (the runtime's tick at the latest).
const FLOOR_PUBLISH_INTERVAL_US = 10_000

/**
 * Columns whose change alone does not need a push at once: no reply and no delivery waits on
 * them (delivered counts matter at a view's end, delivered stamps to `fffs status`, the floor and
 * the persisted stamp to stability, which already lags by the floor's interval). The persisted
 * stamp is lazy only while nothing waits on it: not when submissions are answered once synced,
 * and not while any member of the view says a client waits for a sync (`sync_wanted`).
 * A push sends the whole row, so lazy changes go out with the next urgent one. Why: a push costs
 * a write to every peer and wakes each of them, and half of a member's pushes under a stream of
 * small commits carried nothing anyone waited for.
 */
const LAZY_COLUMNS: ReadonlySet<string> = new Set([COLUMN.delivered, COLUMN.deliveredStamp, COLUMN.hlcFloor, COLUMN.persistedStamp])

export class GroupCore {
  private readonly selfRank: number
  private readonly epochSize: number
  private readonly sst: SstView
  private readonly smallMessageMaxBytes: number
  private readonly acknowledge: 'written' | 'synced'
  private readonly clock: HybridClock
  private nowUs: number
  private view: View
  private excludedReason: string | null = null

  // Per view.
  private inbox: Array<Map<number, Received>> // per sender rank: undelivered messages by index
  private receivedCount: number[] // per sender rank, contiguous
  private deliveredCount = 0
  private sentCount = 0
  private wedged = false
  private readonly laterViews: Array<{ fromRank: number; bytes: Uint8Array }> = []

  // Across views.
  private lastStamp: HlcStamp
  private persistedStamp: HlcStamp
  private writtenStamp: HlcStamp
  private publishedFloor: HlcStamp = 0n
  private floorPublishedUs = Number.NEGATIVE_INFINITY // nowUs when publishedFloor was last raised
  private stableReported: HlcStamp = 0n // the highest stableStamp() returned
  private readonly suspected: boolean[]
  private readonly own: OwnMessage[] = [] // submitted, not yet delivered, in submission order
  private readonly awaitingDurable: Array<{ requestId: number; stamp: HlcStamp }> = []
  private readonly notDurable: HlcStamp[] = [] // delivered stamps not yet known durable everywhere, ascending

  // View-change agreement (for the transition out of the current view).
  private cvid = 0
  private ballot = 0n
  private promised = 0n
  private acceptedBallot = 0n
  private accepted: Decision | null = null
  private committedBallot = 0n
  private decidedVid = 0

  // The own row as last written; cells are emitted as actions when they change.
  private readonly row = new Map<string, bigint | boolean>()
  private actions: CoreAction[] = []
  private rowDirty = false // a change someone may wait on: push now
  private lazyDirty = false // only lazy changes since the last push (LAZY_COLUMNS)
  private pushedPersisted: HlcStamp // persisted_stamp as of the last urgent push (the row as peers surely have it)
  private syncWanted = 0n

  constructor(options: GroupCoreOptions) {
    this.selfRank = options.selfRank
    this.epochSize = options.epochSize
    this.sst = options.sst
    this.smallMessageMaxBytes = options.smallMessageMaxBytes
    this.acknowledge = options.acknowledge
    this.nowUs = options.nowUs
    this.clock = new HybridClock(() => this.nowUs)
    this.view = options.view
    this.lastStamp = options.lastStamp
    this.persistedStamp = options.lastStamp
    this.pushedPersisted = options.lastStamp
    this.writtenStamp = options.lastStamp
    if (options.lastStamp > 0n) this.clock.observe(options.lastStamp)
    this.suspected = new Array<boolean>(this.epochSize).fill(false)
    this.inbox = this.emptyInbox()
    this.receivedCount = new Array<number>(this.epochSize).fill(0)
    if (!this.view.members.includes(this.selfRank)) throw new Error(`rank ${this.selfRank} is not in view ${this.view.vid}`)
  }

  /** The actions that start the member: its first row. */
  start(): CoreAction[] {
    this.writeViewRow()
    this.setU64(COLUMN.persistedStamp, this.persistedStamp)
    this.setU64(COLUMN.writtenStamp, this.writtenStamp)
    this.setU64(COLUMN.deliveredStamp, this.lastStamp)
    return this.finish()
  }

  handle(event: CoreEvent, nowUs: number): CoreAction[] {
    if (nowUs > this.nowUs) this.nowUs = nowUs
    if (this.excludedReason !== null) {
      if (event.kind === 'submit') this.actions.push({ kind: 'reject', requestId: event.requestId, reason: this.excludedReason })
      return this.finish()
    }
    switch (event.kind) {
      case 'message':
        this.receive(event.fromRank, event.bytes)
        break
      case 'suspect':
        this.suspect(event.rank)
        break
      case 'submit':
        if (event.after !== undefined) this.clock.observe(event.after)
        this.own.push({ requestId: event.requestId, payload: event.payload, records: submittedRecords(event.records), index: null, hlc: 0n })
        break
      case 'persisted':
        if (event.stamp > this.persistedStamp) {
          this.persistedStamp = event.stamp
          this.setU64(COLUMN.persistedStamp, event.stamp)
        }
        this.raiseWritten(event.stamp) // synced implies written
        break
      case 'written':
        this.raiseWritten(event.stamp)
        break
      case 'syncWanted':
        if (event.stamp > this.syncWanted) {
          this.syncWanted = event.stamp
          this.setU64(COLUMN.syncWanted, event.stamp)
        }
        break
      case 'rows':
      case 'tick':
        break
    }
    this.progress()
    return this.finish()
  }

  get currentView(): View {
    return this.view
  }

  get isWedged(): boolean {
    return this.wedged
  }

  /** Whether every unsuspected member of the current view has delivered message number `viewSeq`
   * of view `vid` (default: the current view; a delivery's `view.vid` when it may have been
   * delivered by a ragged-edge cleanup, which installs the next view in the same step). A member
   * already in a later view delivered it: installing a view delivers the previous one up to its
   * trim, and a message delivered anywhere is within the trim (stable: every member received it). */
  deliveredEverywhere(viewSeq: number, vid: number = this.view.vid): boolean {
    return this.view.members.every((rank) => {
      if (rank === this.selfRank || this.suspected[rank]) return true
      const rowVid = Number(this.sst.u64(rank, COLUMN.vid))
      return rowVid > vid || (rowVid === vid && Number(this.sst.u64(rank, COLUMN.delivered)) > viewSeq)
    })
  }

  get isExcluded(): boolean {
    return this.excludedReason !== null
  }

  /** Every record stamped at or below this is delivered here and durable at every member. Never goes back. */
  stableStamp(): HlcStamp {
    const frontier = this.freshStableStamp()
    // Each value returned is a promise that stays true (later records get later stamps, durable
    // records stay durable), so it is kept. The fresh computation can be lower than an earlier
    // one: a sender may raise its floor past its own message still in flight (that message comes
    // later in the order, so its stamp will exceed the sender's last delivered stamp), and when the
    // message reaches this member late, its own floor drops to the message's hlc − 1. Found by the
    // simulation (crash-restart-3 seed 101407: a slow packet); a frontier that goes back would let
    // a read wait on a cut it was already told was stable.
    if (frontier < this.stableReported) return this.stableReported
    this.stableReported = frontier
    return frontier
  }

  private freshStableStamp(): HlcStamp {
    let frontier = this.computedFloor()
    for (const rank of this.view.members) {
      if (rank === this.selfRank) continue
      const floor = this.sst.u64(rank, COLUMN.hlcFloor)
      if (floor < frontier) frontier = floor
    }
    const durable = this.globalPersistedStamp()
    while (this.notDurable.length > 0 && this.notDurable[0]! <= durable) this.notDurable.shift()
    const firstNotDurable = this.notDurable[0]
    if (firstNotDurable !== undefined && firstNotDurable - 1n < frontier) frontier = firstNotDurable - 1n
    return frontier
  }

  status(): CoreStatus {
    return {
      view: this.view,
      rank: this.selfRank,
      leaderRank: this.leaderRank(),
      wedged: this.wedged,
      excluded: this.excludedReason !== null,
      suspected: this.suspected.flatMap((s, rank) => (s ? [rank] : [])),
      sent: this.sentCount,
      received: [...this.receivedCount],
      delivered: this.deliveredCount,
      deliveredStamp: this.lastStamp,
      persistedStamp: this.persistedStamp,
      globalPersistedStamp: this.globalPersistedStamp(),
      globalWrittenStamp: this.globalWrittenStamp(),
      stableStamp: this.stableStamp(),
      pendingRequests: this.own.length + this.awaitingDurable.length,
    }
  }

  // ---- receiving and delivering ----

  private receive(fromRank: number, bytes: Uint8Array): void {
    const { header, payload } = decodeMessage(bytes)
    if (header.vid < this.view.vid) return // a view already left: its ragged edge was trimmed
    if (header.vid > this.view.vid) {
      this.laterViews.push({ fromRank, bytes }) // the sender installed the next view first
      return
    }
    if (!this.view.members.includes(fromRank)) return
    const records = header.kind === MessageKind.Null ? 0 : (header.records ?? 1)
    this.inbox[fromRank]!.set(header.index, { kind: header.kind, hlc: header.hlc, records, payload })
    if (this.wedged) return // counts are frozen: the trim is computed from them
    this.countContiguous(fromRank)
  }

  private countContiguous(fromRank: number): void {
    let count = this.receivedCount[fromRank]!
    const box = this.inbox[fromRank]!
    const firstUndelivered = this.nextIndexToDeliver(fromRank)
    while (count < firstUndelivered || box.has(count)) count++
    if (count !== this.receivedCount[fromRank]) {
      this.receivedCount[fromRank] = count
      this.setU64(COLUMN.received, BigInt(count), fromRank)
    }
  }

  /** Index of the first message of `rank` not yet delivered (messages below it left the inbox). */
  private nextIndexToDeliver(rank: number): number {
    const n = this.view.members.length
    const position = this.view.members.indexOf(rank)
    return Math.floor((this.deliveredCount - position + n - 1) / n)
  }

  private minReceived(rank: number): number {
    let min = this.receivedCount[rank]!
    for (const member of this.view.members) {
      if (member === this.selfRank) continue
      const count = this.sst.u64(member, COLUMN.vid) === BigInt(this.view.vid) ? Number(this.sst.u64(member, COLUMN.received, rank)) : 0
      if (count < min) min = count
    }
    return min
  }

  private deliverStable(): void {
    const members = this.view.members
    const n = members.length
    const stable = members.map((rank) => this.minReceived(rank))
    for (;;) {
      const position = this.deliveredCount % n
      const index = Math.floor(this.deliveredCount / n)
      if (index >= stable[position]!) return
      this.deliverNext()
    }
  }

  private deliverNext(): void {
    const n = this.view.members.length
    const rank = this.view.members[this.deliveredCount % n]!
    const index = Math.floor(this.deliveredCount / n)
    const message = this.inbox[rank]!.get(index)
    if (message === undefined) throw new Error(`invariant: message ${index} of rank ${rank} in view ${this.view.vid} is stable but missing`)
    this.inbox[rank]!.delete(index)
    const viewSeq = this.deliveredCount++
    this.setU64(COLUMN.delivered, BigInt(this.deliveredCount))
    if (message.kind === MessageKind.Null) return
    const stamp = message.hlc > this.lastStamp ? message.hlc : this.lastStamp + 1n
    const last = stamp + BigInt(message.records - 1) // a batch's records take consecutive stamps
    this.lastStamp = last
    this.notDurable.push(last)
    this.clock.observe(last)
    this.setU64(COLUMN.deliveredStamp, last)
    let requestId: number | undefined
    if (rank === this.selfRank) {
      const at = this.own.findIndex((m) => m.index === index)
      if (at < 0) throw new Error(`invariant: own message ${index} delivered but not pending`)
      requestId = this.own[at]!.requestId
      this.own.splice(at, 1)
      this.awaitingDurable.push({ requestId, stamp: last }) // answered once its last record is durable everywhere
    }
    this.actions.push({ kind: 'deliver', stamp, ...(message.records > 1 ? { records: message.records } : {}), senderRank: rank, payload: message.payload, view: this.view, viewSeq, ...(requestId === undefined ? {} : { requestId }) })
  }

  private globalPersistedStamp(): HlcStamp {
    return this.minOverView(COLUMN.persistedStamp, this.persistedStamp)
  }

  /** The least of `column` over the view's rows, this member's own being `own`. */
  private minOverView(column: string, own: HlcStamp): HlcStamp {
    let min = own
    for (const member of this.view.members) {
      if (member === this.selfRank) continue
      const stamp = this.sst.u64(member, column)
      if (stamp < min) min = stamp
    }
    return min
  }

  /** Every record stamped at or below this is synced in the log of every member of the current view. */
  syncedEverywhereStamp(): HlcStamp {
    return this.globalPersistedStamp()
  }

  private raiseWritten(stamp: HlcStamp): void {
    if (stamp <= this.writtenStamp) return
    this.writtenStamp = stamp
    this.setU64(COLUMN.writtenStamp, stamp)
  }

  private globalWrittenStamp(): HlcStamp {
    return this.minOverView(COLUMN.writtenStamp, this.writtenStamp)
  }

  private replyDurable(): void {
    if (this.awaitingDurable.length === 0) return
    const durable = this.acknowledge === 'written' ? this.globalWrittenStamp() : this.globalPersistedStamp()
    while (this.awaitingDurable.length > 0 && this.awaitingDurable[0]!.stamp <= durable) {
      const { requestId, stamp } = this.awaitingDurable.shift()!
      this.actions.push({ kind: 'reply', requestId, stamp })
    }
  }

  // ---- sending ----

  private sendPending(): void {
    if (this.wedged) return
    for (const message of this.own) {
      if (message.index !== null) continue
      message.hlc = this.clock.now()
      message.index = this.send(message.records > 1 ? MessageKind.AppBatch : MessageKind.App, message.hlc, message.payload, message.records)
    }
  }

  private send(kind: MessageKind, hlc: HlcStamp, payload: Uint8Array | null, records = 1): number {
    const index = this.sentCount++
    const bytes = encodeMessage({ kind, vid: this.view.vid, index, hlc, ...(kind === MessageKind.AppBatch ? { records } : {}) }, payload)
    this.actions.push({ kind: 'send', bytes, large: bytes.byteLength > this.smallMessageMaxBytes })
    return index
  }

  /** Null messages up to what the others' messages need of this sender to become deliverable. */
  private sendNulls(): void {
    if (this.wedged) return
    const position = this.view.members.indexOf(this.selfRank)
    let target = 0
    this.view.members.forEach((rank, p) => {
      if (p === position) return
      const need = p > position ? this.receivedCount[rank]! : this.receivedCount[rank]! - 1
      if (need > target) target = need
    })
    while (this.sentCount < target) this.send(MessageKind.Null, 0n, null)
  }

  // ---- stability ----

  private computedFloor(): HlcStamp {
    const wall = hlcOf(this.nowUs, 0) - 1n
    const issued = this.clock.peek()
    let floor = wall > issued ? wall : issued
    const lower = (hlc: HlcStamp): void => {
      if (hlc - 1n < floor) floor = hlc - 1n
    }
    for (const message of this.own) if (message.index !== null) lower(message.hlc)
    for (const box of this.inbox) for (const message of box.values()) if (message.kind !== MessageKind.Null) lower(message.hlc)
    // A stamp is at least the previous one + 1, so nothing still to come lands at or below lastStamp.
    return floor > this.lastStamp ? floor : this.lastStamp
  }

  private publishFloor(): void {
    if (this.nowUs - this.floorPublishedUs < FLOOR_PUBLISH_INTERVAL_US) return
    const floor = this.computedFloor()
    if (floor > this.publishedFloor) {
      this.publishedFloor = floor
      this.floorPublishedUs = this.nowUs
      this.setU64(COLUMN.hlcFloor, floor)
    }
  }

  // ---- failures and view change ----

  private suspect(rank: number): void {
    if (rank < 0 || rank >= this.epochSize || this.suspected[rank]) return
    this.suspected[rank] = true
    this.setBool(COLUMN.suspected, true, rank)
  }

  private leaderRank(): number | null {
    for (const rank of this.view.members) if (!this.suspected[rank]) return rank
    return null
  }

  private majority(): number {
    return Math.floor(this.view.members.length / 2) + 1
  }

  private rowInView(rank: number): boolean {
    return this.sst.u64(rank, COLUMN.vid) === BigInt(this.view.vid)
  }

  /** A row taking part in the agreement on leaving this view. Suspected members are ignored:
   * that costs no safety (Paxos holds whoever is heard) and stops a cut-off member from
   * preempting the majority's leader forever. */
  private rowInAgreement(rank: number): boolean {
    return !this.suspected[rank] && this.rowInView(rank) && this.sst.u64(rank, COLUMN.cvid) === BigInt(this.view.vid)
  }

  /** Suspicions spread through the table, except from a member that suspects a majority of the
   * view: that member is cut off from the majority (Derecho's partition rule), so it is the one
   * suspected, and it cannot poison the majority's view of who is alive. */
  private adoptSuspicions(): void {
    for (const member of this.view.members) {
      if (member === this.selfRank || this.suspected[member]) continue
      const theirs = this.view.members.filter((rank) => this.sst.bool(member, COLUMN.suspected, rank))
      if (theirs.length >= this.majority()) this.suspect(member)
      else for (const rank of theirs) this.suspect(rank)
    }
  }

  private wedgeIfNeeded(): void {
    if (this.wedged) return
    const suspicion = this.view.members.some((rank) => this.suspected[rank])
    const othersWedged = this.view.members.some((rank) => rank !== this.selfRank && this.rowInView(rank) && this.sst.bool(rank, COLUMN.wedged))
    if (!suspicion && !othersWedged) return
    this.wedged = true
    this.setBool(COLUMN.wedged, true)
    this.enterAgreement()
  }

  private enterAgreement(): void {
    if (this.cvid === this.view.vid) return
    this.cvid = this.view.vid
    this.ballot = 0n
    this.promised = 0n
    this.acceptedBallot = 0n
    this.accepted = null
    this.committedBallot = 0n
    this.setU64(COLUMN.cvid, BigInt(this.cvid))
    this.setU64(COLUMN.ballot, 0n)
    this.setU64(COLUMN.promised, 0n)
    this.setU64(COLUMN.acceptedBallot, 0n)
    this.setU64(COLUMN.committedBallot, 0n)
  }

  private readDecision(rank: number, membersColumn: string, trimColumn: string): Decision {
    const members: number[] = []
    const trim: number[] = []
    for (let r = 0; r < this.epochSize; r++) {
      if (this.sst.bool(rank, membersColumn, r)) members.push(r)
      trim.push(Number(this.sst.u64(rank, trimColumn, r)))
    }
    return { members, trim }
  }

  private writeAccepted(ballot: bigint, value: Decision): void {
    // Durable before anyone can count this acceptance: the push that publishes it comes after.
    this.actions.push({ kind: 'persistAccepted', vid: this.view.vid, ballot, members: value.members })
    this.acceptedBallot = ballot
    this.accepted = value
    this.setU64(COLUMN.acceptedBallot, ballot)
    for (let r = 0; r < this.epochSize; r++) {
      this.setBool(COLUMN.acceptedMembers, value.members.includes(r), r)
      this.setU64(COLUMN.acceptedTrim, BigInt(value.trim[r] ?? 0), r)
    }
  }

  /** Acceptor and learner: promise, accept and learn from the other rows. */
  private followAgreement(): Decision | null {
    const nextVid = BigInt(this.view.vid + 1)
    for (const rank of this.view.members) {
      if (rank === this.selfRank) continue
      if (this.sst.u64(rank, COLUMN.vid) === nextVid && this.sst.u64(rank, COLUMN.decidedVid) === nextVid) {
        return this.readDecision(rank, COLUMN.decidedMembers, COLUMN.decidedTrim)
      }
    }
    if (this.cvid !== this.view.vid) return null
    for (const rank of this.view.members) {
      if (rank === this.selfRank || !this.rowInAgreement(rank)) continue
      const ballot = this.sst.u64(rank, COLUMN.ballot)
      if (ballot > this.promised) {
        this.promised = ballot
        this.setU64(COLUMN.promised, ballot)
      }
    }
    for (const rank of this.view.members) {
      if (rank === this.selfRank || !this.rowInAgreement(rank)) continue
      const ballot = this.sst.u64(rank, COLUMN.ballot)
      const proposed = this.sst.u64(rank, COLUMN.acceptedBallot) === ballot && ballot > 0n
      if (proposed && ballot >= this.promised && ballot > this.acceptedBallot) {
        this.writeAccepted(ballot, this.readDecision(rank, COLUMN.acceptedMembers, COLUMN.acceptedTrim))
      }
      const committed = this.sst.u64(rank, COLUMN.committedBallot)
      if (committed > 0n && committed === this.sst.u64(rank, COLUMN.acceptedBallot)) {
        return this.readDecision(rank, COLUMN.acceptedMembers, COLUMN.acceptedTrim)
      }
    }
    return null
  }

  /** Proposer: only the leader, only while wedged. */
  private leadAgreement(): Decision | null {
    if (!this.wedged || this.leaderRank() !== this.selfRank || this.cvid !== this.view.vid) return null
    if (this.ballot === 0n || this.promised > this.ballot) {
      let highest = this.promised > this.ballot ? this.promised : this.ballot
      for (const rank of this.view.members) {
        if (rank !== this.selfRank && this.rowInAgreement(rank)) {
          const b = this.sst.u64(rank, COLUMN.ballot)
          if (b > highest) highest = b
        }
      }
      const round = highest === 0n ? 0n : (highest - 1n) / BALLOT_RANK_SPAN + 1n
      this.ballot = round * BALLOT_RANK_SPAN + BigInt(this.selfRank) + 1n
      this.promised = this.ballot
      this.setU64(COLUMN.ballot, this.ballot)
      this.setU64(COLUMN.promised, this.ballot)
    }
    const quorum = this.majority()
    if (this.acceptedBallot !== this.ballot) {
      const promisers = this.view.members.filter((rank) =>
        rank === this.selfRank ? this.promised === this.ballot : this.rowInAgreement(rank) && this.sst.u64(rank, COLUMN.promised) === this.ballot,
      )
      if (promisers.length < quorum) return null
      let value: Decision | null = null
      let valueBallot = 0n
      for (const rank of promisers) {
        const b = rank === this.selfRank ? this.acceptedBallot : this.sst.u64(rank, COLUMN.acceptedBallot)
        if (b > valueBallot) {
          valueBallot = b
          value = rank === this.selfRank ? this.accepted : this.readDecision(rank, COLUMN.acceptedMembers, COLUMN.acceptedTrim)
        }
      }
      value ??= this.freshDecision()
      if (value === null) return null
      this.writeAccepted(this.ballot, value)
      return null
    }
    const acceptors = this.view.members.filter((rank) =>
      rank === this.selfRank ? true : this.rowInAgreement(rank) && this.sst.u64(rank, COLUMN.acceptedBallot) === this.ballot,
    )
    if (acceptors.length < quorum || this.accepted === null) return null
    if (this.committedBallot !== this.ballot) {
      this.committedBallot = this.ballot
      this.setU64(COLUMN.committedBallot, this.ballot)
    }
    return this.accepted
  }

  /** The leader's own proposal: survivors (a majority, or none: partition safety) and their ragged trim. */
  private freshDecision(): Decision | null {
    const survivors = this.view.members.filter((rank) => !this.suspected[rank])
    if (survivors.length < this.majority()) return null
    for (const rank of survivors) {
      if (rank !== this.selfRank && !(this.rowInAgreement(rank) && this.sst.bool(rank, COLUMN.wedged))) return null
    }
    const trim = new Array<number>(this.epochSize).fill(0)
    for (const sender of this.view.members) {
      let min = Number.MAX_SAFE_INTEGER
      for (const rank of survivors) {
        const count = rank === this.selfRank ? this.receivedCount[sender]! : Number(this.sst.u64(rank, COLUMN.received, sender))
        if (count < min) min = count
      }
      trim[sender] = min
    }
    return { members: survivors, trim }
  }

  private install(decision: Decision): void {
    const nextVid = this.view.vid + 1
    this.decidedVid = nextVid
    this.setU64(COLUMN.decidedVid, BigInt(nextVid))
    for (let r = 0; r < this.epochSize; r++) {
      this.setBool(COLUMN.decidedMembers, decision.members.includes(r), r)
      this.setU64(COLUMN.decidedTrim, BigInt(decision.trim[r] ?? 0), r)
    }
    if (!decision.members.includes(this.selfRank)) {
      this.exclude(`view ${nextVid} does not include rank ${this.selfRank}`)
      return
    }
    // Ragged-edge cleanup: the trim is durable before anything beyond the old stability is delivered.
    this.actions.push({ kind: 'persistTrim', vid: this.view.vid, trim: decision.trim })
    const n = this.view.members.length
    const rounds = Math.max(0, ...this.view.members.map((rank) => decision.trim[rank]!))
    while (this.deliveredCount < rounds * n) {
      const rank = this.view.members[this.deliveredCount % n]!
      const index = Math.floor(this.deliveredCount / n)
      if (index < decision.trim[rank]!) {
        this.deliverNext()
      } else {
        this.deliveredCount++ // trimmed away: not delivered anywhere
      }
    }
    for (const message of this.own) message.index = null // trimmed: sent again in the next view
    this.view = { vid: nextVid, members: [...decision.members].sort((a, b) => a - b) }
    this.inbox = this.emptyInbox()
    this.receivedCount = new Array<number>(this.epochSize).fill(0)
    this.deliveredCount = 0
    this.sentCount = 0
    this.wedged = false
    this.actions.push({ kind: 'installView', view: this.view })
    this.writeViewRow()
    const waiting = this.laterViews.splice(0)
    for (const { fromRank, bytes } of waiting) this.receive(fromRank, bytes)
  }

  private exclude(reason: string): void {
    this.excludedReason = reason
    for (const message of this.own) this.actions.push({ kind: 'reject', requestId: message.requestId, reason })
    this.own.length = 0
    this.actions.push({ kind: 'excluded', reason })
  }

  private writeViewRow(): void {
    this.setU64(COLUMN.vid, BigInt(this.view.vid))
    for (let r = 0; r < this.epochSize; r++) this.setU64(COLUMN.received, 0n, r)
    this.setU64(COLUMN.delivered, 0n)
    this.setBool(COLUMN.wedged, false)
  }

  // ---- the step ----

  private progress(): void {
    for (let round = 0; round < 8; round++) {
      this.adoptSuspicions()
      this.wedgeIfNeeded()
      if (!this.wedged) for (const rank of this.view.members) this.countContiguous(rank)
      this.deliverStable()
      const decision = this.followAgreement() ?? this.leadAgreement()
      if (decision !== null && this.decidedVid <= this.view.vid) {
        this.install(decision)
        if (this.excludedReason !== null) return
        continue // a new view: look again (later messages, new suspicions)
      }
      break
    }
    if (this.excludedReason !== null) return
    // A member that sees others two views ahead missed a decision nobody still shows: rejoin.
    for (const rank of this.view.members) {
      if (rank !== this.selfRank && this.sst.u64(rank, COLUMN.vid) >= BigInt(this.view.vid + 2)) {
        this.exclude(`fell behind: rank ${rank} is in view ${this.sst.u64(rank, COLUMN.vid)}, this member in ${this.view.vid}`)
        return
      }
    }
    // Cut off: this member suspects a majority of its view. Suspicions are never withdrawn, so it
    // can never again lead a view change, and no next view will include it (a member whose row
    // suspects a majority is suspected by the others, adoptSuspicions). Staying wedged in the view
    // kept it reporting 'running' forever, and that deadlocked recovery (found by the simulation,
    // e.g. crash-restart-5 seed 200005, partition-3 seed 300001): restarted members could neither
    // join it (a wedged member orders no reconfigure) nor form a group without it (planEpoch waits
    // while any member runs), so 2 of 3 members killed and restarted never came back. Leaving is
    // safe (it is what a crash of this member does) and it recovers like a restarted member:
    // rejoin the majority, or take part in a total restart from the longest log.
    if (this.view.members.filter((rank) => !this.suspected[rank]).length < this.majority()) {
      this.exclude(`cut off: rank ${this.selfRank} suspects a majority of view ${this.view.vid}`)
      return
    }
    this.sendPending()
    this.sendNulls()
    this.replyDurable()
    this.publishFloor()
  }

  private finish(): CoreAction[] {
    // A sync waited on somewhere that the persisted stamp peers have of this row does not cover.
    if (this.persistedStamp > this.pushedPersisted && this.syncWantedStamp() > this.pushedPersisted) this.rowDirty = true
    if (this.rowDirty) {
      this.actions.push({ kind: 'push' })
      this.pushedPersisted = this.persistedStamp
    } else if (this.lazyDirty) {
      this.actions.push({ kind: 'push', lazy: true })
    }
    this.rowDirty = false
    this.lazyDirty = false
    const out = this.actions
    this.actions = []
    return out
  }

  /** The highest stamp any member of the view (this one too) has a client waiting to see synced everywhere. */
  syncWantedStamp(): HlcStamp {
    let wanted = this.syncWanted
    for (const member of this.view.members) {
      if (member === this.selfRank) continue
      const stamp = this.sst.u64(member, COLUMN.syncWanted)
      if (stamp > wanted) wanted = stamp
    }
    return wanted
  }

  private isLazy(column: string): boolean {
    return LAZY_COLUMNS.has(column) && (column !== COLUMN.persistedStamp || this.acknowledge === 'written')
  }

  private setU64(column: string, value: bigint, index?: number): void {
    const key = index === undefined ? column : `${column}[${index}]`
    if (this.row.get(key) === value) return
    this.row.set(key, value)
    if (this.isLazy(column)) this.lazyDirty = true
    else this.rowDirty = true
    this.actions.push(index === undefined ? { kind: 'setU64', column, value } : { kind: 'setU64', column, value, index })
  }

  private setBool(column: string, value: boolean, index?: number): void {
    const key = index === undefined ? column : `${column}[${index}]`
    if (this.row.get(key) === value) return
    this.row.set(key, value)
    this.rowDirty = true
    this.actions.push(index === undefined ? { kind: 'setBool', column, value } : { kind: 'setBool', column, value, index })
  }

  private emptyInbox(): Array<Map<number, Received>> {
    return Array.from({ length: this.epochSize }, () => new Map<number, Received>())
  }
}
