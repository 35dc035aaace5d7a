// Deterministic simulation of a replication group across epochs: one GroupCore per member per
// epoch over a simulated network, each member with an in-memory "disk" (delivered records become
// durable after a random virtual delay; a crash loses what was not yet durable), crashes,
// partitions and restarts. Workload and faults come from the seed, so a failing schedule is
// replayed by its seed alone. The invariants are checked after every step and at the end, and
// every violation names the seed.
//
// The runtime's epoch decisions are not re-implemented here: the plan after a reconfigure is
// `nextEpochPlan` and the plan of a total restart is `planEpoch` (src/replication/recovery.ts),
// the same functions src/replication/member.ts calls. What this file models of member.ts is the
// plumbing around them, at the same points:
// - a restarted (or excluded) member recovers: it polls the members it can reach; if one runs,
//   it asks it to join and that member orders a reconfigure; if none runs, the lowest-id
//   recovering member forms an epoch with `planEpoch` (grace period, majority of the last view);
// - a delivered reconfigure ends the epoch at that point of the order at every member: the
//   member delivers nothing more of it, and leaves once every member delivered the reconfigure
//   (`deliveredEverywhere`) or a bound passed; the donor then tells the joiners;
// - a member starting an epoch makes its log durable and, if the plan says so, catches up from
//   the donor up to the start stamp: it checks the donor holds its last record (member.ts
//   compares digests; here ids), else it discards its whole log first, and copies the donor's
//   records after its own; then it connects. The epoch's network starts once every member of the
//   plan connects, else each gives up after a connect timeout and recovers again; every core
//   starts with `lastStamp = startStamp`;
// - accepted view-change values are durable (member.ts: accepted.json) and reported to planEpoch;
// - requests survive epoch changes (delivered ones are answered when the next epoch starts, the
//   rest submitted again), not crashes.
// Epochs run on their own SimulatedNetwork each (a transport connects a fixed set of members);
// a world scheduler carries the global virtual time, the disks, the workload and the faults,
// and the driver steps whichever of the world and the live networks has the earliest event.
//
// Invariants (the issue's list, across epochs and restarts):
// - one global delivery order: every running member's log is a prefix of the canonical order.
//   A position may change only if the records it drops were never acknowledged, lie above every
//   stamp called stable, and are held by no member in a running epoch (a total restart can go
//   on without records delivered and persisted only by members absent from it); a member still
//   holding them must discard them before it runs again (checked when an epoch connects: its
//   members hold identical logs, which become the canonical order's prefix);
// - stamps strictly increase along the order; no record is in the order twice;
// - no two views with the same id and different members (epochs continue the view ids);
// - every epoch's plan is computed identically by every member that delivered its reconfigure;
// - the stability frontier of a core never goes back;
// - frozen cuts: once a member called a stamp stable with k records at or below it, the order
//   has exactly those k records at or below it, forever (a new record below a claimed frontier
//   is caught when it is delivered; a lost one at the end);
// - after the faults stop (everything restarted, partitions healed): every member runs in one
//   epoch and one view, logs are identical to the order and durable, every acknowledged request
//   is present exactly once at its acknowledged stamp, and no request is left unanswered.

import { GroupCore, type CoreAction, type CoreEvent, type View } from '../replication/core/group.js'
import { groupSchema } from '../replication/core/schema.js'
import { nextEpochPlan, planEpoch, type AcceptedView, type EpochPlan, type MemberReport } from '../replication/recovery.js'
import { SimulatedNetwork } from '../replication/transport/simulated.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { Prng } from './prng.js'
import { Scheduler } from './scheduler.js'

export interface GroupSimOptions {
  readonly seed: number
  readonly memberCount: number
  readonly virtualMs: number // how long the workload and faults run; then faults stop and the group must converge
  readonly submitsPerMs: number // offered load, spread over the members
  readonly crashes: number // crash events at random instants; each crashes a random member while fewer than a majority are down
  /** Crashed members restart after a delay drawn in [restartMsMin, restartMsMax]; absent: they stay down until the faults stop (and then restart). */
  readonly restartMsMin?: number
  readonly restartMsMax?: number
  /** Whole-group crashes: every member crashes within a few ms of a random instant, then restarts. */
  readonly totalCrashes?: number
  readonly partition: boolean // one random minority/majority split, healed later
  /** Random minority/majority splits (overrides `partition`); a later one replaces an earlier one still in force. */
  readonly partitions?: number
  readonly largeChance: number // fraction of submissions above the small-message limit
  readonly slowPacketChance?: number
  /** Bound on the convergence phase after the faults stop (virtual ms). */
  readonly settleMsMax?: number
  /** Whether members that went down stay down at the end (no convergence promised then; safety only). */
  readonly noFinalRestart?: boolean
  /** Receives one line per runtime event (crash, restart, join, reconfigure, epoch start, exclusion): for replaying a seed. */
  readonly trace?: (line: string) => void
}

export interface LogRecord {
  readonly stamp: HlcStamp
  readonly id: string // the request's id: "member.incarnation.n"
}

type Phase = 'down' | 'recovering' | 'starting' | 'running'

interface Request {
  readonly id: string
  readonly payload: Uint8Array
  readonly joinerId: number | null // a reconfigure adding this member; null: an application record
  delivered: HlcStamp | null // delivered into this member's log (in this incarnation)
}

interface EpochRun {
  readonly index: number
  readonly plan: EpochPlan
  readonly net: SimulatedNetwork
  readonly offsetMs: number // world time at the network's time 0
  attached: number // members still running this epoch
}

