// A member of a replication group (`fffs serve`): the shell around the pure protocol core and
// the pure epoch machine, and the one place that owns the member's I/O. Everything it touches
// from outside comes in through `MemberEnv`: the clock, the disk, the transport of each epoch
// and the network to the other members. `fffs serve` passes the real ones (the default); the
// deterministic simulation (src/testing/groupSim.ts) passes simulated ones and runs this very
// code. The parts, each owning its own state:
// - member/epochs.ts: phases, views, recovery and epoch changes (pure: events in, actions out);
// - core/group.ts: ordering, stability, persistence, view change within an epoch (pure), its
//   actions executed by core/execute.ts;
// - member/replica.ts: the store and who may read it; member/delivery.ts: delivery into it,
//   dedupe and group commit; member/requests.ts: the requests waiting for the group's order;
// - member/stateTransfer.ts and member/peers.ts: catch-up and the member-to-member requests;
// - member/replicaClient.ts: the Client the member serves to its mounts;
// - upkeep.ts: history retention and segment GC of the store, and the disk it is on.
// This file feeds the core the transport's events and a tick, feeds the epoch machine what its
// actions came to, executes both machines' actions, and answers reads at a cut.

import path from 'node:path'
import { errors, FffsError } from '../errors.js'
import type { ApplyResult, Mutation } from '../store/records.js'
import type { DiskGuard, DiskState } from '../store/diskSpace.js'
import type { Store } from '../store/store.js'
import { hlcPhysicalUs, hlcToIso, type HlcStamp } from '../temporal/hlc.js'
import { sleep, type Clock } from './clock.js'
import { memberById, type GroupConfig, type GroupMember } from './config.js'
import { executeCoreActions, type CoreEffects } from './core/execute.js'
import { GroupCore, type CoreAction, type CoreEvent, type CoreStatus } from './core/group.js'
import { groupSchema } from './core/schema.js'
import { ChangeFeed } from './changeFeed.js'
import { Delivery } from './member/delivery.js'
import type { MemberEnv } from './member/env.js'
import { EpochMachine, type EpochAction, type EpochEvent, type Phase } from './member/epochs.js'
import { nativeEnv } from './member/nativeEnv.js'
import { Replica } from './member/replica.js'
import { ReplicaClient, type ReplicaAccess } from './member/replicaClient.js'
import { RequestTable } from './member/requests.js'
import { StateTransfer } from './member/stateTransfer.js'
import { encodeReconfigurePayload } from './payload.js'
import { waitForPlanMembers } from './planBarrier.js'
import { peerMethods, type MemberView, type Service } from './protocol.js'
import type { TransferStatus } from './readiness.js'
import type { AcceptedView, EpochPlan, MemberReport } from './recovery.js'
import { TRANSPORT_DEFAULTS, type Transport } from './transport/types.js'
import type { HistoryState } from '../client/history.js'
import type { MemberHistory } from './server.js'
import { MemberUpkeep } from './upkeep.js'
import type { ViewSource } from './viewWatch.js'
import { MemberBehindError } from './wire.js'

export type { MemberEnv, MemberObserver, MemberTiming } from './member/env.js'
export { MEMBER_TIMING } from './member/env.js'
export type { Phase } from './member/epochs.js'

const HOLD_STAMP_POLL_MS = 10
/** How long a push of lazy row changes alone waits for an urgent push to carry it (core/group.ts LAZY_COLUMNS); the floor's own interval. */
const LAZY_PUSH_MS = 10
/** How long the log's sync waits to take more records along when nothing waits on it ("write-on-close": member/delivery.ts). */
const SYNC_DELAY_MS = 10
const STABLE_WAIT_POLL_MAX_MS = 50

export interface MemberOptions {
  readonly log?: (line: string) => void
  /** Absent: the real clock, disk, transport and network (`fffs serve`). */
  readonly env?: MemberEnv
}

