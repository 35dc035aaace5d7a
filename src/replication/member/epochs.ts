// Epochs and views of one member, as a pure state machine (like the core): events in (a tick,
// the others' reports, a plan offered, each step of starting an epoch done or failed, a
// reconfigure delivered, a view installed, an exclusion), actions out (ask the others, catch up,
// persist, connect, start the core, leave the epoch). No sockets, timers or disks here: the
// member runtime executes the actions and feeds back what came of them (member.ts).
//
// Epochs. The transport connects a fixed set of members, so a member that restarts cannot
// rejoin it: members are removed by the core's view change inside an epoch, and added by a new
// epoch. Every member starts (and restarts) recovering (recovery.ts): it asks the others; if a
// group is running it first catches up from it while the group goes on, then asks to join, and
// the group orders a reconfigure; if none is, a majority of the last view forms one, from the
// longest log of its latest view. Either way every member of the new epoch first holds exactly
// the records up to the plan's start stamp (`prepare`: fetched from the donor by state
// transfer, durable), persists the view, waits until every member of the plan holds it too
// (`awaitPlan`), then connects the new transport and starts a core.
//
//   recovering --(plan formed or offered)--> starting --(prepared, ready, connected)--> running
//   starting --(any step failed)--> recovering        running --(excluded)--> recovering
//   running --(reconfigure delivered everywhere, or the bound passed; left)--> starting (next plan)

import type { View } from '../core/group.js'
import { nextEpochPlan, planEpoch, type AcceptedView, type EpochPlan, type MemberReport } from '../recovery.js'

export type Phase = 'recovering' | 'starting' | 'running' | 'stopped'

export interface EpochTiming {
  /** How often a recovering member asks the others. */
  readonly recoveryPollMs: number
  /** How long a recovering member waits for every member before forming a group of a majority. */
  readonly recoveryGraceMs: number
  /** How often a recovering member asks a running one to let it join. */
  readonly joinAskMs: number
  /** How long a member that delivered a reconfigure waits for the others to deliver it too. */
  readonly epochEndBoundMs: number
}

export interface LastView {
  readonly vid: number
  readonly memberIds: readonly number[]
}

export type EpochEvent =
  | { readonly kind: 'recover' }
  | { readonly kind: 'tick' }
  /** Every report gathered (this member's own first). */
  | { readonly kind: 'reports'; readonly reports: readonly MemberReport[] }
  /** The catch-up before a join ended (done, stopped or failed: the join's own transfer fetches the rest). */
  | { readonly kind: 'preJoined' }
  /** Another member told this one about a plan (member.epoch). */
  | { readonly kind: 'offered'; readonly plan: EpochPlan }
  | { readonly kind: 'prepared'; readonly plan: EpochPlan }
  | { readonly kind: 'ready'; readonly plan: EpochPlan }
  | { readonly kind: 'connected'; readonly plan: EpochPlan }
  | { readonly kind: 'startFailed'; readonly plan: EpochPlan; readonly message: string }
  /** A reconfigure adding `addIds` was delivered at `stamp` in `view` (at position `viewSeq`). */
  | { readonly kind: 'reconfigured'; readonly stamp: bigint; readonly view: View; readonly viewSeq: number; readonly addIds: readonly number[] }
  /** Every member of the epoch delivered the reconfigure (the core says so). */
  | { readonly kind: 'deliveredEverywhere' }
  /** The ended epoch's transport stopped. */
  | { readonly kind: 'left'; readonly plan: EpochPlan }
  | { readonly kind: 'installed'; readonly view: LastView }
  | { readonly kind: 'accepted'; readonly accepted: AcceptedView }
  | { readonly kind: 'excluded'; readonly reason: string }
  /** Member `id` asks to join; `wedged`: the core is in a view change. */
  | { readonly kind: 'joinRequested'; readonly id: number; readonly wedged: boolean }
  /** The reconfigure ordered for `id` failed before it was delivered. */
  | { readonly kind: 'joinFailed'; readonly id: number }
  | { readonly kind: 'stop' }