export interface SimNode {
  readonly id: number
  phase: Phase
  incarnation: number
  /** The store's log: delivered application records in order; `log[0..durableCount)` are on disk. */
  readonly log: LogRecord[]
  durableCount: number
  lastView: { vid: number; memberIds: number[] } // durable (view.json)
  accepted: AcceptedView | null // durable (accepted.json)
  run: EpochRun | null
  rank: number
  core: GroupCore | null
  ending: { readonly next: EpochPlan; readonly vid: number; readonly viewSeq: number; readonly sinceMs: number } | null
  starting: { readonly plan: EpochPlan; readonly key: string; readonly sinceMs: number } | null
  recoveringSinceMs: number
  lastPollMs: number
  lastJoinAskMs: number
  lastStable: HlcStamp // per core: the stability frontier must not go back
  requestNext: number
  readonly requests: Map<number, Request> // requestId (this incarnation) -> request
  readonly joinsOrdered: Set<number>
}

const SMALL_MESSAGE_MAX_BYTES = 256
const BASE_US = 1_700_000_000_000_000
const CLOCK_SKEW_US = 1700 // member clocks are skewed by a few ms, as real ones are
// Network and runtime cadences, in virtual ms. The decisions do not depend on them; they set
// how much virtual time (and so CPU) a schedule costs.
const DELAY_MS_MIN = 1
const DELAY_MS_MAX = 8
const HEARTBEAT_INTERVAL_MS = 20
const SUSPECT_TIMEOUT_MS = 100
const TICK_MS = 10 // the core's tick (member.ts: 20 ms)
const RUNTIME_TICK_MS = 10 // recovery polls, connect timeouts, convergence checks
const RECOVERY_POLL_MS = 30 // member.ts: 300 ms
const RECOVERY_GRACE_MS = 200 // member.ts: 2 s
const JOIN_ASK_MS = 100 // member.ts: 1 s
const CONNECT_TIMEOUT_MS = 150
const EPOCH_END_BOUND_MS = SUSPECT_TIMEOUT_MS * 3 // member.ts: suspectTimeoutMs × 3
const DURABLE_DELAY_MS_MAX = 6
const STEPS_MAX = 3_000_000

export class GroupSim {
  readonly nodes: SimNode[]
  readonly violations: string[] = []
  /** Acknowledged requests: id -> stamp the client was told. */
  readonly acked = new Map<string, HlcStamp>()
  /** The delivery order every member's log must be a prefix of. */
  readonly canonical: LogRecord[] = []
  readonly world = new Scheduler()
  readonly epochs: EpochRun[] = []
  private readonly options: GroupSimOptions
  private readonly prng: Prng // workload and faults
  private readonly netSeeds: Prng
  private readonly durableDelays: Prng
  private readonly runs: EpochRun[] = [] // live networks
  private readonly canonicalIndex = new Map<string, number>()
  private readonly viewsById = new Map<number, string>()
  private readonly plansByReconfigure = new Map<string, string>()
  private readonly stableClaims: Array<{ nodeId: number; stamp: HlcStamp; count: number }> = []
  private maxStableClaim: HlcStamp = 0n
  private partitioned: ReadonlySet<number> = new Set() // member ids cut off from the others
  private faultsOver = false
  private globalMs = 0
  private stepsDone = 0
  private readonly encoder = new TextEncoder()
  private readonly decoder = new TextDecoder()

  constructor(options: GroupSimOptions) {
    this.options = options
    const root = new Prng(options.seed)
    this.prng = root.fork()
    this.netSeeds = root.fork()
    this.durableDelays = root.fork()
    const allIds = Array.from({ length: options.memberCount }, (_, id) => id)
    this.nodes = allIds.map((id) => ({
      id,
      phase: 'recovering',
      incarnation: 0,
      log: [],
      durableCount: 0,
      lastView: { vid: 0, memberIds: [...allIds] },
      accepted: null,
      run: null,
      rank: -1,
      core: null,
      ending: null,
      starting: null,
      recoveringSinceMs: 0,
      lastPollMs: -RECOVERY_POLL_MS,
      lastJoinAskMs: -JOIN_ASK_MS,
      lastStable: 0n,
      requestNext: 1,
      requests: new Map(),
      joinsOrdered: new Set(),
    }))
  }

  /** The global virtual time (the world scheduler's own clock lags it: it moves only when the world steps). */
  get nowMs(): number {
    return this.globalMs
  }

  get steps(): number {
    return this.stepsDone
  }

  /** Runs the workload and the faults, then lets the group converge; returns the violations found. */
  run(): string[] {
    // The first epoch: every member, from empty logs (what planEpoch forms when all start fresh).
    const allIds = this.nodes.map((n) => n.id)
    const reports = this.nodes.map((n) => this.report(n))
    const first = planEpoch(reports, 0, true)
    if (first === null) throw new Error('invariant: a fresh group must form')
    for (const id of allIds) this.startEpoch(this.nodes[id]!, first)
    this.scheduleWorkload()
    this.scheduleFaults()
    this.worldAfter(RUNTIME_TICK_MS, () => this.runtimeTick(), { background: true })
    const endMs = this.options.virtualMs
    this.world.at(endMs, () => this.endFaults())
    const deadlineMs = endMs + (this.options.settleMsMax ?? 3000)
    while (this.violations.length === 0) {
      if (this.faultsOver && this.converged()) break
      if (this.nowMs >= deadlineMs) break
      if (!this.step()) break
      if (++this.stepsDone > STEPS_MAX) {
        this.violation(`more than ${STEPS_MAX} steps: livelock`)
        break
      }
    }
    this.checkEnd()
    return this.violations
  }

