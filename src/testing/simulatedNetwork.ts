// The simulated transport: every member of a group in one process, on one virtual clock,
// every choice drawn from one seeded PRNG, so a schedule is replayed exactly by its seed
// (TigerBeetle's VOPR, FoundationDB's simulation). It implements the same Transport
// interface as the native libfabric transport and passes the same compliance suite
// (test/transport/compliance.ts); the replication protocol's tests run on it.
//
// What the simulation promises (and what the native transport promises too):
// - SST: pushes from one writer arrive at each reader in push order. Several pushes that
//   land in the same scheduler step are seen as one (`rows` is coalesced per step), so a
//   reader may skip values but never sees a row go backwards.
// - SMC and RDMC: per-sender FIFO at every receiver, including the sender itself; seq
//   counts each sender's messages from 0 per channel; payloads are byte-identical copies
//   owned by each receiver.
// - SMC flow control: sendSmall's promise stays pending while some receiver the sender
//   does not suspect has `smcWindowSlots` of its messages undelivered (as far as the sender
//   knows: the acknowledgement travels back over the network).
// - Failure: a crashed member delivers nothing more. Of what it sent before crashing, each
//   survivor receives a prefix chosen by the PRNG per link (the ragged edge). Members
//   suspect a peer after suspectTimeoutMs of virtual silence (heartbeats or any data),
//   once per peer. Heartbeats travel in the SST stream, so a slow packet delays them too. Suspicion is a report, not a filter: later packets from a suspected peer
//   (a healed partition) are still delivered, in order.
// - Partitions: a packet that reaches a cut link waits there, with everything behind it,
//   until the link heals (TCP and reliable-connected RDMA retransmit; they do not drop in
//   the middle of a stream). Heartbeats wait too, so suspicion follows.
// What it does not promise: any order between the SST, SMC and RDMC channels of one sender.
//
// A crashed member's unsent messages are never sent and their promises never settle (no
// code runs in a dead process); stop() is graceful: what was sent is delivered everywhere,
// sends still waiting for the window reject with EIO.
//
// Self delivery of a multicast is "immediate" in virtual time (delay 0) but never
// reentrant: it happens in a later scheduler step, not inside sendSmall/sendLarge.
//
// Use:
//   const net = new SimulatedNetwork({ seed, memberCount: 3, schema, delayMsMin: 1, delayMsMax: 10 })
//   await net.startAll()                       // start() resolves once every member started
//   net.transport(0).on('small', ...)          // the Transport interface, one per rank
//   net.scheduler.at(250, () => net.crash(2))  // faults at virtual instants
//   net.partition([0], [1, 2]); net.heal()
//   net.step() / net.advanceMs(ms) / net.runUntilIdle()         synchronous driving
//   await net.runUntil(() => cond, timeoutMs) / advanceMsAsync   yields between steps for async code
//   net.trace                                  // one line per observable event; equal for equal seeds
//   net.workload                               // a PRNG for the test's own choices, fixed by the seed

import { FffsError, errors } from '../errors.js'
import { TRANSPORT_DEFAULTS, type SstSchema, type SstView, type Transport, type TransportEvents } from '../replication/transport/types.js'
import { Prng } from './prng.js'
import { Scheduler } from './scheduler.js'
import { SimTable, SimTableLayout } from './simTable.js'

export interface SimulatedNetworkOptions {
  readonly seed: number
  readonly memberCount: number
  readonly schema: SstSchema
  /** One-way delay of a packet, uniform in [delayMsMin, delayMsMax] virtual ms. Defaults 1 and 10. */
  readonly delayMsMin?: number
  readonly delayMsMax?: number
  /** Serialisation rate for SMC and RDMC payloads; 0 (default): size adds no delay. */
  readonly bytesPerMs?: number
  /** Long tail: this fraction of packets and heartbeats (default 0) takes up to slowPacketDelayMsMax instead;
   * everything behind a slow packet on its link waits for it (head-of-line blocking). Above
   * suspectTimeoutMs it makes live members suspected (false suspicion). */
  readonly slowPacketChance?: number
  readonly slowPacketDelayMsMax?: number
  readonly smcSlotSizeBytes?: number
  readonly smcWindowSlots?: number
  readonly rdmcBlockSizeBytes?: number
  readonly heartbeatIntervalMs?: number
  readonly suspectTimeoutMs?: number
  readonly connectTimeoutMs?: number
  /** Record the event trace (default true). */
  readonly traceEnabled?: boolean
  /** The virtual time to run on, shared with other networks and the rest of a simulated world; default one of its own. */
  readonly scheduler?: Scheduler
}

