// A simulated world for a replication group running the production member runtime
// (src/replication/member.ts and its parts: the epoch machine, the core, delivery, requests,
// state transfer, the store and its log): one virtual clock, one simulated network per epoch
// (simulatedNetwork.ts), the member-to-member requests through the world (simPeers.ts), and a
// simulated disk per machine (simDisk.ts: latencies, slow disks, process crashes that keep what
// was written, power losses that keep only what was synced and tear what was not). Every
// choice comes from the seed. The random schedules (groupSim.ts) and the scripted transcripts
// (transcript.ts) drive it.
//
// Nothing here decides what a member does: members recover, form groups, join, transfer
// state, change views and order writes by their own code. The world only starts and kills
// processes, cuts links, submits writes through each member's ReplicaClient, and watches:
// - every record a member logs (its observer), against one global order;
// - what each member holds on its disk when it restarts (read back through its store);
// - the views members run in, their stability frontiers, and the writes acknowledged.
//
// Invariants, after every step and at the end (`checkEnd`):
// - one global delivery order: every member's log is a prefix of the canonical order. A
//   position may change only if the records it drops were never acknowledged, lie above every
//   stamp called stable, and are held by no member in a running epoch (a total restart can go
//   on without records delivered and persisted only by members absent from it); a member still
//   holding them must discard them before it runs again (checked when an epoch starts: its
//   members hold identical logs up to the plan's start);
// - stamps strictly increase along a log; no record is in the order twice;
// - no two views that ran with the same id and different members;
// - a member's stability frontier never goes back;
// - frozen cuts: once a member called a stamp stable with k records at or below it, the order
//   has exactly those k records at or below it, forever;
// - no member fails (a fatal error is a bug) and no request handler throws a non-FffsError;
// - at the end: every machine loses power, and every store, reopened, holds a prefix of the
//   order; every acknowledged write that must survive is in the order at its acknowledged
//   stamp, and held by some store (by every store once the group converged).
// Which acknowledged writes must survive depends on the group's durability: with
// 'sync-on-close', all of them (each was synced at every member of its view); with
// 'write-on-close', each one the client then saw synced (its fsync returned), and each one some
// machine still holds in its files (its member reported it written, and that machine has not
// lost power since: a killed process leaves its writes in the page cache).

import path from 'node:path'
import type { Durability, GroupConfig } from '../replication/config.js'
import { COLUMN, groupSchema } from '../replication/core/schema.js'
import { Member, type MemberObserver, type MemberTiming } from '../replication/member.js'
import { peerMethods, type Service } from '../replication/protocol.js'
import type { EpochPlan } from '../replication/recovery.js'
import { ROOT_INO, type Mutation } from '../store/records.js'
import { Store } from '../store/store.js'
import { HLC_MAX, hlcPhysicalUs, hlcLogical, type HlcStamp } from '../temporal/hlc.js'
import { Prng } from './prng.js'
import { runUntilSettled, Scheduler, yieldToEventLoop } from './scheduler.js'
import { SimClock } from './simClock.js'
import { SimDisk } from './simDisk.js'
import { SimPeers } from './simPeers.js'
import { SimulatedNetwork } from './simulatedNetwork.js'

export interface SimWorldOptions {
  readonly seed: number
  readonly memberCount: number
  /** The group's durability (GroupConfig.durability); default 'write-on-close'. */
  readonly durability?: Durability
  /** 'write-on-close': the fraction of acknowledged writes the client then fsyncs (waits for them synced everywhere). */
  readonly fsyncChance?: number
  readonly slowPacketChance?: number
  /** One member (drawn) has a slow disk: syncs take up to this long (virtual ms). */
  readonly slowDiskSyncMsMax?: number
  /** Every member's disk is slow (as `slowDiskSyncMsMax` makes one): writes stay unsynced everywhere long after they are acknowledged. */
  readonly allDisksSlow?: boolean
  /** Bytes of file data per state-transfer batch (small: a transfer takes many batches). */
  readonly transferBatchBytes?: number
  /** Receives one line per world event and every line the members log. */
  readonly trace?: (line: string) => void
  /** Told what each member does (transcripts print it). */
  readonly observe?: (id: number) => Pick<MemberObserver, 'epochAction' | 'coreAction'>
  /** A request of a client was answered: acknowledged at `stamp`, or refused with `error`. */
  readonly answered?: (id: number, key: string, outcome: { readonly stamp: HlcStamp } | { readonly error: Error }) => void
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
  /** Keys of the records this machine's files hold since its last power loss: logged and reported written (or found at open). */
  written: Set<string>
  writtenCount: number // how many records of `log` (from its start) are in `written`
  epochKey: string | null // the epoch this process last ran in
  transports: Array<{ readonly net: SimulatedNetwork; readonly rank: number }>
}

