// A member's client port, server side: each connection (a mount, or another member) is served
// the methods of protocol.ts: a Client's (any implementation: the member's ReplicaClient, or an
// EmbeddedClient in tests), the member's status and views, and the member-to-member methods
// when the server is a member's.
//
// Data path: a mount's `blob` message carries file bytes; the body goes straight to the Client's
// appendData and the returned reference is kept per connection under the mount's blob id; a
// later `submit` of a version names the blob, and the reference is substituted before the
// Client submits it. File bytes are never base64'd and are copied only where the socket forces it.

import { FffsError } from '../errors.js'
import type { Attr, DataRef, VersionOp } from '../store/records.js'
import type { ChangeFeed } from './changeFeed.js'
import { dataRefAt, type Client } from '../client/client.js'
import { blobIdsOf } from './payload.js'
import type { HistoryState } from '../client/history.js'
import { ATTRS_PAGE_NODES, ATTRS_REPLY_BUDGET_BYTES, clientMethods, HISTORY_PAGE, messageArgs, messages, peerMethods, PROTOCOL_VERSION, READDIR_PAGE_ENTRIES, serveMethods, SNAPSHOTS_PAGE, VERSIONS_PAGE, type CollectArgs, type CollectReply, type Service } from './protocol.js'
import type { Audit } from '../store/store.js'
import { serveViewWatch, type ViewSource } from './viewWatch.js'
import { MAX_BODY_BYTES, type Connection, type Incoming, type Reply } from './wire.js'

export interface ServeClientOptions {
  /**
   * The served Client applies a submit carrying a SubmitId at most once, across connections
   * and members (the replicated member runtime). Clients re-send an in-doubt submit only to
   * a member that says so. Default false (EmbeddedClient does not).
   */
  readonly dedupesSubmits?: boolean
  readonly memberId?: number
  /**
   * Waits until every record at or below a stamp is synced at every member of the view (the
   * member runtime's `waitSynced`). Absent: the served Client acknowledges only synced records.
   */
  readonly waitSynced?: (stamp: bigint, maxWaitMs: number) => Promise<void>
  /** The member-to-member methods (the member runtime's); absent: refused as unknown. */
  readonly peer?: Service<typeof peerMethods>
  /**
   * What a 'status' request answers (the member runtime: `Member.status()`), for `fffs status`.
   * Bigints in it are sent as decimal strings. Absent: 'status' is refused with ENOTSUP.
   */
  readonly status?: () => unknown
  /** The member's views, for clients that follow them (viewWatch.ts). Absent: 'watchViews' is refused with ENOTSUP. */
  readonly views?: ViewSource
  /** The changes the member applies, for mounts that cache the live tree (changeFeed.ts). Absent: 'watchChanges' is refused with ENOTSUP. */
  readonly changes?: ChangeFeed
  /** The member's history retention (upkeep.ts). Absent: the history methods are refused with ENOTSUP. */
  readonly history?: MemberHistory
}

/** What a member serves of its history retention. */
export interface MemberHistory {
  state(): HistoryState
  collect(args: CollectArgs): Promise<CollectReply>
  audits(limit: number): Promise<Audit[]>
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
  const clientRequests = serveMethods(clientMethods, clientService(connection, client, blobs, options))
  const peerRequests = options.peer === undefined ? undefined : serveMethods(peerMethods, options.peer)
  connection.setHandlers({
    onMessage: (message: Incoming) => {
      const blob = messageArgs(messages.blob, message)
      if (blob === undefined) return
      // The body goes to the data path as it is; its reference is known at once, so the
      // submit that follows on this connection (frames arrive in order) finds it.
      const { ref, written } = client.appendData(blob.ino, message.body)
      written.catch(() => undefined) // reported by the submit that refers to it
      blobs.set(blob.id, { ref, written })
    },
    onRequest: (request: Incoming): Promise<Reply> => {
      const handled = clientRequests(request) ?? peerRequests?.(request)
      if (handled === undefined) throw new FffsError('ENOTSUP', `unknown request '${request.method}'`)
      return handled
    },
  })
}

