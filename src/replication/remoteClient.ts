// The Client interface over the wire, client side: a mount of a cluster (`fffs mount
// --cluster`) holds a RemoteClient, which calls the methods of protocol.ts on a member
// (server.ts serves them).
//
// Data path: `appendData` returns a blob reference at once and sends the bytes as a one-way
// `blob` message; a later `submit` of a version refers to the blob (server.ts substitutes the
// member's reference).
//
// Failover: queries retry on the next member when a connection dies. A submit whose request
// was sent when its connection died has an unknown outcome: it is re-sent (same SubmitId) only
// to a member that declares it deduplicates submits, and fails with EIO otherwise. Blobs not yet
// submitted are re-sent on every new connection before anything else. A connection also dies
// on purpose when the group's running members install a view without its member (viewWatch.ts).

import { randomUUID } from 'node:crypto'
import { FffsError } from '../errors.js'
import type { Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../store/records.js'
import { pageAlignedBuffer } from '../store/segmentLog.js'
import type { ShardRole } from '../store/store.js'
import type { HlcStamp } from '../temporal/hlc.js'
import type { ChangeListener, Client, SubmitOptions, Submitted } from '../client/client.js'
import type { HistoryAudit, HistoryControl, HistoryRun, HistoryState } from '../client/history.js'
import { initialShards, type GroupConfig, type GroupMember } from './config.js'
import { blobIdsOf } from './payload.js'
import { ATTRS_PAGE_NODES, clientMethods, HISTORY_PAGE, messageArgs, messages, PROTOCOL_VERSION, READDIR_PAGE_ENTRIES, request, send, SNAPSHOTS_PAGE, VERSIONS_PAGE, type MemberView, type Method, type SubmitArgs } from './protocol.js'
import { LocalLogReader, LocatedWindows } from './localLog.js'
import type { LocatedBytes } from '../store/store.js'
import { pageOffsetFinder } from '../store/diskAddon.js'
import { ViewWatch } from './viewWatch.js'
import { connect, ConnectionLostError, MemberBehindError, type Connection } from './wire.js'

/**
 * The highest stamp a client has observed (in replies to its submits and in the attributes it
 * read). Sent along with every submit as `after`; one is shared by all the per-shard
 * connections of a sharded mount, which is what carries causality from shard to shard.
 */
export class SeenStamp {
  private highest: HlcStamp = 0n
  get value(): HlcStamp {
    return this.highest
  }
  observe(stamp: HlcStamp): void {
    if (stamp > this.highest) this.highest = stamp
  }
}

export interface RemoteClientOptions {
  /** Names this client in SubmitIds; default a random UUID per RemoteClient. */
  readonly clientId?: string
  /** Failovers and refusals, one line each; default stderr. */
  readonly log?: (line: string) => void
  /** Messages a member pushes (none are defined yet; the member runtime may add frontier events). */
  readonly onEvent?: (name: string, args: unknown, body: Buffer) => void
  /** Shared by the clients of one mount's shards (HLC piggybacking); default one of its own. */
  readonly seen?: SeenStamp
}

/** Reads at least this large are read from the member's log files when it runs on this host: one small round trip for where, then the local disk. */
const LOCAL_READ_MIN_BYTES = 64 * 1024
/** Local reads that find nothing in a row before a member is not asked where again (it runs on another host, or its files are not readable here). */
const LOCAL_MISSES_MAX = 4

interface Link {
  readonly connection: Connection
  readonly member: GroupMember
  readonly index: number
  readonly dedupesSubmits: boolean
}

interface PendingBlob {
  readonly id: string
  readonly ino: Ino
  readonly bytes: Uint8Array
  sentOn: Connection | null
  readonly written: Promise<void>
  readonly markWritten: () => void
}

/** A Client whose every call goes to a member of the group; fails over to the next member. */
export class RemoteClient implements Client {
  readonly clientId: string
  private readonly config: GroupConfig
  private readonly log: (line: string) => void
  private readonly onEvent: ((name: string, args: unknown, body: Buffer) => void) | undefined
  private readonly seen: SeenStamp
  private acknowledgedStamp: HlcStamp = 0n // the newest stamp a submit of this client returned
  private current: Link | null = null
  private connecting: Promise<Link> | null = null
  private nextIndex = 0 // the member to try first
  private readonly blobs = new Map<string, PendingBlob>() // appended, not yet submitted
  private nextBlob = 1
  private nextSeq = 1
  private readonly pendingSeqs = new Set<number>()
  private closed = false
  private readonly views: ViewWatch
  private latestView: MemberView | null = null // the latest view a running member reported
  private floorSeen: HlcStamp = 0n // the group's history floor as last learnt (history.floor)
  private floorAskedMs = 0
  private changeListener: ChangeListener | null = null // watchChanges
  /** The member's log files, read here when it runs on this host (localLog.ts). */
  private readonly localLog = new LocalLogReader(pageOffsetFinder() ?? undefined)
  private readonly located = new LocatedWindows()
  /** Local reads that came to nothing in a row, and the member they were asked of: past LOCAL_MISSES_MAX, that member is not asked where again. */
  private localMisses = { memberId: -1, count: 0 }

  private constructor(config: GroupConfig, options: RemoteClientOptions) {
    this.config = config
    this.clientId = options.clientId ?? randomUUID()
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'))
    this.onEvent = options.onEvent
    this.seen = options.seen ?? new SeenStamp()
    this.views = new ViewWatch(config, (view) => this.followView(view))
  }

  /** Connects to the first reachable member, in config order, and follows the group's views. */
  static async connect(config: GroupConfig, options: RemoteClientOptions = {}): Promise<RemoteClient> {
    const client = new RemoteClient(config, options)
    await client.link()
    client.views.start()
    return client
  }

  /**
   * A member reported its view. Once the running members install a view without the member
   * this client talks to, that member is out of the group (it hangs, or was cut off): leave it
   * now, rather than after the connection's own dead-peer timeout. Requests in flight fail over
   * as on a lost connection (an in-doubt submit goes again, deduplicated).
   */
  private followView(view: MemberView): void {
    if (view.phase !== 'running' || (this.latestView !== null && view.vid < this.latestView.vid)) return
    this.latestView = view
    const link = this.current
    if (link === null || view.memberIds.includes(link.member.id)) return
    link.connection.close(new ConnectionLostError(`member ${link.member.id} is not in view ${view.vid} [${view.memberIds.join(', ')}] of member ${view.memberId}`))
  }

  /** What `fffs status` shows of the group this client mounts (never the key). */
  get group(): GroupInfo {
    return groupInfo(this.config)
  }

  /** The member currently connected to, if any (for status output). */
  get memberId(): number | null {
    return this.current?.member.id ?? null
  }

  // ------------------------------------------------ queries

  async walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.observed((await this.call(clientMethods.walk, () => ({ components: [...components], cut }))).result)
  }
  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    const attr = (await this.call(clientMethods.attr, () => ({ ino, cut }))).result
    return attr === null ? null : this.observed(attr)
  }
  /** A window of nodes per request; a reply may hold fewer than asked (large xattrs), the rest is asked again. */
  async attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>> {
    const out: Array<Attr | null> = []
    while (out.length < inos.length) {
      const part = inos.slice(out.length, out.length + ATTRS_PAGE_NODES)
      const found = (await this.call(clientMethods.attrs, () => ({ inos: part, cut }))).result
      if (found.length === 0 || found.length > part.length) throw new FffsError('EIO', `attrs: ${found.length} attributes for ${part.length} nodes`)
      for (const attr of found) out.push(attr === null ? null : this.observed(attr))
    }
    return out
  }
  async lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return (await this.call(clientMethods.lookup, () => ({ dir, name, cut }))).result
  }
  async child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    const attr = (await this.call(clientMethods.child, () => ({ dir, name, cut }))).result
    return attr === null ? null : this.observed(attr)
  }
  /** Without `page`, the whole listing, a window of READDIR_PAGE_ENTRIES per request. */
  readdir(dir: Ino, cut: HlcStamp, page: DirPage = {}): Promise<Array<{ name: string; ino: Ino }>> {
    return inWindows(READDIR_PAGE_ENTRIES, page.limit, page.after, (e) => e.name, async (after, limit) => (await this.call(clientMethods.readdir, () => ({ dir, cut, after, limit }))).result)
  }
  async read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    if (lengthBytes >= LOCAL_READ_MIN_BYTES) {
      const n = await this.readLocally(attr, offset, into, lengthBytes)
      if (n !== null) return n
    }
    const { body } = await this.call(clientMethods.read, () => ({ attr, offset, lengthBytes }))
    return body.copy(into, 0, 0, Math.min(body.length, lengthBytes))
  }
  /** Large reads go into page-aligned memory: read from the member's files on this host, the disk reads them with O_DIRECT. */
  readBuffer(lengthBytes: number): Buffer {
    const pageOffsetOf = pageOffsetFinder()
    return pageOffsetOf === null || lengthBytes < LOCAL_READ_MIN_BYTES ? Buffer.allocUnsafe(lengthBytes) : pageAlignedBuffer(lengthBytes, pageOffsetOf)
  }
  /** A read from the member's log files, when it runs on this host and they are readable here; null: read through the member. */
  private async readLocally(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number | null> {
    const memberId = this.current?.member.id
    if (memberId === undefined || (this.localMisses.memberId === memberId && this.localMisses.count >= LOCAL_MISSES_MAX)) return null
    // Where a version below the history floor lay is asked again: the member answers ERANGE once compaction dropped it.
    const ask = (from: number, length: number): Promise<LocatedBytes | null> => this.call(clientMethods.locate, () => ({ attr, offset: from, lengthBytes: length })).then(({ result }) => result)
    const where = BigInt(attr.stamp) >= this.floorSeen ? this.located.locate(attr, offset, lengthBytes, ask) : ask(offset, lengthBytes)
    const n = await where.then(
      async (result) => {
        if (result === null) return null
        const read = await this.localLog.read(result, into)
        if (read === null) this.located.forget(attr) // a file collected since: asked again
        return read
      },
      () => null, // a member that does not know the method, or failed: the read asks for the bytes
    )
    this.localMisses = n === null ? { memberId, count: (this.localMisses.memberId === memberId ? this.localMisses.count : 0) + 1 } : { memberId, count: 0 }
    return n
  }
  async versions(ino: Ino, range: VersionRange = {}): Promise<Attr[]> {
    // Each window goes on from the last version the one before brought, in the range's direction.
    const found = await inWindows(VERSIONS_PAGE, range.limit, undefined, (attr: Attr) => BigInt(attr.stamp), async (last: HlcStamp | undefined, limit) => {
      const window: VersionRange = last === undefined ? range : range.reverse === true ? { ...range, upto: last - 1n } : { ...range, after: last }
      return (await this.call(clientMethods.versions, () => ({ ino, range: { ...window, limit } }))).result
    })
    return found.map((attr) => this.observed(attr))
  }
  nameHistory(dir: Ino, name: string, page: StampPage = {}): Promise<NameBinding[]> {
    return inWindows(HISTORY_PAGE, page.limit, page.after, (b) => b.stamp, async (after, limit) => (await this.call(clientMethods.nameHistory, () => ({ dir, name, after, limit }))).result)
  }

  /** What a reader has seen, a later write of it must follow (in every shard's order). */
  private observed(attr: Attr): Attr {
    this.seen.observe(BigInt(attr.stamp))
    return attr
  }
  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return (await this.call(clientMethods.stampOfVersion, () => ({ ino, version }))).result
  }
  async stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return (await this.call(clientMethods.stampAtSensorTime, () => ({ ino, sensorUs }))).result
  }
  async sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    return (await this.call(clientMethods.sensorPick, () => ({ ino, sensorUs }))).result
  }
  snapshots(page: DirPage = {}): Promise<Snapshot[]> {
    return inWindows(SNAPSHOTS_PAGE, page.limit, page.after, (s) => s.name, async (after, limit) => (await this.call(clientMethods.snapshots, () => ({ after, limit }))).result)
  }

  /**
   * The group's history retention. The floor moves by ordered records, so every member holds
   * the same one; each member collects its own log segments. An on-demand run asks the members
   * in turn: the first it reaches orders the records that move the floor, each later one
   * collects once it holds them.
   */
  readonly history: HistoryControl = {
    state: async () => {
      const states = await this.eachMember(clientMethods.history, () => undefined, HISTORY_STATE_TIMEOUT_MS)
      return states.map(({ id, result }): HistoryState => ({ ...result, member: id }))
    },
    floor: async () => {
      this.floorAskedMs = Date.now()
      const state = (await this.call(clientMethods.history, () => undefined)).result
      const floor = BigInt(state.floorStamp)
      if (floor > this.floorSeen) this.floorSeen = floor
      return this.floorSeen
    },
    // Learnt again in the background when older than FLOOR_REFRESH_MS: a path walk's remembered
    // steps below the floor are taken afresh only once the mount knows the floor passed them.
    knownFloor: () => {
      if (Date.now() - this.floorAskedMs >= FLOOR_REFRESH_MS && !this.closed) void this.history.floor().catch(() => undefined)
      return this.floorSeen
    },
    collect: async ({ dryRun }) => {
      const runs: HistoryRun[] = []
      let after: HlcStamp | undefined
      for (const member of this.config.members) {
        const args = { dryRun: dryRun === true, propose: runs.length === 0, ...(after !== undefined ? { after } : {}) }
        const reply = await this.requestMember(member, clientMethods.collect, args, COLLECT_TIMEOUT_MS).catch((err: Error) => {
          this.log(`fffs gc: member ${member.id}: ${err.message}`)
          return null
        })
        if (reply === null) continue
        runs.push({ member: member.id, report: reply.report })
        after = reply.appliedStamp
      }
      if (runs.length === 0) throw new FffsError('EIO', 'fffs gc: no member of the group could run it (see the mount log)')
      return runs
    },
    audits: async (limit) => {
      const audits = await this.eachMember(clientMethods.audits, () => ({ limit }), HISTORY_STATE_TIMEOUT_MS)
      return audits.flatMap(({ id, result }) => result.map((audit): HistoryAudit => ({ member: id, audit }))).sort((a, b) => (a.audit.stamp < b.audit.stamp ? -1 : a.audit.stamp > b.audit.stamp ? 1 : 0))
    },
  }
  async snapshot(name: string): Promise<Snapshot | null> {
    return (await this.call(clientMethods.snapshot, () => ({ name }))).result
  }
  async stableFrontier(): Promise<HlcStamp> {
    return (await this.call(clientMethods.stableFrontier, () => undefined)).result
  }

  /** The status of the member this client is connected to (`Member.status()`, bigints as strings). */
  async memberStatus(): Promise<unknown> {
    return (await this.call(clientMethods.status, () => undefined)).result
  }

  /** `method` at every member that answers within `timeoutMs` (in parallel), in config order. */
  private async eachMember<A, R>(method: Method<A, R>, makeArgs: () => A, timeoutMs: number): Promise<Array<{ id: number; result: R }>> {
    const answers = await Promise.all(this.config.members.map((member) => this.requestMember(member, method, makeArgs(), timeoutMs).then((result) => ({ id: member.id, result }), () => null)))
    return answers.filter((a): a is { id: number; result: R } => a !== null)
  }

  /** One request to one member: on this client's connection if it is the connected one, else on a connection of its own. */
  private async requestMember<A, R>(member: GroupMember, method: Method<A, R>, args: A, timeoutMs: number): Promise<R> {
    const connected = this.current !== null && this.current.connection.isOpen ? this.current : null
    if (connected !== null && connected.member.id === member.id) return (await request(connected.connection, method, args, { timeoutMs })).result
    return requestMember(this.config, member, method, args, timeoutMs)
  }

  /**
   * Every member's status, as each reports it, in config order. The connected member answers
   * on this client's connection; every other member over a short-lived connection of its own
   * (authenticated with the cluster key, closed after the one request), all in parallel and
   * each bounded by `timeoutMs`, so an unreachable member costs one timeout, not a hang.
   * Nothing is kept open between calls (the view watches carry views only).
   */
  async groupStatus(timeoutMs = GROUP_STATUS_TIMEOUT_MS): Promise<MemberStatusReport[]> {
    const connected = this.current !== null && this.current.connection.isOpen ? this.current : null
    return Promise.all(
      this.config.members.map(async (member): Promise<MemberStatusReport> => {
        const where = { id: member.id, host: member.host, clientPort: member.clientPort }
        const startedMs = Date.now()
        try {
          const status = await this.requestMember(member, clientMethods.status, undefined, timeoutMs)
          return { ...where, connected: connected?.member.id === member.id, reachable: true, status, elapsedMs: Date.now() - startedMs }
        } catch (err) {
          const code = err instanceof FffsError ? err.code : 'EIO'
          return { ...where, connected: connected?.member.id === member.id, reachable: false, error: { code, message: err instanceof Error ? err.message : String(err) }, elapsedMs: Date.now() - startedMs }
        }
      }),
    )
  }

  /** Waits on the member; the reply bound is the wait plus the request timeout, and a failover keeps the original deadline. */
  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    const deadlineMs = Date.now() + maxWaitMs
    await this.call(clientMethods.waitStable, () => ({ cut, maxWaitMs: Math.max(0, deadlineMs - Date.now()) }), { extraTimeoutMs: maxWaitMs })
  }

  /** Waits on the member (any member of the view will do) for the newest stamp this client's submits returned. */
  async syncAcknowledged(maxWaitMs: number): Promise<void> {
    const stamp = this.acknowledgedStamp
    if (stamp === 0n) return
    const deadlineMs = Date.now() + maxWaitMs
    await this.call(clientMethods.waitSynced, () => ({ stamp, maxWaitMs: Math.max(0, deadlineMs - Date.now()) }), { extraTimeoutMs: maxWaitMs })
  }

  // ------------------------------------------------ writes

  appendData(ino: Ino, bytes: Uint8Array): { ref: DataRef; written: Promise<void> } {
    if (this.closed) throw new FffsError('EIO', 'client closed')
    const id = String(this.nextBlob++)
    let markWritten: () => void = () => undefined
    const written = new Promise<void>((resolve) => (markWritten = resolve))
    const blob: PendingBlob = { id, ino, bytes, sentOn: null, written, markWritten }
    this.blobs.set(id, blob)
    if (this.current !== null && this.current.connection.isOpen) this.sendBlob(this.current.connection, blob)
    else void this.link().catch(() => undefined) // the new connection sends it; a submit reports a failure
    return { ref: { blob: id, offset: 0 }, written }
  }

  /** `options` are made here (the SubmitId, and `after` from what this client has seen); the caller's are ignored. */
  async submit(mutation: Mutation, _options?: SubmitOptions): Promise<Submitted> {
    const seq = this.nextSeq++
    this.pendingSeqs.add(seq)
    const blobIds = blobIdsOf(mutation)
    let inDoubt: ConnectionLostError | null = null // a sent attempt whose connection died
    let lastError: Error | null = null
    try {
      for (let attempt = 0; attempt <= this.config.members.length; attempt++) {
        const link = await this.link()
        if (inDoubt !== null && !link.dedupesSubmits) {
          throw new FffsError('EIO', `${mutation.type}: ${inDoubt.message} with the write in flight; its outcome is unknown and member ${link.member.id} does not deduplicate, so it was not re-sent`)
        }
        const after = this.seen.value
        const args: SubmitArgs = {
          mutation,
          id: { clientId: this.clientId, seq, oldestPendingSeq: Math.min(...this.pendingSeqs) },
          retry: inDoubt !== null,
          ...(after > 0n ? { after } : {}),
        }
        try {
          const { result } = await request(link.connection, clientMethods.submit, args, { timeoutMs: this.config.clients.requestTimeoutMs })
          this.seen.observe(result.stamp)
          if (result.stamp > this.acknowledgedStamp) this.acknowledgedStamp = result.stamp
          return result
        } catch (err) {
          if (!(err instanceof ConnectionLostError)) throw err
          if (err.requestSent) inDoubt = err
          lastError = err
        }
      }
      throw lastError!
    } finally {
      this.pendingSeqs.delete(seq)
      for (const id of blobIds) {
        this.blobs.get(id)?.markWritten()
        this.blobs.delete(id)
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.views.close()
    for (const blob of this.blobs.values()) blob.markWritten()
    this.blobs.clear()
    const link = this.current ?? (await this.connecting?.catch(() => null)) ?? null
    this.current = null
    link?.connection.close()
    await this.localLog.close()
  }

  // ------------------------------------------------ connections

  /** One request, retried on the next member while connections die (each member at most once more). */
  private async call<A, R>(method: Method<A, R>, makeArgs: () => A, options: { extraTimeoutMs?: number } = {}): Promise<{ result: R; body: Buffer }> {
    let lastError: Error | null = null
    for (let attempt = 0; attempt <= this.config.members.length; attempt++) {
      const link = await this.link()
      try {
        return await request(link.connection, method, makeArgs(), { timeoutMs: this.config.clients.requestTimeoutMs + (options.extraTimeoutMs ?? 0) })
      } catch (err) {
        if (err instanceof MemberBehindError) {
          // Leave for the next member (closing fails this link's other requests over too: they
          // would meet the same member state).
          if (this.current === link) link.connection.close(new ConnectionLostError(`member ${link.member.id} is behind: ${err.message}`))
        } else if (!(err instanceof ConnectionLostError)) {
          throw err
        }
        lastError = err
      }
    }
    throw lastError!
  }

  private link(): Promise<Link> {
    if (this.closed) return Promise.reject(new FffsError('EIO', 'client closed'))
    if (this.current !== null && this.current.connection.isOpen) return Promise.resolve(this.current)
    this.connecting ??= this.connectAny().finally(() => (this.connecting = null))
    return this.connecting
  }

  /** Tries every member once, starting at nextIndex: first those in the latest running view, then the rest. */
  private async connectAny(): Promise<Link> {
    const members = this.config.members
    const failures: string[] = []
    let refused = false
    const inView = (index: number): boolean => this.latestView?.memberIds.includes(members[index]!.id) ?? true
    const order = members.map((_, k) => (this.nextIndex + k) % members.length)
    for (const index of [...order.filter(inView), ...order.filter((i) => !inView(i))]) {
      const member = members[index]!
      let connection: Connection | null = null
      try {
        connection = await connect(member.host, member.clientPort, this.config.key, this.config.clients.handshakeTimeoutMs, {
          heartbeatIntervalMs: this.config.clients.heartbeatIntervalMs,
          deadPeerMs: this.config.clients.deadPeerMs,
          handshakeTimeoutMs: this.config.clients.handshakeTimeoutMs,
          onRefused: (address, reason) => this.log(`fffs: refused ${address}: ${reason}`),
          onMessage: (message) => {
            const note = messageArgs(messages.changed, message)
            if (note !== undefined) this.changeListener?.changed(note)
            else this.onEvent?.(message.method, message.args, message.body)
          },
        })
        const { result: hello } = await request(connection, clientMethods.hello, { protocol: PROTOCOL_VERSION, clientId: this.clientId }, { timeoutMs: this.config.clients.requestTimeoutMs })
        if (this.closed) throw new FffsError('EIO', 'client closed')
        const link: Link = { connection, member, index, dedupesSubmits: hello.dedupesSubmits }
        // Unsubmitted blobs first: frames arrive in order, so any submit after them finds them.
        for (const blob of this.blobs.values()) if (blob.sentOn !== connection) this.sendBlob(connection, blob)
        connection.onClose((reason) => {
          if (this.current !== link) return
          this.current = null
          this.nextIndex = (index + 1) % members.length
          if (this.closed) return
          this.log(`fffs: lost member ${member.id} (${member.host}:${member.clientPort}): ${reason.message}; failing over`)
          if (this.changeListener === null) return
          this.changeListener.inSync(false)
          void this.link().catch(() => undefined) // the next member's feed, without waiting for a request
        })
        this.current = link
        this.nextIndex = index
        void this.watchOn(link)
        return link
      } catch (err) {
        connection?.close()
        if (err instanceof FffsError && err.code === 'EACCES') refused = true
        failures.push(`member ${member.id} ${member.host}:${member.clientPort}: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    throw new FffsError(refused ? 'EACCES' : 'EIO', `no member of group ${this.config.name} reachable: ${failures.join('; ')}`)
  }

  /**
   * Tells `listener` of the changes other clients make, from the member this client is
   * connected to (changeFeed.ts): in sync once that member watches for it, out of sync from a
   * lost connection until the next member does.
   */
  watchChanges(listener: ChangeListener): () => void {
    this.changeListener = listener
    listener.inSync(false)
    const link = this.current
    if (link !== null && link.connection.isOpen) void this.watchOn(link)
    else void this.link().catch(() => undefined) // connecting watches
    return () => {
      if (this.changeListener === listener) this.changeListener = null
    }
  }

  private async watchOn(link: Link): Promise<void> {
    const listener = this.changeListener
    if (listener === null) return
    try {
      await request(link.connection, clientMethods.watchChanges, undefined, { timeoutMs: this.config.clients.requestTimeoutMs })
      if (this.current === link && link.connection.isOpen && this.changeListener === listener) listener.inSync(true)
    } catch {
      // A member that reports no changes (ENOTSUP) leaves the mount caching briefly; a lost connection watches again on the next.
    }
  }

  private sendBlob(connection: Connection, blob: PendingBlob): void {
    blob.sentOn = connection
    send(connection, messages.blob, { id: blob.id, ino: blob.ino }, blob.bytes).then(blob.markWritten, () => undefined /* re-sent on the next connection */)
  }
}

const GROUP_STATUS_TIMEOUT_MS = 2_000
const HISTORY_STATE_TIMEOUT_MS = 5_000
const FLOOR_REFRESH_MS = 1_000
/** An on-demand run at one member: compaction of the whole store and GC without an I/O budget. */
const COLLECT_TIMEOUT_MS = 10 * 60_000

/** What `fffs status` shows of a group config (never the key). */
export function groupInfo(config: GroupConfig): GroupInfo {
  const { name, path, layout, members, shardRole } = config
  return {
    name,
    configPath: path,
    layout,
    ...(shardRole !== undefined ? { shardRole } : {}),
    shards: initialShards(config),
    members: members.map(({ id, host, transportPort, clientPort }) => ({ id, host, transportPort, clientPort })),
  }
}

export interface GroupInfo {
  readonly name: string
  readonly configPath: string
  readonly layout: { readonly shards: number; readonly replicas: number }
  readonly shardRole?: ShardRole // the group of one shard of a sharded layout
  readonly shards: { readonly meta: number[]; readonly data: number[][] } // member ids (the initial layout)
  readonly members: ReadonlyArray<{ readonly id: number; readonly host: string; readonly transportPort: number; readonly clientPort: number }>
}

/** One member's answer to a status request, or why there was none. */
export interface MemberStatusReport {
  readonly id: number
  readonly host: string
  readonly clientPort: number
  readonly connected: boolean // the member the asking client is connected to
  readonly reachable: boolean
  readonly status?: unknown // the member's `Member.status()`, bigints as strings
  readonly error?: { readonly code: string; readonly message: string }
  readonly elapsedMs: number
}

/** Asks one member for its status over a connection of its own (connect, authenticate, one request, close); bounded by timeoutMs for each step. */
export function fetchMemberStatus(config: GroupConfig, member: GroupMember, timeoutMs: number): Promise<unknown> {
  return requestMember(config, member, clientMethods.status, undefined, timeoutMs)
}

/** One request to a member over a short-lived connection of its own (authenticated with the cluster key). */
async function requestMember<A, R>(config: GroupConfig, member: GroupMember, method: Method<A, R>, args: A, timeoutMs: number): Promise<R> {
  const handshakeTimeoutMs = Math.min(timeoutMs, config.clients.handshakeTimeoutMs)
  const connection = await connect(member.host, member.clientPort, config.key, handshakeTimeoutMs, {
    heartbeatIntervalMs: config.clients.heartbeatIntervalMs,
    deadPeerMs: config.clients.deadPeerMs,
    handshakeTimeoutMs,
  })
  try {
    return (await request(connection, method, args, { timeoutMs })).result
  } finally {
    connection.close()
  }
}

/**
 * Up to `wanted` (default all) items of a listing read a window at a time: `ask(after, limit)`
 * answers at most `limit` items, those after the key `after` (undefined: from the start); a
 * shorter answer ends the listing.
 */
async function inWindows<T, K>(windowMax: number, wanted: number | undefined, from: K | undefined, keyOf: (item: T) => K, ask: (after: K | undefined, limit: number) => Promise<T[]>): Promise<T[]> {
  const out: T[] = []
  let after = from
  for (;;) {
    const limit = Math.min(windowMax, (wanted ?? Infinity) - out.length)
    if (limit <= 0) return out
    const items = await ask(after, limit)
    out.push(...items)
    if (items.length < limit) return out
    after = keyOf(items[items.length - 1]!)
  }
}