export interface SimulatedNetworkConfig {
  readonly seed: number
  readonly memberCount: number
  readonly delayMsMin: number
  readonly delayMsMax: number
  readonly bytesPerMs: number
  readonly slowPacketChance: number
  readonly slowPacketDelayMsMax: number
  readonly smcSlotSizeBytes: number
  readonly smcWindowSlots: number
  readonly rdmcBlockSizeBytes: number
  readonly heartbeatIntervalMs: number
  readonly suspectTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly traceEnabled: boolean
}

const OPTION_KEYS: ReadonlySet<string> = new Set([
  'seed', 'memberCount', 'schema', 'delayMsMin', 'delayMsMax', 'bytesPerMs', 'slowPacketChance', 'slowPacketDelayMsMax',
  'smcSlotSizeBytes', 'smcWindowSlots',
  'rdmcBlockSizeBytes', 'heartbeatIntervalMs', 'suspectTimeoutMs', 'connectTimeoutMs', 'traceEnabled', 'scheduler',
])

const MEMBER_COUNT_MAX = 64
const TRACE_PAYLOAD_HASH_BYTES = 64

type Channel = 'sst' | 'smc' | 'rdmc' | 'ack'
const CHANNELS: readonly Channel[] = ['sst', 'smc', 'rdmc', 'ack']

type PacketBody =
  | { readonly kind: 'sst'; readonly pushSeq: number; readonly cells: Uint32Array; readonly values: BigUint64Array }
  | { readonly kind: 'smc'; readonly seq: number; readonly payload: Uint8Array }
  | { readonly kind: 'rdmc'; readonly seq: number; readonly payload: Uint8Array }
  | { readonly kind: 'ack'; readonly smcDeliveredCount: number }
  | { readonly kind: 'heartbeat' } // travels in the SST stream (a system column), wakes no `rows`

interface Packet {
  readonly from: number
  readonly to: number
  readonly body: PacketBody
  gen: number // bumped when rescheduled; stale scheduler events compare and ignore
  dropped: boolean
}

/** One direction of one channel between two members: a FIFO of packets in flight. */
interface Link {
  readonly queue: Packet[]
  lastArrivalMs: number
  stalled: boolean // a packet reached a cut: the whole queue waits for heal
}

export type MemberStatus = 'created' | 'starting' | 'running' | 'stopped' | 'crashed'

interface PendingSmall {
  readonly payload: Uint8Array
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

type AnyListener = (...args: unknown[]) => void

class Member {
  status: MemberStatus = 'created'
  readonly table: SimTable
  readonly listeners = new Map<keyof TransportEvents, AnyListener[]>()
  readonly dirtyRows = new Set<number>()
  readonly suspected: boolean[]
  readonly lastHeardMs: number[]
  readonly startWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []
  sstPushCount = 0
  smcSentCount = 0
  rdmcSentCount = 0
  readonly smcAckedBy: number[] // per receiver: my messages it has delivered, as far as I know
  readonly smcPending: PendingSmall[] = []
  readonly smcDeliveredFrom: number[] // per sender
  readonly rdmcDeliveredFrom: number[]

  constructor(
    readonly rank: number,
    layout: SimTableLayout,
    memberCount: number,
  ) {
    this.table = new SimTable(layout, memberCount)
    this.suspected = new Array<boolean>(memberCount).fill(false)
    this.lastHeardMs = new Array<number>(memberCount).fill(0)
    this.smcAckedBy = new Array<number>(memberCount).fill(0)
    this.smcDeliveredFrom = new Array<number>(memberCount).fill(0)
    this.rdmcDeliveredFrom = new Array<number>(memberCount).fill(0)
  }

