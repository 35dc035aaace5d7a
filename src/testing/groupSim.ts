// Deterministic simulation of a replication group running the production member runtime
// (src/replication/member.ts and its parts: the epoch machine, the core, delivery, requests,
// state transfer, the store and its log) over a simulated world: one virtual clock, one
// simulated network per epoch (simulatedNetwork.ts), the member-to-member requests through the
// world (simPeers.ts), and a simulated disk per machine (simDisk.ts: latencies, slow disks,
// process crashes that keep what was written, power losses that keep only what was synced
// and tear what was not). Workload and faults come from the seed, so a failing schedule is
// replayed by its seed alone; every violation names the seed.
//
// Nothing here decides what a member does: members recover, form groups, join, transfer
// state, change views and order writes by their own code. The world only starts and kills
// processes, cuts links, submits writes through each member's ReplicaClient, and watches:
// - every record a member logs (LogObserver), against one global order;
// - what each member holds on its disk when it restarts (read back through its store);
// - the views members run in, their stability frontiers, and the writes acknowledged.
//
// Invariants, after every step and at the end:
// - one global delivery order: every member's log is a prefix of the canonical order. A
//   position may change only if the records it drops were never acknowledged, lie above every
//   stamp called stable, and are held by no member in a running epoch (a total restart can go
//   on without records delivered and persisted only by members absent from it); a member still
//   holding them must discard them before it runs again (checked when an epoch starts: its
//   members hold identical logs up to the plan's start);
// - stamps strictly increase along a log; no record is in the order twice;
// - no two running views with the same id and different members;
// - a member's stability frontier never goes back;
// - frozen cuts: once a member called a stamp stable with k records at or below it, the order
//   has exactly those k records at or below it, forever;
// - no member fails (a fatal error is a bug) and no request handler throws a non-FffsError;
// - at the end, once the faults stop (everything restarted, partitions healed): every member
//   runs in one epoch and one view with logs identical to the order; then every machine loses
//   power, and every store, reopened, holds exactly the order with every acknowledged write at
//   its acknowledged stamp.

import path from 'node:path'
import type { GroupConfig } from '../replication/config.js'
import { Member, type MemberTiming } from '../replication/member.js'
import { peerMethods, type Service } from '../replication/protocol.js'
import type { EpochPlan } from '../replication/recovery.js'
import { groupSchema } from '../replication/core/schema.js'
import { ROOT_INO, type Mutation } from '../store/records.js'
import { Store } from '../store/store.js'
import { HLC_MAX, type HlcStamp } from '../temporal/hlc.js'
import { Prng } from './prng.js'
import { runUntilSettled, Scheduler, yieldToEventLoop } from './scheduler.js'
import { SimClock } from './simClock.js'
import { SimDisk } from './simDisk.js'
import { SimPeers } from './simPeers.js'
import { SimulatedNetwork } from './simulatedNetwork.js'

export interface GroupSimOptions {
  readonly seed: number
  readonly memberCount: number
  readonly virtualMs: number // how long the workload and faults run; then faults stop and the group must converge
  readonly submitsPerMs: number // offered load, spread over the members
  readonly crashes: number // crash events at random instants; each crashes a random member while fewer than a majority are down
  /** Crashed members restart after a delay drawn in [restartMsMin, restartMsMax]; absent: they stay down until the faults stop. */
  readonly restartMsMin?: number
  readonly restartMsMax?: number
  /** Whole-group crashes: every member crashes within a few ms of a random instant, then restarts. */
  readonly totalCrashes?: number
  readonly partition: boolean // one random minority/majority split, healed later
  /** Random minority/majority splits (overrides `partition`); a later one replaces an earlier one still in force. */
  readonly partitions?: number
  readonly largeChance: number // fraction of writes whose bytes go as a large message (RDMC)
  readonly slowPacketChance?: number
  /** Fraction of crashes that are power losses (unsynced writes lost, the rest torn); the others kill the process only. */
  readonly powerLossChance?: number
  /** One member (drawn) has a slow disk: syncs take up to this long (virtual ms). */
  readonly slowDiskSyncMsMax?: number
  /** Bytes of file data per state-transfer batch (small: a transfer takes many batches). */
  readonly transferBatchBytes?: number
  /** Bound on the convergence phase after the faults stop (virtual ms). */
  readonly settleMsMax?: number
  /** Whether members that went down stay down at the end (no convergence promised then; safety only). */
  readonly noFinalRestart?: boolean
  /** Receives one line per world event and every line the members log: for replaying a seed. */
  readonly trace?: (line: string) => void
}