/** What `fffs status` shows of one member (stamps are bigints: the server sends them as decimal strings). */
export interface MemberStatus {
  readonly id: number
  readonly phase: Phase
  readonly core: CoreStatus | null
  readonly memberIds: readonly number[] // epoch rank -> member id
  readonly appliedStamp: string
  readonly rows: ReadonlyArray<Record<string, string | boolean | string[] | boolean[]>>
  /** The last view this member installed (or is starting): with `phase`, what a CLI says of a group not yet running. */
  readonly lastView: { readonly vid: number; readonly memberIds: readonly number[] }
  /** Starting the epoch whose first view is `vid`; `ready`: it holds the plan's start and waits for the others. */
  readonly starting: { readonly vid: number; readonly ready: boolean } | null
  /** The state transfer under way ("catching up, 41% of 2.1 GB"), if any. */
  readonly transfer: TransferStatus | null
  /** History retention of this member's store (upkeep.ts), and the disk it is on. */
  readonly history: HistoryState
  readonly disk: DiskState
}

/** The epoch whose transport this member has (connecting or running). */
interface Epoch {
  readonly plan: EpochPlan
  readonly transport: Transport
  core: GroupCore | null // null while the transport connects
  readonly early: CoreEvent[] // events before the core started
}

export class Member implements ReplicaAccess {
  readonly id: number
  readonly config: GroupConfig
  readonly client: ReplicaClient
  readonly clock: Clock
  readonly instance: string
  private readonly self: GroupMember
  private readonly env: MemberEnv
  private readonly log: (line: string) => void
  private readonly machine: EpochMachine
  private readonly replica: Replica
  private readonly delivery: Delivery
  private readonly requests: RequestTable
  private readonly transfer: StateTransfer
  /** Retention, segment GC and the disk (upkeep.ts). */
  readonly upkeep: MemberUpkeep
  private epoch: Epoch | null = null
  private pushPending: Epoch | null = null // the epoch whose row has unpushed changes (schedulePush)
  private pushUrgent = false // pushPending goes out at the end of this turn; else within LAZY_PUSH_MS
  private lazyPushTimer: { cancel(): void } | null = null
  private syncWantedTold: { core: GroupCore | null; stamp: HlcStamp } = { core: null, stamp: 0n } // wantSynced
  private tickTimer: { cancel(): void } | null = null
  private fatal: Error | null = null
  private stableHigh: HlcStamp = 0n // the highest stamp this member has found stable
  private announced = '' // the phase and view last announced to watchers
  private readonly waiters = new Set<() => void>()
  private readonly viewListeners = new Set<(view: MemberView) => void>()
  private readonly runningWaiters: Array<() => void> = []
  /** What the mounts connected to this member hear of the records it applies (changeFeed.ts). */
  readonly changes = new ChangeFeed()

  private constructor(config: GroupConfig, self: GroupMember, replica: Replica, disk: DiskGuard, env: MemberEnv, log: (line: string) => void) {
    this.config = config
    this.id = self.id
    this.self = self
    this.env = env
    this.clock = env.clock
    this.instance = env.instance
    this.log = log
    this.replica = replica
    env.tuneStore?.(replica.store)
    const readJson = <T>(name: string): T | null => {
      const text = env.disk.readText(path.join(self.dataDir, name))
      return text === null ? null : (JSON.parse(text) as T) // written by persist() below
    }
    this.machine = new EpochMachine({
      selfId: self.id,
      configuredIds: config.members.map((m) => m.id),
      timing: { ...env.timing, epochEndBoundMs: config.transport.suspectTimeoutMs * 3 },
      lastView: readJson<{ vid: number; memberIds: number[] }>('view.json'),
      lastRun: readJson<{ vid: number; memberIds: number[] }>('ran.json'),
      accepted: readJson<AcceptedView>('accepted.json'),
    })
    this.delivery = new Delivery(replica, {
      persisted: (stamp) => this.feedCore({ kind: 'persisted', stamp }),
      written: (stamp) => this.feedCore({ kind: 'written', stamp }),
      failed: (err) => this.fail(err),
      applied: () => this.wake(),
      appliedListener: () => this.changes.listener(),
      deferSync: {
        // Answers wait on the sync in "sync-on-close"; in "write-on-close" only a client's fsync does (sync_wanted, any member's).
        urgent: () => this.config.durability === 'sync-on-close' || (this.epoch?.core?.syncWantedStamp() ?? 0n) > this.delivery.synced,
        delayMs: SYNC_DELAY_MS,
        clock: env.clock,
      },
      ...(env.observer !== undefined ? { observer: env.observer } : {}),
    })
    this.requests = new RequestTable({
      memberId: self.id,
      clock: env.clock,
      holdWhileRecoveringMs: env.timing.holdWhileRecoveringMs,
      refusal: () => (this.fatal !== null ? new FffsError('EIO', `member ${this.id} failed: ${this.fatal.message}`) : this.machine.phase === 'stopped' ? new FffsError('EIO', `member ${this.id} is stopping`) : null),
      running: () => this.machine.phase === 'running',
      submit: (requestId, payload, after, records) => this.feedCore({ kind: 'submit', requestId, payload, ...(after !== undefined ? { after } : {}), ...(records > 1 ? { records } : {}) }),
    })
    this.transfer = new StateTransfer({
      replica,
      delivery: this.delivery,
      peers: env.peers,
      clock: env.clock,
      log,
      stallMs: this.transferStallMs,
      ...(env.transferBatchBytes !== undefined ? { batchBytes: env.transferBatchBytes } : {}),
      stableStamp: () => this.stableStamp(),
      running: () => this.machine.phase === 'running',
      // Requests delivered into the discarded log: refused (their records may or may not be in the group's order).
      discarded: () => this.requests.rejectDelivered(() => new FffsError('EIO', `member ${this.id} discarded its log, which held this request's record; the group may or may not have ordered it`)),
    })
    this.client = new ReplicaClient(this)
    this.upkeep = new MemberUpkeep({
      store: replica.store,
      config,
      memberId: self.id,
      clock: env.clock,
      disk,
      submit: async (mutation) => void (await this.client.submit(mutation)),
      leads: () => this.machine.phase === 'running' && Math.min(...this.machine.lastView.memberIds) === this.id,
      running: () => this.machine.phase === 'running',
      viewIds: () => this.machine.lastView.memberIds,
      log,
    })
    this.upkeep.start()
    this.scheduleTick()
  }

