// The protocol of a member's client port, in one place: every request a mount (clientMethods)
// or another member (peerMethods) sends, its arguments and its result, with their codecs, and
// the one-way messages (a mount's blobs, a member's views). Both ends use these definitions:
// `request` encodes the arguments and decodes the reply, `serveMethods` decodes the arguments
// and encodes the reply, so no end casts what the wire brought. Errors travel as the wire's
// {code, message, reason} (wire.ts).

import type { ChangeNote, SubmitId, Submitted } from '../client/client.js'
import type { HistoryState } from '../client/history.js'
import type { RetentionRunReport } from '../store/retention/runner.js'
import type { Audit, LocatedBytes } from '../store/store.js'
import * as c from './codec.js'
import type { TransferStatus } from './readiness.js'
import type { AcceptedView, EpochPlan, MemberReport } from './recovery.js'
import type { ImageBatch, ImageCursor } from './storeImage.js'
import type { TransferBatch, TransferCursor } from './transfer.js'
import type { Connection, Incoming, Reply } from './wire.js'
import type { Attr, Ino, Mutation, NameBinding, SensorPick, Snapshot, VersionRange } from '../store/records.js'

/** Bumped when a method's arguments or results change shape; a hello across versions is refused. */
export const PROTOCOL_VERSION = 4

export interface Method<A, R> {
  readonly name: string
  readonly args: c.Codec<A>
  readonly result: c.Codec<R>
}

export interface Message<A> {
  readonly name: string
  readonly args: c.Codec<A>
}

function method<A, R>(name: string, args: c.Codec<A>, result: c.Codec<R>): Method<A, R> {
  return { name, args, result }
}

function message<A>(name: string, args: c.Codec<A>): Message<A> {
  return { name, args }
}

// ---- the values that travel ----

const ino = c.natural
const phase = c.oneOf<MemberReport['phase']>(['recovering', 'starting', 'running', 'stopped'])

const attr = c.shaped<Attr>('an Attr', (w) => c.field(w, 'ino', 'number') ?? c.field(w, 'kind', 'string') ?? c.field(w, 'stamp', 'string') ?? c.field(w, 'version', 'number'))
const mutation = c.shaped<Mutation>('a Mutation', (w) => c.field(w, 'type', 'string'))
const snapshot = c.shaped<Snapshot>('a Snapshot', (w) => c.field(w, 'name', 'string') ?? c.field(w, 'at', 'string'))
const transferBatch = c.shaped<TransferBatch>('a TransferBatch', (w) => (Array.isArray(w['items']) ? null : 'items is not an array') ?? c.field(w, 'cursor', 'object') ?? c.field(w, 'done', 'boolean'))

/** What a record changed (changeFeed.ts): each part absent or an array. */
const changeNote = c.shaped<ChangeNote>('a ChangeNote', (w) => {
  for (const key of ['entries', 'nodes', 'contents', 'snapshots']) if (w[key] !== undefined && !Array.isArray(w[key])) return `${key} is not an array`
  return null
})

const versionRange = c.object<VersionRange>({ after: c.optional(c.stamp), upto: c.optional(c.stamp), limit: c.optional(c.natural), reverse: c.optional(c.boolean) })
const submitId = c.object<SubmitId>({ clientId: c.string, seq: c.natural, oldestPendingSeq: c.natural })
const transferStatus = c.object<TransferStatus>({ donorId: c.integer, records: c.natural, doneBytes: c.natural, totalBytes: c.natural, rateBytesPerS: c.number, etaMs: c.nullable(c.number), elapsedMs: c.number })
const acceptedView = c.object<AcceptedView>({ vid: c.natural, ballot: c.string, memberIds: c.array(c.integer) })
const transferCursor = c.object<TransferCursor>({ afterStamp: c.string, opsSent: c.natural, blobsSent: c.natural })
const imageCursor = c.object<ImageCursor>({ session: c.natural, stamp: c.string, endSegment: c.natural, endOffset: c.natural, segment: c.natural, offset: c.natural, indexAfter: c.nullable(c.string) })
const imageBatch = c.shaped<ImageBatch>('an ImageBatch', (w) => (Array.isArray(w['items']) ? null : 'items is not an array') ?? c.field(w, 'cursor', 'object') ?? c.field(w, 'done', 'boolean'))