  // ---- driving: the world and every live network on one global time ----

  private step(): boolean {
    let best: EpochRun | null = null
    let bestMs = this.world.nextEventMs ?? Number.POSITIVE_INFINITY
    for (const run of this.runs) {
      const next = run.net.scheduler.nextEventMs
      if (next !== undefined && next + run.offsetMs <= bestMs) { // ties go to the networks: see syncClock
        best = run
        bestMs = next + run.offsetMs
      }
    }
    if (bestMs === Number.POSITIVE_INFINITY) return false
    this.globalMs = bestMs
    if (best === null) this.world.step()
    else best.net.step()
    this.dropFinishedRuns()
    return true
  }

  /** A network's clock lags the world's while it has no events; anything the world does to it happens now.
   * The world runs an event only when every network's next event is later (ties go to the networks),
   * so this moves the clock and never runs a network event from inside a world event. */
  private syncClock(run: EpochRun): void {
    const lagMs = this.nowMs - run.offsetMs - run.net.nowMs
    if (lagMs <= 0) return
    const next = run.net.scheduler.nextEventMs
    if (next !== undefined && next + run.offsetMs <= this.nowMs) throw new Error('invariant: a network event is due before the world event running now')
    run.net.scheduler.advanceMs(lagMs)
  }

  private dropFinishedRuns(): void {
    for (let i = this.runs.length - 1; i >= 0; i--) if (this.runs[i]!.attached === 0) this.runs.splice(i, 1)
  }

  /** The world's `after`, on the global clock. */
  private worldAfter(delayMs: number, run: () => void, options?: { background: boolean }): void {
    this.world.at(this.nowMs + delayMs, run, options)
  }

  private log(line: string): void {
    this.options.trace?.(`${this.nowMs} ms: ${line}`)
  }

  private nowUs(node: SimNode): number {
    return BASE_US + Math.round(this.nowMs * 1000) + node.id * CLOCK_SKEW_US
  }

  // ---- workload and faults ----

  private scheduleWorkload(): void {
    const { virtualMs, submitsPerMs, memberCount, largeChance } = this.options
    const count = Math.round(virtualMs * submitsPerMs)
    for (let i = 0; i < count; i++) {
      const atMs = this.prng.int(0, virtualMs)
      const id = this.prng.int(0, memberCount - 1)
      const large = this.prng.chance(largeChance)
      this.world.at(atMs, () => this.submit(id, large))
    }
  }

  private scheduleFaults(): void {
    const { memberCount: n, virtualMs } = this.options
    const minority = Math.floor((n - 1) / 2)
    for (let i = 0; i < this.options.crashes; i++) {
      this.world.at(this.prng.int(0, virtualMs), () => {
        // Any member, while fewer than a minority's worth are down: a majority can always go on.
        const down = this.nodes.filter((m) => m.phase === 'down').length
        if (down >= minority) return
        const up = this.nodes.filter((m) => m.phase !== 'down')
        this.crash(this.prng.pick(up))
      })
    }
    for (let i = 0; i < (this.options.totalCrashes ?? 0); i++) {
      const atMs = this.prng.int(0, Math.floor((virtualMs * 2) / 3)) // all of it before the faults stop
      for (const node of this.nodes) this.world.at(atMs + this.prng.int(0, 3), () => this.crash(node))
    }
    const partitions = this.options.partitions ?? (this.options.partition ? 1 : 0)
    for (let i = 0; i < partitions && minority > 0; i++) {
      const side = new Set(this.prng.shuffle(this.nodes.map((m) => m.id)).slice(0, this.prng.int(1, minority)))
      const fromMs = this.prng.int(0, virtualMs)
      const lengthMs = this.prng.int(10, 400)
      this.world.at(fromMs, () => this.setPartition(side))
      this.world.at(Math.min(fromMs + lengthMs, virtualMs), () => {
        if (this.partitioned === side) this.setPartition(new Set()) // a later split replaced it: that one heals itself
      })
    }
  }

  private endFaults(): void {
    this.faultsOver = true
    this.setPartition(new Set())
    if (this.options.noFinalRestart !== true) for (const node of this.nodes) if (node.phase === 'down') this.restart(node)
  }

  private setPartition(side: ReadonlySet<number>): void {
    this.partitioned = side
    for (const run of this.runs) this.applyPartition(run)
  }

  private applyPartition(run: EpochRun): void {
    this.syncClock(run)
    const ranks = run.plan.memberIds.flatMap((id, rank) => (this.partitioned.has(id) ? [rank] : []))
    if (ranks.length === 0 || ranks.length === run.plan.memberIds.length) run.net.heal()
    else run.net.partition(ranks)
  }

  private reachable(a: SimNode, b: SimNode): boolean {
    return this.partitioned.has(a.id) === this.partitioned.has(b.id)
  }

  submit(id: number, large: boolean): void {
    const node = this.nodes[id]!
    if (node.phase === 'down') return // the client cannot reach it
    const padding = large ? 'x'.repeat(SMALL_MESSAGE_MAX_BYTES + this.prng.int(1, 2000)) : ''
    this.order(node, null, padding)
  }

  /** member.ts `order`: submitted now if running, else when the next epoch starts. */
  private order(node: SimNode, joinerId: number | null, padding = ''): void {
    const requestId = node.requestNext++
    const id = `${node.id}.${node.incarnation}.${requestId}`
    const text = joinerId === null ? `${id}|${padding}` : `${id}|join ${joinerId}`
    const request: Request = { id, payload: this.encoder.encode(text), joinerId, delivered: null }
    node.requests.set(requestId, request)
    if (node.core !== null) this.feed(node, { kind: 'submit', requestId, payload: request.payload })
  }