/** A record as the checks know it: its stamp and what identifies its request (recordKey). */
export interface LogRecord {
  readonly stamp: HlcStamp
  readonly key: string
}

/** One simulated machine: its disk outlives its processes. */
export interface SimMachine {
  readonly id: number
  readonly disk: SimDisk
  incarnation: number
  up: boolean // a process runs (its member may still be opening its store)
  member: Member | null
  clock: SimClock | null
  /** What this incarnation holds in its log: read from its store at open, then every record it logs. */
  log: LogRecord[]
  lastStable: HlcStamp // the stability frontier must not go back (per process)
  epochKey: string | null // the epoch this process last ran in
  transports: Array<{ readonly net: SimulatedNetwork; readonly rank: number }>
}

interface ClientRequest {
  readonly key: string
  readonly machine: SimMachine
  readonly incarnation: number
}

const BASE_US = 1_700_000_000_000_000
const CLOCK_SKEW_US = 1700 // member clocks are skewed by a few ms, as real ones are
// Network, disk and runtime cadences, in virtual ms. The runtime's decisions do not depend on
// them; they set how much virtual time (and so CPU) a schedule costs (production's are 10×).
const DELAY_MS_MIN = 1
const DELAY_MS_MAX = 8
const HEARTBEAT_INTERVAL_MS = 20
const SUSPECT_TIMEOUT_MS = 100
const CONNECT_TIMEOUT_MS = 300 // also the bound on a stalled transfer or view start
const SIM_TIMING: MemberTiming = {
  tickMs: 10,
  recoveryPollMs: 30,
  recoveryGraceMs: 200,
  joinAskMs: 100,
  peerRequestTimeoutMs: 150,
  planPollMs: 20,
  holdWhileRecoveringMs: 500,
  catchUpWaitMaxMs: 100,
}
const DISK_WRITE_MS: readonly [number, number] = [0, 1]
const DISK_SYNC_MS: readonly [number, number] = [1, 3]
const INDEX_MS: readonly [number, number] = [0, 1]
const SMALL_WRITE_BYTES = 300 // travels inside its record (inline)
const MEDIUM_WRITE_BYTES = 6000 // ordered on its own, on the small-message channel
const LARGE_WRITE_BYTES = 12_000 // above the 10 KiB small-message slot: RDMC
const WRITE_OFFSET_STRIDE = 16_384 // every write at its own offset: its record names it
const STEPS_MAX = 2_000_000

export class GroupSim {
  readonly machines: SimMachine[]
  readonly violations: string[] = []
  /** Acknowledged writes: record key -> the stamp the client was told. */
  readonly acked = new Map<string, HlcStamp>()
  /** The delivery order every member's log must be a prefix of. */
  readonly canonical: LogRecord[] = []
  /** Every epoch that ran, by its plan (in the order they first ran). */
  readonly epochs: EpochPlan[] = []
  readonly scheduler = new Scheduler()
  private readonly options: GroupSimOptions
  private readonly config: GroupConfig
  private readonly prng: Prng // workload and faults
  private readonly netSeeds: Prng
  private readonly peerDelays: Prng
  private readonly tears: Prng
  private readonly networks = new Map<string, { readonly net: SimulatedNetwork; readonly plan: EpochPlan }>()
  private readonly canonicalIndex = new Map<string, number>()
  private readonly viewsById = new Map<number, string>()
  private readonly epochLogs = new Map<string, string>() // plan key -> the log its first running member started with
  private readonly stableClaims: Array<{ id: number; stamp: HlcStamp; count: number }> = []
  private maxStableClaim: HlcStamp = 0n
  private readonly pending = new Set<ClientRequest>()
  private partitioned: ReadonlySet<number> = new Set() // member ids cut off from the others
  private faultsOver = false
  private stepsDone = 0
  private submitNext = 1
  private writeNext = 0
  private dataIno: number | null = null // the file writes go to, once its creation is acknowledged
  private creatingDataFile = false

