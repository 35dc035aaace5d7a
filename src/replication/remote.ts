// The Client interface over the wire: a mount of a cluster (`fffs mount --cluster`) holds a
// RemoteClient; each member serves its own Client (serveClient) to the mounts connected to it.
//
// Data path: `appendData` returns a blob reference at once and sends the bytes as a one-way
// 'blob' message; the member hands the body straight to its Client's appendData and keeps the
// returned reference per connection; a later 'submit' of a version refers to the blob, and the
// member substitutes the reference before submitting. File bytes are never base64'd and are
// copied only where the socket forces it.
//
// Failover: queries retry on the next member when a connection dies. A submit whose request
// was sent when its connection died has an unknown outcome: it is re-sent (same SubmitId) only
// to a member that declares it deduplicates submits, and fails with EIO otherwise. Blobs not yet
// submitted are re-sent on every new connection before anything else. A connection also dies
// on purpose when the group's running members install a view without its member (viewWatch.ts).

import { randomUUID } from 'node:crypto'
import { FffsError } from '../errors.js'
import type { Attr, DataRef, Ino, Mutation, NameBinding, SensorPick, Snapshot, VersionOp, VersionRange } from '../store/records.js'
import type { ShardRole } from '../store/store.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { dataRefAt, SeenStamp, type Client, type SubmitId, type SubmitOptions } from './client.js'
import { initialShards, type GroupConfig, type GroupMember } from './config.js'
import { serveViewWatch, ViewWatch, WATCH_VIEWS, type MemberView, type ViewSource } from './viewWatch.js'
import { connect, ConnectionLostError, MAX_BODY_BYTES, MemberBehindError, type Connection, type Incoming, type Reply } from './wire.js'

const REMOTE_PROTOCOL = 1

interface Hello {
  readonly protocol: number
  readonly memberId: number | null
  readonly dedupesSubmits: boolean
}

interface SubmitArgs {
  readonly mutation: Mutation
  readonly id: SubmitId
  readonly retry: boolean // re-sent after a lost connection: the first attempt may have applied
  readonly after?: string // HlcStamp, decimal: the client's clock (HLC piggybacking)
}

// ---------------------------------------------------------------- server side

export interface ServeClientOptions {
  /**
   * The served Client applies a submit carrying a SubmitId at most once, across connections
   * and members (the replicated member runtime). Clients re-send an in-doubt submit only to
   * a member that says so. Default false (EmbeddedClient does not).
   */
  readonly dedupesSubmits?: boolean
  readonly memberId?: number
  /** Requests this serving side answers itself (member-to-member traffic shares the port); undefined: not handled here. */
  readonly extraRequests?: (request: Incoming) => Promise<Reply> | undefined
  /**
   * What a 'status' request answers (the member runtime: `Member.status()`), for `fffs status`.
   * Bigints in it are sent as decimal strings. Absent: 'status' is refused with ENOTSUP.
   */
  readonly status?: () => unknown
  /** The member's views, for clients that follow them (viewWatch.ts). Absent: 'watchViews' is refused with ENOTSUP. */
  readonly views?: ViewSource
}

interface ServedBlob {
  readonly ref: DataRef
  readonly written: Promise<void>
}