/** What a client writes: a new file (a small record), or bytes of the data file (inline, ordered on their own, or by RDMC). */
export type WriteKind = 'file' | 'small' | 'medium' | 'large'

interface ClientRequest {
  readonly key: string
  readonly machine: SimMachine
}

/** The wall clock at virtual time 0 (stamps print relative to it: `formatStamp`). */
export const BASE_US = 1_700_000_000_000_000
const CLOCK_SKEW_US = 1700 // member clocks are skewed by a few ms, as real ones are
// Network, disk and runtime cadences, in virtual ms. The runtime's decisions do not depend on
// them; they set how much virtual time (and so CPU) a schedule costs (production's are 10×).
const DELAY_MS_MIN = 1
const DELAY_MS_MAX = 8
const HEARTBEAT_INTERVAL_MS = 20
export const SUSPECT_TIMEOUT_MS = 100
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
const WRITE_BYTES: Readonly<Record<Exclude<WriteKind, 'file'>, number>> = {
  small: 300, // travels inside its record (inline)
  medium: 6000, // ordered on its own, on the small-message channel
  large: 12_000, // above the 10 KiB small-message slot: RDMC
}
const WRITE_OFFSET_STRIDE = 16_384 // every write at its own offset: its record names it
const STEPS_MAX = 2_000_000
const FSYNC_WAIT_MAX_MS = 1_000
const FSYNC_SEED_SALT = 0xf5_ec

export class SimWorld {
  readonly machines: SimMachine[]
  readonly violations: string[] = []
  /** Acknowledged writes: record key -> the stamp the client was told. */
  readonly acked = new Map<string, HlcStamp>()
  /** Acknowledged writes whose fsync returned (write-on-close). */
  readonly synced = new Set<string>()
  /** The delivery order every member's log must be a prefix of. */
  readonly canonical: LogRecord[] = []
  /** Every epoch that ran, by its plan (in the order they first ran). */
  readonly epochs: EpochPlan[] = []
  readonly scheduler = new Scheduler()
  private readonly options: SimWorldOptions
  private readonly config: GroupConfig
  private readonly netSeeds: Prng
  private readonly peerDelays: Prng
  private readonly tears: Prng
  private readonly fsyncDraws: Prng
  private readonly networks = new Map<string, { readonly net: SimulatedNetwork; readonly plan: EpochPlan }>()
  private readonly canonicalIndex = new Map<string, number>()
  private readonly viewsById = new Map<number, string>()
  private readonly epochLogs = new Map<string, string>() // plan key -> the log its first running member started with
  private readonly stableClaims: Array<{ id: number; stamp: HlcStamp; count: number }> = []
  private maxStableClaim: HlcStamp = 0n
  private readonly pending = new Set<ClientRequest>()
  private partitioned: ReadonlySet<number> = new Set() // member ids cut off from the others
  private stepsDone = 0
  private ended = false // checkEnd began: no process starts again
  private submitNext = 1
  private writeNext = 0
  private dataIno: number | null = null // the file writes go to, once its creation is acknowledged
  private creatingDataFile = false

  constructor(options: SimWorldOptions) {
    this.options = options
    const root = new Prng(options.seed)
    this.netSeeds = root.fork()
    this.peerDelays = root.fork()
    this.tears = root.fork()
    const diskSeeds = root.fork()
    this.fsyncDraws = new Prng(options.seed ^ FSYNC_SEED_SALT) // its own stream: the draws above stay as they were
    const slowId = options.slowDiskSyncMsMax !== undefined ? root.int(0, options.memberCount - 1) : -1
    const slow = (id: number): boolean => id === slowId || (options.allDisksSlow === true && slowId >= 0)
    this.machines = Array.from({ length: options.memberCount }, (_, id) => ({
      id,
      disk: new SimDisk({ scheduler: this.scheduler, prng: diskSeeds.fork(), writeMs: slow(id) ? [1, 5] : DISK_WRITE_MS, syncMs: slow(id) ? [5, options.slowDiskSyncMsMax!] : DISK_SYNC_MS, indexMs: INDEX_MS }),
      incarnation: 0,
      up: false,
      member: null,
      clock: null,
      log: [],
      lastStable: 0n,
      written: new Set<string>(),
      writtenCount: 0,
      epochKey: null,
      transports: [],
    }))
    this.config = simConfig(options.memberCount, options.durability ?? 'write-on-close')
  }

