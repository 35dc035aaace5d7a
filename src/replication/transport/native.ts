// The native transport: libfabric (native/) under the Transport interface. The constructor
// validates and does no I/O; start() creates the fabric objects, bootstraps over TCP and waits
// for every endpoint to connect. Table reads go straight to the registered memory through
// typed arrays; remote changes arrive as coalesced batches from the completion thread.
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type net from 'node:net'
import { join } from 'node:path'
import { findNativeAddon, NATIVE_BUILD_DIR } from '../../nativeAddons.js'
import { Fifo } from './fifo.js'
import { exchangeHellos, listenBootstrap, type Hello } from './native-bootstrap.js'
import { TransportError } from './native-errors.js'
import { describeSchema, layoutRow, schemaHash, type ColumnLayout, type RowLayout } from './native-layout.js'
import { LATENCY_SPIN_MAX_US, TRANSPORT_DEFAULTS, type LargeSendOptions, type SstView, type Transport, type TransportConfig, type TransportEvents } from './types.js'

export { TransportError } from './native-errors.js'

// ---- the addon ----

/** One batch of events; the addon sets only the fields that carry something. */
interface NativeBatch {
  rows?: number[]
  smcReceived?: number[] // cumulative per sender, present when any grew
  smcSpace?: boolean
  large?: { sender: number; seq: number; payload: Uint8Array }[]
  largeSent?: number[]
  suspected?: { rank: number; reason: string }[]
  connected?: number[]
  errors?: string[]
  settled?: boolean
}

interface NativeEngine {
  address(): Buffer
  regions(): { sstBase: bigint; sstKey: bigint; smcBase: bigint; smcKey: bigint; provider: string }
  setPeer(rank: number, sstBase: bigint, sstKey: bigint, smcBase: bigint, smcKey: bigint): void
  connect(rank: number, address: Buffer): void
  sstMemory(): ArrayBuffer
  smcMemory(): ArrayBuffer
  layout(): { rowBytes: number; smcSlotStrideBytes: number; smcHeaderBytes: number }
  push(offsetBytes: number, lengthBytes: number): void
  smcSend(payload: Uint8Array): number
  smcConsumed(sender: number, count: number): void
  rdmcSend(payload: Uint8Array, handOver?: boolean): number
  recycle(payload: Uint8Array): boolean
  stop(hard?: boolean): void
  settle(): void
}

interface NativeModule {
  NativeEngine: new (options: Record<string, unknown>) => NativeEngine
}

const ADDON_FILE = 'fffs_native.node'

let addon: NativeModule | undefined
function loadAddon(): NativeModule {
  if (addon) return addon
  const path = findNativeAddon(ADDON_FILE)
  if (!path) throw new TransportError('NATIVE_MISSING', `native transport addon not built (${join(NATIVE_BUILD_DIR, ADDON_FILE)}); run: npm run build:native`)
  try {
    addon = createRequire(import.meta.url)(path) as NativeModule
  } catch (err) {
    throw new TransportError('PROVIDER_UNAVAILABLE', `cannot load ${path} (is libfabric installed? apt-get install libfabric1): ${(err as Error).message}`)
  }
  return addon
}

/**
 * Loads the addon now (libfabric and its providers are loaded and initialised with it), so a
 * process that will start transports pays that at its own start, not inside a view start's
 * connect timeout. A failure is left for start() to report.
 */
export function preloadNativeTransport(): void {
  try {
    loadAddon()
  } catch {
    // reported by the first start()
  }
}

// ---- config ----