  constructor(options: GroupSimOptions) {
    this.options = options
    const root = new Prng(options.seed)
    this.prng = root.fork()
    this.netSeeds = root.fork()
    this.peerDelays = root.fork()
    this.tears = root.fork()
    const diskSeeds = root.fork()
    const slowId = options.slowDiskSyncMsMax !== undefined ? this.prng.int(0, options.memberCount - 1) : -1
    this.machines = Array.from({ length: options.memberCount }, (_, id) => ({
      id,
      disk: new SimDisk({ scheduler: this.scheduler, prng: diskSeeds.fork(), writeMs: id === slowId ? [1, 5] : DISK_WRITE_MS, syncMs: id === slowId ? [5, options.slowDiskSyncMsMax!] : DISK_SYNC_MS, indexMs: INDEX_MS }),
      incarnation: 0,
      up: false,
      member: null,
      clock: null,
      log: [],
      lastStable: 0n,
      epochKey: null,
      transports: [],
    }))
    this.config = simConfig(options.memberCount)
  }

  get nowMs(): number {
    return this.scheduler.nowMs
  }

  get steps(): number {
    return this.stepsDone
  }

  /** Runs the workload and the faults, then lets the group converge; returns the violations found. */
  async run(): Promise<string[]> {
    for (const machine of this.machines) this.start(machine)
    this.scheduleWorkload()
    this.scheduleFaults()
    this.scheduler.at(this.options.virtualMs, () => this.endFaults())
    const deadlineMs = this.options.virtualMs + (this.options.settleMsMax ?? 3000)
    while (this.violations.length === 0) {
      if (this.faultsOver && this.converged()) break
      if (this.nowMs >= deadlineMs) break
      if (!this.scheduler.step()) break
      await yieldToEventLoop() // the members' promise reactions run now, at this virtual instant
      this.checkStep()
      if (++this.stepsDone > STEPS_MAX) this.violation(`more than ${STEPS_MAX} steps: livelock`)
    }
    await this.checkEnd()
    return this.violations
  }

  private trace(line: string): void {
    this.options.trace?.(`${this.nowMs} ms: ${line}`)
  }

  // ---- processes ----

  /** A process starts on `machine`: its member opens its store, reports what it holds, and recovers. */
  private start(machine: SimMachine): void {
    machine.up = true
    machine.lastStable = 0n
    machine.epochKey = null
    machine.transports = []
    const incarnation = machine.incarnation
    const clock = (machine.clock = new SimClock(this.scheduler, BASE_US, machine.id * CLOCK_SKEW_US))
    const alive = (): boolean => machine.incarnation === incarnation
    this.trace(`start ${machine.id} (incarnation ${incarnation})`)
    const opening = Member.open(this.config, machine.id, {
      log: (line) => {
        if (!alive()) return
        this.trace(line)
        if (line.includes(': fatal: ')) this.violation(line)
      },
      env: {
        clock,
        disk: machine.disk,
        newTransport: (plan) => this.transportFor(machine, plan),
        peers: new SimPeers(this.peerWorld, machine.id, clock),
        instance: `i${incarnation}`,
        exit: (code) => {
          if (alive()) this.violation(`member ${machine.id} failed (exit ${code}): a fatal error in the runtime`)
        },
        timing: SIM_TIMING,
        ...(this.options.transferBatchBytes !== undefined ? { transferBatchBytes: this.options.transferBatchBytes } : {}),
        observer: {
          recordLogged: (stamp, mutation) => {
            if (alive()) this.append(machine, { stamp, key: recordKey(mutation) })
          },
          logDiscarded: () => {
            if (!alive()) return
            this.trace(`${machine.id} discards its log (${machine.log.length} records)`)
            machine.log = []
          },
        },
      },
    })
    void opening.then(
      async (member) => {
        if (!alive()) return
        machine.log = await readLog(member.store)
        if (!alive()) return
        machine.log.forEach((record, position) => this.place(machine, position, record))
        machine.member = member
        member.views.subscribe((view) => {
          if (alive() && view.phase === 'running') this.running(machine, member)
        })
        void member.recover()
      },
      (err: Error) => {
        if (alive()) this.violation(`member ${machine.id} could not open its store: ${err.stack ?? err.message}`)
      },
    )
  }

  /** The process on `machine` dies: no code of it runs again; its disk keeps what a crash (or a power loss) leaves. */
  crash(machine: SimMachine, powerLoss: boolean): void {
    if (!machine.up || this.faultsOver) return
    this.trace(`${powerLoss ? 'power loss' : 'crash'} ${machine.id} (${machine.member?.phase ?? 'opening'})`)
    this.kill(machine, powerLoss)
    if (this.options.restartMsMax !== undefined) {
      const delayMs = this.prng.int(this.options.restartMsMin ?? 0, this.options.restartMsMax)
      this.scheduler.after(delayMs, () => this.restart(machine))
    }
  }