  crash(node: SimNode): void {
    if (node.phase === 'down' || this.faultsOver) return
    const run = node.run
    if (run !== null) {
      this.syncClock(run)
      run.net.crash(node.rank)
    }
    this.detach(node)
    this.log(`crash ${node.id} (${node.phase}${run === null ? '' : ` in epoch ${run.index}`})`)
    node.phase = 'down'
    node.incarnation++
    node.log.length = node.durableCount // what was not on disk is gone
    node.requests.clear() // the process and its clients' requests are gone
    node.joinsOrdered.clear()
    node.starting = null
    if (!this.faultsOver && this.options.restartMsMax !== undefined) {
      const delayMs = this.prng.int(this.options.restartMsMin ?? 0, this.options.restartMsMax)
      this.worldAfter(delayMs, () => this.restart(node))
    }
  }

  private restart(node: SimNode): void {
    if (node.phase !== 'down') return
    node.requestNext = 1
    this.log(`restart ${node.id}`)
    this.becomeRecovering(node)
  }

  private becomeRecovering(node: SimNode): void {
    // Out of a group a member answers stable reads only up to what a core of this incarnation
    // found stable (member.ts stableStamp), already claimed. Not its last applied record: it may
    // hold records never durable everywhere, which a total restart can go on without (it did
    // claim them once: crash-restart-3 seed 100122 broke that frozen cut).
    node.phase = 'recovering'
    node.starting = null
    node.recoveringSinceMs = this.nowMs
    node.lastPollMs = this.nowMs - RECOVERY_POLL_MS // poll at the next runtime tick
  }

  private detach(node: SimNode): void {
    if (node.run !== null) node.run.attached--
    node.run = null
    node.rank = -1
    node.core = null
    node.ending = null
  }

  // ---- the runtime: recovery, epochs ----

  private runtimeTick(): void {
    for (const node of this.nodes) {
      if (node.phase === 'recovering' && this.nowMs - node.lastPollMs >= RECOVERY_POLL_MS) {
        node.lastPollMs = this.nowMs
        this.poll(node)
      } else if (node.phase === 'starting' && node.starting !== null && this.nowMs - node.starting.sinceMs > CONNECT_TIMEOUT_MS) {
        this.log(`${node.id}: epoch ${node.starting.key} did not connect`)
        this.becomeRecovering(node) // the transport did not connect: some member of the plan never came
      }
    }
    this.worldAfter(RUNTIME_TICK_MS, () => this.runtimeTick(), { background: true })
  }

  private report(node: SimNode): MemberReport {
    const last = node.log[node.log.length - 1]
    return {
      id: node.id,
      phase: node.phase === 'down' ? 'stopped' : node.phase,
      lastStamp: (last?.stamp ?? 0n).toString(),
      lastVid: node.lastView.vid,
      lastViewIds: node.lastView.memberIds,
      ...(node.accepted !== null ? { accepted: node.accepted } : {}),
    }
  }

  /** member.ts `recover`, one round: join a running member's group, or form one. */
  private poll(node: SimNode): void {
    const peers = this.nodes.filter((m) => m.phase !== 'down' && this.reachable(node, m))
    const running = peers.find((m) => m.phase === 'running')
    if (running !== undefined) {
      if (this.nowMs - node.lastJoinAskMs > JOIN_ASK_MS) {
        node.lastJoinAskMs = this.nowMs
        this.log(`${node.id} asks ${running.id} to join`)
        this.orderJoin(running, node.id)
      }
      return
    }
    const reports = [this.report(node), ...peers.filter((m) => m !== node).map((m) => this.report(m))]
    const everyone = reports.filter((r) => r.phase === 'recovering').length === this.nodes.length
    const plan = planEpoch(reports, node.id, everyone || this.nowMs - node.recoveringSinceMs > RECOVERY_GRACE_MS)
    if (plan === null) return
    this.log(`${node.id} forms ${JSON.stringify(plan)}`)
    for (const id of plan.memberIds) {
      const other = this.nodes[id]!
      if (other !== node) this.offerEpoch(other, plan)
    }
    this.startEpoch(node, plan)
  }

  /** member.ts `member.epoch`: a recovering member takes a plan that includes it and is newer than its last view. */
  private offerEpoch(node: SimNode, plan: EpochPlan): void {
    if (node.phase === 'recovering' && plan.vid > node.lastView.vid && plan.memberIds.includes(node.id)) this.startEpoch(node, plan)
  }

  private orderJoin(node: SimNode, joinerId: number): void {
    const core = node.core
    if (node.phase !== 'running' || core === null || core.isWedged || node.joinsOrdered.has(joinerId)) return
    node.joinsOrdered.add(joinerId)
    this.order(node, joinerId)
  }