  get alive(): boolean {
    return this.status === 'running' || this.status === 'starting' || this.status === 'created'
  }
}

function validate(options: SimulatedNetworkOptions): SimulatedNetworkConfig {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw errors.invalid(`simulated network: unknown option '${key}'`)
  }
  const config: SimulatedNetworkConfig = {
    seed: options.seed,
    memberCount: options.memberCount,
    delayMsMin: options.delayMsMin ?? 1,
    delayMsMax: options.delayMsMax ?? 10,
    bytesPerMs: options.bytesPerMs ?? 0,
    slowPacketChance: options.slowPacketChance ?? 0,
    slowPacketDelayMsMax: options.slowPacketDelayMsMax ?? options.delayMsMax ?? 10,
    smcSlotSizeBytes: options.smcSlotSizeBytes ?? TRANSPORT_DEFAULTS.smcSlotSizeBytes,
    smcWindowSlots: options.smcWindowSlots ?? TRANSPORT_DEFAULTS.smcWindowSlots,
    rdmcBlockSizeBytes: options.rdmcBlockSizeBytes ?? TRANSPORT_DEFAULTS.rdmcBlockSizeBytes,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? TRANSPORT_DEFAULTS.heartbeatIntervalMs,
    suspectTimeoutMs: options.suspectTimeoutMs ?? TRANSPORT_DEFAULTS.suspectTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? TRANSPORT_DEFAULTS.connectTimeoutMs,
    traceEnabled: options.traceEnabled ?? true,
  }
  const intAtLeast = (name: keyof SimulatedNetworkConfig, min: number): void => {
    const value = config[name]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw errors.invalid(`simulated network: ${name} must be an integer >= ${min}, got ${String(value)}`)
    }
  }
  if (!Number.isSafeInteger(config.seed)) throw errors.invalid(`simulated network: seed must be a safe integer`)
  intAtLeast('memberCount', 1)
  if (config.memberCount > MEMBER_COUNT_MAX) throw errors.invalid(`simulated network: at most ${MEMBER_COUNT_MAX} members`)
  intAtLeast('delayMsMin', 0)
  intAtLeast('delayMsMax', config.delayMsMin)
  if (!(config.bytesPerMs >= 0)) throw errors.invalid('simulated network: bytesPerMs must be >= 0')
  if (!(config.slowPacketChance >= 0 && config.slowPacketChance <= 1)) {
    throw errors.invalid('simulated network: slowPacketChance must be in [0, 1]')
  }
  intAtLeast('slowPacketDelayMsMax', config.delayMsMax)
  intAtLeast('smcSlotSizeBytes', 1)
  intAtLeast('smcWindowSlots', 1)
  intAtLeast('rdmcBlockSizeBytes', 1)
  intAtLeast('heartbeatIntervalMs', 1)
  intAtLeast('suspectTimeoutMs', config.heartbeatIntervalMs + 1)
  intAtLeast('connectTimeoutMs', 1)
  return config
}