  private kill(machine: SimMachine, powerLoss: boolean): void {
    machine.clock?.kill()
    for (const { net, rank } of machine.transports) net.crash(rank)
    if (powerLoss) machine.disk.powerLoss(this.tears)
    else machine.disk.crash()
    machine.incarnation++
    machine.up = false
    machine.member = null
    machine.clock = null
    machine.transports = []
    for (const request of this.pending) if (request.machine === machine) this.pending.delete(request) // its clients' requests die with it
  }

  private restart(machine: SimMachine): void {
    if (machine.up) return
    this.start(machine)
  }

  /** The transport of `plan` for `machine`: every member of one plan gets a rank of one network. */
  private transportFor(machine: SimMachine, plan: EpochPlan): SimulatedNetwork['transports'][number] {
    const key = planKey(plan)
    const rank = plan.memberIds.indexOf(machine.id)
    let net = this.networks.get(key)?.net
    if (net === undefined || net.status(rank) !== 'created') {
      // A rank taken already: an earlier process of this machine started this plan and died;
      // the members still waiting on that network time out and recover.
      net = new SimulatedNetwork({
        seed: this.netSeeds.int(0, 0x7fff_ffff),
        memberCount: plan.memberIds.length,
        schema: groupSchema(plan.memberIds.length),
        delayMsMin: DELAY_MS_MIN,
        delayMsMax: DELAY_MS_MAX,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        suspectTimeoutMs: SUSPECT_TIMEOUT_MS,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        slowPacketChance: this.options.slowPacketChance ?? 0,
        slowPacketDelayMsMax: 60,
        traceEnabled: false,
        scheduler: this.scheduler,
      })
      this.networks.set(key, { net, plan })
      this.applyPartition(plan, net)
    }
    machine.transports.push({ net, rank })
    return net.transport(rank)
  }