function validate(config: TransportConfig): number {
  const bad = (why: string): never => {
    throw new TransportError('TRANSPORT_CONFIG', `invalid transport config: ${why}`)
  }
  const positiveInt = (name: string, v: number, max: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > max) bad(`${name} must be an integer in 1..${max} (got ${v})`)
  }
  if (config.members.length < 1 || config.members.length > 256) bad('1..256 members')
  const ids = new Set(config.members.map((m) => m.id))
  if (ids.size !== config.members.length) bad('member ids must be unique')
  for (const m of config.members) {
    if (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535) bad(`member ${m.id}: port must be 1..65535`)
    if (!m.host) bad(`member ${m.id}: host missing`)
  }
  const selfRank = config.members.findIndex((m) => m.id === config.selfId)
  if (selfRank < 0) bad(`selfId ${config.selfId} is not among the members`)
  if (typeof config.provider !== 'string' || config.provider === '') bad('provider must be a libfabric provider name')
  positiveInt('smcSlotSizeBytes', config.smcSlotSizeBytes, 1 << 20)
  positiveInt('smcWindowSlots', config.smcWindowSlots, 1 << 16)
  positiveInt('rdmcBlockSizeBytes', config.rdmcBlockSizeBytes, 1 << 30)
  positiveInt('heartbeatIntervalMs', config.heartbeatIntervalMs, 60_000)
  positiveInt('suspectTimeoutMs', config.suspectTimeoutMs, 3_600_000)
  positiveInt('connectTimeoutMs', config.connectTimeoutMs, 3_600_000)
  if (config.suspectTimeoutMs <= config.heartbeatIntervalMs) bad('suspectTimeoutMs must exceed heartbeatIntervalMs')
  const spinUs = config.latencySpinUs
  if (spinUs !== undefined && (!Number.isInteger(spinUs) || spinUs < 0 || spinUs > LATENCY_SPIN_MAX_US)) {
    bad(`latencySpinUs must be an integer in 0..${LATENCY_SPIN_MAX_US} (got ${spinUs})`)
  }
  return selfRank
}

type Listeners = { [E in keyof TransportEvents]: Set<TransportEvents[E]> }

interface QueuedSend {
  readonly payload: Uint8Array
  readonly handOver?: boolean // large: the sender's own delivery is `payload` itself
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

export class NativeTransport implements Transport {
  readonly selfRank: number
  readonly sst: SstView
  private readonly config: TransportConfig
  private readonly layout: RowLayout
  private engine: NativeEngine | undefined
  private server: net.Server | undefined
  private rowBytes = 0
  private u64s = new BigUint64Array(0)
  private bytes = new Uint8Array(0)
  private smcBytes = new Uint8Array(0)
  private smcView = new DataView(new ArrayBuffer(0))
  private smcStrideBytes = 0
  private smcHeaderBytes = 0 // a slot: header (length first), payload, trailer
  private readonly listeners: Listeners = { rows: new Set(), small: new Set(), large: new Set(), suspected: new Set() }
  private readonly connected = new Set<number>()
  private readonly suspectedRanks = new Set<number>()
  private smcDelivered: number[]
  private readonly smcQueue = new Fifo<QueuedSend>()
  private readonly largeQueue = new Fifo<QueuedSend>()
  private largeInFlight: QueuedSend | undefined
  private settleWaiters: Array<() => void> = []
  private onConnected: (() => void) | undefined
  private startError: ((err: Error) => void) | undefined
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new'

  constructor(config: TransportConfig) {
    this.selfRank = validate(config)
    this.config = config
    try {
      this.layout = layoutRow(config.schema)
    } catch (err) {
      throw new TransportError('TRANSPORT_CONFIG', `invalid SST schema: ${(err as Error).message}`)
    }
    this.smcDelivered = config.members.map(() => 0)
    this.sst = {
      rowCount: config.members.length,
      u64: (rank, column, index) => this.u64s[this.cellIndex(rank, column, 'u64', index) / 8]!,
      bool: (rank, column, index) => this.bytes[this.cellIndex(rank, column, 'bool', index)] !== 0,
    }
  }