function fnv1a32(bytes: Uint8Array, count: number): string {
  let h = 0x811c9dc5
  for (let i = 0; i < count; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0
  return h.toString(16).padStart(8, '0')
}

function describePayload(payload: Uint8Array): string {
  return `${payload.byteLength}B h=${fnv1a32(payload, Math.min(payload.byteLength, TRACE_PAYLOAD_HASH_BYTES))}`
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export class SimulatedNetwork {
  readonly config: SimulatedNetworkConfig
  readonly scheduler: Scheduler
  readonly transports: readonly SimulatedTransport[]
  /** Every observable event in order, as text; two runs with one seed produce equal traces. */
  readonly trace: string[] = []
  private readonly prng: Prng
  private readonly workloadPrng: Prng
  private readonly layout: SimTableLayout
  private readonly members: Member[]
  private readonly links: Map<Channel, Link[]>
  /** cut[from * n + to]: packets from -> to wait, heartbeats are lost. */
  private readonly cut: boolean[]
  private readonly connectTimers: Array<{ cancel(): void } | undefined>
  private readonly releaseAfterStep: () => void

  constructor(options: SimulatedNetworkOptions) {
    this.config = validate(options)
    this.scheduler = options.scheduler ?? new Scheduler()
    const n = this.config.memberCount
    const root = new Prng(this.config.seed)
    this.prng = root.fork()
    this.workloadPrng = root.fork()
    this.layout = new SimTableLayout(options.schema)
    this.members = Array.from({ length: n }, (_, rank) => new Member(rank, this.layout, n))
    this.links = new Map(
      CHANNELS.map((channel) => [
        channel,
        Array.from({ length: n * n }, () => ({ queue: [], lastArrivalMs: 0, stalled: false })),
      ]),
    )
    this.cut = new Array<boolean>(n * n).fill(false)
    this.connectTimers = new Array(n).fill(undefined)
    this.transports = this.members.map((member) => new SimulatedTransport(this, member))
    this.releaseAfterStep = this.scheduler.onAfterStep(() => this.flushRows())
  }

  get nowMs(): number {
    return this.scheduler.nowMs
  }

  /** A PRNG for the test's own workload, independent of the network's choices but fixed by the seed. */
  get workload(): Prng {
    return this.workloadPrng
  }

  transport(rank: number): SimulatedTransport {
    const transport = this.transports[rank]
    if (transport === undefined) throw new RangeError(`no member with rank ${rank}`)
    return transport
  }

  /** Starts every member and resolves when all are connected (no virtual time passes). */
  async startAll(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.start()))
  }

  // ---- driving virtual time -------------------------------------------------------------

  /** Runs the next instant; false when nothing is pending. */
  step(): boolean {
    return this.scheduler.step()
  }

  advanceMs(ms: number): void {
    this.scheduler.advanceMs(ms)
  }

  /** Runs until no packet is in flight (heartbeats continue meanwhile). Packets held at a cut do not count. */
  runUntilIdle(stepsMax?: number): number {
    return this.scheduler.runUntilIdle(stepsMax)
  }

  /** Like advanceMs, but yields to the event loop between steps so that async code awaiting
   * transport promises makes progress in step with virtual time. */
  async advanceMsAsync(ms: number): Promise<void> {
    const targetMs = this.nowMs + ms
    await this.runUntil(() => false, targetMs - this.nowMs)
  }

  /** Steps (yielding to the event loop between steps) until `condition` holds or timeoutMs of
   * virtual time pass. Returns whether the condition holds. */
  async runUntil(condition: () => boolean, timeoutMs: number, stepsMax = 1_000_000): Promise<boolean> {
    const deadlineMs = this.nowMs + timeoutMs
    for (let steps = 0; ; steps++) {
      await yieldToEventLoop()
      if (condition()) return true
      const next = this.scheduler.nextEventMs
      if (next === undefined || next > deadlineMs) {
        this.scheduler.advanceMs(deadlineMs - this.nowMs)
        await yieldToEventLoop()
        return condition()
      }
      if (steps >= stepsMax) throw new Error(`simulated network: more than ${stepsMax} steps in runUntil (livelock?)`)
      this.scheduler.step()
    }
  }

  /** runUntilIdle, yielding to the event loop between steps. */
  async runUntilIdleAsync(stepsMax = 1_000_000): Promise<void> {
    for (let steps = 0; ; steps++) {
      await yieldToEventLoop()
      if (this.scheduler.idle) return
      if (steps >= stepsMax) throw new Error(`simulated network: not idle after ${stepsMax} steps (livelock?)`)
      this.scheduler.step()
    }
  }

  // ---- faults ---------------------------------------------------------------------------

  /** The member dies now: it delivers nothing more; each survivor keeps a PRNG-chosen prefix of what it had in flight. */
  crash(rank: number): void {
    const member = this.member(rank)
    if (member.status === 'crashed') return
    member.status = 'crashed'
    this.record(`crash ${rank}`)
    const n = this.config.memberCount
    for (const channel of CHANNELS) {
      for (let peer = 0; peer < n; peer++) {
        const outbound = this.link(channel, rank, peer)
        const keep = peer === rank ? 0 : this.prng.int(0, outbound.queue.length)
        this.dropTail(outbound, keep, 'sender crashed')
        if (peer !== rank) this.dropTail(this.link(channel, peer, rank), 0, 'receiver crashed')
      }
    }
    this.abandonMember(member)
  }

  isCrashed(rank: number): boolean {
    return this.member(rank).status === 'crashed'
  }

  status(rank: number): MemberStatus {
    return this.member(rank).status
  }

  /** Members on different sides cannot reach each other (both directions); unlisted members form one more side.
   * Replaces any earlier partition or cut link. */
  partition(...sides: ReadonlyArray<readonly number[]>): void {
    const n = this.config.memberCount
    const sideOf = new Array<number>(n).fill(sides.length)
    sides.forEach((side, index) => {
      for (const rank of side) {
        this.member(rank)
        if (sideOf[rank] !== sides.length) throw new RangeError(`partition: rank ${rank} on two sides`)
        sideOf[rank] = index
      }
    })
    for (let from = 0; from < n; from++) {
      for (let to = 0; to < n; to++) this.cut[from * n + to] = sideOf[from] !== sideOf[to]
    }
    this.record(`partition ${sides.map((side) => `[${side.join(',')}]`).join('|')}`)
    this.releaseHealedLinks()
  }

  /** Cuts one direction of one pair (an asymmetric failure). */
  cutLink(fromRank: number, toRank: number): void {
    this.member(fromRank)
    this.member(toRank)
    if (fromRank === toRank) throw new RangeError('cutLink: a member always reaches itself')
    this.cut[fromRank * this.config.memberCount + toRank] = true
    this.record(`cut ${fromRank}>${toRank}`)
  }

  /** Every link works again; packets waiting at cuts resume, in order. */
  heal(): void {
    this.cut.fill(false)
    this.record('heal')
    this.releaseHealedLinks()
  }

  isReachable(fromRank: number, toRank: number): boolean {
    return !this.cut[fromRank * this.config.memberCount + toRank]
  }

  // ---- used by SimulatedTransport ---------------------------------------------------------

  /** @internal */
  memberStart(member: Member): Promise<void> {
    if (member.status === 'running') return Promise.resolve()
    if (member.status === 'crashed' || member.status === 'stopped') {
      return Promise.reject(errors.invalid(`simulated transport ${member.rank}: start after ${member.status}`))
    }
    const started = new Promise<void>((resolve, reject) => member.startWaiters.push({ resolve, reject }))
    if (member.status === 'created') {
      member.status = 'starting'
      this.record(`start ${member.rank}`)
      this.connectTimers[member.rank] = this.scheduler.after(
        this.config.connectTimeoutMs,
        () => this.connectTimedOut(member),
        { background: true },
      )
    }
    if (this.members.every((m) => m.status === 'starting')) this.connectAll()
    return started
  }

  /** @internal */
  memberStop(member: Member): void {
    if (member.status === 'crashed' || member.status === 'stopped') return
    for (const waiter of member.startWaiters.splice(0)) {
      waiter.reject(new FffsError('EIO', `simulated transport ${member.rank}: stopped while connecting`))
    }
    member.status = 'stopped'
    this.record(`stop ${member.rank}`)
    for (const pending of member.smcPending) {
      pending.reject(new FffsError('EIO', `simulated transport ${member.rank}: stopped before the message was sent`))
    }
    const n = this.config.memberCount
    for (const channel of CHANNELS) {
      for (let peer = 0; peer < n; peer++) this.dropTail(this.link(channel, peer, member.rank), 0, 'receiver stopped')
    }
    this.abandonMember(member)
  }

  /** @internal */
  memberPush(member: Member, columns: readonly string[] | undefined): void {
    if (!this.usable(member, 'push')) return
    const cells = this.layout.cellsOf(columns)
    const own = member.table.rows[member.rank]!
    const values = BigUint64Array.from(cells, (cell) => own[cell]!)
    const pushSeq = member.sstPushCount++
    this.record(`push ${member.rank} #${pushSeq} ${columns === undefined ? '*' : columns.join(',')}`)
    for (let to = 0; to < this.config.memberCount; to++) {
      if (to !== member.rank) this.send('sst', member.rank, to, { kind: 'sst', pushSeq, cells, values }, 0)
    }
  }

  /** @internal */
  memberSendSmall(member: Member, payload: Uint8Array): Promise<void> {
    if (!(payload instanceof Uint8Array)) return Promise.reject(new TypeError('sendSmall: payload must be a Uint8Array'))
    if (payload.byteLength > this.config.smcSlotSizeBytes) {
      return Promise.reject(
        errors.invalid(`sendSmall: ${payload.byteLength} bytes exceed the slot size of ${this.config.smcSlotSizeBytes}`),
      )
    }
    if (!this.usable(member, 'sendSmall')) return Promise.resolve()
    const copy = payload.slice()
    return new Promise<void>((resolve, reject) => {
      member.smcPending.push({ payload: copy, resolve, reject })
      this.sendPendingSmall(member)
    })
  }

  /** @internal */
  memberSendLarge(member: Member, payload: Uint8Array): Promise<void> {
    if (!(payload instanceof Uint8Array)) return Promise.reject(new TypeError('sendLarge: payload must be a Uint8Array'))
    if (!this.usable(member, 'sendLarge')) return Promise.resolve()
    const copy = payload.slice()
    const seq = member.rdmcSentCount++
    this.record(`send-large ${member.rank} #${seq} ${describePayload(copy)}`)
    for (let to = 0; to < this.config.memberCount; to++) {
      this.send('rdmc', member.rank, to, { kind: 'rdmc', seq, payload: copy }, this.serialisationMs(copy))
    }
    return Promise.resolve()
  }

  // ---- internals --------------------------------------------------------------------------

  private member(rank: number): Member {
    const member = this.members[rank]
    if (member === undefined) throw new RangeError(`no member with rank ${rank}`)
    return member
  }

  private link(channel: Channel, from: number, to: number): Link {
    return this.links.get(channel)![from * this.config.memberCount + to]!
  }

  private record(event: string): void {
    if (this.config.traceEnabled) this.trace.push(`${this.nowMs} ${event}`)
  }

  /** Operations on a crashed or stopped member do nothing (its process is gone); before start they are bugs. */
  private usable(member: Member, operation: string): boolean {
    if (member.status === 'running') return true
    if (member.status === 'crashed' || member.status === 'stopped') return false
    throw new Error(`simulated transport ${member.rank}: ${operation} before start() resolved`)
  }

  private delayMs(): number {
    const c = this.config
    // No draw for the long tail unless it is enabled, so enabling it is the only thing that changes schedules.
    if (c.slowPacketChance > 0 && this.prng.chance(c.slowPacketChance)) return this.prng.int(c.delayMsMax, c.slowPacketDelayMsMax)
    return this.prng.int(c.delayMsMin, c.delayMsMax)
  }

  private serialisationMs(payload: Uint8Array): number {
    return this.config.bytesPerMs > 0 ? Math.ceil(payload.byteLength / this.config.bytesPerMs) : 0
  }

  private emit<E extends keyof TransportEvents>(member: Member, event: E, ...args: Parameters<TransportEvents[E]>): void {
    if (member.status !== 'running') return
    const listeners = member.listeners.get(event)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      if (member.status !== 'running') return // a listener crashed or stopped its own member
      listener(...args)
    }
  }

  private connectAll(): void {
    this.record('connected')
    for (const member of this.members) {
      member.status = 'running'
      member.lastHeardMs.fill(this.nowMs)
      this.connectTimers[member.rank]?.cancel()
      this.connectTimers[member.rank] = undefined
      const phaseMs = this.prng.int(0, this.config.heartbeatIntervalMs - 1)
      this.scheduler.after(phaseMs, () => this.heartbeatTick(member), { background: true })
    }
    for (const member of this.members) {
      for (const waiter of member.startWaiters.splice(0)) waiter.resolve()
    }
  }

  private connectTimedOut(member: Member): void {
    if (member.status !== 'starting') return
    const missing = this.members.filter((m) => m.status !== 'starting').map((m) => m.rank)
    member.status = 'stopped'
    this.record(`connect-timeout ${member.rank}`)
    for (const waiter of member.startWaiters.splice(0)) {
      waiter.reject(
        new FffsError(
          'EIO',
          `simulated transport ${member.rank}: members [${missing.join(',')}] did not connect within ${this.config.connectTimeoutMs} ms`,
        ),
      )
    }
    this.releaseIfDone()
  }

  private heartbeatTick(member: Member): void {
    if (member.status !== 'running') return
    const n = this.config.memberCount
    for (let peer = 0; peer < n; peer++) {
      if (peer !== member.rank) this.send('sst', member.rank, peer, { kind: 'heartbeat' }, 0)
    }
    for (let peer = 0; peer < n; peer++) {
      if (peer === member.rank || member.suspected[peer]) continue
      const silenceMs = this.nowMs - member.lastHeardMs[peer]!
      if (silenceMs > this.config.suspectTimeoutMs) this.suspect(member, peer, `no heartbeat for ${silenceMs} ms`)
      if (member.status !== 'running') return
    }
    this.scheduler.after(this.config.heartbeatIntervalMs, () => this.heartbeatTick(member), { background: true })
  }

  private suspect(member: Member, peer: number, reason: string): void {
    member.suspected[peer] = true
    this.record(`suspect ${member.rank} ${peer} (${reason})`)
    this.emit(member, 'suspected', peer, reason)
    this.sendPendingSmall(member) // a suspected receiver no longer holds the window
  }

  private windowOpen(member: Member): boolean {
    for (let peer = 0; peer < this.config.memberCount; peer++) {
      if (peer === member.rank || member.suspected[peer]) continue
      if (member.smcSentCount - member.smcAckedBy[peer]! >= this.config.smcWindowSlots) return false
    }
    return true
  }

  private sendPendingSmall(member: Member): void {
    while (member.status === 'running' && member.smcPending.length > 0 && this.windowOpen(member)) {
      const { payload, resolve } = member.smcPending.shift()!
      const seq = member.smcSentCount++
      this.record(`send-small ${member.rank} #${seq} ${describePayload(payload)}`)
      for (let to = 0; to < this.config.memberCount; to++) {
        this.send('smc', member.rank, to, { kind: 'smc', seq, payload }, this.serialisationMs(payload))
      }
      resolve()
    }
  }

  private send(channel: Channel, from: number, to: number, body: PacketBody, extraDelayMs: number): void {
    const receiver = this.members[to]!
    if (!receiver.alive) return
    const link = this.link(channel, from, to)
    const delayMs = from === to ? 0 : this.delayMs() + extraDelayMs
    const arrivalMs = Math.max(this.nowMs + delayMs, link.lastArrivalMs)
    link.lastArrivalMs = arrivalMs
    const packet: Packet = { from, to, body, gen: 0, dropped: false }
    link.queue.push(packet)
    if (!link.stalled) this.schedulePacket(link, packet, arrivalMs)
  }

  private schedulePacket(link: Link, packet: Packet, arrivalMs: number): void {
    const gen = packet.gen
    const background = packet.body.kind === 'heartbeat'
    this.scheduler.at(arrivalMs, () => this.arrive(link, packet, gen), { background })
  }

  private arrive(link: Link, packet: Packet, gen: number): void {
    if (packet.dropped || packet.gen !== gen || link.stalled) return
    if (this.cut[packet.from * this.config.memberCount + packet.to]) {
      link.stalled = true
      if (packet.body.kind !== 'heartbeat') this.record(`hold ${packet.from}>${packet.to} ${packet.body.kind}`)
      return
    }
    if (link.queue[0] !== packet) throw new Error('simulated network invariant: packet overtook its link queue')
    link.queue.shift()
    this.deliver(packet)
  }

  private releaseHealedLinks(): void {
    const n = this.config.memberCount
    for (const channel of CHANNELS) {
      const links = this.links.get(channel)!
      links.forEach((link, index) => {
        if (!link.stalled || this.cut[index]) return
        link.stalled = false
        let arrivalMs = this.nowMs
        for (const packet of link.queue) {
          arrivalMs = Math.max(arrivalMs, this.nowMs + this.delayMs())
          packet.gen++
          this.schedulePacket(link, packet, arrivalMs)
        }
        link.lastArrivalMs = arrivalMs
        this.record(`release ${Math.floor(index / n)}>${index % n} ${channel} ${link.queue.length}`)
      })
    }
  }

  private dropTail(link: Link, keep: number, why: string): void {
    if (link.queue.length <= keep) return
    for (const packet of link.queue.splice(keep)) {
      packet.dropped = true
      if (packet.body.kind !== 'heartbeat') this.record(`drop ${packet.from}>${packet.to} ${packet.body.kind} (${why})`)
    }
  }

  private abandonMember(member: Member): void {
    member.smcPending.length = 0 // after a crash their promises stay pending: the process that awaited them is gone
    member.dirtyRows.clear()
    this.connectTimers[member.rank]?.cancel()
    this.connectTimers[member.rank] = undefined
    this.releaseIfDone()
  }

  /** Every member stopped or crashed: nothing more to flush after the shared scheduler's steps. */
  private releaseIfDone(): void {
    if (this.members.every((m) => m.status !== 'running' && m.status !== 'starting')) this.releaseAfterStep()
  }

  private deliver(packet: Packet): void {
    const receiver = this.members[packet.to]!
    if (receiver.status !== 'running') {
      if (packet.body.kind !== 'heartbeat') this.record(`drop ${packet.from}>${packet.to} ${packet.body.kind} (receiver ${receiver.status})`)
      return
    }
    if (packet.from !== packet.to) receiver.lastHeardMs[packet.from] = this.nowMs
    const body = packet.body
    switch (body.kind) {
      case 'sst': {
        const row = receiver.table.rows[packet.from]!
        body.cells.forEach((cell, i) => (row[cell] = body.values[i]!))
        receiver.dirtyRows.add(packet.from)
        this.record(`sst ${packet.from}>${packet.to} #${body.pushSeq}`)
        return
      }
      case 'smc': {
        const expected = receiver.smcDeliveredFrom[packet.from]!
        if (body.seq !== expected) throw new Error(`simulated network invariant: smc seq ${body.seq}, expected ${expected}`)
        receiver.smcDeliveredFrom[packet.from] = expected + 1
        this.record(`small ${packet.from}>${packet.to} #${body.seq} ${describePayload(body.payload)}`)
        this.emit(receiver, 'small', packet.from, body.seq, body.payload.slice())
        if (packet.from !== packet.to && receiver.status === 'running') {
          this.send('ack', packet.to, packet.from, { kind: 'ack', smcDeliveredCount: expected + 1 }, 0)
        }
        return
      }
      case 'rdmc': {
        const expected = receiver.rdmcDeliveredFrom[packet.from]!
        if (body.seq !== expected) throw new Error(`simulated network invariant: rdmc seq ${body.seq}, expected ${expected}`)
        receiver.rdmcDeliveredFrom[packet.from] = expected + 1
        this.record(`large ${packet.from}>${packet.to} #${body.seq} ${describePayload(body.payload)}`)
        this.emit(receiver, 'large', packet.from, body.seq, body.payload.slice())
        return
      }
      case 'heartbeat':
        return // lastHeardMs, above, is all a heartbeat does
      case 'ack': {
        receiver.smcAckedBy[packet.from] = Math.max(receiver.smcAckedBy[packet.from]!, body.smcDeliveredCount)
        this.sendPendingSmall(receiver)
        return
      }
    }
  }

  private flushRows(): void {
    for (const member of this.members) {
      if (member.dirtyRows.size === 0) continue
      const ranks = [...member.dirtyRows].sort((x, y) => x - y)
      member.dirtyRows.clear()
      if (member.status !== 'running') continue
      this.record(`rows ${member.rank} [${ranks.join(',')}]`)
      this.emit(member, 'rows', ranks)
    }
  }
}