  private readonly peerWorld = {
    service: (id: number): Service<typeof peerMethods> | null => this.machines[id]!.member?.peerService ?? null,
    reachable: (fromId: number, toId: number): boolean => this.partitioned.has(fromId) === this.partitioned.has(toId),
    delayMs: (): number => this.peerDelays.int(DELAY_MS_MIN, DELAY_MS_MAX),
    handlerBug: (method: string, err: unknown): void => this.violation(`a ${method} handler threw a non-FffsError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
  }

  // ---- workload and faults ----

  private scheduleWorkload(): void {
    const { virtualMs, submitsPerMs, memberCount } = this.options
    const count = Math.round(virtualMs * submitsPerMs)
    for (let i = 0; i < count; i++) {
      const atMs = this.prng.int(0, virtualMs)
      const id = this.prng.int(0, memberCount - 1)
      const write = this.prng.chance(0.5)
      const large = this.prng.chance(this.options.largeChance)
      this.scheduler.at(atMs, () => this.submit(this.machines[id]!, write, large))
    }
  }

  private scheduleFaults(): void {
    const { memberCount: n, virtualMs } = this.options
    const minority = Math.floor((n - 1) / 2)
    const powerLoss = (): boolean => this.prng.chance(this.options.powerLossChance ?? 0)
    for (let i = 0; i < this.options.crashes; i++) {
      this.scheduler.at(this.prng.int(0, virtualMs), () => {
        // Any member, while fewer than a minority's worth are down: a majority can always go on.
        if (this.machines.filter((m) => !m.up).length >= minority) return
        this.crash(this.prng.pick(this.machines.filter((m) => m.up)), powerLoss())
      })
    }
    for (let i = 0; i < (this.options.totalCrashes ?? 0); i++) {
      const atMs = this.prng.int(0, Math.floor((virtualMs * 2) / 3)) // all of it before the faults stop
      for (const machine of this.machines) this.scheduler.at(atMs + this.prng.int(0, 3), () => this.crash(machine, powerLoss()))
    }
    const partitions = this.options.partitions ?? (this.options.partition ? 1 : 0)
    for (let i = 0; i < partitions && minority > 0; i++) {
      const side = new Set(this.prng.shuffle(this.machines.map((m) => m.id)).slice(0, this.prng.int(1, minority)))
      const fromMs = this.prng.int(0, virtualMs)
      const lengthMs = this.prng.int(10, 400)
      this.scheduler.at(fromMs, () => this.setPartition(side))
      this.scheduler.at(Math.min(fromMs + lengthMs, virtualMs), () => {
        if (this.partitioned === side) this.setPartition(new Set()) // a later split replaced it: that one heals itself
      })
    }
  }

  private endFaults(): void {
    this.setPartition(new Set())
    this.faultsOver = true
    if (this.options.noFinalRestart !== true) for (const machine of this.machines) if (!machine.up) this.restart(machine)
    this.trace('faults end')
  }

  private setPartition(side: ReadonlySet<number>): void {
    this.partitioned = side
    this.trace(side.size === 0 ? 'heal' : `partition [${[...side].join(',')}]`)
    for (const { net, plan } of this.networks.values()) this.applyPartition(plan, net)
  }

  private applyPartition(plan: EpochPlan, net: SimulatedNetwork): void {
    const ranks = plan.memberIds.flatMap((id, rank) => (this.partitioned.has(id) ? [rank] : []))
    if (ranks.length === 0 || ranks.length === plan.memberIds.length) net.heal()
    else net.partition(ranks)
  }

  /** A client of `machine` submits a new file (a small record) or a write to the data file. */
  submit(machine: SimMachine, write: boolean, large: boolean): void {
    const member = machine.member
    if (member === null) return // the client cannot reach it
    const id = `${machine.id}.${machine.incarnation}.${this.submitNext++}`
    if (this.dataIno === null && !this.creatingDataFile) {
      this.creatingDataFile = true
      // A refused attempt may still have been ordered: each attempt is a file of its own name.
      this.request(machine, `data${id}`, mknod(`data${id}`), (ino) => (this.dataIno = ino ?? null), () => (this.creatingDataFile = false))
      return
    }
    if (!write || this.dataIno === null) {
      this.request(machine, `n${id}`, mknod(`n${id}`))
      return
    }
    const offset = this.writeNext++ * WRITE_OFFSET_STRIDE
    const sizeBytes = large ? LARGE_WRITE_BYTES : this.prng.chance(0.5) ? SMALL_WRITE_BYTES : MEDIUM_WRITE_BYTES
    const { ref, written } = member.client.appendData(this.dataIno, Buffer.alloc(sizeBytes, offset & 255))
    const mutation: Mutation = { type: 'version', ino: this.dataIno, ops: [{ op: 'write', offset, sizeBytes, data: ref }] }
    // As the server does (server.ts): the version is submitted once its bytes are ordered.
    this.request(machine, `v${offset}`, mutation, undefined, undefined, written)
  }

  private request(machine: SimMachine, key: string, mutation: Mutation, onAck?: (ino: number | undefined) => void, onFail?: () => void, after: Promise<void> = Promise.resolve()): void {
    const member = machine.member!
    const request: ClientRequest = { key, machine, incarnation: machine.incarnation }
    this.pending.add(request)
    after
      .then(() => member.client.submit(mutation))
      .then(
        ({ stamp, ino }) => {
          if (!this.pending.delete(request)) return // its member died: nobody heard the answer
          const before = this.acked.get(key)
          if (before !== undefined && before !== stamp) this.violation(`${key} acknowledged at ${before} and at ${stamp}`)
          this.acked.set(key, stamp)
          onAck?.(ino)
        },
        () => {
          // Refused or failed (a member out of a group, a log discarded): never acknowledged.
          this.pending.delete(request)
          onFail?.()
        },
      )
  }

  // ---- what members report ----

  /** `machine`'s member runs in an epoch: its members must start it holding identical logs up to its start. */
  private running(machine: SimMachine, member: Member): void {
    const plan = member.epochPlan
    if (plan === null) return
    const view = member.views.current()
    this.recordView(view.vid, view.memberIds)
    const key = planKey(plan)
    if (machine.epochKey === key) return // a later view of the same epoch
    machine.epochKey = key
    const start = BigInt(plan.startStamp)
    const prefix = machine.log.filter((r) => r.stamp <= start)
    const text = prefix.map((r) => `${r.key}@${r.stamp}`).join(' ')
    const first = this.epochLogs.get(key)
    if (first === undefined) {
      this.epochLogs.set(key, text)
      this.epochs.push(plan)
      this.trace(`epoch ${this.epochs.length - 1} runs ${key}`)
      // The epoch's log is the order up to its start (a total restart may have gone back to records the order had dropped since).
      prefix.forEach((record, position) => {
        if (!sameRecord(this.canonical[position], record)) this.place(machine, position, record)
      })
    } else if (first !== text) {
      this.violation(`member ${machine.id} starts epoch ${key} holding ${prefix.length} records that differ from what another member of it started with`)
    }
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

  /** A member logged a record: its log must stay a prefix of the one global order. */
  private append(machine: SimMachine, record: LogRecord): void {
    const position = machine.log.length
    const previous = machine.log[position - 1]
    if (previous !== undefined && record.stamp <= previous.stamp) this.violation(`member ${machine.id}: stamp ${record.stamp} of ${record.key} not above ${previous.stamp} (#${position})`)
    this.place(machine, position, record)
    machine.log.push(record)
  }

  /** `machine` holds `record` at `position` of its log: the order must have it there. */
  private place(machine: SimMachine, position: number, record: LogRecord): void {
    const canonical = this.canonical[position]
    if (canonical !== undefined && !sameRecord(canonical, record)) this.reorder(machine, position, record)
    if (position > this.canonical.length) this.violation(`member ${machine.id} holds #${position} with a gap (the order has ${this.canonical.length})`)
    if (position === this.canonical.length) {
      const twice = this.canonicalIndex.get(record.key)
      if (twice !== undefined) this.violation(`${record.key} in the order twice: #${twice} and #${position}`)
      if (record.stamp <= this.maxStableClaim) this.violation(`${record.key}@${record.stamp} (#${position}) lands at or below a stamp already called stable (${this.maxStableClaim})`)
      this.canonical.push(record)
      this.canonicalIndex.set(record.key, position)
    }
  }

  /** The order holds another record at `position` than `machine` does: drop the order's from there
   * on if that is allowed (never acknowledged, never inside a stable cut, held by no member in a
   * running epoch: lost before it was durable anywhere, or only at members absent from a total
   * restart that went on without it, which discard it before they run again), else a violation. */
  private reorder(machine: SimMachine, position: number, record: LogRecord): void {
    const dropped = this.canonical.slice(position)
    const first = dropped[0]!
    const holders = this.machines.filter((m) => m !== machine && dropped.some((r, i) => sameRecord(m.log[position + i], r)))
    const running = holders.find((m) => m.member?.phase === 'running')
    const acked = dropped.find((r) => this.acked.get(r.key) === r.stamp)
    const claim = this.stableClaims.find((c) => c.count > position)
    const here = `member ${machine.id} holds #${position} ${record.key}@${record.stamp}, the order ${first.key}@${first.stamp}`
    if (running !== undefined) {
      this.violation(`${here}, held by member ${running.id}, running`)
    } else if (acked !== undefined) {
      this.violation(`${here}: acknowledged ${acked.key}@${acked.stamp} would be lost`)
    } else if (claim !== undefined) {
      this.violation(`${here}: member ${claim.id} called ${claim.stamp} stable with ${claim.count} records`)
    } else {
      this.trace(`order changes at #${position}: ${first.key}@${first.stamp} and ${dropped.length - 1} after it dropped (held by ${holders.map((m) => m.id).join(', ') || 'nobody'}), ${record.key}@${record.stamp} from member ${machine.id}`)
      for (const lost of this.canonical.splice(position)) this.canonicalIndex.delete(lost.key)
    }
  }

  /** After every step: frontiers never go back; a stamp called stable freezes what is at or below it. */
  private checkStep(): void {
    for (const machine of this.machines) {
      const member = machine.member
      if (member === null) continue
      const stable = member.stableStamp()
      if (stable < machine.lastStable) this.violation(`member ${machine.id}: stability frontier went back from ${machine.lastStable} to ${stable}`)
      if (stable > machine.lastStable) {
        machine.lastStable = stable
        this.claimStable(machine, stable)
      }
    }
  }

  /** `machine` called everything at or below `stable` final: what it holds there now. */
  private claimStable(machine: SimMachine, stable: HlcStamp): void {
    this.stableClaims.push({ id: machine.id, stamp: stable, count: countAtOrBelow(machine.log, stable) })
    if (stable > this.maxStableClaim) this.maxStableClaim = stable
  }

  /** After the faults: one epoch, one view, every member in it, identical logs, durable, nothing pending. */
  private converged(): boolean {
    const first = this.machines[0]!.member
    const plan = first?.epochPlan
    if (first == null || plan == null || this.pending.size > 0) return false
    const view = first.views.current()
    if (view.memberIds.length !== this.machines.length) return false
    const length = this.machines[0]!.log.length
    for (const machine of this.machines) {
      const member = machine.member
      if (member === null || member.phase !== 'running' || member.epochPlan === null || planKey(member.epochPlan) !== planKey(plan)) return false
      const current = member.views.current()
      const core = member.status().core
      if (current.vid !== view.vid || machine.log.length !== length || core === null || core.persistedStamp !== core.deliveredStamp || core.globalPersistedStamp < core.deliveredStamp) return false
    }
    return true
  }

  /** The end-of-run invariants: the members converged; every machine then loses power, and every reopened store holds the order. */
  async checkEnd(): Promise<void> {
    const converged = this.options.noFinalRestart !== true && this.violations.length === 0 && this.converged()
    if (this.options.noFinalRestart !== true && this.violations.length === 0 && !converged) {
      const states = this.machines.map((m) => {
        const member = m.member
        const view = member?.views.current()
        return `${m.id}: ${member?.phase ?? (m.up ? 'opening' : 'down')}${view === undefined ? '' : ` view ${view.vid} [${view.memberIds.join(',')}]`} log ${m.log.length}`
      })
      this.violation(`did not converge after the faults stopped: ${states.join('; ')}; ${this.pending.size} requests unanswered`)
    }
    for (const machine of this.machines) if (machine.up) this.kill(machine, true)
    if (this.violations.length > 0) return
    const held = await Promise.all(this.machines.map((m) => runUntilSettled(this.scheduler, reopenLog(m.disk, m.id))))
    const followed = held.map((log) => {
      let count = 0
      while (count < log.length && sameRecord(log[count], this.canonical[count])) count++
      return count
    })
    held.forEach((log, id) => {
      if (followed[id] !== log.length) this.violation(`member ${id}'s store holds ${log[followed[id]!]!.key}@${log[followed[id]!]!.stamp} at #${followed[id]}, the order ${this.canonical[followed[id]!]?.key ?? 'nothing'}`)
      else if (converged && log.length !== this.canonical.length) this.violation(`member ${id}'s store holds ${log.length} records after a power loss, the order ${this.canonical.length}`)
    })
    // What no store holds was lost before it was durable anywhere (never acknowledged, never
    // stable: the checks below say so if it was).
    for (const lost of this.canonical.splice(Math.max(...followed))) this.canonicalIndex.delete(lost.key)
    for (const claim of this.stableClaims) {
      const count = countAtOrBelow(this.canonical, claim.stamp)
      if (count !== claim.count) {
        this.violation(`member ${claim.id} called ${claim.stamp} stable with ${claim.count} records at or below it; the order has ${count}`)
        break
      }
    }
    for (const [key, stamp] of this.acked) {
      const at = this.canonicalIndex.get(key)
      if (at === undefined || !followed.some((count) => count > at)) this.violation(`acknowledged ${key}@${stamp} was lost`)
      else if (this.canonical[at]!.stamp !== stamp) this.violation(`acknowledged ${key} at ${stamp}, ordered at ${this.canonical[at]!.stamp}`)
    }
  }
}

function mknod(name: string): Mutation {
  return { type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 }
}

/** What identifies a record's request: a new file's name, or a write's offset (each write has its own). */
export function recordKey(mutation: Mutation): string {
  if (mutation.type === 'mknod') return mutation.name
  if (mutation.type === 'version') {
    const op = mutation.ops[0]
    return op?.op === 'write' ? `v${op.offset}` : `version of ${mutation.ino}`
  }
  return mutation.type
}

function planKey(plan: EpochPlan): string {
  return `${plan.vid} ${JSON.stringify(plan)}`
}

function sameRecord(a: LogRecord | undefined, b: LogRecord | undefined): boolean {
  return a !== undefined && b !== undefined && a.key === b.key && a.stamp === b.stamp
}

function countAtOrBelow(log: readonly LogRecord[], stamp: HlcStamp): number {
  let low = 0
  let high = log.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (log[mid]!.stamp <= stamp) low = mid + 1
    else high = mid
  }
  return low
}

/** Every record a store holds, in log order, read through the store's own index. */
async function readLog(store: Store): Promise<LogRecord[]> {
  const log: LogRecord[] = []
  for (let after = 0n; ; ) {
    const next = await store.records.after(after, HLC_MAX, 1024)
    for (const at of next) {
      const { stamp, mutation } = await store.readRecord(at)
      log.push({ stamp, key: recordKey(mutation) })
      after = stamp
    }
    if (next.length < 1024) return log
  }
}

/** Opens the store a machine's disk holds (as a restarted member would) and reads its log. */
async function reopenLog(disk: SimDisk, id: number): Promise<LogRecord[]> {
  const store = new Store(memberDataDir(id), { disk })
  await store.open()
  const log = await readLog(store)
  await store.close()
  return log
}

function memberDataDir(id: number): string {
  return path.posix.join('/', `m${id}`)
}

/** A group config for the simulation: every member on its own simulated machine. */
function simConfig(memberCount: number): GroupConfig {
  return {
    version: 1,
    name: 'sim',
    path: '/sim/config.json',
    members: Array.from({ length: memberCount }, (_, id) => ({ id, host: `m${id}`, transportPort: 1, clientPort: 2, dataDir: memberDataDir(id) })),
    layout: { shards: 1, replicas: memberCount },
    transport: { provider: 'sim', heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, suspectTimeoutMs: SUSPECT_TIMEOUT_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS, latencySpinUs: 0 },
    clients: { heartbeatIntervalMs: 500, deadPeerMs: 5000, requestTimeoutMs: 30_000, handshakeTimeoutMs: 5000 },
    time: { sensorLagMaxMs: 5000, clockSkewMaxMs: 50 },
    keyFile: '/sim/cluster.key',
    key: Buffer.alloc(32),
  }
}

// ---- the scenarios the tests and the soak run share ----

export interface GroupSimScenario {
  readonly name: string
  readonly firstSeed: number // seeds firstSeed, firstSeed + 1, ...: scenarios never share a seed
  readonly options: Omit<GroupSimOptions, 'seed'>
}

export const GROUP_SIM_SCENARIOS: readonly GroupSimScenario[] = [
  { name: 'crash-restart-3', firstSeed: 100_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'crash-restart-5', firstSeed: 200_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 3, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'partition-3', firstSeed: 300_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1, powerLossChance: 0.5 } },
  { name: 'partitions-5', firstSeed: 700_000, options: { memberCount: 5, virtualMs: 400, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: true, partitions: 3, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'total-restart-3', firstSeed: 500_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 0.5 } },
  { name: 'total-restart-5', firstSeed: 600_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 0.5 } },
  // A member down for most of the run while writes go on, then back: a long missing suffix,
  // fetched in many small batches (before the join and at the epoch's start), on a slow disk.
  { name: 'long-suffix-3', firstSeed: 800_000, options: { memberCount: 3, virtualMs: 500, submitsPerMs: 0.4, crashes: 1, restartMsMin: 250, restartMsMax: 400, partition: false, largeChance: 0.2, powerLossChance: 0.5, slowDiskSyncMsMax: 40, transferBatchBytes: 16 * 1024 } },
  { name: 'slow-disks-3', firstSeed: 900_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1, powerLossChance: 0.5, slowDiskSyncMsMax: 80, transferBatchBytes: 16 * 1024 } },
]