  get nowMs(): number {
    return this.scheduler.nowMs
  }

  get steps(): number {
    return this.stepsDone
  }

  /** Client requests not answered yet (by processes still up). */
  get pendingRequests(): number {
    return this.pending.size
  }

  /** Runs one instant of the world; false when nothing is scheduled. */
  async step(): Promise<boolean> {
    if (!this.scheduler.step()) return false
    await yieldToEventLoop() // the members' promise reactions run now, at this virtual instant
    this.checkStep()
    if (++this.stepsDone > STEPS_MAX) this.violation(`more than ${STEPS_MAX} steps: livelock`)
    return true
  }

  /** Steps until `condition` holds, a violation, or virtual time `untilMs`; returns whether it holds. */
  async runUntil(condition: () => boolean, untilMs: number): Promise<boolean> {
    await yieldToEventLoop() // what the caller just did may schedule the next events
    while (this.violations.length === 0 && !condition()) {
      const next = this.scheduler.nextEventMs
      if (next === undefined || next > untilMs) return condition()
      await this.step()
    }
    return condition()
  }

  trace(line: string): void {
    this.options.trace?.(`${this.nowMs} ms: ${line}`)
  }

  // ---- processes ----

  /** A process starts on machine `id`: its member opens its store, reports what it holds, and recovers. */
  start(id: number): void {
    const machine = this.machines[id]!
    if (machine.up || this.ended) return
    machine.up = true
    machine.lastStable = 0n
    machine.epochKey = null
    machine.transports = []
    const incarnation = machine.incarnation
    const clock = (machine.clock = new SimClock(this.scheduler, BASE_US, machine.id * CLOCK_SKEW_US))
    const alive = (): boolean => machine.incarnation === incarnation
    this.trace(`start ${machine.id} (incarnation ${incarnation})`)
    const watched = this.options.observe?.(machine.id)
    const opening = Member.open(this.config, machine.id, {
      log: (line) => {
        if (!alive()) return
        this.trace(line)
        if (line.includes(': fatal: ')) this.violation(line)
      },
      env: {
        clock,
        disk: machine.disk.forProcess(), // nothing a dead process calls takes effect
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
            machine.written.clear()
            machine.writtenCount = 0
          },
          ...(watched?.epochAction !== undefined ? { epochAction: (action) => alive() && watched.epochAction!(action) } : {}),
          coreAction: (action) => {
            if (!alive()) return
            if (action.kind === 'setU64' && action.column === COLUMN.writtenStamp) this.written(machine, action.value)
            watched?.coreAction?.(action)
          },
        },
      },
    })
    void opening.then(
      async (member) => {
        if (!alive()) return
        machine.log = await readLog(member.store)
        if (!alive()) return
        machine.written = new Set(machine.log.map((record) => record.key)) // in its files
        machine.writtenCount = machine.log.length
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

  /** The process on machine `id` dies: no code of it runs again; its disk keeps what a crash (or a power loss) leaves. */
  crash(id: number, powerLoss: boolean): void {
    const machine = this.machines[id]!
    if (!machine.up) return
    this.trace(`${powerLoss ? 'power loss' : 'crash'} ${machine.id} (${machine.member?.phase ?? 'opening'})`)
    machine.clock?.kill()
    for (const { net, rank } of machine.transports) net.crash(rank)
    if (powerLoss) {
      machine.disk.powerLoss(this.tears)
      machine.written.clear()
    } else {
      machine.disk.crash()
    }
    machine.incarnation++
    machine.up = false
    machine.member = null
    machine.clock = null
    machine.transports = []
    for (const request of this.pending) if (request.machine === machine) this.pending.delete(request) // its clients' requests die with it
  }

  /** Members on `side` can no longer reach the others (and back); empty: every link heals. */
  setPartition(side: ReadonlySet<number>): void {
    this.partitioned = side
    this.trace(side.size === 0 ? 'heal' : `partition [${[...side].join(',')}]`)
    for (const { net, plan } of this.networks.values()) this.applyPartition(plan, net)
  }

  private applyPartition(plan: EpochPlan, net: SimulatedNetwork): void {
    const ranks = plan.memberIds.flatMap((id, rank) => (this.partitioned.has(id) ? [rank] : []))
    if (ranks.length === 0 || ranks.length === plan.memberIds.length) net.heal()
    else net.partition(ranks)
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

  // ---- clients ----

  /** A client of member `id` submits a write; returns its record key, or null when the member cannot take it (down, or opening). */
  submit(id: number, kind: WriteKind): string | null {
    const machine = this.machines[id]!
    const member = machine.member
    if (member === null) return null // the client cannot reach it
    const requestId = `${machine.id}.${machine.incarnation}.${this.submitNext++}`
    if (kind !== 'file' && this.dataIno === null && !this.creatingDataFile) {
      // The first write creates the data file. A refused attempt may still have been ordered:
      // each attempt is a file of its own name.
      this.creatingDataFile = true
      const key = `data${requestId}`
      this.request(machine, key, mknod(key), (ino) => (this.dataIno = ino ?? null), () => (this.creatingDataFile = false))
      return key
    }
    if (kind === 'file' || this.dataIno === null) {
      const key = `n${requestId}`
      this.request(machine, key, mknod(key))
      return key
    }
    const offset = this.writeNext++ * WRITE_OFFSET_STRIDE
    const sizeBytes = WRITE_BYTES[kind]
    const { ref, written } = member.client.appendData(this.dataIno, Buffer.alloc(sizeBytes, offset & 255))
    const mutation: Mutation = { type: 'version', ino: this.dataIno, ops: [{ op: 'write', offset, sizeBytes, data: ref }] }
    // As the server does (server.ts): the version is submitted once its bytes are ordered.
    const key = `v${offset}`
    this.request(machine, key, mutation, undefined, undefined, written)
    return key
  }

  private request(machine: SimMachine, key: string, mutation: Mutation, onAck?: (ino: number | undefined) => void, onFail?: () => void, after: Promise<void> = Promise.resolve()): void {
    const member = machine.member!
    const request: ClientRequest = { key, machine }
    this.pending.add(request)
    after
      .then(() => member.client.submit(mutation))
      .then(
        ({ stamp, ino }) => {
          if (!this.pending.delete(request)) return // its member died: nobody heard the answer
          const before = this.acked.get(key)
          if (before !== undefined && before !== stamp) this.violation(`${key} acknowledged at ${before} and at ${stamp}`)
          this.acked.set(key, stamp)
          this.options.answered?.(machine.id, key, { stamp })
          onAck?.(ino)
          if (this.config.durability === 'write-on-close' && this.fsyncDraws.chance(this.options.fsyncChance ?? 0.5)) this.fsync(machine, member, key, stamp)
        },
        (error: Error) => {
          // Refused or failed (a member out of a group, a log discarded): never acknowledged.
          if (!this.pending.delete(request)) return
          this.options.answered?.(machine.id, key, { error })
          onFail?.()
        },
      )
  }

  /** The client fsyncs an acknowledged write: once that returns, the write must survive a total power loss. */
  private fsync(machine: SimMachine, member: Member, key: string, stamp: HlcStamp): void {
    const incarnation = machine.incarnation
    member.waitSynced(stamp, FSYNC_WAIT_MAX_MS).then(
      () => {
        if (machine.incarnation === incarnation) this.synced.add(key) // else its member died: nobody heard the answer
      },
      () => undefined, // not synced in time, or the member stopped: the fsync failed, nothing promised
    )
  }

  /** Whether the acknowledged write `key` must survive everything that happened so far. */
  private mustSurvive(key: string): boolean {
    if (this.config.durability === 'sync-on-close' || this.synced.has(key)) return true
    // Written at every member of its view when acknowledged: it survives while one machine still holds it.
    return this.machines.some((machine) => machine.written.has(key))
  }

  // ---- what members report ----

  /** `machine`'s member wrote every record of its log up to `stamp` to its files. */
  private written(machine: SimMachine, stamp: HlcStamp): void {
    while (machine.writtenCount < machine.log.length && machine.log[machine.writtenCount]!.stamp <= stamp) machine.written.add(machine.log[machine.writtenCount++]!.key)
  }

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

  violation(text: string): void {
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
    const acked = dropped.find((r) => this.acked.get(r.key) === r.stamp && this.mustSurvive(r.key))
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
        this.stableClaims.push({ id: machine.id, stamp: stable, count: countAtOrBelow(machine.log, stable) })
        if (stable > this.maxStableClaim) this.maxStableClaim = stable
      }
    }
  }

  /** One epoch, one view, every member in it, identical logs, durable, no request unanswered. */
  converged(): boolean {
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

  /** The end: every machine loses power, and every store, reopened, holds the order (all of it when `converged`). */
  async checkEnd(converged: boolean): Promise<void> {
    // Decided before the power goes (once converged, what a member still held is synced everywhere: see `converged`).
    const mustSurvive = [...this.acked].filter(([key]) => this.mustSurvive(key))
    // No process starts again: a restart still scheduled would open a store the check is reading.
    this.ended = true
    for (const machine of this.machines) if (machine.up) this.crash(machine.id, true)
    if (this.violations.length > 0) return
    const held = await Promise.all(this.machines.map((m) => runUntilSettled(this.scheduler, reopenLog(m.disk, m.id))))
    const followed = held.map((log) => {
      let count = 0
      while (count < log.length && sameRecord(log[count], this.canonical[count])) count++
      return count
    })
    // What no store holds was lost before it was durable anywhere (never acknowledged, never
    // stable: the checks below say so if it was).
    for (const lost of this.canonical.splice(Math.max(...followed))) this.canonicalIndex.delete(lost.key)
    held.forEach((log, id) => {
      if (followed[id] !== log.length) this.violation(`member ${id}'s store holds ${log[followed[id]!]!.key}@${log[followed[id]!]!.stamp} at #${followed[id]}, the order ${this.canonical[followed[id]!]?.key ?? 'nothing'}`)
    })
    // Once the group converged, every member is in the view every acknowledged write was made
    // durable in (or fetched it, durably, when it joined): every store holds every one. (Not
    // the whole order: a restarted member's log may end in records its previous process wrote
    // and never synced, as no member acknowledged them.)
    if (converged) {
      const lastAcked = Math.max(-1, ...mustSurvive.map(([key]) => this.canonicalIndex.get(key) ?? -1))
      held.forEach((log, id) => {
        if (log.length <= lastAcked) this.violation(`member ${id}'s store holds ${log.length} records after a power loss; acknowledged ${this.canonical[lastAcked]!.key} is #${lastAcked} of the order`)
      })
    }
    for (const claim of this.stableClaims) {
      const count = countAtOrBelow(this.canonical, claim.stamp)
      if (count !== claim.count) {
        this.violation(`member ${claim.id} called ${claim.stamp} stable with ${claim.count} records at or below it; the order has ${count}`)
        break
      }
    }
    for (const [key, stamp] of mustSurvive) {
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

/** A stamp as virtual time: `t+12.345` (ms since the world's time 0), `+n` for a logical counter. */
export function formatStamp(stamp: HlcStamp): string {
  if (stamp === 0n) return '0'
  const logical = hlcLogical(stamp)
  return `t+${((hlcPhysicalUs(stamp) - BASE_US) / 1000).toFixed(3)}${logical > 0 ? `+${logical}` : ''}`
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
function simConfig(memberCount: number, durability: Durability): GroupConfig {
  return {
    version: 1,
    name: 'sim',
    path: '/sim/config.json',
    members: Array.from({ length: memberCount }, (_, id) => ({ id, host: `m${id}`, transportPort: 1, clientPort: 2, dataDir: memberDataDir(id) })),
    layout: { shards: 1, replicas: memberCount },
    transport: { provider: 'sim', heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, suspectTimeoutMs: SUSPECT_TIMEOUT_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS, latencySpinUs: 0 },
    clients: { heartbeatIntervalMs: 500, deadPeerMs: 5000, requestTimeoutMs: 30_000, handshakeTimeoutMs: 5000 },
    time: { sensorLagMaxMs: 5000, clockSkewMaxMs: 50 },
    durability,
    retention: null,
    gcBudgetMiBs: null,
    keyFile: '/sim/cluster.key',
    key: Buffer.alloc(32),
  }
}