export type EpochAction =
  | { readonly kind: 'askReports' }
  | { readonly kind: 'preJoin'; readonly donorId: number }
  | { readonly kind: 'askJoin'; readonly viaId: number }
  | { readonly kind: 'tellPlan'; readonly ids: readonly number[]; readonly plan: EpochPlan }
  /** Hold exactly the records up to the plan's start, durably (`catchUp`: fetched from its donor first): then `prepared`, or `startFailed`. */
  | { readonly kind: 'prepare'; readonly plan: EpochPlan; readonly catchUp: boolean }
  /** The last view prepared or installed (view.json), and, with `ran`, the last view run in (ran.json). */
  | { readonly kind: 'persistView'; readonly view: LastView; readonly ran: boolean }
  | { readonly kind: 'persistAccepted'; readonly accepted: AcceptedView }
  /** Wait until every member of the plan holds its start: then `ready`, or `startFailed`. */
  | { readonly kind: 'awaitPlan'; readonly plan: EpochPlan }
  /** Connect the plan's transport: then `connected`, or `startFailed`. */
  | { readonly kind: 'connect'; readonly plan: EpochPlan }
  /** The epoch runs: start its core over the connected transport. */
  | { readonly kind: 'startCore'; readonly plan: EpochPlan }
  /** Stop the running epoch's transport; `next`: the plan that follows a reconfigure (then `left`). */
  | { readonly kind: 'leave'; readonly next: EpochPlan | null }
  | { readonly kind: 'orderJoin'; readonly id: number }
  | { readonly kind: 'log'; readonly line: string }

interface Recovering {
  readonly sinceMs: number
  lastPollMs: number
  polling: boolean // a round of reports is out
  preJoining: boolean // a catch-up before a join is under way
  preJoinedFrom: number | null
  lastJoinAskMs: number
}

interface Ending {
  readonly next: EpochPlan
  readonly vid: number
  readonly viewSeq: number
  readonly sinceMs: number
}

export class EpochMachine {
  readonly selfId: number
  private readonly configuredIds: readonly number[]
  private readonly timing: EpochTiming
  private phaseValue: Phase = 'recovering'
  private lastViewValue: LastView
  private lastRunValue: LastView
  private acceptedValue: AcceptedView | null
  private recovering: Recovering | null = null
  private startingValue: { readonly plan: EpochPlan; ready: boolean } | null = null
  private runningValue: { readonly plan: EpochPlan; ending: Ending | null } | null = null
  private readonly joinsOrdered = new Set<number>() // reconfigures ordered and not yet delivered
  private refusedVid = 0 // the last plan this member refused to be the donor of (logged once)
  private actions: EpochAction[] = []

  /** `lastView`, `lastRun` and `accepted` as this member persisted them (view.json, ran.json, accepted.json). */
  constructor(options: { selfId: number; configuredIds: readonly number[]; timing: EpochTiming; lastView: LastView | null; lastRun: LastView | null; accepted: AcceptedView | null }) {
    this.selfId = options.selfId
    this.configuredIds = options.configuredIds
    this.timing = options.timing
    this.lastViewValue = options.lastView ?? { vid: 0, memberIds: [...options.configuredIds] }
    this.lastRunValue = options.lastRun ?? this.lastViewValue
    this.acceptedValue = options.accepted
  }

  get phase(): Phase {
    return this.phaseValue
  }

  get lastView(): LastView {
    return this.lastViewValue
  }

  /** The last view this member ran in (a plan it prepared that never ran is not one). */
  get lastRun(): LastView {
    return this.lastRunValue
  }

  get accepted(): AcceptedView | null {
    return this.acceptedValue
  }

  /** The plan being started, and whether this member holds its start (reports carry it: planBarrier.ts). */
  get starting(): { readonly vid: number; readonly ready: boolean } | null {
    return this.startingValue === null ? null : { vid: this.startingValue.plan.vid, ready: this.startingValue.ready }
  }

  /** The running epoch's plan. */
  get epochPlan(): EpochPlan | null {
    return this.runningValue?.plan ?? null
  }

  /** The reconfigure the running epoch ends at, once delivered here. */
  get ending(): { readonly vid: number; readonly viewSeq: number } | null {
    return this.runningValue?.ending ?? null
  }

  /** Whether `plan` is the one this member is starting (a step's result for another plan is stale). */
  isStarting(plan: EpochPlan): boolean {
    return this.phaseValue === 'starting' && this.startingValue?.plan === plan
  }