export const memberReport = c.object<MemberReport>({
  id: c.integer,
  phase,
  lastStamp: c.string,
  lastVid: c.natural,
  lastViewIds: c.array(c.integer),
  lastRunVid: c.optional(c.natural),
  accepted: c.optional(acceptedView),
  starting: c.optional(c.object<{ vid: number; ready: boolean }>({ vid: c.natural, ready: c.boolean })),
  transfer: c.optional(transferStatus),
})

export const epochPlan = c.object<EpochPlan>({ vid: c.natural, memberIds: c.array(c.integer), donorId: c.integer, startStamp: c.string, catchUpIds: c.optional(c.array(c.integer)) })

/** A member's view of the group, as it pushes it to the clients that watch it (viewWatch.ts). */
export interface MemberView {
  readonly memberId: number
  readonly phase: MemberReport['phase']
  readonly vid: number // the last view it installed (or is starting)
  readonly memberIds: readonly number[]
}

const memberView = c.object<MemberView>({ memberId: c.integer, phase, vid: c.natural, memberIds: c.array(c.integer) })

/** What a status request answers: the member's status as JSON, bigints as decimal strings. */
const status: c.Codec<unknown> = { encode: jsonable, decode: (wire) => wire }

/** A copy of `value` that JSON.stringify accepts: bigints become decimal strings. */
export function jsonable(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(jsonable)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]))
  return value
}

const historyState = c.shaped<HistoryState>('a HistoryState', (w) => c.field(w, 'floorStamp', 'string') ?? c.field(w, 'logBase', 'string'))
/** A run's report and an audit entry travel as JSON (bigints as decimal strings); an audit's stamp is read back as a bigint. */
const runReport: c.Codec<RetentionRunReport> = { ...c.shaped<RetentionRunReport>('a retention run report', (w) => c.field(w, 'gc', 'object')), encode: jsonable }
const audit: c.Codec<Audit> = {
  encode: (value) => jsonable(value),
  decode: (wire, at) => {
    const entry = c.shaped<Audit & { stamp: unknown }>('an audit entry', (w) => c.field(w, 'kind', 'string') ?? c.field(w, 'stamp', 'string')).decode(wire, at)
    return { ...entry, stamp: c.stamp.decode(entry.stamp, at) } as Audit
  },
}

/** A retention run at one member (`fffs gc` in a group asks each member; the first proposes the records that move the floor). */
export interface CollectArgs {
  readonly dryRun: boolean
  /** Order `retain` and the `compact` records (the floor moves for the whole group); else only collect this member's segments. */
  readonly propose: boolean
  /** Run once this member holds every record up to here (the records another member's run ordered). */
  readonly after?: bigint
}

export interface CollectReply {
  readonly report: RetentionRunReport
  /** What this member had applied when its run ended (the next member's `after`). */
  readonly appliedStamp: bigint
}

// ---- a mount and a member ----

export interface Hello {
  readonly protocol: number
  readonly memberId: number | null
  readonly dedupesSubmits: boolean
}

export interface SubmitArgs {
  readonly mutation: Mutation
  readonly id: SubmitId
  readonly retry: boolean // re-sent after a lost connection: the first attempt may have applied
  readonly after?: bigint // the client's clock (HLC piggybacking)
}