  get provider(): string {
    return this.config.provider
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new TransportError('STOPPED', 'a transport starts once')
    this.state = 'starting'
    const config = this.config
    const deadlineMs = Date.now() + config.connectTimeoutMs
    const self = config.members[this.selfRank]!
    try {
      this.engine = this.createEngine()
      this.server = await listenBootstrap(self)
      const connectedAll = new Promise<void>((resolve, reject) => {
        this.onConnected = resolve
        this.startError = reject
      })
      connectedAll.catch(() => undefined)
      this.checkConnected()
      await exchangeHellos(this.server, {
        selfRank: this.selfRank,
        members: config.members,
        hello: this.hello(),
        deadlineMs,
        onPeer: (rank, hello) => this.addPeer(rank, hello),
      })
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const missing = config.members.filter((_, r) => r !== this.selfRank && !this.connected.has(r)).map((m) => m.id)
          reject(new TransportError('CONNECT_TIMEOUT', `member ${self.id}: endpoints to member(s) ${missing.join(', ')} not connected within ${config.connectTimeoutMs} ms`))
        }, Math.max(0, deadlineMs - Date.now()))
      })
      try {
        await Promise.race([connectedAll, timeout])
      } finally {
        clearTimeout(timer)
      }
      this.state = 'running'
    } catch (err) {
      await this.stop()
      throw err
    } finally {
      this.server?.close()
      this.server = undefined
      this.onConnected = undefined
      this.startError = undefined
    }
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return
    this.state = 'stopped'
    this.server?.close()
    this.server = undefined
    this.engine?.stop()
    for (const resolve of this.settleWaiters.splice(0)) resolve()
    const stopped = new TransportError('STOPPED', 'transport stopped')
    for (const q of this.smcQueue.takeAll()) q.reject(stopped)
    for (const q of this.largeQueue.takeAll()) q.reject(stopped)
    this.largeInFlight?.reject(stopped)
    this.largeInFlight = undefined
  }

  /**
   * Stops without a goodbye: no shutdown to the peers, no more heartbeats, no events. Peers
   * find out by heartbeat silence, as from a hung process (tests use it as an in-process crash).
   */
  abort(): void {
    if (this.state === 'stopped') return
    this.state = 'stopped'
    this.server?.close()
    this.server = undefined
    this.engine?.stop(true)
    for (const resolve of this.settleWaiters.splice(0)) resolve()
  }

  /**
   * Resolves once the completion thread has drained what already arrived and JS has handled
   * it. Remote memory is visible before its notification (as with RDMA); tests that look at
   * the table directly use this to wait for the matching events.
   */
  settle(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.settleWaiters.push(resolve)
      this.engine!.settle()
    })
  }

  setU64(column: string, value: bigint, index?: number): void {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`SST ${column}: ${value} is not a u64`)
    this.u64s[this.cellIndex(this.selfRank, column, 'u64', index) / 8] = value
  }

  setBool(column: string, value: boolean, index?: number): void {
    this.bytes[this.cellIndex(this.selfRank, column, 'bool', index)] = value ? 1 : 0
  }

  push(columns?: readonly string[]): void {
    const engine = this.running()
    if (columns === undefined) return engine.push(0, this.layout.userRowBytes)
    // One write per contiguous run of the named columns: unnamed neighbours stay unpushed.
    const spans = columns
      .map((name) => this.column(name))
      .map((c) => [c.offsetBytes, c.offsetBytes + c.cellBytes * c.length] as const)
      .sort((a, b) => a[0] - b[0])
    let start = -1
    let end = -1
    for (const [s, e] of spans) {
      if (s > end) {
        if (start >= 0) engine.push(start, end - start)
        start = s
      }
      end = Math.max(end, e)
    }
    if (start >= 0) engine.push(start, end - start)
  }

  sendSmall(payload: Uint8Array): Promise<void> {
    this.running()
    if (payload.byteLength > this.config.smcSlotSizeBytes) {
      return Promise.reject(new RangeError(`small message of ${payload.byteLength} bytes exceeds smcSlotSizeBytes ${this.config.smcSlotSizeBytes}`))
    }
    return new Promise<void>((resolve, reject) => {
      this.smcQueue.push({ payload, resolve, reject })
      this.drainSmallQueue()
    })
  }

  sendLarge(payload: Uint8Array, options: LargeSendOptions = {}): Promise<void> {
    this.running()
    return new Promise<void>((resolve, reject) => {
      this.largeQueue.push({ payload, ...(options.handOver === true ? { handOver: true } : {}), resolve, reject })
      this.startNextLarge()
    })
  }

  /** Received objects live in mappings the engine reuses (no fresh pages per object): this hands one back early. */
  recycle(payload: Uint8Array): void {
    this.engine?.recycle(payload)
  }

  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void {
    this.listeners[event].add(listener)
  }

  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void {
    this.listeners[event].delete(listener)
  }

  // ---- internals ----

  private running(): NativeEngine {
    if (this.state !== 'running' || !this.engine) throw new TransportError('STOPPED', `transport is ${this.state}, not running`)
    return this.engine
  }

  private column(name: string): ColumnLayout {
    const c = this.layout.columns.get(name)
    if (!c) throw new RangeError(`unknown SST column '${name}'`)
    return c
  }

  /** Byte offset of a cell in the table; asserts kind and bounds. */
  private cellIndex(rank: number, name: string, kind: 'u64' | 'bool', index = 0): number {
    const c = this.column(name)
    if (!c.column.kind.startsWith(kind)) throw new TypeError(`SST column '${name}' is ${c.column.kind}, not ${kind}`)
    if (!Number.isInteger(index) || index < 0 || index >= c.length) throw new RangeError(`SST ${name}[${index}] out of range 0..${c.length - 1}`)
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.config.members.length) throw new RangeError(`SST rank ${rank} out of range`)
    if (this.rowBytes === 0) throw new TransportError('STOPPED', 'the SST exists once start() has begun')
    return rank * this.rowBytes + c.offsetBytes + index * c.cellBytes
  }

  private createEngine(): NativeEngine {
    const { NativeEngine } = loadAddon()
    const config = this.config
    let engine: NativeEngine
    try {
      engine = new NativeEngine({
        selfRank: this.selfRank,
        memberCount: config.members.length,
        provider: config.provider,
        iface: config.iface ?? '',
        selfHost: config.members[this.selfRank]!.host,
        userRowBytes: this.layout.userRowBytes,
        smcSlotSizeBytes: config.smcSlotSizeBytes,
        smcWindowSlots: config.smcWindowSlots,
        rdmcBlockSizeBytes: config.rdmcBlockSizeBytes,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        suspectTimeoutMs: config.suspectTimeoutMs,
        smcCqData: config.smcCqData ?? false,
        latencySpinUs: config.latencySpinUs ?? TRANSPORT_DEFAULTS.latencySpinUs,
        onBatch: (batch: NativeBatch) => this.onBatch(batch),
      })
    } catch (err) {
      const message = (err as Error).message
      const code = /provider|fi_getinfo|fi_fabric|fi_domain/.test(message) ? 'PROVIDER_UNAVAILABLE' : 'TRANSPORT_CONFIG'
      throw new TransportError(code, `member ${config.selfId}: ${message}`)
    }
    const { rowBytes, smcSlotStrideBytes, smcHeaderBytes } = engine.layout()
    this.rowBytes = rowBytes
    const sst = engine.sstMemory()
    this.u64s = new BigUint64Array(sst)
    this.bytes = new Uint8Array(sst)
    const smc = engine.smcMemory()
    this.smcBytes = new Uint8Array(smc)
    this.smcView = new DataView(smc)
    this.smcStrideBytes = smcSlotStrideBytes
    this.smcHeaderBytes = smcHeaderBytes
    return engine
  }

  private hello(): Hello {
    const config = this.config
    const regions = this.engine!.regions()
    return {
      magic: 'fffs-transport/1',
      id: config.selfId,
      rank: this.selfRank,
      memberCount: config.members.length,
      membersHash: createHash('sha256').update(JSON.stringify(config.members.map((m) => [m.id, m.host, m.port]))).digest('hex').slice(0, 16),
      schemaHash: schemaHash(config.schema),
      schema: describeSchema(config.schema),
      sizes: `smcSlot=${config.smcSlotSizeBytes},smcWindow=${config.smcWindowSlots},rdmcBlock=${config.rdmcBlockSizeBytes}`,
      provider: config.provider,
      address: this.engine!.address().toString('base64'),
      sstBase: regions.sstBase.toString(),
      sstKey: regions.sstKey.toString(),
      smcBase: regions.smcBase.toString(),
      smcKey: regions.smcKey.toString(),
    }
  }

  private addPeer(rank: number, hello: Hello): void {
    const engine = this.engine!
    engine.setPeer(rank, BigInt(hello.sstBase), BigInt(hello.sstKey), BigInt(hello.smcBase), BigInt(hello.smcKey))
    if (this.selfRank < rank) engine.connect(rank, Buffer.from(hello.address, 'base64'))
  }

  private checkConnected(): void {
    if (this.connected.size === this.config.members.length - 1) this.onConnected?.()
  }

  private emit<E extends keyof TransportEvents>(event: E, ...args: Parameters<TransportEvents[E]>): void {
    for (const listener of this.listeners[event]) (listener as (...a: Parameters<TransportEvents[E]>) => void)(...args)
  }

  private onBatch(batch: NativeBatch): void {
    if (this.state === 'stopped') return
    if (batch.connected) {
      for (const rank of batch.connected) this.connected.add(rank)
      this.checkConnected()
    }
    if (batch.errors) {
      const err = new TransportError('PROVIDER_UNAVAILABLE', `native transport: ${batch.errors.join('; ')}`)
      if (this.startError) this.startError(err)
      else process.emitWarning(err.message, 'FffsTransportWarning')
    }
    if (batch.suspected) {
      for (const { rank, reason } of batch.suspected) {
        if (this.suspectedRanks.has(rank)) continue
        this.suspectedRanks.add(rank)
        this.emit('suspected', rank, reason)
      }
    }
    if (batch.rows) this.emit('rows', batch.rows)
    if (batch.smcReceived) this.deliverSmall(batch.smcReceived)
    if (batch.large) for (const { sender, seq, payload } of batch.large) this.emit('large', sender, seq, payload)
    if (batch.largeSent && this.largeInFlight) {
      const done = this.largeInFlight
      this.largeInFlight = undefined
      // A handed-over object is its own delivery here, at the point the engine's copy would have come.
      if (done.handOver === true) this.emit('large', this.selfRank, batch.largeSent[0]!, done.payload)
      done.resolve()
      this.startNextLarge()
    }
    if (batch.smcSpace || batch.suspected) this.drainSmallQueue()
    if (batch.settled) for (const resolve of this.settleWaiters.splice(0)) resolve()
  }

  private deliverSmall(received: readonly number[]): void {
    const engine = this.engine!
    const window = this.config.smcWindowSlots
    for (let sender = 0; sender < received.length; sender++) {
      const upTo = received[sender]!
      let seq = this.smcDelivered[sender]!
      if (seq >= upTo || sender === this.selfRank) continue
      for (; seq < upTo; seq++) {
        const offset = (sender * window + (seq % window)) * this.smcStrideBytes
        const length = Number(this.smcView.getBigUint64(offset, true))
        // Copy out: the slot is reused once we report it consumed.
        const start = offset + this.smcHeaderBytes
        const payload = this.smcBytes.slice(start, start + length)
        this.smcDelivered[sender] = seq + 1
        this.emit('small', sender, seq, payload)
      }
      engine.smcConsumed(sender, upTo)
    }
  }

  private drainSmallQueue(): void {
    if (this.state !== 'running') return
    let next: QueuedSend | undefined
    while ((next = this.smcQueue.peek()) !== undefined) {
      const seq = this.engine!.smcSend(next.payload)
      if (seq < 0) return // window full: the completion thread reports space
      this.smcQueue.shift()
      this.emit('small', this.selfRank, seq, next.payload.slice())
      next.resolve()
    }
  }

  private startNextLarge(): void {
    if (this.largeInFlight || this.state !== 'running') return
    const next = this.largeQueue.shift()
    if (!next) return
    this.largeInFlight = next
    try {
      // Self delivery is a copy the engine makes off this thread and hands back in a batch,
      // with the other events of this object (the caller's buffer is still being sent); a
      // handed-over buffer is delivered itself once every member has it (onBatch).
      this.engine!.rdmcSend(next.payload, next.handOver === true)
    } catch (err) {
      this.largeInFlight = undefined
      next.reject(err as Error)
      this.startNextLarge()
    }
  }
}