/** Serves `client` (any Client implementation) to the peer of `connection` until it closes. */
export function serveClient(connection: Connection, client: Client, options: ServeClientOptions = {}): void {
  const blobs = new Map<string, ServedBlob>() // this connection's blobs not yet submitted
  connection.onClose(() => {
    for (const blob of blobs.values()) client.releaseData?.(blob.ref) // no version will name them
    blobs.clear()
  })
  connection.setHandlers({
    onMessage: (message: Incoming) => {
      if (message.method !== 'blob') return
      const { id, ino } = message.args as { id: string; ino: Ino }
      // The body goes to the data path as it is; its reference is known at once, so the
      // submit that follows on this connection (frames arrive in order) finds it.
      const { ref, written } = client.appendData(ino, message.body)
      written.catch(() => undefined) // reported by the submit that refers to it
      blobs.set(id, { ref, written })
    },
    onRequest: async (request: Incoming): Promise<Reply> => {
      const a = request.args as Record<string, unknown>
      switch (request.method) {
        case 'hello': {
          const hello: Hello = { protocol: REMOTE_PROTOCOL, memberId: options.memberId ?? null, dedupesSubmits: options.dedupesSubmits ?? false }
          if (a.protocol !== REMOTE_PROTOCOL) throw new FffsError('ENOTSUP', `client speaks protocol ${String(a.protocol)}, this member ${REMOTE_PROTOCOL}`)
          return { result: hello }
        }
        case 'walk':
          return { result: await client.walk(a.components as string[], stampArg(a.cut)) }
        case 'attr':
          return { result: await client.attr(a.ino as Ino, stampArg(a.cut)) }
        case 'lookup':
          return { result: await client.lookup(a.dir as Ino, a.name as string, stampArg(a.cut)) }
        case 'readdir':
          return { result: await client.readdir(a.dir as Ino, stampArg(a.cut)) }
        case 'read': {
          const lengthBytes = a.lengthBytes as number
          if (!Number.isInteger(lengthBytes) || lengthBytes < 0 || lengthBytes > MAX_BODY_BYTES) throw new FffsError('EINVAL', `read of ${lengthBytes} bytes (at most ${MAX_BODY_BYTES})`)
          const into = Buffer.allocUnsafe(lengthBytes)
          const n = await client.read(a.attr as Attr, a.offset as number, into, lengthBytes)
          return { body: into.subarray(0, n) }
        }
        case 'versions':
          return { result: await client.versions(a.ino as Ino, versionRangeArg(a.range)) }
        case 'nameHistory':
          return { result: (await client.nameHistory(a.dir as Ino, a.name as string)).map((b) => ({ ...b, stamp: b.stamp.toString() })) }
        case 'stampOfVersion':
          return { result: stampResult(await client.stampOfVersion(a.ino as Ino, a.version as number)) }
        case 'stampAtSensorTime':
          return { result: stampResult(await client.stampAtSensorTime(a.ino as Ino, a.sensorUs as number)) }
        case 'sensorPick': {
          const pick = await client.sensorPick(a.ino as Ino, a.sensorUs as number)
          return { result: pick === null ? null : { stamp: pick.stamp.toString(), sizeBytes: pick.sizeBytes } }
        }
        case 'snapshots':
          return { result: await client.snapshots() }
        case 'snapshot':
          return { result: await client.snapshot(a.name as string) }
        case 'stableFrontier':
          return { result: (await client.stableFrontier()).toString() }
        case 'waitStable':
          await client.waitStable(stampArg(a.cut), a.maxWaitMs as number)
          return {}
        case WATCH_VIEWS:
          if (options.views === undefined) throw new FffsError('ENOTSUP', 'this server reports no views')
          return serveViewWatch(connection, options.views)
        case 'status':
          if (options.status === undefined) throw new FffsError('ENOTSUP', `this ${options.memberId !== undefined ? `member (${options.memberId})` : 'server'} reports no status`)
          return { result: jsonable(await options.status()) }
        case 'submit': {
          const { mutation, id, after } = request.args as SubmitArgs
          const referenced = blobIdsOf(mutation)
          try {
            const resolved = mutation.type === 'version' ? { ...mutation, ops: mutation.ops.map((op) => withLogRef(op, blobs)) } : mutation
            await Promise.all(referenced.map((blob) => blobs.get(blob)!.written))
            const { stamp, ino } = await client.submit(resolved, { id, ...(after !== undefined ? { after: stampArg(after) } : {}) })
            return { result: { stamp: stamp.toString(), ...(ino !== undefined ? { ino } : {}) } }
          } finally {
            for (const blob of referenced) blobs.delete(blob)
          }
        }
        default: {
          const handled = options.extraRequests?.(request)
          if (handled !== undefined) return handled
          throw new FffsError('ENOTSUP', `unknown request '${request.method}'`)
        }
      }
    },
  })
}

function withLogRef(op: VersionOp, blobs: ReadonlyMap<string, ServedBlob>): VersionOp {
  if (op.op !== 'write' || !('blob' in op.data)) return op
  const blob = blobs.get(op.data.blob)
  // The client re-sends unsubmitted blobs on every new connection before any submit, so a
  // missing one is a protocol bug on the client side; refuse the version rather than guess.
  if (blob === undefined) throw new FffsError('EIO', `version refers to blob ${op.data.blob}, which this connection never received`)
  return { ...op, data: dataRefAt(blob.ref, op.data.offset) }
}