  /** member.ts `startEpoch`: durable log, catch up from the donor, connect. */
  private startEpoch(node: SimNode, plan: EpochPlan): void {
    node.phase = 'starting'
    node.durableCount = node.log.length // settleStore: the log is synced
    const start = BigInt(plan.startStamp)
    const mustCatchUp = (plan.catchUpIds === undefined || plan.catchUpIds.includes(node.id)) && plan.donorId !== node.id
    if (mustCatchUp) {
      const donor = this.nodes[plan.donorId]!
      if (donor.phase === 'down' || !this.reachable(node, donor)) {
        this.log(`${node.id}: state transfer from ${donor.id} fails`)
        this.becomeRecovering(node) // the fetch fails
        return
      }
      // member.ts catchUp: a log whose last record the donor does not hold (up to the start) is
      // not a prefix of the donor's: discard it all and fetch everything.
      const last = node.log[node.log.length - 1]
      if (last !== undefined && !donor.log.some((r) => r.stamp === last.stamp && r.id === last.id && r.stamp <= start)) this.discardLog(node, donor)
      // State transfer: the donor's records in (own last, start], appended here and made durable.
      const after = this.lastStamp(node)
      for (const record of donor.log) if (record.stamp > after && record.stamp <= start) this.append(node, record)
      node.durableCount = node.log.length
    }
    if (this.lastStamp(node) > start) {
      this.log(`${node.id}: refuses a plan behind its log`)
      this.becomeRecovering(node) // member.ts refuses a plan behind its own log
      return
    }
    node.lastView = { vid: plan.vid, memberIds: [...plan.memberIds] }
    const key = `${plan.vid}|${plan.memberIds.join(',')}|${plan.startStamp}|${plan.donorId}`
    node.starting = { plan, key, sinceMs: this.nowMs }
    this.log(`${node.id} starts epoch ${key}`)
    if (plan.memberIds.every((id) => this.nodes[id]!.starting?.key === key)) this.connect(plan)
  }

  /** member.ts `discardStore`: the log goes; requests delivered into it have no known outcome (refused). */
  private discardLog(node: SimNode, donor: SimNode): void {
    this.log(`${node.id} discards its log (${node.log.length} records): its last is not in donor ${donor.id}'s`)
    node.log.length = 0
    node.durableCount = 0
    for (const [requestId, request] of [...node.requests]) {
      if (request.delivered === null) continue
      node.requests.delete(requestId)
      if (request.joinerId !== null) node.joinsOrdered.delete(request.joinerId)
    }
  }

  /** Every member of the plan connected: the epoch's network and cores start. */
  private connect(plan: EpochPlan): void {
    const n = plan.memberIds.length
    // Every member starts holding exactly the donor's records up to the start stamp.
    const donorLog = this.nodes[plan.donorId]!.log
    for (const id of plan.memberIds) {
      const log = this.nodes[id]!.log
      if (log.length !== donorLog.length || log.some((r, i) => r.id !== donorLog[i]!.id || r.stamp !== donorLog[i]!.stamp)) {
        this.violation(`epoch ${this.epochs.length} starts with member ${id}'s log (${log.length} records) differing from donor ${plan.donorId}'s (${donorLog.length})`)
      }
    }
    this.adoptLog(this.nodes[plan.donorId]!)
    const net = new SimulatedNetwork({
      seed: this.netSeeds.int(0, 0x7fff_ffff),
      memberCount: n,
      schema: groupSchema(n),
      delayMsMin: DELAY_MS_MIN,
      delayMsMax: DELAY_MS_MAX,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      suspectTimeoutMs: SUSPECT_TIMEOUT_MS,
      smcSlotSizeBytes: SMALL_MESSAGE_MAX_BYTES + 64,
      smcWindowSlots: 16,
      rdmcBlockSizeBytes: 512,
      slowPacketChance: this.options.slowPacketChance ?? 0,
      slowPacketDelayMsMax: 60,
      traceEnabled: false,
    })
    const run: EpochRun = { index: this.epochs.length, plan, net, offsetMs: this.nowMs, attached: n }
    this.log(`epoch ${run.index} runs ${JSON.stringify(plan)}`)
    this.epochs.push(run)
    this.runs.push(run)
    // Every member starts its transport; the last start connects them all, synchronously.
    for (let rank = 0; rank < n; rank++) net.transport(rank).start().catch(() => undefined)
    this.applyPartition(run)
    const view: View = { vid: plan.vid, members: Array.from({ length: n }, (_, rank) => rank) }
    this.recordView(plan.vid, plan.memberIds)
    const start = BigInt(plan.startStamp)
    const nodes = plan.memberIds.map((id) => this.nodes[id]!)
    nodes.forEach((node, rank) => {
      const transport = net.transport(rank)
      node.phase = 'running'
      node.starting = null
      node.run = run
      node.rank = rank
      node.ending = null
      node.lastStable = 0n
      node.core = new GroupCore({ selfRank: rank, epochSize: n, view, sst: transport.sst, lastStamp: start, nowUs: this.nowUs(node), smallMessageMaxBytes: SMALL_MESSAGE_MAX_BYTES })
      const core = node.core
      const feed = (event: CoreEvent): void => {
        if (node.core === core) this.feed(node, event)
      }
      transport.on('rows', () => feed({ kind: 'rows' }))
      transport.on('small', (from, _seq, bytes) => feed({ kind: 'message', fromRank: from, bytes }))
      transport.on('large', (from, _seq, bytes) => feed({ kind: 'message', fromRank: from, bytes }))
      transport.on('suspected', (from) => feed({ kind: 'suspect', rank: from }))
      this.scheduleTick(node, core, run)
    })
    for (const node of nodes) {
      if (node.core !== null) this.execute(node, node.core.start())
    }
    // member.ts resumeRequests: delivered before the epoch change: durable everywhere now; the rest go again.
    for (const node of nodes) {
      for (const [requestId, request] of [...node.requests]) {
        if (node.core === null) break
        if (request.delivered !== null) this.replied(node, requestId, request.delivered)
        else this.feed(node, { kind: 'submit', requestId, payload: request.payload })
      }
    }
  }

  private scheduleTick(node: SimNode, core: GroupCore, run: EpochRun): void {
    run.net.scheduler.after(TICK_MS, () => {
      if (node.core !== core) return
      this.feed(node, { kind: 'tick' })
      if (node.core === core) this.scheduleTick(node, core, run)
    }, { background: true })
  }

