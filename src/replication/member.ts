// A member of a replication group (`fffs serve`): the edges around the pure protocol core.
// It feeds the core the transport's events and a tick, and executes the core's actions:
// row writes and pushes and sends go to the transport; deliveries go to the store (appended to
// the log in delivery order, applied in order, group-committed with fdatasync, then reported
// as persisted); replies resolve the submits of the mounts connected to this member.
//
// Ordered messages carry the payloads of payload.ts (the core adds its header):
// - data: file bytes a mount wrote, multicast as they arrive (the bulk path); each replica
//   appends them to its own log and remembers where, by blob id;
// - record: a mutation; a version's writes name blobs, which each replica replaces by its own
//   log position before appending the record. Data thus crosses the network once per replica
//   and is committed by a small ordered record. Small blobs travel inside the record that
//   names them (inline), and records submitted in one turn go as one batch;
// - reconfigure: members to add. Delivered at the same point of the order everywhere, it ends
//   the epoch there (see below).
//
// Epochs. The transport connects a fixed set of members, so a member that restarts cannot
// rejoin it: members are removed by the core's view change inside an epoch, and added by a
// new epoch. Every member starts (and restarts) recovering (src/replication/recovery.ts): it
// asks the others; if a group is running it asks to join, and the group orders a reconfigure;
// if none is, a majority of the last view forms one, from the longest log of its latest view.
// Either way every member of the new epoch first holds exactly the records up to the plan's
// start stamp (fetched from the donor by state transfer, durable; a log that is not a prefix of
// the donor's is discarded first: `catchUp`), then connects the new transport.