// No reply grows with a directory's size or a node's history: listings, batches of attributes,
// versions, a name's bindings and the snapshots travel a window at a time (the wire's frame
// header is at most 1 MiB).
/** The most entries one readdir reply holds: a name is at most 255 bytes, at most ~1.5 KiB as JSON. */
export const READDIR_PAGE_ENTRIES = 512
/** The most nodes one 'attrs' request names. */
export const ATTRS_PAGE_NODES = 512
/** An 'attrs' reply stops before this many bytes of attributes (estimated: xattrs can be large); the client asks again for the rest. */
export const ATTRS_REPLY_BUDGET_BYTES = 256 * 1024
/** The most versions one 'versions' reply holds. */
export const VERSIONS_PAGE = 256
/** The most bindings of a name one 'nameHistory' reply holds. */
export const HISTORY_PAGE = 1024
/** The most snapshots one 'snapshots' reply holds (a name ≤ 255 bytes, a spec as long). */
export const SNAPSHOTS_PAGE = 256

export const clientMethods = {
  hello: method('hello', c.object<{ protocol: number; clientId?: string }>({ protocol: c.integer, clientId: c.optional(c.string) }), c.object<Hello>({ protocol: c.integer, memberId: c.nullable(c.integer), dedupesSubmits: c.boolean })),
  walk: method('walk', c.object<{ components: string[]; cut: bigint }>({ components: c.array(c.string), cut: c.stamp }), attr),
  attr: method('attr', c.object<{ ino: Ino; cut: bigint }>({ ino, cut: c.stamp }), c.nullable(attr)),
  /** The attributes of `inos` in order; possibly of only the first few (ATTRS_REPLY_BUDGET_BYTES), at least one. */
  attrs: method('attrs', c.object<{ inos: Ino[]; cut: bigint }>({ inos: c.array(ino), cut: c.stamp }), c.array(c.nullable(attr))),
  lookup: method('lookup', c.object<{ dir: Ino; name: string; cut: bigint }>({ dir: ino, name: c.string, cut: c.stamp }), c.nullable(ino)),
  /** Lookup and attributes in one step. */
  child: method('child', c.object<{ dir: Ino; name: string; cut: bigint }>({ dir: ino, name: c.string, cut: c.stamp }), c.nullable(attr)),
  /** The entries after `after`, at most `limit` (≤ READDIR_PAGE_ENTRIES); fewer: the listing ends there. */
  readdir: method('readdir', c.object<{ dir: Ino; cut: bigint; after: string | undefined; limit: number }>({ dir: ino, cut: c.stamp, after: c.optional(c.string), limit: c.natural }), c.array(c.object<{ name: string; ino: Ino }>({ name: c.string, ino }))),
  /** The bytes come as the reply's body. */
  read: method('read', c.object<{ attr: Attr; offset: number; lengthBytes: number }>({ attr, offset: c.natural, lengthBytes: c.natural }), c.none),
  /** Where the bytes `read` would send lie in the member's log files, for a mount on its host to read there (null: the member cannot say). */
  locate: method(
    'locate',
    c.object<{ attr: Attr; offset: number; lengthBytes: number }>({ attr, offset: c.natural, lengthBytes: c.natural }),
    c.nullable(
      c.object<LocatedBytes>({
        sizeBytes: c.natural,
        files: c.array(c.object<{ file: string; id: string }>({ file: c.string, id: c.string })),
        pieces: c.array(c.object<{ intoOffset: number; lengthBytes: number; fileIndex: number; offset: number }>({ intoOffset: c.natural, lengthBytes: c.natural, fileIndex: c.natural, offset: c.natural })),
      }),
    ),
  ),
  /** At most VERSIONS_PAGE of them (fewer than asked: the range ends there). */
  versions: method('versions', c.object<{ ino: Ino; range: VersionRange | undefined }>({ ino, range: c.optional(versionRange) }), c.array(attr)),
  /** The bindings after `after`, at most `limit` (≤ HISTORY_PAGE). */
  nameHistory: method('nameHistory', c.object<{ dir: Ino; name: string; after: bigint | undefined; limit: number }>({ dir: ino, name: c.string, after: c.optional(c.stamp), limit: c.natural }), c.array(c.object<NameBinding>({ stamp: c.stamp, ino: c.nullable(ino), firstRow: c.optional(c.natural), version: c.optional(c.natural) }))),
  stampOfVersion: method('stampOfVersion', c.object<{ ino: Ino; version: number }>({ ino, version: c.natural }), c.nullable(c.stamp)),
  stampAtSensorTime: method('stampAtSensorTime', c.object<{ ino: Ino; sensorUs: number }>({ ino, sensorUs: c.number }), c.nullable(c.stamp)),
  sensorPick: method('sensorPick', c.object<{ ino: Ino; sensorUs: number }>({ ino, sensorUs: c.number }), c.nullable(c.object<SensorPick>({ stamp: c.stamp, sizeBytes: c.nullable(c.natural) }))),
  /** The snapshots after `after` by name, at most `limit` (≤ SNAPSHOTS_PAGE). */
  snapshots: method('snapshots', c.object<{ after: string | undefined; limit: number }>({ after: c.optional(c.string), limit: c.natural }), c.array(snapshot)),
  snapshot: method('snapshot', c.object<{ name: string }>({ name: c.string }), c.nullable(snapshot)),
  stableFrontier: method('stableFrontier', c.none, c.stamp),
  waitStable: method('waitStable', c.object<{ cut: bigint; maxWaitMs: number }>({ cut: c.stamp, maxWaitMs: c.natural }), c.none),
  /** Returns once every record at or below `stamp` is synced at every member of the view. */
  waitSynced: method('waitSynced', c.object<{ stamp: bigint; maxWaitMs: number }>({ stamp: c.stamp, maxWaitMs: c.natural }), c.none),
  /** `changed` messages follow, one per record the member applies that another client submitted (changeFeed.ts). */
  watchChanges: method('watchChanges', c.none, c.none),
  /** The view now; `view` messages follow at every change (viewWatch.ts). */
  watchViews: method('watchViews', c.none, memberView),
  status: method('status', c.none, status),
  /** This member's history retention: its floor, policy and log base. */
  history: method('history.state', c.none, historyState),
  collect: method('history.collect', c.object<CollectArgs>({ dryRun: c.boolean, propose: c.boolean, after: c.optional(c.stamp) }), c.object<CollectReply>({ report: runReport, appliedStamp: c.stamp })),
  audits: method('history.audits', c.object<{ limit: number }>({ limit: c.natural }), c.array(audit)),
  submit: method('submit', c.object<SubmitArgs>({ mutation, id: submitId, retry: c.boolean, after: c.optional(c.stamp) }), c.object<Submitted>({ stamp: c.stamp, ino: c.optional(ino), attr: c.optional(attr) })),
}