  private feed(node: SimNode, event: CoreEvent): void {
    const core = node.core
    if (core === null) return
    this.syncClock(node.run!) // a world event (submit, disk) feeding a core: its sends leave now, not in the network's past
    this.execute(node, core.handle(event, this.nowUs(node)))
    if (node.core === core) {
      this.checkStep(node, core)
      this.finishEpochEndIfDone(node, core)
    }
  }

  private execute(node: SimNode, actions: readonly CoreAction[]): void {
    const run = node.run!
    const core = node.core
    const transport = run.net.transport(node.rank)
    for (const action of actions) {
      if (node.core !== core) break // the member left the epoch: the rest belongs to no one
      switch (action.kind) {
        case 'setU64':
          transport.setU64(action.column, action.value, action.index)
          break
        case 'setBool':
          transport.setBool(action.column, action.value, action.index)
          break
        case 'push':
          transport.push()
          break
        case 'send': {
          const sent = action.large ? transport.sendLarge(action.bytes) : transport.sendSmall(action.bytes)
          sent.catch(() => undefined) // a stopped or crashed sender: the protocol handles the loss
          break
        }
        case 'deliver':
          // After a reconfigure nothing more of the epoch is delivered; own requests go again in the next.
          if (node.ending === null) this.deliver(node, action.stamp, action.view, action.viewSeq, action.payload, action.requestId)
          break
        case 'persistTrim':
          break // the trim is durable before what follows; the simulated disk keeps no separate file
        case 'persistAccepted':
          node.accepted = { vid: action.vid + 1, ballot: action.ballot.toString(), memberIds: action.members.map((rank) => run.plan.memberIds[rank]!) }
          break
        case 'installView': {
          const memberIds = action.view.members.map((rank) => run.plan.memberIds[rank]!)
          node.lastView = { vid: action.view.vid, memberIds }
          this.recordView(action.view.vid, memberIds)
          break
        }
        case 'reply':
          this.replied(node, action.requestId, action.stamp)
          break
        case 'reject': {
          const request = node.requests.get(action.requestId)
          node.requests.delete(action.requestId)
          if (request?.joinerId != null) node.joinsOrdered.delete(request.joinerId)
          break
        }
        case 'excluded':
          this.log(`${node.id} excluded: ${action.reason}`)
          transport.stop().catch(() => undefined)
          this.detach(node)
          this.becomeRecovering(node)
          break
      }
    }
  }

  private deliver(node: SimNode, stamp: HlcStamp, view: View, viewSeq: number, payload: Uint8Array, requestId: number | undefined): void {
    const text = this.decoder.decode(payload.subarray(0, Math.min(payload.byteLength, 64)))
    const bar = text.indexOf('|')
    const id = text.slice(0, bar)
    const request = requestId === undefined ? undefined : node.requests.get(requestId)
    if (request !== undefined) request.delivered = stamp
    const join = text.slice(bar + 1).match(/^join (\d+)/)
    if (join !== null) {
      this.beginEpochEnd(node, stamp, view, viewSeq, [Number(join[1])], id)
      return
    }
    this.append(node, { stamp, id })
    const count = node.log.length
    const incarnation = node.incarnation
    this.worldAfter(this.durableDelays.int(0, DURABLE_DELAY_MS_MAX), () => {
      if (node.incarnation !== incarnation || node.durableCount >= count) return
      node.durableCount = count
      this.feed(node, { kind: 'persisted', stamp })
    })
  }

  /** member.ts `beginEpochEnd`: the plan is the shared pure function; every member must compute the same one.
   * From the view the reconfigure was delivered in (see the core's deliver action), not `currentView`. */
  private beginEpochEnd(node: SimNode, stamp: HlcStamp, view: View, viewSeq: number, addIds: readonly number[], reconfigureId: string): void {
    const run = node.run!
    const next = nextEpochPlan(view, run.plan.memberIds, addIds, stamp)
    const key = JSON.stringify(next)
    const seen = this.plansByReconfigure.get(`${run.index}/${reconfigureId}`)
    if (seen !== undefined && seen !== key) this.violation(`member ${node.id} planned ${key} after reconfigure ${reconfigureId}, another member ${seen}`)
    this.plansByReconfigure.set(`${run.index}/${reconfigureId}`, key)
    node.ending = { next, vid: view.vid, viewSeq, sinceMs: this.nowMs }
    this.log(`${node.id} delivered reconfigure ${reconfigureId} at ${stamp}: next ${key}`)
    for (const id of addIds) node.joinsOrdered.delete(id)
  }

  /** member.ts `finishEpochEndIfDone`: leave once every member delivered the reconfigure, or after the bound. */
  private finishEpochEndIfDone(node: SimNode, core: GroupCore): void {
    const ending = node.ending
    if (ending === null) return
    if (!core.deliveredEverywhere(ending.viewSeq, ending.vid) && this.nowMs - ending.sinceMs < EPOCH_END_BOUND_MS) return
    const run = node.run!
    this.log(`${node.id} leaves epoch ${run.index}`)
    run.net.transport(node.rank).stop().catch(() => undefined)
    this.detach(node)
    node.phase = 'starting'
    if (ending.next.donorId === node.id) {
      for (const id of ending.next.catchUpIds ?? []) {
        const joiner = this.nodes[id]!
        if (joiner.phase !== 'down' && this.reachable(node, joiner)) this.offerEpoch(joiner, ending.next)
      }
    }
    this.startEpoch(node, ending.next)
  }