  /** Opens the store; the member then recovers into a running group (call `recover` once its peers can reach it). */
  static async open(config: GroupConfig, id: number, options: MemberOptions = {}): Promise<Member> {
    const self = memberById(config, id)
    const write = options.log ?? ((line: string) => process.stderr.write(line + '\n'))
    const log = (line: string): void => write(`fffs: member ${id}: ${line}`)
    const env = options.env ?? nativeEnv(config, id, log)
    await env.disk.mkdirp(self.dataDir)
    const disk = await MemberUpkeep.measureDisk(self.dataDir, env.disk) // on a full disk its reserve file is given back: the store can open
    const replica = await Replica.open({ memberId: id, disk: env.disk, dataDir: self.dataDir, clock: env.clock, log, ...(config.shardRole !== undefined ? { role: config.shardRole } : {}) })
    return new Member(config, self, replica, disk, env, log)
  }

  /** The store this member's replica holds (the simulation reads it). */
  get store(): Store {
    return this.replica.store
  }

  get phase(): Phase {
    return this.machine.phase
  }

  /** The plan of the epoch this member runs in (null when it runs in none). */
  get epochPlan(): EpochPlan | null {
    return this.machine.epochPlan
  }

  /** What clients that follow the group's views watch (viewWatch.ts): this member's phase and last view. */
  readonly views: ViewSource = {
    current: () => ({ memberId: this.id, phase: this.machine.phase, vid: this.machine.lastView.vid, memberIds: this.machine.lastView.memberIds }),
    subscribe: (listener) => {
      this.viewListeners.add(listener)
      return () => void this.viewListeners.delete(listener)
    },
  }

  /** The member-to-member requests this member answers (server.ts serves them on its client port). */
  readonly peerService: Service<typeof peerMethods> = {
    hello: async () => ({ result: this.report() }),
    join: async ({ id }) => {
      const actions = this.handleEpoch({ kind: 'joinRequested', id, wedged: this.epoch?.core?.isWedged ?? true })
      return { result: { accepted: actions.some((a) => a.kind === 'orderJoin') } }
    },
    epoch: async (plan) => {
      this.handleEpoch({ kind: 'offered', plan })
      return { result: { phase: this.machine.phase } }
    },
    fetch: (args) => this.transfer.serveFetch(args),
    digest: ({ stamp }) => this.transfer.serveDigest(stamp),
    image: ({ cursor }) => this.transfer.serveImage(cursor),
  }

  /** This member's history retention, as its client port serves it (`fffs gc`, `fffs log --gc`, `fffs status`). */
  readonly history: MemberHistory = {
    state: () => this.upkeep.state(),
    collect: async ({ dryRun, propose, after }) => {
      if (after !== undefined) await this.holdStamp(after)
      const report = await this.upkeep.run({ dryRun, propose })
      return { report, appliedStamp: this.store.appliedStamp }
    },
    audits: (limit) => this.store.audits(limit),
  }