export const messages = {
  /** A mount's file bytes (the body), named by a connection-local id that its later submits refer to. */
  blob: message('blob', c.object<{ id: string; ino: Ino }>({ id: c.string, ino })),
  /** A member's view changed (to the clients watching it). */
  view: message('view', memberView),
  /** What a record another client submitted changed (to the mounts watching the member's changes). */
  changed: message('changed', changeNote),
}

// ---- member to member ----

/** A state-transfer request: the records in (after, upto], from `cursor` on. */
export interface FetchArgs {
  readonly after: bigint
  readonly upto: bigint | null // null: the donor's stable frontier (fixed by its first reply)
  readonly cursor: TransferCursor | null
  readonly withBlobs: boolean
}

/** A batch of a state transfer (its bytes are the reply's body). */
export interface FetchReply {
  readonly batch: TransferBatch
  readonly upto: bigint
  readonly totalBytes?: number // first reply only: an estimate of the whole transfer
}

export interface DigestReply {
  readonly digest: string | null
  readonly logBase: bigint
}

/** A batch of a whole-store transfer (its bytes are the reply's body). */
export interface ImageReply {
  readonly batch: ImageBatch
  readonly totalBytes?: number // first reply only: the segment bytes of the whole image
}

export const peerMethods = {
  /** Where the member stands (recovery.ts). */
  hello: method('member.hello', c.none, memberReport),
  /** Asks a running member to order a reconfigure adding `id`. */
  join: method('member.join', c.object<{ id: number }>({ id: c.integer }), c.object<{ accepted: boolean }>({ accepted: c.boolean })),
  /** Tells a recovering member about a plan it is in. */
  epoch: method('member.epoch', epochPlan, c.object<{ phase: MemberReport['phase'] }>({ phase })),
  fetch: method('member.fetch', c.object<FetchArgs>({ after: c.stamp, upto: c.nullable(c.stamp), cursor: c.nullable(transferCursor), withBlobs: c.boolean }), c.object<FetchReply>({ batch: transferBatch, upto: c.stamp, totalBytes: c.optional(c.natural) })),
  /** The digest of the record at `stamp` (transfer.ts recordDigest), or null: none there; and the log base (a transfer starts above it). */
  digest: method('member.digest', c.object<{ stamp: bigint }>({ stamp: c.stamp }), c.object<DigestReply>({ digest: c.nullable(c.string), logBase: c.stamp })),
  /** A batch of a whole-store transfer (storeImage.ts): the first with `cursor` null. */
  image: method('member.image', c.object<{ cursor: ImageCursor | null }>({ cursor: c.nullable(imageCursor) }), c.object<ImageReply>({ batch: imageBatch, totalBytes: c.optional(c.natural) })),
}

