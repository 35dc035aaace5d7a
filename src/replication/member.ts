// A member of a replication group (`fffs serve`): the edges around the pure protocol core.
// It feeds the core the transport's events and a tick, and executes the core's actions:
// row writes and pushes and sends go to the transport; deliveries go to the store (appended to
// the log in delivery order, applied in order, group-committed with fdatasync, then reported
// as persisted); replies resolve the submits of the mounts connected to this member.
//
// Ordered messages carry one of two payloads (src/replication/core/message.ts adds the header):
// - data: file bytes a mount wrote, multicast as they arrive (the bulk path); each replica
//   appends them to its own log and remembers where, by blob id;
// - record: a mutation; a version's writes name blobs, which each replica replaces by its own
//   log position before appending the record. Data thus crosses the network once per replica
//   and is committed by a small ordered record.

import { promises as fsp, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs'
import path from 'node:path'
import { errors, FffsError } from '../errors.js'
import type { ApplyResult, Attr, DataRef, Ino, Mutation, Snapshot, VersionOp } from '../store/records.js'
import type { LogPosition } from '../store/segmentLog.js'
import { Store } from '../store/store.js'
import { hlcPhysicalUs, wallClockUs, type HlcStamp } from '../temporal/hlc.js'
import type { Client, SubmitId } from './client.js'
import type { GroupConfig } from './config.js'
import { GroupCore, type CoreAction, type CoreEvent, type CoreStatus, type View } from './core/group.js'
import { groupSchema } from './core/schema.js'
import { NativeTransport } from './transport/native.js'
import { TRANSPORT_DEFAULTS, type Transport } from './transport/types.js'

const TICK_MS = 20
const PAYLOAD_DATA = 1
const PAYLOAD_RECORD = 2

interface RecordPayload {
  readonly mutation: Mutation
  readonly submit?: SubmitId
}

interface PendingSubmit {
  readonly resolve: (value: { stamp: HlcStamp; result: ApplyResult }) => void
  readonly reject: (err: Error) => void
  applied?: Promise<ApplyResult>
}

export interface MemberOptions {
  readonly log?: (line: string) => void
}

/** What `fffs status` shows of one member. */
export interface MemberStatus {
  readonly id: number
  readonly core: CoreStatus
  readonly memberIds: readonly number[] // epoch rank -> member id
  readonly appliedStamp: string
  readonly rows: ReadonlyArray<Record<string, string | boolean | string[] | boolean[]>>
}

export class Member {
  readonly id: number
  readonly config: GroupConfig
  readonly store: Store
  readonly client: ReplicaClient
  private readonly transport: Transport
  private readonly core: GroupCore
  private readonly log: (line: string) => void
  private readonly blobPositions = new Map<string, LogPosition>() // delivered data not yet committed
  private readonly pending = new Map<number, PendingSubmit>()
  private readonly applied = new Map<number, Promise<ApplyResult>>() // own requests delivered, awaiting durability
  private readonly dedupe = new Map<string, Map<number, Promise<ApplyResult>>>() // clientId -> seq -> result
  private readonly waiters = new Set<() => void>()
  private applyChain: Promise<unknown> = Promise.resolve()
  private applyBacklog = 0
  private appendedStamp: HlcStamp = 0n
  private syncedStamp: HlcStamp = 0n
  private syncing = false
  private tickTimer: NodeJS.Timeout | undefined
  private requestNext = 1
  private blobNext = 1
  private stopped = false
  private early: CoreEvent[] | null = [] // events before the core started
  private fatal: Error | null = null

  private constructor(config: GroupConfig, id: number, store: Store, transport: Transport, options: MemberOptions) {
    this.config = config
    this.id = id
    this.store = store
    this.transport = transport
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'))
    const n = config.members.length
    const view: View = { vid: 1, members: Array.from({ length: n }, (_, rank) => rank) }
    this.core = new GroupCore({
      selfRank: transport.selfRank,
      epochSize: n,
      view,
      sst: transport.sst,
      lastStamp: store.appliedStamp,
      nowUs: wallClockUs(),
      smallMessageMaxBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes - 64,
    })
    this.appendedStamp = this.syncedStamp = store.appliedStamp
    this.client = new ReplicaClient(this)
  }

  static async start(config: GroupConfig, id: number, options: MemberOptions = {}): Promise<Member> {
    const self = config.members.find((m) => m.id === id)
    if (self === undefined) throw errors.invalid(`member id ${id} is not in ${config.path} (ids: ${config.members.map((m) => m.id).join(', ')})`)
    await fsp.mkdir(self.dataDir, { recursive: true })
    const store = new Store(self.dataDir)
    await store.open()
    const transport = new NativeTransport({
      selfId: id,
      members: config.members.map((m) => ({ id: m.id, host: m.host, port: m.transportPort })),
      schema: groupSchema(config.members.length),
      provider: config.transport.provider,
      ...(config.transport.iface !== undefined ? { iface: config.transport.iface } : {}),
      smcSlotSizeBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes,
      smcWindowSlots: TRANSPORT_DEFAULTS.smcWindowSlots,
      rdmcBlockSizeBytes: TRANSPORT_DEFAULTS.rdmcBlockSizeBytes,
      heartbeatIntervalMs: config.transport.heartbeatIntervalMs,
      suspectTimeoutMs: config.transport.suspectTimeoutMs,
      connectTimeoutMs: config.transport.connectTimeoutMs,
    })
    const member = new Member(config, id, store, transport, options)
    transport.on('rows', () => member.feed({ kind: 'rows' }))
    transport.on('small', (from, _seq, bytes) => member.feed({ kind: 'message', fromRank: from, bytes }))
    transport.on('large', (from, _seq, bytes) => member.feed({ kind: 'message', fromRank: from, bytes }))
    transport.on('suspected', (rank, reason) => {
      member.log(`fffs: member ${id}: suspect member ${config.members[rank]?.id ?? rank} (${reason})`)
      member.feed({ kind: 'suspect', rank })
    })
    try {
      await transport.start()
    } catch (err) {
      await store.close()
      throw err
    }
    member.execute(member.core.start())
    const early = member.early ?? []
    member.early = null
    for (const event of early) member.feed(event)
    member.tickTimer = setInterval(() => member.feed({ kind: 'tick' }), TICK_MS)
    return member
  }

  get view(): View {
    return this.core.currentView
  }

  memberIdOfRank(rank: number): number {
    return this.config.members[rank]!.id
  }

  status(): MemberStatus {
    const n = this.config.members.length
    const sst = this.transport.sst
    const rows = this.config.members.map((_, rank) => {
      const row: Record<string, string | boolean | string[] | boolean[]> = {}
      for (const column of groupSchema(n).columns) {
        if (column.kind === 'u64') row[column.name] = sst.u64(rank, column.name).toString()
        else if (column.kind === 'bool') row[column.name] = sst.bool(rank, column.name)
        else if (column.kind === 'u64[]') row[column.name] = Array.from({ length: column.length }, (_, i) => sst.u64(rank, column.name, i).toString())
        else row[column.name] = Array.from({ length: column.length }, (_, i) => sst.bool(rank, column.name, i))
      }
      return row
    })
    return { id: this.id, core: this.core.status(), memberIds: this.config.members.map((m) => m.id), appliedStamp: this.store.appliedStamp.toString(), rows }
  }

  // ---- the loop ----

  private feed(event: CoreEvent): void {
    if (this.stopped) return
    if (this.early !== null) {
      this.early.push(event) // the transport reports peers before start() returns: hold them
      return
    }
    try {
      this.execute(this.core.handle(event, wallClockUs()))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private execute(actions: readonly CoreAction[]): void {
    for (const action of actions) {
      switch (action.kind) {
        case 'setU64':
          this.transport.setU64(action.column, action.value, action.index)
          break
        case 'setBool':
          this.transport.setBool(action.column, action.value, action.index)
          break
        case 'push':
          this.transport.push()
          break
        case 'send': {
          const sent = action.large ? this.transport.sendLarge(action.bytes) : this.transport.sendSmall(action.bytes)
          sent.catch((err: Error) => this.log(`fffs: member ${this.id}: send failed: ${err.message}`))
          break
        }
        case 'deliver':
          this.deliver(action.stamp, action.payload, action.requestId)
          break
        case 'persistTrim':
          this.writeDurably('trim.json', { vid: action.vid, trim: action.trim })
          break
        case 'installView':
          this.writeDurably('view.json', { vid: action.view.vid, members: action.view.members.map((rank) => this.memberIdOfRank(rank)) })
          this.log(`fffs: member ${this.id}: installed view ${action.view.vid} [${action.view.members.map((rank) => this.memberIdOfRank(rank)).join(', ')}]`)
          break
        case 'reply':
          this.replied(action.requestId, action.stamp)
          break
        case 'reject': {
          const pending = this.pending.get(action.requestId)
          this.pending.delete(action.requestId)
          pending?.reject(new FffsError('EROFS', `member ${this.id} left the group: ${action.reason}`))
          break
        }
        case 'excluded':
          this.log(`fffs: member ${this.id}: ${action.reason}; it must restart to rejoin`)
          break
      }
    }
    this.syncIfNeeded()
    this.wake()
  }

  private deliver(stamp: HlcStamp, payload: Uint8Array, requestId: number | undefined): void {
    const kind = payload[0]
    if (kind === PAYLOAD_DATA) {
      const idLength = new DataView(payload.buffer, payload.byteOffset + 1, 4).getUint32(0, true)
      const blob = Buffer.from(payload.buffer, payload.byteOffset + 5, idLength).toString('utf8')
      const { position } = this.store.appendData(payload.subarray(5 + idLength))
      this.blobPositions.set(blob, position)
      if (requestId !== undefined) this.applied.set(requestId, Promise.resolve({ ok: true }))
      this.markAppended(stamp)
      return
    }
    if (kind !== PAYLOAD_RECORD) throw new Error(`delivered payload of unknown kind ${kind}`)
    const record = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset + 1, payload.byteLength - 1).toString('utf8')) as RecordPayload
    const seen = record.submit !== undefined ? this.dedupe.get(record.submit.clientId)?.get(record.submit.seq) : undefined
    let result: Promise<ApplyResult>
    if (seen !== undefined) {
      result = seen // a client re-sent a submit after failover: at most once
    } else {
      const mutation = this.withLogPositions(record.mutation)
      const { next } = this.store.appendRecord(stamp, mutation)
      this.applyBacklog++
      const applying = this.applyChain.then(() => this.store.apply(stamp, mutation, next))
      this.applyChain = applying.catch((err: Error) => this.fail(err)).finally(() => {
        this.applyBacklog--
        this.wake()
      })
      result = applying
      if (record.submit !== undefined) this.remember(record.submit, applying)
    }
    if (requestId !== undefined) this.applied.set(requestId, result)
    this.markAppended(stamp)
  }

  private withLogPositions(mutation: Mutation): Mutation {
    if (mutation.type !== 'version') return mutation
    const ops = mutation.ops.map((op): VersionOp => {
      if (op.op !== 'write' || !('blob' in op.data)) return op
      const position = this.blobPositions.get(op.data.blob)
      if (position === undefined) throw new Error(`version refers to blob ${op.data.blob}, never delivered here`)
      return { ...op, data: { segment: position.segment, offset: position.offset + op.data.offset } }
    })
    for (const op of mutation.ops) if (op.op === 'write' && 'blob' in op.data) this.blobPositions.delete(op.data.blob)
    return { ...mutation, ops }
  }

  /** Deterministic at every replica: the same records reach it in the same order. */
  private remember(id: SubmitId, applying: Promise<ApplyResult>): void {
    let seqs = this.dedupe.get(id.clientId)
    if (seqs === undefined) this.dedupe.set(id.clientId, (seqs = new Map()))
    for (const seq of seqs.keys()) if (seq < id.oldestPendingSeq) seqs.delete(seq)
    seqs.set(id.seq, applying)
  }

  private markAppended(stamp: HlcStamp): void {
    if (stamp > this.appendedStamp) this.appendedStamp = stamp
  }

  /** Group commit: one fdatasync covers every record appended before it. */
  private syncIfNeeded(): void {
    if (this.syncing || this.appendedStamp <= this.syncedStamp || this.stopped) return
    this.syncing = true
    const target = this.appendedStamp
    this.store.log.sync().then(
      () => {
        this.syncing = false
        this.syncedStamp = target
        this.feed({ kind: 'persisted', stamp: target })
      },
      (err: Error) => this.fail(err),
    )
  }

  private replied(requestId: number, stamp: HlcStamp): void {
    const pending = this.pending.get(requestId)
    const applied = this.applied.get(requestId)
    this.pending.delete(requestId)
    this.applied.delete(requestId)
    if (pending === undefined) return
    if (applied === undefined) {
      pending.reject(new Error(`invariant: reply to request ${requestId} before its delivery`))
      return
    }
    applied.then((result) => pending.resolve({ stamp, result }), pending.reject)
  }

  private writeDurably(name: string, value: unknown): void {
    const dir = this.config.members.find((m) => m.id === this.id)!.dataDir
    const file = path.join(dir, name)
    writeFileSync(file + '.tmp', JSON.stringify(value) + '\n')
    const fd = openSync(file + '.tmp', 'r+')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    // rename is atomic; the directory entry reaches the disk with the next log sync
    void fsp.rename(file + '.tmp', file)
  }

  private fail(err: Error): void {
    if (this.fatal !== null) return
    this.fatal = err
    this.log(`fffs: member ${this.id}: fatal: ${err.stack ?? err.message}`)
    for (const pending of this.pending.values()) pending.reject(new FffsError('EIO', `member ${this.id} failed: ${err.message}`))
    this.pending.clear()
    void this.stop().finally(() => process.exit(70))
  }

  // ---- used by ReplicaClient ----

  /** Multicasts a message in the group's total order; resolves with its stamp once durable at every member. */
  order(payload: Uint8Array): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    if (this.fatal !== null) return Promise.reject(new FffsError('EIO', `member ${this.id} failed: ${this.fatal.message}`))
    if (this.stopped) return Promise.reject(new FffsError('EIO', `member ${this.id} is stopping`))
    if (this.core.isExcluded) return Promise.reject(new FffsError('EROFS', `member ${this.id} is not in the group's view; it must restart to rejoin`))
    const requestId = this.requestNext++
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject })
      this.feed({ kind: 'submit', requestId, payload })
    })
  }

  nextBlobId(): string {
    return `${this.id}.${process.pid}.${Date.now().toString(36)}.${this.blobNext++}`
  }

  /** Every record at or below this stamp is applied here and durable at every member. */
  stableStamp(): HlcStamp {
    const stable = this.core.stableStamp()
    if (this.applyBacklog === 0) return stable
    const applied = this.store.appliedStamp
    return applied < stable ? applied : stable
  }

  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    const startedMs = Date.now()
    for (;;) {
      if (this.stableStamp() >= cut) return
      const waitedMs = Date.now() - startedMs
      if (waitedMs >= maxWaitMs || this.stopped) throw errors.notStable(`cut ${cut}`, waitedMs)
      const untilCutMs = Math.ceil((hlcPhysicalUs(cut) - wallClockUs()) / 1000) + 1
      const sleepMs = Math.max(1, Math.min(maxWaitMs - waitedMs, untilCutMs, 50))
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          this.waiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, sleepMs)
        this.waiters.add(done)
      })
    }
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer)
    this.wake()
    await this.transport.stop().catch(() => undefined)
    await this.applyChain
    await this.store.close()
  }
}