import { promises as fsp, writeFileSync, openSync, fsyncSync, closeSync, readFileSync, renameSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { errors, FffsError, isIndexAheadOfCompactedLog } from '../errors.js'
import type { ApplyResult, Attr, DataRef, Ino, Mutation, NameBinding, SensorPick, Snapshot, VersionOp, VersionRange } from '../store/records.js'
import type { LogPosition } from '../store/segmentLog.js'
import type { DiskGuard, DiskState } from '../store/diskSpace.js'
import { Store } from '../store/store.js'
import { HLC_MAX, hlcPhysicalUs, hlcToIso, wallClockUs, type HlcStamp } from '../temporal/hlc.js'
import type { Client, SubmitId, SubmitOptions } from './client.js'
import { memberById, type GroupConfig, type GroupMember } from './config.js'
import { GroupCore, type CoreAction, type CoreEvent, type CoreStatus, type View } from './core/group.js'
import { BATCH_HEADER_BYTES, BATCH_RECORDS_MAX } from './core/message.js'
import { groupSchema } from './core/schema.js'
import { BATCH_PART_PREFIX_BYTES, BATCH_PAYLOAD_HEADER_BYTES, decodeBatchPayload, decodeDataPayload, decodeReconfigurePayload, decodeRecordPayload, encodeBatchPayload, encodeDataPayload, encodeReconfigurePayload, encodeRecordPayload, PAYLOAD_BATCH, PAYLOAD_DATA, PAYLOAD_RECONFIGURE, type RecordPayload } from './payload.js'
import { waitForPlanMembers } from './planBarrier.js'
import { nextEpochPlan, planEpoch, type AcceptedView, type EpochPlan, type MemberReport } from './recovery.js'
import { describeTransfer, formatBytes, type TransferStatus } from './readiness.js'
import { ExportAhead, recordDigestAt, TransferImport, TransferProgress, transferSizeEstimate, type HeldBlob, type TransferBatch, type TransferCursor } from './transfer.js'
import { NativeTransport, pageCacheDropper, pageOffsetFinder } from './transport/native.js'
import { TRANSPORT_DEFAULTS, type Transport } from './transport/types.js'
import type { HistoryState } from './history.js'
import { MemberUpkeep } from './upkeep.js'
import type { MemberView, ViewSource } from './viewWatch.js'
import { connect, MemberBehindError, type Connection, type Incoming, type Reply } from './wire.js'

const TICK_MS = 20
const RECOVERY_POLL_MS = 300
const RECOVERY_GRACE_MS = 2_000 // wait this long for every member before forming a group of a majority
const PEER_REQUEST_TIMEOUT_MS = 5_000
const PLAN_POLL_MS = 200 // how often a member starting an epoch asks the others whether they are ready
const TRANSFER_LOG_EVERY_MS = 2_000
const TRANSFER_ANNOUNCE_BYTES = 64 * 1024 * 1024 // a transfer this large is announced (with its size) when it starts
// Before asking to join a running group, a member fetches what it misses from a running member
// while the group goes on (rounds, each up to the stable frontier then); it asks once a round
// brought less than this, so the join's own transfer, during which the group's epoch changes
// and writes wait, is small.
const PRE_JOIN_GAP_BYTES = 32 * 1024 * 1024
const PRE_JOIN_ROUNDS_MAX = 8
const HOLD_WHILE_RECOVERING_MS = 5_000 // a write waits this long for a running group, then EROFS
const READS_DRAIN_MAX_MS = 5_000 // before discarding the store, reads already running get this long to finish
const CATCH_UP_WAIT_MAX_MS = 1_000 // a read at a cut this member does not hold yet waits this long, then goes elsewhere
const DISCARDED_PREFIX = 'discarded-' // a discarded store's files, in the data directory until deleted
const LOG_CACHE_KEEP_BYTES = 32 * 1024 * 1024 // newest synced log bytes kept in the page cache (SegmentLog.dropSyncedPages)
// Records submitted in one turn of the event loop leave as one ordered message (group commit
// upstream of the log): one message, one row update and one reply per batch instead of per
// record. A batch stays on the small-message channel; a record that alone exceeds it goes alone.
const BATCH_BYTES_MAX = TRANSPORT_DEFAULTS.smcSlotSizeBytes - 64 - BATCH_HEADER_BYTES
// Blobs up to this size are not ordered on their own: the member holds them until the version
// naming them is submitted and sends them inside that record's message (one ordered message,
// one round of ordering and persistence per small version instead of two in sequence).
const INLINE_DATA_MAX_BYTES = 4096

interface Request {
  readonly payload: Uint8Array
  readonly after?: HlcStamp // the submitting client's clock (HLC piggybacking)
  readonly records: number // stamps the payload takes: > 1 for a PAYLOAD_BATCH
  readonly resolve: (value: Ordered) => void
  readonly reject: (err: Error) => void
  delivered?: Ordered | { readonly stamp: HlcStamp; readonly results: Promise<ApplyResult[]> }
}

/** An ordered message's first stamp and the results of its records (one, or a batch's, in order). */
interface Ordered {
  readonly stamp: HlcStamp
  readonly results: ApplyResult[]
}

/** A record waiting for the end of this turn of the event loop to be ordered in a batch. */
interface Queued {
  readonly payload: Uint8Array
  readonly after?: HlcStamp
  readonly resolve: (value: { stamp: HlcStamp; result: ApplyResult }) => void
  readonly reject: (err: Error) => void
}

/** A state-transfer request (`member.fetch`): stamps as decimal strings. */
interface FetchArgs {
  readonly after: string
  readonly upto: string | null // null: the donor's stable frontier (fixed by its first reply)
  readonly cursor: TransferCursor | null
  readonly withBlobs: boolean
}

interface FetchReply {
  readonly batch: TransferBatch
  readonly upto: string
  readonly totalBytes?: number // first reply only: an estimate of the whole transfer
}

interface Epoch {
  readonly plan: EpochPlan
  readonly transport: Transport
  core: GroupCore | null // null while the transport connects
  readonly early: CoreEvent[] // events before the core started
  /** A reconfigure was delivered: the epoch ends once every member delivered it too. */
  ending: { readonly next: EpochPlan; readonly vid: number; readonly viewSeq: number; readonly sinceMs: number } | null
}

export type Phase = 'recovering' | 'starting' | 'running' | 'stopped'

export interface MemberOptions {
  readonly log?: (line: string) => void
}

/** What `fffs status` shows of one member (stamps are bigints: serveClient sends them as decimal strings). */
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

export class Member {
  readonly id: number
  readonly config: GroupConfig
  readonly store: Store
  readonly client: ReplicaClient
  private readonly self: GroupMember
  private readonly log: (line: string) => void
  private phase: Phase = 'recovering'
  private epoch: Epoch | null = null
  private lastView: { vid: number; memberIds: number[] }
  private accepted: AcceptedView | null // the last view-change value accepted (accepted.json)
  private starting: { vid: number; ready: boolean } | null = null // the plan startEpoch works on
  private transfer: TransferProgress | null = null // the state transfer under way
  private catchUpChain: Promise<unknown> = Promise.resolve() // one state transfer into the store at a time
  private readonly exportAhead: ExportAhead // the batches of transfers this member serves, read ahead
  /** Retention, segment GC and the disk (upkeep.ts). */
  readonly upkeep: MemberUpkeep
  private storeReplaced = false // the store was discarded and is not yet caught up: reads refused
  private storeSwapping = false // the store is closed and reopened empty (discardStore): even prefix reads refused
  private readsRunning = 0
  private readonly blobPositions = new Map<string, { position: LogPosition; sizeBytes: number }>() // delivered data not yet named by a version
  private readonly inlineHeld = new Map<string, Uint8Array>() // small blobs a mount sent, held for the record that names them
  private readonly requests = new Map<number, Request>()
  private batchQueue: Queued[] = [] // records submitted in this turn of the event loop (orderRecord)
  private readonly submittedIds = new Set<number>() // requests handed to a core (possibly ordered): never refused locally
  private readonly dedupe = new Map<string, Map<number, Promise<ApplyResult>>>() // clientId -> seq -> result
  private readonly joinsOrdered = new Set<number>() // reconfigures submitted and not yet delivered
  private readonly waiters = new Set<() => void>()
  private readonly viewListeners = new Set<(view: MemberView) => void>()
  private readonly peers = new Map<number, Promise<Connection>>()
  private applyChain: Promise<unknown> = Promise.resolve()
  private applyBacklog = 0
  private appendedStamp: HlcStamp = 0n
  private syncedStamp: HlcStamp = 0n
  private syncing = false
  private pushPending: Epoch | null = null // the epoch whose row has unpushed changes (schedulePush)
  private readonly tickTimer: NodeJS.Timeout
  private requestNext = 1
  private blobNext = 1
  private fatal: Error | null = null
  private stableHigh: HlcStamp = 0n // the highest stamp this member has found stable

  private constructor(config: GroupConfig, self: GroupMember, store: Store, disk: DiskGuard, options: MemberOptions) {
    this.config = config
    this.id = self.id
    this.self = self
    this.store = store
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'))
    this.appendedStamp = this.syncedStamp = store.appliedStamp
    const dropPages = pageCacheDropper()
    if (dropPages !== null) store.log.dropSyncedPages(dropPages, LOG_CACHE_KEEP_BYTES)
    const pageOffsetOf = pageOffsetFinder() // blobs arrive in page-aligned mappings (RDMC): written without a copy
    if (pageOffsetOf !== null) store.log.writeLargePayloadsDirect(pageOffsetOf)
    this.lastView = readView(self.dataDir) ?? { vid: 0, memberIds: config.members.map((m) => m.id) }
    this.accepted = readJson<AcceptedView>(path.join(self.dataDir, 'accepted.json'))
    this.client = new ReplicaClient(this)
    this.exportAhead = new ExportAhead(store)
    this.upkeep = new MemberUpkeep({
      store,
      config,
      memberId: this.id,
      disk,
      submit: async (mutation) => void (await this.client.submit(mutation)),
      leads: () => this.phase === 'running' && Math.min(...this.lastView.memberIds) === this.id,
      running: () => this.phase === 'running',
      log: this.log,
    })
    this.upkeep.start()
    this.tickTimer = setInterval(() => this.feedCore({ kind: 'tick' }), TICK_MS)
  }

  /** Opens the store; the member then recovers into a running group (call `recover` once its wire serves). */
  static async open(config: GroupConfig, id: number, options: MemberOptions = {}): Promise<Member> {
    const self = memberById(config, id)
    await fsp.mkdir(self.dataDir, { recursive: true })
    for (const name of await fsp.readdir(self.dataDir)) {
      if (name.startsWith(DISCARDED_PREFIX)) await fsp.rm(path.join(self.dataDir, name), { recursive: true, force: true }) // a crash left it
    }
    const disk = await MemberUpkeep.measureDisk(self.dataDir) // on a full disk its reserve file is given back: the store can open
    const store = new Store(self.dataDir, config.shardRole !== undefined ? { role: config.shardRole } : {})
    await store.open().catch(async (err: unknown) => {
      // The index got ahead of a log whose start segment GC deleted (a machine crash), or a
      // full transfer was cut short: this replica is fetched whole from the group.
      if (!isIndexAheadOfCompactedLog(err)) throw err
      ;(options.log ?? ((line: string) => process.stderr.write(line + '\n')))(`fffs: member ${id}: ${(err as Error).message}; starting empty, to be fetched whole from the group`)
      await moveAside(self.dataDir)
      await store.open()
    })
    return new Member(config, self, store, disk, options)
  }

  private get stopped(): boolean {
    return this.phase === 'stopped'
  }

  private setPhase(phase: Phase): void {
    this.phase = phase
    this.announceView()
  }

  /** What clients that follow the group's views watch (viewWatch.ts): this member's phase and last view. */
  readonly views: ViewSource = {
    current: () => ({ memberId: this.id, phase: this.phase, vid: this.lastView.vid, memberIds: this.lastView.memberIds }),
    subscribe: (listener) => {
      this.viewListeners.add(listener)
      return () => void this.viewListeners.delete(listener)
    },
  }

  private announceView(): void {
    const view = this.views.current()
    for (const listener of this.viewListeners) listener(view)
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
      phase: this.phase,
      core: epoch?.core?.status() ?? null,
      memberIds: [...memberIds],
      appliedStamp: this.store.appliedStamp.toString(),
      rows,
      lastView: this.lastView,
      starting: this.starting,
      transfer: this.transfer?.status() ?? null,
      history: this.upkeep.state(),
      disk: this.upkeep.lastDisk,
    }
  }

  // ---- epochs ----

  /** Finds or forms a running group and joins it. Runs until this member is running (or stopped). */
  async recover(): Promise<void> {
    const startedMs = Date.now()
    let lastJoinAskMs = 0
    let preJoinedFrom: number | null = null
    while (this.phase === 'recovering') {
      const reports = await this.reports()
      if (this.phase !== 'recovering') return
      const running = reports.find((r) => r.phase === 'running')
      if (running !== undefined) {
        if (preJoinedFrom !== running.id) {
          preJoinedFrom = running.id
          await this.catchUpBeforeJoining(running.id)
          continue
        }
        if (Date.now() - lastJoinAskMs > 1000) {
          lastJoinAskMs = Date.now()
          await this.peerRequest(running.id, 'member.join', { id: this.id }).catch((err: Error) => this.log(`fffs: member ${this.id}: join via member ${running.id}: ${err.message}`))
        }
      } else {
        const everyone = reports.filter((r) => r.phase === 'recovering').length === this.config.members.length
        const plan = planEpoch(reports, this.id, everyone || Date.now() - startedMs > RECOVERY_GRACE_MS)
        if (plan !== null) {
          this.log(`fffs: member ${this.id}: forming view ${plan.vid} of members ${plan.memberIds.join(', ')} from member ${plan.donorId}'s log`)
          for (const id of plan.memberIds) if (id !== this.id) void this.peerRequest(id, 'member.epoch', plan).catch(() => undefined)
          await this.startEpoch(plan)
          continue
        }
      }
      await sleep(RECOVERY_POLL_MS)
    }
  }

  private async reports(): Promise<MemberReport[]> {
    const others = this.config.members.filter((m) => m.id !== this.id)
    let refusals = 0
    const answers = await Promise.all(
      others.map((m) =>
        this.peerRequest(m.id, 'member.hello', {}).then(
          (r) => r as MemberReport,
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

  private report(): MemberReport {
    return {
      id: this.id,
      phase: this.phase,
      lastStamp: this.store.appliedStamp.toString(),
      lastVid: this.lastView.vid,
      lastViewIds: this.lastView.memberIds,
      ...(this.accepted !== null ? { accepted: this.accepted } : {}),
      ...(this.starting !== null ? { starting: this.starting } : {}),
      ...(this.transfer !== null ? { transfer: this.transfer.status() } : {}),
    }
  }

  /** Catches up to the plan's start stamp from its donor, makes it durable, connects the epoch's transport. */
  private async startEpoch(plan: EpochPlan): Promise<void> {
    if (this.phase === 'stopped') return
    this.setPhase('starting')
    this.starting = { vid: plan.vid, ready: false }
    try {
      await this.settleStore()
      const start = BigInt(plan.startStamp)
      const mustCatchUp = (plan.catchUpIds === undefined || plan.catchUpIds.includes(this.id)) && plan.donorId !== this.id
      if (mustCatchUp) await this.catchUp(plan.donorId, { upto: start, epochStart: true })
      if (this.store.appliedStamp > start) throw new Error(`this log reaches ${this.store.appliedStamp}, past the plan's ${start}`)
      await this.store.log.sync()
      this.lastView = { vid: plan.vid, memberIds: [...plan.memberIds] }
      this.writeDurably('view.json', this.lastView)
      this.starting = { vid: plan.vid, ready: true }
      // Connect only once every member holds the start: a transfer takes what it takes, the
      // connect timeout bounds the connection alone.
      await waitForPlanMembers(plan, {
        selfId: this.id,
        ask: (id) => this.peerRequest(id, 'member.hello', {}).then((r) => r as MemberReport, () => null),
        tell: (id) => void this.peerRequest(id, 'member.epoch', plan).catch(() => undefined),
        stallMs: this.transferStallMs,
        pollMs: PLAN_POLL_MS,
        abandoned: () => this.phase !== 'starting' || this.starting?.vid !== plan.vid,
      })
      const transport = this.newTransport(plan.memberIds)
      const epoch: Epoch = { plan, transport, core: null, early: [], ending: null }
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
        if (this.epoch === epoch) this.log(`fffs: member ${this.id}: suspect member ${plan.memberIds[rank]} (${reason})`)
        feed({ kind: 'suspect', rank })
      })
      try {
        await transport.start()
      } catch (err) {
        this.epoch = null
        await transport.stop().catch(() => undefined)
        throw err
      }
      if (this.epoch !== epoch || this.phase !== 'starting') return
      const n = plan.memberIds.length
      epoch.core = new GroupCore({
        selfRank: plan.memberIds.indexOf(this.id),
        epochSize: n,
        view: { vid: plan.vid, members: Array.from({ length: n }, (_, rank) => rank) },
        sst: transport.sst,
        lastStamp: start,
        nowUs: wallClockUs(),
        smallMessageMaxBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes - 64,
      })
      this.setPhase('running')
      this.starting = null
      this.storeReplaced = false // caught up (or the donor: its log is the epoch's)
      this.log(`fffs: member ${this.id}: running in view ${plan.vid} [${plan.memberIds.join(', ')}] from ${start} (log at ${this.store.appliedStamp})`)
      this.execute(epoch.core.start())
      for (const event of epoch.early.splice(0)) this.feedCore(event)
      this.resumeRequests()
    } catch (err) {
      if (this.stopped) return
      this.starting = null
      this.log(`fffs: member ${this.id}: could not start view ${plan.vid}: ${(err as Error).message}; recovering`)
      this.setPhase('recovering')
      void this.recover()
    }
  }

  /** After an epoch change: requests delivered before it are durable everywhere; the rest go again. */
  private resumeRequests(): void {
    for (const [requestId, request] of this.requests) {
      if (request.delivered !== undefined) this.replied(requestId)
      else this.submitToCore(requestId, request.payload, request.after, request.records)
    }
  }

  /** A reconfigure was delivered: this member stops delivering the epoch; the epoch's transport
   * stays up until every member delivered the reconfigure too (they need this member's rows to
   * see it stable), then the next epoch starts with the joiners. */
  private beginEpochEnd(stamp: HlcStamp, view: View, viewSeq: number, addIds: readonly number[]): void {
    const epoch = this.epoch!
    // The view the reconfigure was delivered in (a view change may have installed the next one in the same step).
    const next = nextEpochPlan(view, epoch.plan.memberIds, addIds, stamp)
    epoch.ending = { next, vid: view.vid, viewSeq, sinceMs: Date.now() }
    for (const id of addIds) this.joinsOrdered.delete(id)
    this.log(`fffs: member ${this.id}: reconfigure at ${stamp}: next view ${next.vid} [${next.memberIds.join(', ')}]`)
  }

  private finishEpochEndIfDone(): void {
    const epoch = this.epoch
    if (epoch?.ending == null || epoch.core === null) return
    const waitedMs = Date.now() - epoch.ending.sinceMs
    if (!epoch.core.deliveredEverywhere(epoch.ending.viewSeq, epoch.ending.vid) && waitedMs < this.config.transport.suspectTimeoutMs * 3) return
    const plan = epoch.ending.next
    this.flushPush()
    this.epoch = null
    this.setPhase('starting')
    // Not inside the transport's event callback that got us here: stop it after.
    setImmediate(() => void (async () => {
      await epoch.transport.stop().catch(() => undefined)
      if (plan.donorId === this.id) {
        for (const id of plan.catchUpIds ?? []) void this.peerRequest(id, 'member.epoch', plan).catch(() => undefined)
      }
      await this.startEpoch(plan)
    })())
  }

  private newTransport(memberIds: readonly number[]): Transport {
    const members = memberIds.map((id) => this.config.members.find((m) => m.id === id)!)
    return new NativeTransport({
      selfId: this.id,
      members: members.map((m) => ({ id: m.id, host: m.host, port: m.transportPort })),
      schema: groupSchema(members.length),
      provider: this.config.transport.provider,
      ...(this.config.transport.iface !== undefined ? { iface: this.config.transport.iface } : {}),
      smcSlotSizeBytes: TRANSPORT_DEFAULTS.smcSlotSizeBytes,
      smcWindowSlots: TRANSPORT_DEFAULTS.smcWindowSlots,
      rdmcBlockSizeBytes: TRANSPORT_DEFAULTS.rdmcBlockSizeBytes,
      heartbeatIntervalMs: this.config.transport.heartbeatIntervalMs,
      suspectTimeoutMs: this.config.transport.suspectTimeoutMs,
      connectTimeoutMs: this.config.transport.connectTimeoutMs,
      latencySpinUs: this.config.transport.latencySpinUs,
    })
  }

  // ---- member-to-member requests (on the client port) ----

  /** Serves 'member.*' requests; undefined for anything else. */
  handlePeerRequest(request: Incoming): Promise<Reply> | undefined {
    switch (request.method) {
      case 'member.hello':
        return Promise.resolve({ result: this.report() })
      case 'member.join':
        return Promise.resolve({ result: { accepted: this.orderJoin((request.args as { id: number }).id) } })
      case 'member.epoch': {
        const plan = request.args as EpochPlan
        if (this.phase === 'recovering' && plan.vid > this.lastView.vid && plan.memberIds.includes(this.id)) void this.startEpoch(plan)
        return Promise.resolve({ result: { phase: this.phase } })
      }
      case 'member.fetch':
        return this.serveFetch(request.args as FetchArgs)
      case 'member.digest':
        return this.withStore({ prefixIsEnough: true }, async (store) => {
          if (this.phase !== 'running') await this.settleStore()
          return { result: { digest: await recordDigestAt(store, BigInt((request.args as { stamp: string }).stamp)) } }
        })
      default:
        return undefined
    }
  }

  private orderJoin(joinerId: number): boolean {
    const core = this.epoch?.core
    if (this.phase !== 'running' || core == null || core.isWedged || this.joinsOrdered.has(joinerId)) return false
    if (!this.config.members.some((m) => m.id === joinerId)) return false
    this.joinsOrdered.add(joinerId)
    this.order(encodeReconfigurePayload([joinerId])).catch(() => this.joinsOrdered.delete(joinerId))
    return true
  }

  /**
   * A batch of state transfer (transfer.ts). `upto` null: up to this member's stable frontier
   * (a member catching up before it joins; what is stable is final whatever the group does
   * next). Held blobs only at an epoch's start: versions of the next epoch name them.
   */
  private serveFetch(args: FetchArgs): Promise<Reply> {
    // A log being refetched is a prefix of the donor's: this member may be a donor meanwhile.
    return this.withStore({ prefixIsEnough: true }, async (store) => {
      if (this.phase !== 'running') await this.settleStore()
      const after = BigInt(args.after)
      const upto = args.upto !== null ? BigInt(args.upto) : this.stableStamp()
      const blobs: HeldBlob[] | null = args.withBlobs ? [...this.blobPositions].map(([id, held]) => ({ id, ...held })) : null
      const { batch, body } = await this.exportAhead.next({ after, upto, cursor: args.cursor, blobs })
      const totalBytes = args.cursor === null ? await transferSizeEstimate(store, after, upto, blobs ?? []) : undefined
      const reply: FetchReply = { batch, upto: upto.toString(), ...(totalBytes !== undefined ? { totalBytes } : {}) }
      return { result: reply, body }
    })
  }

  /**
   * Fetches from a running member while the group goes on, in rounds up to its stable frontier,
   * until a round brings little: the join that follows then transfers only that little while
   * the group changes epoch. A failure here costs nothing but time: the join's transfer fetches
   * whatever is still missing.
   */
  private async catchUpBeforeJoining(donorId: number): Promise<void> {
    try {
      for (let round = 0; round < PRE_JOIN_ROUNDS_MAX && this.phase === 'recovering'; round++) {
        const fetchedBytes = await this.catchUp(donorId, { upto: null, epochStart: false })
        if (fetchedBytes < PRE_JOIN_GAP_BYTES) return
      }
    } catch (err) {
      if (!this.stopped) this.log(`fffs: member ${this.id}: catching up from member ${donorId} before joining: ${(err as Error).message}`)
    }
  }

  /**
   * Holds exactly the donor's records up to `upto` afterwards (null: up to the donor's stable
   * frontier, before a join). A log that is a prefix of the donor's is extended. One that is not
   * is discarded and everything fetched (Derecho truncates to the last shared record; this store
   * cannot drop a suffix, so it starts over): the donor does not hold its last record, which a
   * group restarted without this member went on without (delivered and persisted here, never
   * acknowledged: that needs every member of the view). The donor holds the record or not by
   * stamp and digest: the stamp alone can be reused. Returns the bytes fetched. One catch-up
   * at a time: a plan arriving during one before a join waits for it (it stops early).
   */
  private catchUp(donorId: number, options: { upto: HlcStamp | null; epochStart: boolean }): Promise<number> {
    const run = this.catchUpChain.then(async () => {
      const last = this.store.appliedStamp
      if (last > 0n && !(await this.donorHolds(donorId, last))) {
        this.log(`fffs: member ${this.id}: member ${donorId} does not hold this log's last record (${last}): discarding this log, fetching all of member ${donorId}'s`)
        await this.discardStore()
        return this.fetchFrom(donorId, 0n, options)
      }
      return this.fetchFrom(donorId, last, options)
    })
    this.catchUpChain = run.catch(() => undefined)
    return run
  }

  /** Whether the donor's log holds this log's record at `stamp`, compared by digest (each side reads its own). */
  private async donorHolds(donorId: number, stamp: HlcStamp): Promise<boolean> {
    const [mine, theirs] = await Promise.all([
      recordDigestAt(this.store, stamp),
      this.peerCall(donorId, 'member.digest', { stamp: stamp.toString() }, this.transferStallMs).then(({ result }) => (result as { digest: string | null }).digest),
    ])
    if (mine === null) throw new Error(`invariant: the log has no record at its applied stamp ${stamp}`)
    return theirs === mine
  }

  /**
   * State transfer: every record after `after` up to `upto` from the donor (transfer.ts),
   * appended, applied and durable here, and at an epoch's start the data the donor holds for
   * versions not yet ordered. The next batch is requested before the current one is imported.
   * A batch that does not come within the stall bound ends it (the donor died or hangs).
   * Before a join (not epochStart) it stops early once this member leaves recovering.
   */
  private async fetchFrom(donorId: number, after: HlcStamp, options: { upto: HlcStamp | null; epochStart: boolean }): Promise<number> {
    const progress = (this.transfer = new TransferProgress(donorId))
    const imported = new TransferImport(this.store, (stamp, message) => this.log(`fffs: member ${this.id}: transferred record ${stamp} failed here as at the donor: ${message}`))
    const request = (upto: string | null, cursor: TransferCursor | null): Promise<{ result: unknown; body: Buffer }> => {
      const args: FetchArgs = { after: after.toString(), upto, cursor, withBlobs: options.epochStart }
      const reply = this.peerCall(donorId, 'member.fetch', args, this.transferStallMs)
      reply.catch(() => undefined) // awaited below, or dropped when the transfer stops early
      return reply
    }
    const stopsEarly = (): boolean => this.stopped || (!options.epochStart && this.phase !== 'recovering')
    let complete = false
    try {
      let pending = request(options.upto?.toString() ?? null, null)
      for (;;) {
        const { result, body } = await pending
        const reply = result as FetchReply
        if (reply.totalBytes !== undefined) {
          progress.expect(reply.totalBytes)
          if (reply.totalBytes >= TRANSFER_ANNOUNCE_BYTES) this.log(`fffs: member ${this.id}: ${describeTransfer(progress.status())}`)
        }
        if (!reply.batch.done) pending = request(reply.upto, reply.batch.cursor)
        await imported.take(reply.batch, body)
        progress.update(imported.records, imported.bytes)
        const line = progress.lineIfDue(TRANSFER_LOG_EVERY_MS)
        if (line !== null) this.log(`fffs: member ${this.id}: ${line}`)
        if (reply.batch.done) break
        if (stopsEarly()) break
      }
      complete = imported.complete
      await imported.finish()
    } finally {
      this.transfer = null
    }
    for (const [id, blob] of imported.blobs) this.blobPositions.set(id, blob)
    this.appendedStamp = this.syncedStamp = this.store.appliedStamp
    if (complete) this.storeReplaced = false
    const { elapsedMs, rateBytesPerS } = progress.status()
    this.log(`fffs: member ${this.id}: state transfer from member ${donorId}: ${imported.records} records, ${formatBytes(imported.bytes)} in ${(elapsedMs / 1000).toFixed(1)} s (${formatBytes(rateBytesPerS)}/s)${complete ? '' : ', stopped early'}, now at ${this.store.appliedStamp}`)
    return imported.bytes
  }

  /** How long a view start or a transfer waits for a peer that makes no progress. */
  private get transferStallMs(): number {
    return this.config.transport.connectTimeoutMs
  }

  /**
   * Replaces the store by an empty one, durably: the index directory is moved away first (a
   * crash then leaves the log, and opening replays it), then the segments (a crash leaves an
   * empty store); each step is made durable before the next, and the files are deleted after.
   * Any state in between is a prefix of some order this member may hold: the old log, nothing,
   * or (once fetching) a prefix of the donor's. Reads are refused until a catch-up completes:
   * the store no longer holds what this member called stable. What the discarded log answered
   * is forgotten: the submit results kept for deduplication (state transfer does not carry
   * them either), data not yet named by a version, and requests delivered into it (refused:
   * their records may or may not be in the group's order).
   */
  private async discardStore(): Promise<void> {
    this.storeReplaced = true
    this.storeSwapping = true
    const drainStartedMs = Date.now()
    while (this.readsRunning > 0 && Date.now() - drainStartedMs < READS_DRAIN_MAX_MS) await sleep(10)
    this.exportAhead.clear() // read from the log being discarded
    await this.store.close()
    const trash = await moveAside(this.self.dataDir)
    await this.store.open()
    this.storeSwapping = false
    this.appendedStamp = this.syncedStamp = this.store.appliedStamp
    this.blobPositions.clear()
    this.dedupe.clear()
    for (const [requestId, request] of this.requests) {
      if (request.delivered === undefined) continue
      this.requests.delete(requestId)
      this.submittedIds.delete(requestId)
      request.reject(new FffsError('EIO', `member ${this.id} discarded its log, which held this request's record; the group may or may not have ordered it`))
    }
    void fsp.rm(trash, { recursive: true, force: true }).catch((err: Error) => this.log(`fffs: member ${this.id}: deleting ${trash}: ${err.message}`))
  }

  /**
   * Runs a read of the local store. Refused (MemberBehindError: the client asks another member)
   * while the store is replaced (discardStore), unless a prefix of the group's log will do.
   */
  async withStore<T>(options: { prefixIsEnough?: boolean }, read: (store: Store) => Promise<T> | T): Promise<T> {
    if (this.storeSwapping || (this.storeReplaced && options.prefixIsEnough !== true)) {
      throw new MemberBehindError(`member ${this.id} is replacing its replica (its log had records the group went on without)`)
    }
    this.readsRunning++
    try {
      return await read(this.store)
    } finally {
      this.readsRunning--
    }
  }

  private peerRequest(id: number, method: string, args: unknown): Promise<unknown> {
    return this.peerCall(id, method, args).then((r) => r.result)
  }

  private async peerCall(id: number, method: string, args: unknown, timeoutMs = PEER_REQUEST_TIMEOUT_MS): Promise<{ result: unknown; body: Buffer }> {
    let connecting = this.peers.get(id)
    if (connecting === undefined) {
      const peer = this.config.members.find((m) => m.id === id)!
      connecting = connect(peer.host, peer.clientPort, this.config.key, PEER_REQUEST_TIMEOUT_MS, {
        heartbeatIntervalMs: this.config.clients.heartbeatIntervalMs,
        deadPeerMs: this.config.clients.deadPeerMs,
        onRefused: (address, reason) => this.log(`fffs: member ${this.id}: refused by ${address}: ${reason}`),
      })
      this.peers.set(id, connecting)
      connecting.then(
        (connection) => connection.onClose(() => this.peers.delete(id)),
        () => this.peers.delete(id),
      )
    }
    const connection = await connecting
    return connection.request(method, args, { timeoutMs })
  }

  // ---- the loop ----

  private feedCore(event: CoreEvent): void {
    const core = this.epoch?.core
    if (this.phase !== 'running' || core == null) return
    try {
      this.execute(core.handle(event, wallClockUs()))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private execute(actions: readonly CoreAction[]): void {
    const epoch = this.epoch!
    for (const action of actions) {
      if (this.epoch !== epoch) break // a reconfigure ended the epoch: the rest belongs to no one
      switch (action.kind) {
        case 'setU64':
          epoch.transport.setU64(action.column, action.value, action.index)
          break
        case 'setBool':
          epoch.transport.setBool(action.column, action.value, action.index)
          break
        case 'push':
          this.schedulePush(epoch)
          break
        case 'send': {
          // The core encodes every send afresh and never touches the bytes again: hand them over
          // (the sender's own delivery is then this buffer, not a copy).
          const sent = action.large ? epoch.transport.sendLarge(action.bytes, { handOver: true }) : epoch.transport.sendSmall(action.bytes)
          sent.catch((err: Error) => {
            if (this.epoch === epoch) this.log(`fffs: member ${this.id}: send failed: ${err.message}`)
          })
          break
        }
        case 'deliver':
          // After a reconfigure, nothing more of the epoch is delivered; own requests go again in the next.
          if (epoch.ending === null) this.deliver(action.stamp, action.records ?? 1, action.view, action.viewSeq, action.payload, action.requestId)
          break
        case 'persistTrim':
          this.writeDurably('trim.json', { vid: action.vid, trim: action.trim })
          break
        case 'persistAccepted':
          this.accepted = { vid: action.vid + 1, ballot: action.ballot.toString(), memberIds: action.members.map((rank) => epoch.plan.memberIds[rank]!) }
          this.writeDurably('accepted.json', this.accepted)
          break
        case 'installView': {
          const memberIds = action.view.members.map((rank) => epoch.plan.memberIds[rank]!)
          this.lastView = { vid: action.view.vid, memberIds }
          this.writeDurably('view.json', this.lastView)
          this.log(`fffs: member ${this.id}: installed view ${action.view.vid} [${memberIds.join(', ')}]`)
          this.announceView()
          break
        }
        case 'reply':
          this.replied(action.requestId)
          break
        case 'reject': {
          const request = this.requests.get(action.requestId)
          this.requests.delete(action.requestId)
          this.submittedIds.delete(action.requestId)
          request?.reject(new FffsError('EROFS', `member ${this.id} left the group: ${action.reason}`))
          break
        }
        case 'excluded':
          this.log(`fffs: member ${this.id}: ${action.reason}; rejoining`)
          this.epoch = null
          this.setPhase('recovering')
          setImmediate(() => void epoch.transport.stop().catch(() => undefined))
          void this.recover()
          break
      }
    }
    this.syncIfNeeded()
    this.finishEpochEndIfDone()
    this.wake()
  }

  /**
   * Row pushes are coalesced: one per turn of the event loop, after every event of that turn
   * (a burst of delivered messages, row changes, persistence reports) has been fed to the core.
   * A push sends the whole row and costs a write to every peer; pushing per event made it
   * the largest single cost of a member under many small commits. Deferring a push only
   * delays what peers learn: every value pushed later is at least as far along, and anything
   * that must be durable before peers see it (persistAccepted, persistTrim) was written
   * synchronously when its action ran, before this push.
   */
  private schedulePush(epoch: Epoch): void {
    if (this.pushPending === epoch) return
    this.flushPush()
    this.pushPending = epoch
    setImmediate(() => this.flushPush())
  }

  /** Pushes the row now if a push is pending (also before an epoch's transport stops: peers wait for its last rows). */
  private flushPush(): void {
    const epoch = this.pushPending
    this.pushPending = null
    if (epoch === null || this.phase === 'stopped') return
    try {
      epoch.transport.push()
    } catch (err) {
      if (this.epoch === epoch) this.fail(err as Error) // a stopped transport of an epoch already left: nothing to tell
    }
  }

  private deliver(stamp: HlcStamp, records: number, view: View, viewSeq: number, payload: Uint8Array, requestId: number | undefined): void {
    const kind = payload[0]
    const request = requestId === undefined ? undefined : this.requests.get(requestId)
    if (kind === PAYLOAD_DATA) {
      const { blob, crc, bytes } = decodeDataPayload(payload)
      const { position, written } = this.store.appendData(bytes, crc)
      // Once in the log, nothing reads the received buffer again (the core let go of it at
      // delivery; positions, not bytes, are kept): the transport may reuse its memory.
      const transport = this.epoch?.transport
      if (transport?.recycle !== undefined) written.then(() => transport.recycle!(payload), () => undefined)
      this.blobPositions.set(blob, { position, sizeBytes: bytes.byteLength })
      if (request !== undefined) request.delivered = { stamp, results: [{ ok: true }] }
      this.markAppended(stamp)
      return
    }
    if (kind === PAYLOAD_RECONFIGURE) {
      if (request !== undefined) request.delivered = { stamp, results: [{ ok: true }] }
      this.beginEpochEnd(stamp, view, viewSeq, decodeReconfigurePayload(payload))
      return
    }
    if (kind === PAYLOAD_BATCH) {
      const parts = decodeBatchPayload(payload)
      if (parts.length !== records) throw new Error(`invariant: a batch of ${parts.length} records delivered with ${records} stamps`)
      const results = parts.map((part, i) => this.deliverRecord(stamp + BigInt(i), part))
      if (request !== undefined) request.delivered = { stamp, results: Promise.all(results) }
      this.markAppended(stamp + BigInt(records - 1))
      return
    }
    const result = this.deliverRecord(stamp, payload)
    if (request !== undefined) request.delivered = { stamp, results: result.then((r) => [r]) }
    this.markAppended(stamp)
  }

  /** Appends one record (PAYLOAD_RECORD or _INLINE) at `stamp` and applies it in order; resolves with its result. */
  private deliverRecord(stamp: HlcStamp, payload: Uint8Array): Promise<ApplyResult> {
    const { record, inlineBytes } = decodeRecordPayload(payload)
    const seen = record.submit !== undefined ? this.dedupe.get(record.submit.clientId)?.get(record.submit.seq) : undefined
    let result: Promise<ApplyResult>
    if (seen !== undefined) {
      result = seen // a client re-sent a submit after failover: at most once
    } else {
      // The record's own small blobs go into the log right before it, as delivered data would.
      for (const [blob, bytes] of inlineBytes) this.blobPositions.set(blob, { position: this.store.appendData(bytes).position, sizeBytes: bytes.byteLength })
      const mutation = this.withLogPositions(record.mutation)
      const logged = this.store.appendRecord(stamp, mutation)
      this.applyBacklog++
      const applying = this.applyChain.then(() => this.store.apply(stamp, mutation, logged))
      this.applyChain = applying.catch((err: Error) => this.fail(err)).finally(() => {
        this.applyBacklog--
        this.wake()
      })
      result = applying
      if (record.submit !== undefined) this.remember(record.submit, applying)
    }
    return result
  }

  private withLogPositions(mutation: Mutation): Mutation {
    if (mutation.type !== 'version') return mutation
    const ops = mutation.ops.map((op): VersionOp => {
      if (op.op !== 'write' || !('blob' in op.data)) return op
      const position = this.blobPositions.get(op.data.blob)?.position
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
    if (this.syncing || this.appendedStamp <= this.syncedStamp || this.phase === 'stopped') return
    this.syncing = true
    const target = this.appendedStamp
    this.store.log.sync().then(
      () => {
        this.syncing = false
        this.syncedStamp = target
        this.feedCore({ kind: 'persisted', stamp: target })
        this.syncIfNeeded()
      },
      (err: Error) => this.fail(err),
    )
  }

  /** Applies everything delivered and waits for the log to be durable. */
  private async settleStore(): Promise<void> {
    await this.applyChain
    await this.store.log.sync()
  }

  /** Durable everywhere (every record of the message, a batch's last too): the requester gets the first stamp and every record's result. */
  private replied(requestId: number): void {
    const request = this.requests.get(requestId)
    this.requests.delete(requestId)
    this.submittedIds.delete(requestId)
    if (request === undefined) return
    if (request.delivered === undefined) {
      request.reject(new Error(`invariant: reply to request ${requestId} before its delivery`))
      return
    }
    const { stamp: first, results } = request.delivered
    Promise.resolve(results).then((r) => request.resolve({ stamp: first, results: r }), request.reject)
  }

  private writeDurably(name: string, value: unknown): void {
    const file = path.join(this.self.dataDir, name)
    writeFileSync(file + '.tmp', JSON.stringify(value) + '\n')
    const fd = openSync(file + '.tmp', 'r+')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    // Renamed and the directory synced before returning: an accepted value must be on disk before
    // the row that publishes it is pushed, and two writes of one file must not race their renames.
    renameSync(file + '.tmp', file)
    fsyncDirectory(this.self.dataDir)
  }

  private fail(err: Error): void {
    if (this.fatal !== null) return
    this.fatal = err
    this.log(`fffs: member ${this.id}: fatal: ${err instanceof FffsError ? err.message : (err.stack ?? err.message)}`)
    for (const request of this.requests.values()) request.reject(new FffsError('EIO', `member ${this.id} failed: ${err.message}`))
    this.requests.clear()
    void this.stop().finally(() => process.exit(70))
  }

  // ---- used by ReplicaClient ----

  /** Multicasts a message in the group's total order; resolves with its stamp once durable at every member. */
  order(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return this.orderMessage(payload, after, 1).then(({ stamp, results }) => ({ stamp, result: results[0]! }))
  }

  /**
   * Orders a record (a PAYLOAD_RECORD or _INLINE payload) in a batch with the others submitted
   * in this turn of the event loop; resolves with its own stamp and result once its batch is
   * durable at every member (the same guarantee as `order`). Submission order is kept: batches
   * go to the core in queue order, and the core keeps one sender's messages in order.
   */
  orderRecord(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return new Promise((resolve, reject) => {
      if (this.batchQueue.length === 0) setImmediate(() => this.flushBatches())
      this.batchQueue.push({ payload, ...(after !== undefined ? { after } : {}), resolve, reject })
    })
  }

  private flushBatches(): void {
    const queue = this.batchQueue
    this.batchQueue = []
    for (let start = 0; start < queue.length; ) {
      let end = start + 1
      let sizeBytes = BATCH_PAYLOAD_HEADER_BYTES + BATCH_PART_PREFIX_BYTES + queue[start]!.payload.byteLength
      while (end < queue.length && end - start < BATCH_RECORDS_MAX && sizeBytes + BATCH_PART_PREFIX_BYTES + queue[end]!.payload.byteLength <= BATCH_BYTES_MAX) {
        sizeBytes += BATCH_PART_PREFIX_BYTES + queue[end]!.payload.byteLength
        end++
      }
      const batch = queue.slice(start, end)
      start = end
      let after: HlcStamp | undefined
      for (const q of batch) if (q.after !== undefined && (after === undefined || q.after > after)) after = q.after
      const payload = batch.length === 1 ? batch[0]!.payload : encodeBatchPayload(batch.map((q) => q.payload))
      this.orderMessage(payload, after, batch.length).then(
        ({ stamp, results }) => batch.forEach((q, i) => q.resolve({ stamp: stamp + BigInt(i), result: results[i]! })),
        (err: Error) => batch.forEach((q) => q.reject(err)),
      )
    }
  }

  private orderMessage(payload: Uint8Array, after: HlcStamp | undefined, records: number): Promise<Ordered> {
    if (this.fatal !== null) return Promise.reject(new FffsError('EIO', `member ${this.id} failed: ${this.fatal.message}`))
    if (this.phase === 'stopped') return Promise.reject(new FffsError('EIO', `member ${this.id} is stopping`))
    const requestId = this.requestNext++
    return new Promise((resolve, reject) => {
      this.requests.set(requestId, { payload, ...(after !== undefined ? { after } : {}), records, resolve, reject })
      if (this.phase === 'running') {
        this.submitToCore(requestId, payload, after, records)
        return
      }
      // Between epochs: held until one starts (resumeRequests), but not for ever. It was never
      // ordered, so refusing it is safe.
      setTimeout(() => {
        const request = this.requests.get(requestId)
        if (request === undefined || this.submittedIds.has(requestId)) return
        this.requests.delete(requestId)
        request.reject(new FffsError('EROFS', `member ${this.id} is not in a running group (rejoining): write refused after ${HOLD_WHILE_RECOVERING_MS} ms`))
      }, HOLD_WHILE_RECOVERING_MS).unref()
    })
  }

  private submitToCore(requestId: number, payload: Uint8Array, after: HlcStamp | undefined, records: number): void {
    this.submittedIds.add(requestId)
    this.feedCore({ kind: 'submit', requestId, payload, ...(after !== undefined ? { after } : {}), ...(records > 1 ? { records } : {}) })
  }

  nextBlobId(): string {
    return `${this.id}.${process.pid}.${Date.now().toString(36)}.${this.blobNext++}`
  }

  /** Holds a small blob (a copy) for the record that will name it; returns its id. */
  holdInline(bytes: Uint8Array): string {
    const blob = this.nextBlobId()
    this.inlineHeld.set(blob, Uint8Array.prototype.slice.call(bytes))
    return blob
  }

  /** Takes the held bytes of `blob` (undefined: not held here, so ordered on its own). */
  takeInline(blob: string): Uint8Array | undefined {
    const bytes = this.inlineHeld.get(blob)
    this.inlineHeld.delete(blob)
    return bytes
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
    const holds = (): boolean => !this.storeReplaced && (stamp <= this.stableStamp() || (this.phase === 'running' && stamp <= this.store.appliedStamp))
    const startedMs = Date.now()
    while (!holds()) {
      if (Date.now() - startedMs >= CATCH_UP_WAIT_MAX_MS || this.phase === 'stopped') {
        throw new MemberBehindError(`member ${this.id} does not hold ${hlcToIso(stamp)} yet (${this.phase}, applied to ${hlcToIso(this.store.appliedStamp)})`)
      }
      await sleep(10)
    }
  }

  /** Every record at or below this stamp is applied here and durable at every member. */
  stableStamp(): HlcStamp {
    const core = this.epoch?.core
    // Out of a running core, only what a core found stable: the log may end in records that were
    // never durable everywhere, which a total restart can go on without (the simulation caught a
    // member out of a group calling such a record stable: crash-restart-3 seed 100122).
    let stable = core == null ? this.stableHigh : core.stableStamp()
    if (this.applyBacklog > 0 && this.store.appliedStamp < stable) stable = this.store.appliedStamp
    // A cut once stable stays stable (its records are final): keep answering it while this
    // member is between epochs or cut off, and across the start of a new core.
    if (stable > this.stableHigh) this.stableHigh = stable
    return this.stableHigh
  }

  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    const startedMs = Date.now()
    for (;;) {
      if (this.stableStamp() >= cut) return
      const waitedMs = Date.now() - startedMs
      if (waitedMs >= maxWaitMs || this.phase === 'stopped') throw errors.notStable(`cut ${cut}`, waitedMs)
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
    if (this.phase === 'stopped') return
    this.setPhase('stopped')
    clearInterval(this.tickTimer)
    this.wake()
    const epoch = this.epoch
    this.epoch = null
    await epoch?.transport.stop().catch(() => undefined)
    for (const connecting of this.peers.values()) void connecting.then((c) => c.close(), () => undefined)
    await this.upkeep.stop()
    await this.applyChain.catch(() => undefined)
    await this.store.close()
  }
}

function readView(dataDir: string): { vid: number; memberIds: number[] } | null {
  try {
    return JSON.parse(readFileSync(path.join(dataDir, 'view.json'), 'utf8')) as { vid: number; memberIds: number[] }
  } catch {
    return null
  }
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch {
    return null
  }
}

/** Makes the directory's entries (renames, removals) durable. */
function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Moves a store's files aside, crash-safely: `index/` first (a crash leaves the log, which
 * opening replays), then `segments/` (a crash leaves an empty store), the directory synced
 * after each; returns where they went (`discarded-*`, deleted by the caller or at the next open).
 */
async function moveAside(dataDir: string): Promise<string> {
  const trash = path.join(dataDir, `${DISCARDED_PREFIX}${Date.now()}`)
  mkdirSync(trash)
  for (const name of ['index', 'segments']) {
    renameSync(path.join(dataDir, name), path.join(trash, name))
    fsyncDirectory(dataDir)
  }
  return trash
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * How far a submitting client's clock (HLC piggybacking) may be ahead of this member's. Stamps a
 * client saw come from members, so a larger gap means skewed member clocks or a bad client; as
 * HLC implementations do, refuse it rather than let one clock push the whole group's ahead.
 */
const CLIENT_CLOCK_AHEAD_MAX_US = 1_000_000

/**
 * Δ is the group's (config `time.sensorLagMaxMs`), whatever the mount sent: the store refuses a
 * version or a creation stamped older than its HLC stamp − Δ, and a mount that sent a larger Δ
 * (or none) could otherwise add to a sensor cut another mount had already read as frozen.
 */
function withGroupSensorLag(mutation: Mutation, sensorLagMaxUs: number): Mutation {
  return mutation.type === 'version' || mutation.type === 'mknod' ? { ...mutation, sensorLagMaxUs } : mutation
}

/** The Client a member serves to the mounts connected to it: reads from the local replica,
 * writes through the group's total order. */
export class ReplicaClient implements Client {
  private readonly member: Member

  constructor(member: Member) {
    this.member = member
  }

  /** A read at `cut`: a past cut only once this member holds it (Member.holdStamp); the live cut (HLC_MAX) at once. */
  private async atCut<T>(cut: HlcStamp, read: (store: Store) => Promise<T> | T): Promise<T> {
    if (cut !== HLC_MAX) await this.member.holdStamp(cut)
    return this.member.withStore({}, read)
  }

  walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.atCut(cut, (store) => store.walk(components, cut))
  }
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    return this.atCut(cut, (store) => store.attr(ino, cut))
  }
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.atCut(cut, (store) => store.lookup(dir, name, cut))
  }
  readdir(dir: Ino, cut: HlcStamp): Promise<Array<{ name: string; ino: Ino }>> {
    return this.atCut(cut, (store) => store.readdir(dir, cut))
  }
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    // The version `attr` names (read on this or another member) must be applied here.
    return this.atCut(BigInt(attr.stamp), (store) => store.read(attr, offset, into, lengthBytes))
  }
  versions(ino: Ino, range?: VersionRange): Promise<Attr[]> {
    return this.member.withStore({}, (store) => store.versions(ino, range))
  }
  nameHistory(dir: Ino, name: string): Promise<NameBinding[]> {
    return this.member.withStore({}, (store) => store.nameHistory(dir, name))
  }
  stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return this.member.withStore({}, (store) => store.stampOfVersion(ino, version))
  }
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return this.member.withStore({}, (store) => store.stampAtSensorTime(ino, sensorUs))
  }
  sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    return this.member.withStore({}, (store) => store.sensorPick(ino, sensorUs))
  }
  snapshots(): Promise<Snapshot[]> {
    return this.member.withStore({}, (store) => store.snapshots())
  }
  snapshot(name: string): Promise<Snapshot | null> {
    return this.member.withStore({}, (store) => store.snapshot(name))
  }

  /** Small bytes wait for the version naming them and travel inside its record (one ordered
   * message and one round of persistence, not two in sequence); larger ones go into the total
   * order now (the bulk path), the version naming them follows. */
  appendData(_ino: Ino, bytes: Uint8Array): { ref: DataRef; written: Promise<void> } {
    if (bytes.byteLength <= INLINE_DATA_MAX_BYTES) return { ref: { blob: this.member.holdInline(bytes), offset: 0 }, written: Promise.resolve() }
    const blob = this.member.nextBlobId()
    const ordered = this.member.order(encodeDataPayload(blob, bytes))
    return { ref: { blob, offset: 0 }, written: ordered.then(() => undefined) }
  }

  /** Forgets a blob no version will name (its connection closed first). */
  releaseData(ref: DataRef): void {
    if ('blob' in ref) this.member.takeInline(ref.blob)
  }

  async submit(mutation: Mutation, options: SubmitOptions = {}): Promise<{ stamp: HlcStamp; ino?: Ino }> {
    // Taken first: whatever happens to this submit, the held bytes are not needed again.
    const inline: Array<readonly [string, number]> = []
    const inlineBytes: Uint8Array[] = []
    if (mutation.type === 'version') {
      for (const op of mutation.ops) {
        if (op.op !== 'write' || !('blob' in op.data)) continue
        const bytes = this.member.takeInline(op.data.blob)
        if (bytes === undefined) continue // ordered on its own, or named twice (taken by the first op)
        inline.push([op.data.blob, bytes.byteLength])
        inlineBytes.push(bytes)
      }
    }
    if (options.after !== undefined && hlcPhysicalUs(options.after) > wallClockUs() + CLIENT_CLOCK_AHEAD_MAX_US) {
      throw new FffsError('EINVAL', `${mutation.type}: the client's clock (${hlcToIso(options.after)}) is more than ${CLIENT_CLOCK_AHEAD_MAX_US / 1000} ms ahead of member ${this.member.id}'s; refused, or it would drag the group's clock and every later cut with it`)
    }
    const bounded = withGroupSensorLag(mutation, this.member.config.time.sensorLagMaxMs * 1000)
    const record: RecordPayload = { mutation: bounded, ...(options.id !== undefined ? { submit: options.id } : {}), ...(inline.length > 0 ? { inline } : {}) }
    const { stamp, result } = await this.member.orderRecord(encodeRecordPayload(record, inlineBytes), options.after)
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