export function scenarioNamed(name: string): GroupSimScenario {
  const scenario = GROUP_SIM_SCENARIOS.find((s) => s.name === name)
  if (scenario === undefined) throw new RangeError(`no simulation scenario '${name}' (${GROUP_SIM_SCENARIOS.map((s) => s.name).join(', ')})`)
  return scenario
}

export interface ScheduleResult {
  readonly violations: string[]
  readonly steps: number
  readonly virtualMs: number
  readonly epochs: number
}

/** Runs one schedule; an exception in the runtime or the harness is a violation too (it names the seed). */
export async function runSchedule(scenario: GroupSimScenario, seed: number, trace?: (line: string) => void): Promise<ScheduleResult> {
  const sim = new GroupSim({ ...scenario.options, seed, ...(trace !== undefined ? { trace } : {}) })
  let violations: string[]
  try {
    violations = await sim.run()
  } catch (err) {
    violations = [`seed ${seed} at ${sim.nowMs} ms: threw ${(err as Error).stack ?? String(err)}`]
  }
  return { violations, steps: sim.steps, virtualMs: sim.nowMs, epochs: sim.epochs.length }
}

/** The command that replays one schedule of a scenario, with every member's log. */
export function replayCommand(scenario: GroupSimScenario, seed: number): string {
  return `FFFS_SIM_SCENARIO=${scenario.name} FFFS_SEED=${seed} FFFS_SIM_TRACE=1 npx vitest run test/replication/groupSim.test.ts`
}