/** The Client a member serves to the mounts connected to it: reads from the local replica,
 * writes through the group's total order. */
export class ReplicaClient implements Client {
  private readonly member: Member

  constructor(member: Member) {
    this.member = member
  }

  walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.member.store.walk(components, cut)
  }
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    return this.member.store.attr(ino, cut)
  }
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.member.store.lookup(dir, name, cut)
  }
  readdir(dir: Ino, cut: HlcStamp): Promise<Array<{ name: string; ino: Ino }>> {
    return this.member.store.readdir(dir, cut)
  }
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    return this.member.store.read(attr, offset, into, lengthBytes)
  }
  versions(ino: Ino): Promise<Attr[]> {
    return this.member.store.versions(ino)
  }
  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return this.member.store.stampOfVersion(ino, version)
  }
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return this.member.store.stampAtSensorTime(ino, sensorUs)
  }
  snapshots(): Promise<Snapshot[]> {
    return this.member.store.snapshots()
  }
  async snapshot(name: string): Promise<Snapshot | null> {
    return this.member.store.snapshot(name)
  }

  /** The bytes go into the total order now (the bulk path); the version naming them follows. */
  appendData(bytes: Uint8Array): { ref: DataRef; written: Promise<void> } {
    const blob = this.member.nextBlobId()
    const id = Buffer.from(blob, 'utf8')
    const payload = new Uint8Array(5 + id.byteLength + bytes.byteLength)
    payload[0] = PAYLOAD_DATA
    new DataView(payload.buffer).setUint32(1, id.byteLength, true)
    payload.set(id, 5)
    payload.set(bytes, 5 + id.byteLength)
    const ordered = this.member.order(payload)
    return { ref: { blob, offset: 0 }, written: ordered.then(() => undefined) }
  }

  async submit(mutation: Mutation, id?: SubmitId): Promise<{ stamp: HlcStamp; ino?: Ino }> {
    const record: RecordPayload = id === undefined ? { mutation } : { mutation, submit: id }
    const json = Buffer.from(JSON.stringify(record), 'utf8')
    const payload = new Uint8Array(1 + json.byteLength)
    payload[0] = PAYLOAD_RECORD
    payload.set(json, 1)
    const { stamp, result } = await this.member.order(payload)
    if (!result.ok) throw new FffsError(result.code, result.message)
    return result.ino === undefined ? { stamp } : { stamp, ino: result.ino }
  }

  async stableFrontier(): Promise<HlcStamp> {
    return this.member.stableStamp()
  }
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    return this.member.waitStable(cut, maxWaitMs)
  }
  async close(): Promise<void> {
    // The member outlives the connections it serves.
  }
}