  status(): MemberStatus {
    const epoch = this.epoch
    const memberIds = epoch?.plan.memberIds ?? []
    const rows =
      epoch === null
        ? []
        : memberIds.map((_, rank) => {
            const sst = epoch.transport.sst
            const row: Record<string, string | boolean | string[] | boolean[]> = {}
            for (const column of groupSchema(memberIds.length).columns) {
              if (column.kind === 'u64') row[column.name] = sst.u64(rank, column.name).toString()
              else if (column.kind === 'bool') row[column.name] = sst.bool(rank, column.name)
              else if (column.kind === 'u64[]') row[column.name] = Array.from({ length: column.length }, (_, i) => sst.u64(rank, column.name, i).toString())
              else row[column.name] = Array.from({ length: column.length }, (_, i) => sst.bool(rank, column.name, i))
            }
            return row
          })
    return {
      id: this.id,
      phase: this.machine.phase,
      core: epoch?.core?.status() ?? null,
      memberIds: [...memberIds],
      appliedStamp: this.store.appliedStamp.toString(),
      rows,
      lastView: this.machine.lastView,
      starting: this.machine.starting,
      transfer: this.transfer.status(),
      history: this.upkeep.state(),
      disk: this.upkeep.lastDisk,
    }
  }

  private report(): MemberReport {
    const accepted = this.machine.accepted
    const starting = this.machine.starting
    const transfer = this.transfer.status()
    return {
      id: this.id,
      phase: this.machine.phase,
      lastStamp: this.store.appliedStamp.toString(),
      lastVid: this.machine.lastView.vid,
      lastViewIds: this.machine.lastView.memberIds,
      lastRunVid: this.machine.lastRun.vid,
      ...(accepted !== null ? { accepted } : {}),
      ...(starting !== null ? { starting } : {}),
      ...(transfer !== null ? { transfer } : {}),
    }
  }

  // ---- epochs ----

  /** Finds or forms a running group and joins it; resolves once this member runs (or stopped). */
  recover(): Promise<void> {
    const done = new Promise<void>((resolve) => this.runningWaiters.push(resolve))
    this.handleEpoch({ kind: 'recover' })
    return done
  }

  /** Feeds the epoch machine and executes what it decides; returns those actions. */
  private handleEpoch(event: EpochEvent): EpochAction[] {
    const actions = this.machine.handle(event, this.clock.nowMs())
    for (const action of actions) this.executeEpoch(action)
    this.announceIfChanged()
    return actions
  }

  private executeEpoch(action: EpochAction): void {
    this.env.observer?.epochAction?.(action)
    switch (action.kind) {
      case 'askReports':
        void this.reports().then((reports) => this.handleEpoch({ kind: 'reports', reports }))
        break
      case 'preJoin':
        void this.transfer.catchUpBeforeJoining(action.donorId, () => this.machine.phase === 'recovering').then(() => this.handleEpoch({ kind: 'preJoined' }))
        break
      case 'askJoin':
        this.env.peers.call(action.viaId, peerMethods.join, { id: this.id }, this.env.timing.peerRequestTimeoutMs).catch((err: Error) => this.log(`join via member ${action.viaId}: ${err.message}`))
        break
      case 'tellPlan':
        for (const id of action.ids) this.tellPlan(id, action.plan)
        break
      case 'prepare':
        this.prepare(action.plan, action.catchUp).then(
          () => this.handleEpoch({ kind: 'prepared', plan: action.plan }),
          (err: Error) => this.handleEpoch({ kind: 'startFailed', plan: action.plan, message: err.message }),
        )
        break
      case 'persistView':
        this.persist('view.json', action.view)
        if (action.ran) this.persist('ran.json', action.view)
        break
      case 'persistAccepted':
        this.persist('accepted.json', action.accepted)
        break
      case 'awaitPlan':
        waitForPlanMembers(action.plan, {
          selfId: this.id,
          ask: (id) => this.env.peers.call(id, peerMethods.hello, undefined, this.env.timing.peerRequestTimeoutMs).then(({ result }) => result, () => null),
          tell: (id) => this.tellPlan(id, action.plan),
          stallMs: this.transferStallMs,
          pollMs: this.env.timing.planPollMs,
          clock: this.clock,
          abandoned: () => !this.machine.isStarting(action.plan),
        }).then(
          () => this.handleEpoch({ kind: 'ready', plan: action.plan }),
          (err: Error) => this.handleEpoch({ kind: 'startFailed', plan: action.plan, message: err.message }),
        )
        break
      case 'connect':
        this.connect(action.plan)
        break
      case 'startCore':
        this.startCore(action.plan)
        break
      case 'leave':
        this.leave(action.next)
        break
      case 'orderJoin':
        this.requests.order(encodeReconfigurePayload([action.id])).catch(() => this.handleEpoch({ kind: 'joinFailed', id: action.id }))
        break
      case 'log':
        this.log(action.line)
        break
    }
  }