  handle(event: EpochEvent, nowMs: number): EpochAction[] {
    if (this.phaseValue === 'stopped') return []
    switch (event.kind) {
      case 'recover':
        if (this.phaseValue === 'recovering' && this.recovering === null) this.becomeRecovering(nowMs)
        break
      case 'tick':
        this.tick(nowMs)
        break
      case 'reports':
        this.onReports(event.reports, nowMs)
        break
      case 'preJoined':
        if (this.recovering !== null) {
          this.recovering.preJoining = false
          this.poll(nowMs) // at once: the join's transfer is now small
        }
        break
      case 'offered':
        this.onOffered(event.plan)
        break
      case 'prepared':
        if (!this.isStarting(event.plan)) break
        this.lastViewValue = { vid: event.plan.vid, memberIds: [...event.plan.memberIds] }
        this.actions.push({ kind: 'persistView', view: this.lastViewValue, ran: false })
        this.startingValue!.ready = true
        // Connect only once every member holds the start: a transfer takes what it takes, the
        // connect timeout bounds the connection alone.
        this.actions.push({ kind: 'awaitPlan', plan: event.plan })
        break
      case 'ready':
        if (this.isStarting(event.plan)) this.actions.push({ kind: 'connect', plan: event.plan })
        break
      case 'connected':
        if (!this.isStarting(event.plan)) break
        this.phaseValue = 'running'
        this.startingValue = null
        this.runningValue = { plan: event.plan, ending: null }
        this.lastRunValue = this.lastViewValue
        this.actions.push({ kind: 'persistView', view: this.lastViewValue, ran: true })
        this.actions.push({ kind: 'startCore', plan: event.plan })
        break
      case 'startFailed':
        if (!this.isStarting(event.plan)) break
        this.log(`could not start view ${event.plan.vid}: ${event.message}; recovering`)
        this.becomeRecovering(nowMs)
        break
      case 'reconfigured':
        this.onReconfigured(event, nowMs)
        break
      case 'deliveredEverywhere':
        if (this.runningValue?.ending != null) this.endEpoch()
        break
      case 'left':
        if (!this.isStarting(event.plan)) break
        if (event.plan.donorId === this.selfId && event.plan.catchUpIds !== undefined) this.actions.push({ kind: 'tellPlan', ids: event.plan.catchUpIds, plan: event.plan })
        // This member ran the epoch up to the reconfigure: it holds the start unless it joins.
        this.actions.push({ kind: 'prepare', plan: event.plan, catchUp: event.plan.donorId !== this.selfId && (event.plan.catchUpIds?.includes(this.selfId) ?? true) })
        break
      case 'installed':
        this.lastViewValue = this.lastRunValue = event.view
        this.actions.push({ kind: 'persistView', view: event.view, ran: true })
        this.log(`installed view ${event.view.vid} [${event.view.memberIds.join(', ')}]`)
        break
      case 'accepted':
        this.acceptedValue = event.accepted
        this.actions.push({ kind: 'persistAccepted', accepted: event.accepted })
        break
      case 'excluded':
        // After a reconfigure this member holds the next epoch's start: it leaves for that epoch
        // (deliveredEverywhere, or the bound), not for recovery.
        if (this.phaseValue !== 'running' || this.runningValue?.ending != null) break
        this.log(`${event.reason}; rejoining`)
        this.runningValue = null
        this.actions.push({ kind: 'leave', next: null })
        this.becomeRecovering(nowMs)
        break
      case 'joinRequested':
        if (this.phaseValue !== 'running' || event.wedged || this.joinsOrdered.has(event.id) || !this.configuredIds.includes(event.id)) break
        this.joinsOrdered.add(event.id)
        this.actions.push({ kind: 'orderJoin', id: event.id })
        break
      case 'joinFailed':
        this.joinsOrdered.delete(event.id)
        break
      case 'stop':
        this.phaseValue = 'stopped'
        this.recovering = null
        this.startingValue = null
        this.runningValue = null
        break
    }
    const actions = this.actions
    this.actions = []
    return actions
  }

  private log(line: string): void {
    this.actions.push({ kind: 'log', line })
  }

  private tick(nowMs: number): void {
    const recovering = this.recovering
    if (recovering !== null && !recovering.polling && !recovering.preJoining && nowMs - recovering.lastPollMs >= this.timing.recoveryPollMs) this.poll(nowMs)
    const ending = this.runningValue?.ending
    if (ending != null && nowMs - ending.sinceMs >= this.timing.epochEndBoundMs) this.endEpoch()
  }

  private becomeRecovering(nowMs: number): void {
    this.phaseValue = 'recovering'
    this.startingValue = null
    this.recovering = { sinceMs: nowMs, lastPollMs: nowMs, polling: false, preJoining: false, preJoinedFrom: null, lastJoinAskMs: Number.NEGATIVE_INFINITY }
    this.poll(nowMs)
  }

  private poll(nowMs: number): void {
    const recovering = this.recovering!
    recovering.polling = true
    recovering.lastPollMs = nowMs
    this.actions.push({ kind: 'askReports' })
  }