function blobIdsOf(mutation: Mutation): string[] {
  if (mutation.type !== 'version') return []
  const ids = new Set<string>()
  for (const op of mutation.ops) if (op.op === 'write' && 'blob' in op.data) ids.add(op.data.blob)
  return [...ids]
}

function stampArg(value: unknown): HlcStamp {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new FffsError('EINVAL', `not a stamp: ${String(value)}`)
  return BigInt(value)
}

/** A copy of `value` that JSON.stringify accepts: bigints become decimal strings. */
export function jsonable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(jsonable)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]))
  return value
}

/** A VersionRange as it crosses the wire: stamps as decimal strings. */
interface WireVersionRange {
  readonly after?: string
  readonly upto?: string
  readonly limit?: number
  readonly reverse?: boolean
}

function wireVersionRange(range: VersionRange): WireVersionRange {
  return {
    ...(range.after !== undefined ? { after: range.after.toString() } : {}),
    ...(range.upto !== undefined ? { upto: range.upto.toString() } : {}),
    ...(range.limit !== undefined ? { limit: range.limit } : {}),
    ...(range.reverse !== undefined ? { reverse: range.reverse } : {}),
  }
}

function versionRangeArg(value: unknown): VersionRange {
  if (value === undefined) return {}
  const range = value as WireVersionRange
  if (range.limit !== undefined && (!Number.isSafeInteger(range.limit) || range.limit < 1)) throw new FffsError('EINVAL', `not a version limit: ${String(range.limit)}`)
  return {
    ...(range.after !== undefined ? { after: stampArg(range.after) } : {}),
    ...(range.upto !== undefined ? { upto: stampArg(range.upto) } : {}),
    ...(range.limit !== undefined ? { limit: range.limit } : {}),
    ...(range.reverse === true ? { reverse: true } : {}),
  }
}

function stampResult(stamp: HlcStamp | null): string | null {
  return stamp === null ? null : stamp.toString()
}