  private announceIfChanged(): void {
    const view = this.views.current()
    const key = `${view.phase} ${view.vid} ${view.memberIds.join(',')}`
    if (key === this.announced) return
    this.announced = key
    for (const listener of this.viewListeners) listener(view)
    if (view.phase === 'running' || view.phase === 'stopped') for (const resolve of this.runningWaiters.splice(0)) resolve()
  }

  private async reports(): Promise<MemberReport[]> {
    const others = this.config.members.filter((m) => m.id !== this.id)
    let refusals = 0
    const answers = await Promise.all(
      others.map((m) =>
        this.env.peers.call(m.id, peerMethods.hello, undefined, this.env.timing.peerRequestTimeoutMs).then(
          ({ result }) => result,
          (err: unknown) => {
            if (err instanceof FffsError && err.code === 'EACCES') refusals++
            return null
          },
        ),
      ),
    )
    // Every peer refused our key: retrying cannot help and would flood their logs.
    if (others.length > 0 && refusals === others.length) {
      this.fail(new FffsError('EACCES', `every other member refused this member's cluster key (${this.config.keyFile})`))
    }
    return [this.report(), ...answers.filter((r): r is MemberReport => r !== null)]
  }

  private tellPlan(id: number, plan: EpochPlan): void {
    this.env.peers.call(id, peerMethods.epoch, plan, this.env.timing.peerRequestTimeoutMs).catch(() => undefined)
  }

  /** Holds exactly the plan's records up to its start, durably: caught up from its donor first if `catchUp`. */
  private async prepare(plan: EpochPlan, catchUp: boolean): Promise<void> {
    await this.transfer.idle() // a catch-up before a join, stopping
    await this.delivery.settle()
    const start = BigInt(plan.startStamp)
    if (catchUp) await this.transfer.catchUp(plan.donorId, { upto: start, mayDiscard: true, donorHoldsStart: plan.catchUpIds === undefined })
    const applied = this.store.appliedStamp
    if (applied > start) throw new Error(`this log reaches ${applied}, past the plan's ${start}`)
    // A total restart starts from its donor's last record (planEpoch): the log it reported.
    if (plan.donorId === this.id && plan.catchUpIds === undefined && applied !== start) throw new Error(`this log ends at ${applied}, not at the plan's start ${start} (it changed since this member reported it)`)
    await this.store.sync()
  }

  /** Connects the plan's transport; its events wait for the core, which starts once the epoch machine says the epoch runs. */
  private connect(plan: EpochPlan): void {
    const transport = this.env.newTransport(plan)
    const epoch: Epoch = { plan, transport, core: null, early: [] }
    this.epoch = epoch
    const feed = (event: CoreEvent): void => {
      if (this.epoch !== epoch) return
      if (epoch.core === null) epoch.early.push(event)
      else this.feedCore(event)
    }
    transport.on('rows', () => feed({ kind: 'rows' }))
    transport.on('small', (from, _seq, bytes) => feed({ kind: 'message', fromRank: from, bytes }))
    transport.on('large', (from, _seq, bytes) => feed({ kind: 'message', fromRank: from, bytes }))
    transport.on('suspected', (rank, reason) => {
      if (this.epoch === epoch) this.log(`suspect member ${plan.memberIds[rank]} (${reason})`)
      feed({ kind: 'suspect', rank })
    })
    transport.start().then(
      () => {
        if (this.epoch === epoch && this.machine.isStarting(plan)) {
          this.handleEpoch({ kind: 'connected', plan })
          return
        }
        if (this.epoch === epoch) this.epoch = null
        void transport.stop().catch(() => undefined)
      },
      (err: Error) => {
        if (this.epoch === epoch) this.epoch = null
        void transport.stop().catch(() => undefined)
        this.handleEpoch({ kind: 'startFailed', plan, message: err.message })
      },
    )
  }