  private replied(node: SimNode, requestId: number, stamp: HlcStamp): void {
    const request = node.requests.get(requestId)
    node.requests.delete(requestId)
    if (request === undefined) return
    if (request.delivered === null) {
      this.violation(`member ${node.id}: reply to ${request.id} before its delivery here`)
      return
    }
    if (request.delivered !== stamp) this.violation(`member ${node.id}: ${request.id} delivered at ${request.delivered}, replied at ${stamp}`)
    if (request.joinerId !== null) return
    const before = this.acked.get(request.id)
    if (before !== undefined && before !== stamp) this.violation(`${request.id} acknowledged at ${before} and at ${stamp}`)
    this.acked.set(request.id, stamp)
  }

  private lastStamp(node: SimNode): HlcStamp {
    return node.log[node.log.length - 1]?.stamp ?? 0n
  }

  private recordView(vid: number, memberIds: readonly number[]): void {
    const key = memberIds.join(',')
    const seen = this.viewsById.get(vid)
    if (seen !== undefined && seen !== key) this.violation(`two views with id ${vid}: [${seen}] and [${key}]`)
    this.viewsById.set(vid, key)
  }

  // ---- invariants ----

  private violation(text: string): void {
    if (this.violations.length < 20) this.violations.push(`seed ${this.options.seed} at ${this.nowMs} ms: ${text}`)
  }

  /** Appends to a member's log, checking it stays a prefix of the one global order. */
  private append(node: SimNode, record: LogRecord): void {
    const position = node.log.length
    const previous = node.log[position - 1]
    if (previous !== undefined && record.stamp <= previous.stamp) this.violation(`member ${node.id}: stamp ${record.stamp} of ${record.id} not above ${previous.stamp} (#${position})`)
    this.place(node, position, record)
    node.log.push(record)
  }

  /** `node` holds `record` at `position` of its log: the order must have it there. */
  private place(node: SimNode, position: number, record: LogRecord): void {
    const canonical = this.canonical[position]
    if (canonical !== undefined && !sameRecord(canonical, record)) this.reorder(node, position, record)
    if (position > this.canonical.length) this.violation(`member ${node.id} delivered #${position} with a gap (order has ${this.canonical.length})`)
    if (position === this.canonical.length) {
      const twice = this.canonicalIndex.get(record.id)
      if (twice !== undefined) this.violation(`${record.id} delivered twice: #${twice} and #${position}`)
      if (record.stamp <= this.maxStableClaim) this.violation(`${record.id}@${record.stamp} (#${position}) lands at or below a stamp already called stable (${this.maxStableClaim})`)
      this.canonical.push(record)
      this.canonicalIndex.set(record.id, position)
    }
  }

  /** The order holds another record at `position` than `node` does: drop the order's from there
   * on if that is allowed (never acknowledged, never inside a stable cut, held by no member in a
   * running epoch: lost before it was durable anywhere, or only at members absent from a total
   * restart that went on without it, which discard it before they run again), else a violation. */
  private reorder(node: SimNode, position: number, record: LogRecord): void {
    const dropped = this.canonical.slice(position)
    const first = dropped[0]!
    const holders = this.nodes.filter((m) => m !== node && dropped.some((r, i) => sameRecord(m.log[position + i], r)))
    const running = holders.find((m) => m.run !== null)
    const acked = dropped.find((r) => this.acked.has(r.id))
    const claim = this.stableClaims.find((c) => c.count > position)
    const here = `member ${node.id} holds #${position} ${record.id}@${record.stamp}, the order ${first.id}@${first.stamp}`
    if (running !== undefined) {
      this.violation(`${here}, held by member ${running.id} (running epoch ${running.run!.index}${running.ending !== null ? ', ending' : ''})`)
    } else if (acked !== undefined) {
      this.violation(`${here}: acknowledged ${acked.id}@${acked.stamp} would be lost`)
    } else if (claim !== undefined) {
      this.violation(`${here}: member ${claim.nodeId} called ${claim.stamp} stable with ${claim.count} records`)
    } else {
      const where = holders.map((m) => `${m.id} (${m.phase}, durable: ${m.durableCount > position})`).join(', ')
      this.log(`order changes at #${position}: ${first.id}@${first.stamp} and ${dropped.length - 1} after it dropped (held by ${where === '' ? 'nobody' : where}), ${record.id}@${record.stamp} from member ${node.id}`)
      for (const lost of this.canonical.splice(position)) this.canonicalIndex.delete(lost.id)
    }
  }

  /** An epoch starts from its donor's log: it is the order up to the start (a total restart may
   * have gone back to records the order had dropped since, if only absent members held those). */
  private adoptLog(donor: SimNode): void {
    donor.log.forEach((record, position) => {
      if (!sameRecord(this.canonical[position], record)) this.place(donor, position, record)
    })
  }

  private checkStep(node: SimNode, core: GroupCore): void {
    const stable = core.stableStamp()
    if (stable < node.lastStable) this.violation(`member ${node.id}: stability frontier went back from ${node.lastStable} to ${stable}`)
    if (stable > node.lastStable) {
      node.lastStable = stable
      this.claimStable(node, stable)
    }
  }

  /** Records that `node` called everything at or below `stable` final: what it holds there now. */
  private claimStable(node: SimNode, stable: HlcStamp): void {
    let low = 0
    let high = node.log.length
    while (low < high) {
      const mid = (low + high) >> 1
      if (node.log[mid]!.stamp <= stable) low = mid + 1
      else high = mid
    }
    this.stableClaims.push({ nodeId: node.id, stamp: stable, count: low })
    if (stable > this.maxStableClaim) this.maxStableClaim = stable
  }