  /** One round of recovery: catch up from a running member and ask it to join, or form a group. */
  private onReports(reports: readonly MemberReport[], nowMs: number): void {
    const recovering = this.recovering
    if (this.phaseValue !== 'recovering' || recovering === null) return
    recovering.polling = false
    recovering.lastPollMs = nowMs
    const running = reports.find((r) => r.phase === 'running')
    if (running !== undefined) {
      if (recovering.preJoinedFrom !== running.id) {
        recovering.preJoinedFrom = running.id
        recovering.preJoining = true
        this.actions.push({ kind: 'preJoin', donorId: running.id })
      } else if (nowMs - recovering.lastJoinAskMs > this.timing.joinAskMs) {
        recovering.lastJoinAskMs = nowMs
        this.actions.push({ kind: 'askJoin', viaId: running.id })
      }
      return
    }
    const everyone = reports.filter((r) => r.phase === 'recovering').length === this.configuredIds.length
    const plan = planEpoch(reports, this.selfId, everyone || nowMs - recovering.sinceMs > this.timing.recoveryGraceMs)
    if (plan === null) return
    this.log(`forming view ${plan.vid} of members ${plan.memberIds.join(', ')} from member ${plan.donorId}'s log`)
    this.actions.push({ kind: 'tellPlan', ids: plan.memberIds.filter((id) => id !== this.selfId), plan })
    this.beginStarting(plan)
  }

  /**
   * Another member tells this recovering one about a plan that includes it. A reconfigure's plan
   * names as donor the lowest member of the view that is not a joiner, counting on it to have run
   * the epoch to the reconfigure; if this recovering member is that donor it restarted (or was
   * cut off) since, and its log may end anywhere before the start: it refuses, and the members
   * waiting for it give up on the plan (planBarrier.ts) and form another from their logs. (Found
   * by the simulation: such a donor gave the joiner a log missing records the others held,
   * partitions-5 seed 700084.)
   */
  private onOffered(plan: EpochPlan): void {
    if (this.phaseValue !== 'recovering' || plan.vid <= this.lastViewValue.vid || !plan.memberIds.includes(this.selfId)) return
    if (plan.catchUpIds !== undefined && plan.donorId === this.selfId) {
      if (this.refusedVid !== plan.vid) this.log(`cannot be the donor of view ${plan.vid}: this process did not run the epoch up to its start`)
      this.refusedVid = plan.vid
      return
    }
    this.beginStarting(plan)
  }

  /**
   * A recovering member takes a plan (formed here or offered): it catches up unless it is the
   * donor, whatever the plan's catchUpIds say. Those name the joiners of a reconfigure, and the
   * plan counts every other member of the view as holding the start, but a member of that view
   * may have restarted since (its log ends where its disk did) and be told the plan while it
   * recovers (planBarrier.ts tells the recovering members of a plan): it must fetch what it
   * misses. (Found by the simulation: such a member ran the next epoch with a log missing the
   * records up to the start, crash-restart-5 seed 200008.)
   */
  private beginStarting(plan: EpochPlan): void {
    this.phaseValue = 'starting'
    this.recovering = null
    this.startingValue = { plan, ready: false }
    this.actions.push({ kind: 'prepare', plan, catchUp: plan.donorId !== this.selfId })
  }

  /** A reconfigure was delivered: this member delivers nothing more of the epoch; the epoch's
   * transport stays up until every member delivered it too (they need this member's rows to see
   * it stable), then the next epoch starts with the joiners. */
  private onReconfigured(event: Extract<EpochEvent, { kind: 'reconfigured' }>, nowMs: number): void {
    const running = this.runningValue
    if (running === null || running.ending !== null) return
    // The view the reconfigure was delivered in (a view change may have installed the next one in the same step).
    const next = nextEpochPlan(event.view, running.plan.memberIds, event.addIds, event.stamp)
    running.ending = { next, vid: event.view.vid, viewSeq: event.viewSeq, sinceMs: nowMs }
    for (const id of event.addIds) this.joinsOrdered.delete(id)
    this.log(`reconfigure at ${event.stamp}: next view ${next.vid} [${next.memberIds.join(', ')}]`)
  }

  private endEpoch(): void {
    const next = this.runningValue!.ending!.next
    this.runningValue = null
    this.phaseValue = 'starting'
    this.startingValue = { plan: next, ready: false }
    this.actions.push({ kind: 'leave', next })
  }
}