// ---------------------------------------------------------------- client side

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
    return this.observed((await this.call('walk', () => ({ components, cut: cut.toString() }))).result as Attr)
  }
  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    const attr = (await this.call('attr', () => ({ ino, cut: cut.toString() }))).result as Attr | null
    return attr === null ? null : this.observed(attr)
  }
  async lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return (await this.call('lookup', () => ({ dir, name, cut: cut.toString() }))).result as Ino | null
  }
  async readdir(dir: Ino, cut: HlcStamp): Promise<Array<{ name: string; ino: Ino }>> {
    return (await this.call('readdir', () => ({ dir, cut: cut.toString() }))).result as Array<{ name: string; ino: Ino }>
  }
  async read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    const { body } = await this.call('read', () => ({ attr, offset, lengthBytes }))
    return body.copy(into, 0, 0, Math.min(body.length, lengthBytes))
  }
  async versions(ino: Ino, range: VersionRange = {}): Promise<Attr[]> {
    return ((await this.call('versions', () => ({ ino, range: wireVersionRange(range) }))).result as Attr[]).map((attr) => this.observed(attr))
  }
  async nameHistory(dir: Ino, name: string): Promise<NameBinding[]> {
    const bindings = (await this.call('nameHistory', () => ({ dir, name }))).result as Array<Omit<NameBinding, 'stamp'> & { stamp: string }>
    return bindings.map((b) => ({ ...b, stamp: stampArg(b.stamp) }))
  }

  /** What a reader has seen, a later write of it must follow (in every shard's order). */
  private observed(attr: Attr): Attr {
    this.seen.observe(BigInt(attr.stamp))
    return attr
  }
  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return stampOrNull((await this.call('stampOfVersion', () => ({ ino, version }))).result)
  }
  async stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return stampOrNull((await this.call('stampAtSensorTime', () => ({ ino, sensorUs }))).result)
  }
  async sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    const pick = (await this.call('sensorPick', () => ({ ino, sensorUs }))).result as { stamp: string; sizeBytes: number | null } | null
    return pick === null ? null : { stamp: stampArg(pick.stamp), sizeBytes: pick.sizeBytes }
  }
  async snapshots(): Promise<Snapshot[]> {
    return (await this.call('snapshots', () => ({}))).result as Snapshot[]
  }
  async snapshot(name: string): Promise<Snapshot | null> {
    return (await this.call('snapshot', () => ({ name }))).result as Snapshot | null
  }
  async stableFrontier(): Promise<HlcStamp> {
    return BigInt((await this.call('stableFrontier', () => ({}))).result as string)
  }

  /** The status of the member this client is connected to (`Member.status()`, bigints as strings). */
  async memberStatus(): Promise<unknown> {
    return (await this.call('status', () => ({}))).result
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
          const status =
            connected !== null && connected.member.id === member.id
              ? (await connected.connection.request('status', {}, { timeoutMs })).result
              : await fetchMemberStatus(this.config, member, timeoutMs)
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
    await this.call('waitStable', () => ({ cut: cut.toString(), maxWaitMs: Math.max(0, deadlineMs - Date.now()) }), { extraTimeoutMs: maxWaitMs })
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
  async submit(mutation: Mutation, _options?: SubmitOptions): Promise<{ stamp: HlcStamp; ino?: Ino }> {
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
          ...(after > 0n ? { after: after.toString() } : {}),
        }
        try {
          const { result } = await link.connection.request('submit', args, { timeoutMs: this.config.clients.requestTimeoutMs })
          const { stamp, ino } = result as { stamp: string; ino?: Ino }
          this.seen.observe(BigInt(stamp))
          return { stamp: BigInt(stamp), ...(ino !== undefined ? { ino } : {}) }
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
  }

  // ------------------------------------------------ connections

  /** One request, retried on the next member while connections die (each member at most once more). */
  private async call(method: string, makeArgs: () => unknown, options: { extraTimeoutMs?: number } = {}): Promise<{ result: unknown; body: Buffer }> {
    let lastError: Error | null = null
    for (let attempt = 0; attempt <= this.config.members.length; attempt++) {
      const link = await this.link()
      try {
        return await link.connection.request(method, makeArgs(), { timeoutMs: this.config.clients.requestTimeoutMs + (options.extraTimeoutMs ?? 0) })
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
          onMessage: (message) => this.onEvent?.(message.method, message.args, message.body),
        })
        const { result } = await connection.request('hello', { protocol: REMOTE_PROTOCOL, clientId: this.clientId }, { timeoutMs: this.config.clients.requestTimeoutMs })
        const hello = result as Hello
        if (this.closed) throw new FffsError('EIO', 'client closed')
        const link: Link = { connection, member, index, dedupesSubmits: hello.dedupesSubmits }
        // Unsubmitted blobs first: frames arrive in order, so any submit after them finds them.
        for (const blob of this.blobs.values()) if (blob.sentOn !== connection) this.sendBlob(connection, blob)
        connection.onClose((reason) => {
          if (this.current !== link) return
          this.current = null
          this.nextIndex = (index + 1) % members.length
          if (!this.closed) this.log(`fffs: lost member ${member.id} (${member.host}:${member.clientPort}): ${reason.message}; failing over`)
        })
        this.current = link
        this.nextIndex = index
        return link
      } catch (err) {
        connection?.close()
        if (err instanceof FffsError && err.code === 'EACCES') refused = true
        failures.push(`member ${member.id} ${member.host}:${member.clientPort}: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    throw new FffsError(refused ? 'EACCES' : 'EIO', `no member of group ${this.config.name} reachable: ${failures.join('; ')}`)
  }

  private sendBlob(connection: Connection, blob: PendingBlob): void {
    blob.sentOn = connection
    connection.send('blob', { id: blob.id, ino: blob.ino }, blob.bytes).then(blob.markWritten, () => undefined /* re-sent on the next connection */)
  }
}

const GROUP_STATUS_TIMEOUT_MS = 2_000

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
export async function fetchMemberStatus(config: GroupConfig, member: GroupMember, timeoutMs: number): Promise<unknown> {
  const handshakeTimeoutMs = Math.min(timeoutMs, config.clients.handshakeTimeoutMs)
  const connection = await connect(member.host, member.clientPort, config.key, handshakeTimeoutMs, {
    heartbeatIntervalMs: config.clients.heartbeatIntervalMs,
    deadPeerMs: config.clients.deadPeerMs,
    handshakeTimeoutMs,
  })
  try {
    return (await connection.request('status', {}, { timeoutMs })).result
  } finally {
    connection.close()
  }
}

function stampOrNull(value: unknown): HlcStamp | null {
  return value === null ? null : BigInt(value as string)
}