  /** After the faults: one epoch, one view, every member in it, identical durable logs, nothing pending. */
  private converged(): boolean {
    const first = this.nodes[0]!
    const run = first.run
    if (run === null || first.core === null) return false
    const view = first.core.currentView
    if (view.members.length !== this.nodes.length) return false
    for (const node of this.nodes) {
      if (node.run !== run || node.core === null || node.ending !== null || node.requests.size > 0) return false
      if (node.core.currentView.vid !== view.vid || node.log.length !== first.log.length || node.durableCount !== node.log.length) return false
    }
    return true
  }

  /** The end-of-run invariants. */
  checkEnd(): void {
    // How far each member's log follows the order (one absent from a total restart may go on with records the order dropped).
    const followed = this.nodes.map((m) => {
      let count = 0
      while (count < m.log.length && sameRecord(m.log[count], this.canonical[count])) count++
      return count
    })
    // What nobody holds any more was lost before it was durable anywhere (never acknowledged,
    // never stable: the checks below say so if it was).
    for (const lost of this.canonical.splice(Math.max(...followed))) this.canonicalIndex.delete(lost.id)
    // Frozen cuts: every stamp called stable has exactly the records counted then at or below it.
    for (const claim of this.stableClaims) {
      let low = 0
      let high = this.canonical.length
      while (low < high) {
        const mid = (low + high) >> 1
        if (this.canonical[mid]!.stamp <= claim.stamp) low = mid + 1
        else high = mid
      }
      if (low !== claim.count) {
        this.violation(`member ${claim.nodeId} called ${claim.stamp} stable with ${claim.count} records at or below it; the order has ${low}`)
        break
      }
    }
    // Acknowledged requests: in the order at their stamp, durable at a member that follows the order there.
    for (const [id, stamp] of this.acked) {
      const at = this.canonicalIndex.get(id)
      if (at === undefined || !this.nodes.some((m, i) => followed[i]! > at && m.durableCount > at)) this.violation(`acknowledged ${id}@${stamp} was lost`)
      else if (this.canonical[at]!.stamp !== stamp) this.violation(`acknowledged ${id} at ${stamp}, ordered at ${this.canonical[at]!.stamp}`)
    }
    if (this.options.noFinalRestart === true || this.violations.length > 0) return
    if (!this.converged()) {
      const states = this.nodes.map((m) => {
        const core = m.core === null ? '' : ` view ${m.core.currentView.vid} [${m.core.currentView.members.join(',')}]${m.core.isWedged ? ' wedged' : ''}${m.ending !== null ? ' ending' : ''}`
        return `${m.id}: ${m.phase}${m.run === null ? '' : ` epoch ${m.run.index}`}${core} log ${m.durableCount}/${m.log.length} pending ${m.requests.size}`
      })
      this.violation(`did not converge after the faults stopped: ${states.join('; ')}`)
      return
    }
    // Every member holds the whole order, and with it every acknowledged request, exactly once.
    this.nodes.forEach((node, i) => {
      if (node.log.length !== this.canonical.length || followed[i] !== node.log.length) {
        this.violation(`member ${node.id} holds ${node.log.length} records, ${followed[i]} of them as the order has them; the order has ${this.canonical.length}`)
      }
    })
  }
}

function sameRecord(a: LogRecord | undefined, b: LogRecord | undefined): boolean {
  return a !== undefined && b !== undefined && a.id === b.id && a.stamp === b.stamp
}

// ---- the scenarios the tests and the soak run share ----

export interface GroupSimScenario {
  readonly name: string
  readonly firstSeed: number // seeds firstSeed, firstSeed + 1, ...: scenarios never share a seed
  readonly options: Omit<GroupSimOptions, 'seed'>
}

export const GROUP_SIM_SCENARIOS: readonly GroupSimScenario[] = [
  { name: 'crash-restart-3', firstSeed: 100_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01 } },
  { name: 'crash-restart-5', firstSeed: 200_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 3, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01 } },
  { name: 'partition-3', firstSeed: 300_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1 } },
  { name: 'partition-5', firstSeed: 400_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1 } },
  { name: 'partitions-5', firstSeed: 700_000, options: { memberCount: 5, virtualMs: 400, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: true, partitions: 3, largeChance: 0.1, slowPacketChance: 0.01 } },
  { name: 'total-restart-3', firstSeed: 500_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1 } },
  { name: 'total-restart-5', firstSeed: 600_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1 } },
]

export function scenarioNamed(name: string): GroupSimScenario {
  const scenario = GROUP_SIM_SCENARIOS.find((s) => s.name === name)
  if (scenario === undefined) throw new RangeError(`no simulation scenario '${name}' (${GROUP_SIM_SCENARIOS.map((s) => s.name).join(', ')})`)
  return scenario
}

/** Runs one schedule; an exception in the core or the harness is a violation too (it names the seed). */
export interface ScheduleResult {
  readonly violations: string[]
  readonly steps: number
  readonly virtualMs: number
  readonly epochs: number
}

export function runSchedule(scenario: GroupSimScenario, seed: number): ScheduleResult {
  const sim = new GroupSim({ ...scenario.options, seed })
  let violations: string[]
  try {
    violations = sim.run()
  } catch (err) {
    violations = [`seed ${seed} at ${sim.nowMs} ms: threw ${(err as Error).stack ?? String(err)}`]
  }
  return { violations, steps: sim.steps, virtualMs: sim.nowMs, epochs: sim.epochs.length }
}

/** The command that replays one schedule of a scenario. */
export function replayCommand(scenario: GroupSimScenario, seed: number): string {
  return `FFFS_SIM_SCENARIO=${scenario.name} FFFS_SEED=${seed} npx vitest run test/replication/core.test.ts`
}