/** One member's face of the simulated network. Build it through SimulatedNetwork, never directly. */
export class SimulatedTransport implements Transport {
  readonly selfRank: number
  readonly sst: SstView

  /** @internal */
  constructor(
    private readonly net: SimulatedNetwork,
    private readonly member: Member,
  ) {
    this.selfRank = member.rank
    this.sst = member.table
  }

  start(): Promise<void> {
    return this.net.memberStart(this.member)
  }

  stop(): Promise<void> {
    this.net.memberStop(this.member)
    return Promise.resolve()
  }

  setU64(column: string, value: bigint, index?: number): void {
    this.member.table.setU64(this.selfRank, column, value, index)
  }

  setBool(column: string, value: boolean, index?: number): void {
    this.member.table.setBool(this.selfRank, column, value, index)
  }

  push(columns?: readonly string[]): void {
    this.net.memberPush(this.member, columns)
  }

  sendSmall(payload: Uint8Array): Promise<void> {
    return this.net.memberSendSmall(this.member, payload)
  }

  sendLarge(payload: Uint8Array): Promise<void> {
    return this.net.memberSendLarge(this.member, payload)
  }

  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void {
    const listeners = this.member.listeners.get(event) ?? []
    listeners.push(listener as AnyListener)
    this.member.listeners.set(event, listeners)
  }

  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void {
    const listeners = this.member.listeners.get(event)
    if (listeners === undefined) return
    const index = listeners.indexOf(listener as AnyListener)
    if (index >= 0) listeners.splice(index, 1)
  }
}