function clientService(connection: Connection, client: Client, blobs: Map<string, ServedBlob>, options: ServeClientOptions): Service<typeof clientMethods> {
  let peerClientId: string | null = null // as its hello names it: its own changes are not fed back to it
  return {
    hello: async ({ protocol, clientId }) => {
      if (protocol !== PROTOCOL_VERSION) throw new FffsError('ENOTSUP', `client speaks protocol ${protocol}, this member ${PROTOCOL_VERSION}`)
      if (clientId !== undefined) peerClientId = clientId
      return { result: { protocol: PROTOCOL_VERSION, memberId: options.memberId ?? null, dedupesSubmits: options.dedupesSubmits ?? false } }
    },
    walk: async ({ components, cut }) => ({ result: await client.walk(components, cut) }),
    attr: async ({ ino, cut }) => ({ result: await client.attr(ino, cut) }),
    attrs: async ({ inos, cut }) => {
      if (inos.length > ATTRS_PAGE_NODES) throw new FffsError('EINVAL', `attrs of ${inos.length} nodes (at most ${ATTRS_PAGE_NODES})`)
      return { result: withinBudget(await client.attrs(inos, cut)) }
    },
    lookup: async ({ dir, name, cut }) => ({ result: await client.lookup(dir, name, cut) }),
    child: async ({ dir, name, cut }) => ({ result: await client.child(dir, name, cut) }),
    readdir: async ({ dir, cut, after, limit }) => ({ result: await client.readdir(dir, cut, { ...(after !== undefined ? { after } : {}), limit: Math.min(limit, READDIR_PAGE_ENTRIES) }) }),
    read: async ({ attr, offset, lengthBytes }) => {
      if (lengthBytes > MAX_BODY_BYTES) throw new FffsError('EINVAL', `read of ${lengthBytes} bytes (at most ${MAX_BODY_BYTES})`)
      const into = client.readBuffer?.(lengthBytes) ?? Buffer.allocUnsafe(lengthBytes)
      const n = await client.read(attr, offset, into, lengthBytes)
      return { result: undefined, body: into.subarray(0, n) }
    },
    locate: async ({ attr, offset, lengthBytes }) => ({ result: (await client.locate?.(attr, offset, lengthBytes)) ?? null }),
    versions: async ({ ino, range = {} }) => ({ result: await client.versions(ino, { ...range, limit: Math.min(range.limit ?? VERSIONS_PAGE, VERSIONS_PAGE) }) }),
    nameHistory: async ({ dir, name, after, limit }) => ({ result: await client.nameHistory(dir, name, { ...(after !== undefined ? { after } : {}), limit: Math.min(limit, HISTORY_PAGE) }) }),
    stampOfVersion: async ({ ino, version }) => ({ result: await client.stampOfVersion(ino, version) }),
    stampAtSensorTime: async ({ ino, sensorUs }) => ({ result: await client.stampAtSensorTime(ino, sensorUs) }),
    sensorPick: async ({ ino, sensorUs }) => ({ result: await client.sensorPick(ino, sensorUs) }),
    snapshots: async ({ after, limit }) => ({ result: await client.snapshots({ ...(after !== undefined ? { after } : {}), limit: Math.min(limit, SNAPSHOTS_PAGE) }) }),
    snapshot: async ({ name }) => ({ result: await client.snapshot(name) }),
    stableFrontier: async () => ({ result: await client.stableFrontier() }),
    waitStable: async ({ cut, maxWaitMs }) => {
      await client.waitStable(cut, maxWaitMs)
      return { result: undefined }
    },
    waitSynced: async ({ stamp, maxWaitMs }) => {
      await options.waitSynced?.(stamp, maxWaitMs)
      return { result: undefined }
    },
    watchChanges: async () => {
      if (options.changes === undefined) throw new FffsError('ENOTSUP', 'this server reports no changes')
      options.changes.serve(connection, peerClientId)
      return { result: undefined }
    },
    watchViews: async () => {
      if (options.views === undefined) throw new FffsError('ENOTSUP', 'this server reports no views')
      return { result: serveViewWatch(connection, options.views) }
    },
    status: async () => {
      if (options.status === undefined) throw new FffsError('ENOTSUP', `this ${options.memberId !== undefined ? `member (${options.memberId})` : 'server'} reports no status`)
      return { result: await options.status() }
    },
    history: async () => ({ result: memberHistory(options).state() }),
    collect: async (args) => ({ result: await memberHistory(options).collect(args) }),
    audits: async ({ limit }) => ({ result: await memberHistory(options).audits(limit) }),
    submit: async ({ mutation, id, after }) => {
      const referenced = blobIdsOf(mutation)
      try {
        const resolved = mutation.type === 'version' ? { ...mutation, ops: mutation.ops.map((op) => withLogRef(op, blobs)) } : mutation
        await Promise.all(referenced.map((blob) => blobs.get(blob)!.written))
        return { result: await client.submit(resolved, { id, ...(after !== undefined ? { after } : {}) }) }
      } finally {
        for (const blob of referenced) blobs.delete(blob)
      }
    },
  }
}

function memberHistory(options: ServeClientOptions): MemberHistory {
  if (options.history === undefined) throw new FffsError('ENOTSUP', `this ${options.memberId !== undefined ? `member (${options.memberId})` : 'server'} keeps no history retention`)
  return options.history
}

/** The first attributes of `attrs` that fit in one reply (at least one): an estimate, as xattrs may be large. */
function withinBudget(attrs: Array<Attr | null>): Array<Attr | null> {
  let bytes = 0
  for (let i = 0; i < attrs.length; i++) {
    const attr = attrs[i]
    bytes += 512 + (attr?.target?.length ?? 0)
    for (const [name, value] of Object.entries(attr?.xattrs ?? {})) bytes += name.length + value.length
    if (bytes > ATTRS_REPLY_BUDGET_BYTES && i > 0) return attrs.slice(0, i)
  }
  return attrs
}

function withLogRef(op: VersionOp, blobs: ReadonlyMap<string, ServedBlob>): VersionOp {
  if (op.op !== 'write' || !('blob' in op.data)) return op
  const blob = blobs.get(op.data.blob)
  // The client re-sends unsubmitted blobs on every new connection before any submit, so a
  // missing one is a protocol bug on the client side; refuse the version rather than guess.
  if (blob === undefined) throw new FffsError('EIO', `version refers to blob ${op.data.blob}, which this connection never received`)
  return { ...op, data: dataRefAt(blob.ref, op.data.offset) }
}