  private startCore(plan: EpochPlan): void {
    const epoch = this.epoch
    if (epoch === null || epoch.plan !== plan) throw new Error(`invariant: view ${plan.vid} runs without its transport`)
    const n = plan.memberIds.length
    const start = BigInt(plan.startStamp)
    epoch.core = new GroupCore({
      selfRank: plan.memberIds.indexOf(this.id),
      epochSize: n,
      view: { vid: plan.vid, members: Array.from({ length: n }, (_, rank) => rank) },
      sst: epoch.transport.sst,
      lastStamp: start,
      nowUs: this.clock.wallClockUs(),
      smallMessageMaxBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes - 64,
      acknowledge: this.config.durability === 'sync-on-close' ? 'synced' : 'written',
    })
    this.replica.caughtUp() // caught up (or the donor: its log is the epoch's)
    this.log(`running in view ${plan.vid} [${plan.memberIds.join(', ')}] from ${start} (log at ${this.store.appliedStamp})`)
    this.executeCore(epoch, epoch.core.start())
    for (const event of epoch.early.splice(0)) this.feedCore(event)
    this.requests.resume()
  }

  /** Leaves the running epoch: its transport stops (once this turn is over: we may be inside its callback); then `next` starts. */
  private leave(next: EpochPlan | null): void {
    const epoch = this.epoch
    this.flushPush()
    this.epoch = null
    this.clock.defer(() => {
      void (async () => {
        await epoch?.transport.stop().catch(() => undefined)
        if (next !== null) this.handleEpoch({ kind: 'left', plan: next })
      })()
    })
  }

  /** How long a view start or a transfer waits for a peer that makes no progress. */
  private get transferStallMs(): number {
    return this.config.transport.connectTimeoutMs
  }

  // ---- the core ----

  private scheduleTick(): void {
    this.tickTimer = this.clock.setTimer(this.env.timing.tickMs, () => {
      this.feedCore({ kind: 'tick' })
      this.handleEpoch({ kind: 'tick' })
      if (this.machine.phase !== 'stopped') this.scheduleTick()
    })
  }