// ---- both ends ----

/** Sends `m` with `args` on `connection`; resolves with the decoded result and the reply's body. */
export async function request<A, R>(connection: Connection, m: Method<A, R>, args: A, options: { readonly timeoutMs: number; readonly body?: Uint8Array }): Promise<{ result: R; body: Buffer }> {
  const { result, body } = await connection.request(m.name, m.args.encode(args), options)
  return { result: m.result.decode(result, `${m.name} reply`), body }
}

/** What a handler answers: the result, and a body for the reply. */
export interface Answer<R> {
  readonly result: R
  readonly body?: Uint8Array
}

/** The handler of each method of a table: decoded arguments in, a result (and body) out. */
export type Service<T> = { readonly [K in keyof T]: T[K] extends Method<infer A, infer R> ? (args: A, request: Incoming) => Promise<Answer<R>> : never }

// A table holds methods of different argument and result types; Method is invariant in both, so
// only `any` admits them all (each handler is still typed by Service<T>).
type MethodTable = Record<string, Method<any, any>>

/** A request handler for the methods of `table`: undefined for a method not in it. */
export function serveMethods<T extends MethodTable>(table: T, service: Service<T>): (request: Incoming) => Promise<Reply> | undefined {
  const byName = new Map<string, { m: Method<unknown, unknown>; handle: (args: unknown, request: Incoming) => Promise<Answer<unknown>> }>()
  for (const key of Object.keys(table)) {
    const m = table[key]!
    byName.set(m.name, { m, handle: service[key as keyof T] as (args: unknown, request: Incoming) => Promise<Answer<unknown>> })
  }
  return (incoming) => {
    const entry = byName.get(incoming.method)
    if (entry === undefined) return undefined
    return (async () => {
      const answer = await entry.handle(entry.m.args.decode(incoming.args, `${incoming.method} args`), incoming)
      return { result: entry.m.result.encode(answer.result), ...(answer.body !== undefined ? { body: answer.body } : {}) }
    })()
  }
}

/** Sends the one-way message `m`. */
export function send<A>(connection: Connection, m: Message<A>, args: A, body?: Uint8Array): Promise<void> {
  return connection.send(m.name, m.args.encode(args), body)
}

/** The arguments of message `m`, if `incoming` is one; undefined otherwise. */
export function messageArgs<A>(m: Message<A>, incoming: Incoming): A | undefined {
  return incoming.method === m.name ? m.args.decode(incoming.args, `${m.name} message`) : undefined
}