  private feedCore(event: CoreEvent): void {
    const epoch = this.epoch
    const core = epoch?.core
    if (this.machine.phase !== 'running' || epoch == null || core == null) return
    try {
      this.executeCore(epoch, core.handle(event, this.clock.wallClockUs()))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private executeCore(epoch: Epoch, actions: readonly CoreAction[]): void {
    executeCoreActions(actions, epoch.transport, this.coreEffects(epoch), () => this.epoch === epoch, this.env.observer?.coreAction?.bind(this.env.observer))
    this.delivery.syncIfNeeded()
    const ending = this.machine.ending
    if (ending !== null && this.epoch === epoch && epoch.core!.deliveredEverywhere(ending.viewSeq, ending.vid)) this.handleEpoch({ kind: 'deliveredEverywhere' })
    this.wake()
  }

  private coreEffects(epoch: Epoch): CoreEffects {
    const idOf = (rank: number): number => epoch.plan.memberIds[rank]!
    return {
      push: (lazy) => this.schedulePush(epoch, lazy),
      sendFailed: (err) => {
        if (this.epoch === epoch) this.log(`send failed: ${err.message}`)
      },
      deliver: (action) => {
        // After a reconfigure, nothing more of the epoch is delivered; own requests go again in the next.
        if (this.machine.ending !== null) return
        const recycle = epoch.transport.recycle?.bind(epoch.transport)
        this.upkeep.delivered(action.payload.byteLength)
        const delivered = this.delivery.deliver(action.stamp, action.records ?? 1, action.payload, recycle)
        if (delivered.kind === 'applied') {
          this.requests.delivered(action.requestId, action.stamp, delivered.results)
          return
        }
        this.requests.delivered(action.requestId, action.stamp, [{ ok: true }])
        this.handleEpoch({ kind: 'reconfigured', stamp: action.stamp, view: action.view, viewSeq: action.viewSeq, addIds: delivered.addIds })
      },
      persistTrim: (action) => this.persist('trim.json', { vid: action.vid, trim: action.trim }),
      persistAccepted: (action) => this.handleEpoch({ kind: 'accepted', accepted: { vid: action.vid + 1, ballot: action.ballot.toString(), memberIds: action.members.map(idOf) } }),
      installView: (action) => this.handleEpoch({ kind: 'installed', view: { vid: action.view.vid, memberIds: action.view.members.map(idOf) } }),
      reply: (action) => this.requests.replied(action.requestId),
      reject: (action) => this.requests.rejected(action.requestId, new FffsError('EROFS', `member ${this.id} left the group: ${action.reason}`)),
      excluded: (action) => this.handleEpoch({ kind: 'excluded', reason: action.reason }),
    }
  }

  /**
   * Row pushes are coalesced: one per turn of the event loop, after every event of that turn
   * (a burst of delivered messages, row changes, persistence reports) has been fed to the core.
   * A push sends the whole row and costs a write to every peer; pushing per event made it
   * the largest single cost of a member under many small commits. Deferring a push only
   * delays what peers learn: every value pushed later is at least as far along, and anything
   * that must be durable before peers see it (persistAccepted, persistTrim) was written
   * synchronously when its action ran, before this push. A push of lazy changes alone (nothing
   * waits on them: core/group.ts LAZY_COLUMNS) waits up to LAZY_PUSH_MS for an urgent push to
   * carry them, so a stream of small commits costs about half the pushes.
   */
  private schedulePush(epoch: Epoch, lazy: boolean): void {
    if (this.pushPending !== null && this.pushPending !== epoch) this.flushPush()
    if (this.pushPending === epoch && (this.pushUrgent || lazy)) return
    this.pushPending = epoch
    if (lazy) {
      this.lazyPushTimer = this.clock.setTimer(LAZY_PUSH_MS, () => {
        this.lazyPushTimer = null
        this.flushPush()
      })
      return
    }
    this.pushUrgent = true
    this.clock.defer(() => this.flushPush())
  }

  /** Pushes the row now if a push is pending (also before an epoch's transport stops: peers wait for its last rows). */
  private flushPush(): void {
    const epoch = this.pushPending
    this.pushPending = null
    this.pushUrgent = false
    this.lazyPushTimer?.cancel()
    this.lazyPushTimer = null
    if (epoch === null || this.machine.phase === 'stopped') return
    try {
      epoch.transport.push()
    } catch (err) {
      if (this.epoch === epoch) this.fail(err as Error) // a stopped transport of an epoch already left: nothing to tell
    }
  }

  /** Replaces a small file of the data directory durably before returning: an accepted value must be on disk before the row that publishes it is pushed. */
  private persist(name: string, value: unknown): void {
    this.env.disk.writeTextDurably(path.join(this.self.dataDir, name), JSON.stringify(value) + '\n')
  }

  private fail(err: Error): void {
    if (this.fatal !== null) return
    this.fatal = err
    this.log(`fatal: ${err instanceof FffsError ? err.message : (err.stack ?? err.message)}`)
    this.requests.rejectAll(new FffsError('EIO', `member ${this.id} failed: ${err.message}`))
    void this.stop().finally(() => this.env.exit(70))
  }

  // ---- what ReplicaClient asks ----

  order(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return this.requests.order(payload, after)
  }

  refuseWhenFull(mutation: Mutation | 'write'): void {
    this.upkeep.refuse(mutation)
  }

  orderRecord(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return this.requests.orderRecord(payload, after)
  }

  readBuffer(lengthBytes: number): Buffer {
    return this.store.readBuffer(lengthBytes)
  }

  read<T>(read: (store: Store) => Promise<T> | T): Promise<T> {
    return this.replica.read({}, read)
  }

  /**
   * Waits (briefly) until this member holds every record at or below `stamp` as the group
   * orders them: stable here, or applied in a running epoch (whose order the group shares).
   * A member that restarted, is catching up or cut off may hold an older or divergent state at
   * a cut the mount found stable on another member before it failed over; a read there would
   * return other bytes for a frozen cut. MemberBehindError sends the read to another member.
   */
  async holdStamp(stamp: HlcStamp): Promise<void> {
    // Stable covers a cut past the last record (an idle shard's log ends long before now).
    const holds = (): boolean => !this.replica.isReplaced && (stamp <= this.stableStamp() || (this.machine.phase === 'running' && stamp <= this.store.appliedStamp))
    const startedMs = this.clock.nowMs()
    while (!holds()) {
      if (this.clock.nowMs() - startedMs >= this.env.timing.catchUpWaitMaxMs || this.machine.phase === 'stopped') {
        throw new MemberBehindError(`member ${this.id} does not hold ${hlcToIso(stamp)} yet (${this.machine.phase}, applied to ${hlcToIso(this.store.appliedStamp)})`)
      }
      await sleep(this.clock, HOLD_STAMP_POLL_MS)
    }
  }

  /** Every record at or below this stamp is applied here and durable at every member. */
  stableStamp(): HlcStamp {
    const core = this.epoch?.core
    // Out of a running core, only what a core found stable: the log may end in records that were
    // never durable everywhere, which a total restart can go on without (the simulation caught a
    // member out of a group calling such a record stable: crash-restart-3 seed 100122).
    let stable = core == null ? this.stableHigh : core.stableStamp()
    if (this.delivery.backlog > 0 && this.store.appliedStamp < stable) stable = this.store.appliedStamp
    // A cut once stable stays stable (its records are final): keep answering it while this
    // member is between epochs or cut off, and across the start of a new core.
    if (stable > this.stableHigh) this.stableHigh = stable
    return this.stableHigh
  }

  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    const startedMs = this.clock.nowMs()
    for (;;) {
      if (this.stableStamp() >= cut) return
      const waitedMs = this.clock.nowMs() - startedMs
      if (waitedMs >= maxWaitMs || this.machine.phase === 'stopped') throw errors.notStable(`cut ${cut}`, waitedMs)
      const untilCutMs = Math.ceil((hlcPhysicalUs(cut) - this.clock.wallClockUs()) / 1000) + 1
      await this.nextChange(Math.max(1, Math.min(maxWaitMs - waitedMs, untilCutMs, STABLE_WAIT_POLL_MAX_MS)))
    }
  }

  /**
   * Waits until every record at or below `stamp` is synced in the log of every member of the
   * view (fsync of what the group acknowledged once written). A stable cut is synced everywhere too.
   */
  async waitSynced(stamp: HlcStamp, maxWaitMs: number): Promise<void> {
    const startedMs = this.clock.nowMs()
    for (;;) {
      const core = this.epoch?.core
      if (this.stableStamp() >= stamp || (core != null && this.machine.phase === 'running' && core.syncedEverywhereStamp() >= stamp)) return
      this.wantSynced(stamp)
      const waitedMs = this.clock.nowMs() - startedMs
      if (this.machine.phase === 'stopped') throw new FffsError('EIO', `member ${this.id} is stopping`)
      if (waitedMs >= maxWaitMs) throw new FffsError('EIO', `the group did not sync ${hlcToIso(stamp)} within ${waitedMs} ms`)
      await this.nextChange(Math.max(1, Math.min(maxWaitMs - waitedMs, STABLE_WAIT_POLL_MAX_MS)))
    }
  }

  /**
   * Tells the group a client here waits for `stamp` synced everywhere (the core's sync_wanted):
   * the others then publish their persisted stamps at once instead of lazily. Told once per
   * stamp and core (telling wakes every waiter: two waiters telling the same stamp each time
   * they wake would wake each other for ever).
   */
  private wantSynced(stamp: HlcStamp): void {
    const core = this.epoch?.core
    if (core == null || (this.syncWantedTold.core === core && this.syncWantedTold.stamp >= stamp)) return
    this.syncWantedTold = { core, stamp }
    this.feedCore({ kind: 'syncWanted', stamp })
  }

  /** Resolves once the core moved (wake) or after `maxWaitMs`. */
  private nextChange(maxWaitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        timer.cancel()
        this.waiters.delete(done)
        resolve()
      }
      const timer = this.clock.setTimer(maxWaitMs, done)
      this.waiters.add(done)
    })
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  async stop(): Promise<void> {
    if (this.machine.phase === 'stopped') return
    this.handleEpoch({ kind: 'stop' })
    this.tickTimer?.cancel()
    this.wake()
    const epoch = this.epoch
    this.epoch = null
    this.transfer.stop()
    await epoch?.transport.stop().catch(() => undefined)
    this.env.peers.close()
    await this.upkeep.stop()
    await this.delivery.stop()
    await this.store.close()
  }
}
