// The mount process's control socket server: answers the CLI's inspection and snapshot
// requests. Every request gets exactly one response; malformed ones get an error response.

import { promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { errors, isFffsError } from '../errors.js'
import type { MountedFs } from '../fs/mount.js'
import { NameHistory, type HistoryQuery, type HistoryRow } from '../fs/history.js'
import { parsePath, Resolver, type TimeOptions } from '../fs/resolve.js'
import type { Client } from '../client/client.js'
import { describeAudit, describeRun, type HistoryControl } from '../client/history.js'
import { RemoteClient } from '../replication/remoteClient.js'
import { ShardedClient } from '../replication/sharded.js'
import type { Attr, EntryChange, NodeKind } from '../store/records.js'
import { HLC_MAX, hlcCeilingOfUs, hlcOf, hlcToIso } from '../temporal/hlc.js'
import { formatTimeSpec, parseTimeSpec } from '../temporal/spec.js'
import { cutReport, stableChanges } from './inspect.js'
import { CONTROL_REQUEST_BYTES_MAX, controlSocketPath, type ControlRequest, type ControlResponse } from './protocol.js'

export const CAT_CHUNK_BYTES_MAX = 1024 * 1024

/** A row of `fffs log`: a version the path returned (or, for `--object`, a version of the object). */
export interface VersionInfo {
  version: number // the row: PATH@v<version> (with --object, the object's own version number)
  time: string // from this instant on, PATH@T returns this row
  stamp: string // the exact HLC stamp, decimal (`time` is its physical part)
  ino: number // the object (inode) this is a version of; for a removal, the object removed
  objectVersion: number | null // the object's own version number; null: the name was removed (PATH@T is ENOENT)
  kind: NodeKind | null
  sensorTime: string | null
  sizeBytes: number | null
  /** How many names the object had with this version (hard links; 0 once the last is removed); null for a removal row. */
  links: number | null
  change: string // create, version, setattr, ...; for a directory, what changed among its entries
  entries?: EntryChange
}

/** What the control socket answers to 'log'. */
export interface LogReport {
  readonly path: string
  readonly anchoredPath: string | null // the path with its relative spec made absolute, when it had one
  readonly object: boolean
  readonly total: number // rows in the whole history (the query may list fewer)
  readonly rows: VersionInfo[]
}

export interface EntryInfo {
  name: string
  kind: string
  sizeBytes: number
  version: number
  time: string
  stamp: string // this version's HLC stamp, decimal: equal stamps of one node mean the same bytes
  contentStamp?: string // sharded: the data shard's version the bytes are
  mode: number // permission bits
  target?: string // symlinks
}

function entryInfo(name: string, attr: Attr): EntryInfo {
  return {
    name,
    kind: attr.kind,
    sizeBytes: attr.sizeBytes,
    version: attr.version,
    time: hlcToIso(BigInt(attr.stamp)),
    stamp: attr.stamp,
    ...(attr.contentStamp !== undefined ? { contentStamp: attr.contentStamp } : {}),
    mode: attr.mode,
    ...(attr.target !== undefined ? { target: attr.target } : {}),
  }
}

function versionInfo(row: HistoryRow): VersionInfo {
  const attr = row.attr
  return {
    version: row.row,
    time: hlcToIso(row.stamp),
    stamp: row.stamp.toString(),
    ino: row.ino,
    objectVersion: attr?.version ?? null,
    kind: attr?.kind ?? null,
    sensorTime: attr?.sensorUs === undefined ? null : formatTimeSpec({ kind: 'platform', timeUs: attr.sensorUs }),
    sizeBytes: attr?.sizeBytes ?? null,
    links: attr === null ? null : (attr.nlink ?? 1),
    change: attr?.entries === undefined ? row.change : describeEntryChange(attr.entries),
    ...(attr?.entries !== undefined ? { entries: attr.entries } : {}),
  }
}

/** A directory version's change among its entries, as `fffs log DIR` shows it. */
function describeEntryChange(entries: EntryChange): string {
  const replacing = entries.replaced === true ? ' (replacing the one before)' : ''
  if (entries.added !== undefined && entries.removed !== undefined) return `renamed ${entries.removed} → ${entries.added}${replacing}`
  if (entries.added !== undefined) return `+ ${entries.added}${entries.moved === true ? ' (moved in)' : ''}${replacing}`
  if (entries.removed !== undefined) return `- ${entries.removed}${entries.moved === true ? ' (moved out)' : ''}`
  return 'entries changed'
}

type LogRequest = Extract<ControlRequest, { op: 'log' }>

/** A log request's filters, checked (the request is the peer's JSON): `--since`/`--until` are platform times (the CLI resolves relative ones). */
function historyQuery(request: LogRequest): HistoryQuery {
  const time = (field: 'since' | 'until'): number | undefined => {
    const text: unknown = request[field]
    if (text === undefined) return undefined
    if (typeof text !== 'string') throw errors.invalid(`log: ${field} must be a SPEC`)
    const spec = parseTimeSpec(text)
    if (spec.kind !== 'platform') throw errors.invalid(`log: --${field} takes a platform time, got '${text}'`)
    return spec.timeUs
  }
  const since = time('since')
  const until = time('until')
  const limit: unknown = request.limit
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1)) throw errors.invalid(`log: limit must be a positive integer`)
  return {
    ...(since !== undefined ? { since: hlcOf(since, 0) } : {}),
    ...(until !== undefined ? { until: hlcCeilingOfUs(until) } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(request.reverse === true ? { reverse: true } : {}),
  }
}

/** Stamps (bigints) travel as decimal text. */
function stampsAsText(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}

export class ControlServer {
  private readonly server: net.Server
  private readonly resolver: Resolver
  readonly socketPath: string

  constructor(
    private readonly client: Client,
    private readonly mounted: MountedFs,
    private readonly options: TimeOptions,
    private readonly dataDir: string,
    private readonly onUnmount: () => void,
  ) {
    this.resolver = new Resolver(client, options)
    this.socketPath = controlSocketPath(mounted.mountpoint)
    this.server = net.createServer((socket) => this.serve(socket))
  }

  async start(): Promise<void> {
    await fsp.mkdir(path.dirname(this.socketPath), { recursive: true, mode: 0o700 })
    await fsp.rm(this.socketPath, { force: true })
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.socketPath, () => resolve())
    })
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
    await fsp.rm(this.socketPath, { force: true })
  }

  private serve(socket: net.Socket): void {
    let buffered = ''
    socket.setEncoding('utf8')
    socket.on('error', () => socket.destroy())
    socket.on('data', (text: string) => {
      buffered += text
      if (buffered.length > CONTROL_REQUEST_BYTES_MAX) {
        socket.end(JSON.stringify({ ok: false, code: 'EINVAL', message: 'request too large' }) + '\n')
        return
      }
      let newline: number
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        void this.answer(line).then((response) => socket.write(JSON.stringify(response, stampsAsText) + '\n'))
      }
    })
  }

  private async answer(line: string): Promise<ControlResponse> {
    try {
      let request: ControlRequest
      try {
        request = JSON.parse(line) as ControlRequest
      } catch {
        throw errors.invalid('request is not JSON')
      }
      if (typeof request !== 'object' || request === null || typeof request.op !== 'string') throw errors.invalid('request has no op')
      return { ok: true, result: await this.dispatch(request) }
    } catch (err) {
      if (isFffsError(err)) return { ok: false, code: err.code, message: err.message, ...(err.reason !== undefined ? { reason: err.reason } : {}) }
      return { ok: false, code: 'EIO', message: err instanceof Error ? err.message : String(err) }
    }
  }

  private async node(pathText: unknown): Promise<{ attr: Attr; anchoredPath: string | null }> {
    if (typeof pathText !== 'string') throw errors.invalid('path must be a string')
    const { attr, anchoredPath } = await this.resolver.resolve(parsePath(pathText))
    if (attr === null) throw errors.invalid(`${pathText} is a virtual directory`)
    return { attr, anchoredPath }
  }

  /** `fffs log`: the rows PATH@T returned over time (history.ts), or with `object` the versions of the object PATH names. */
  private async log(request: LogRequest): Promise<LogReport> {
    if (typeof request.path !== 'string') throw errors.invalid('path must be a string')
    const query = historyQuery(request)
    if (request.object === true) {
      const { attr, anchoredPath } = await this.node(request.path)
      const latest = await this.client.attr(attr.ino, HLC_MAX)
      const { since, until, ...page } = query // the object's own versions: the same filters as a VersionRange
      const range = { ...page, ...(since !== undefined ? { after: since - 1n } : {}), ...(until !== undefined ? { upto: until } : {}) }
      const rows = (await this.client.versions(attr.ino, range)).map((a) => versionInfo({ row: a.version, stamp: BigInt(a.stamp), ino: a.ino, attr: a, change: a.change }))
      return { path: request.path, anchoredPath, object: true, total: latest?.version ?? 0, rows }
    }
    const { dir, name } = await this.resolver.historyTarget(parsePath(request.path))
    const history = await NameHistory.of(this.client, dir, name)
    if (history.total === 0) throw errors.notFound(`${request.path} (it has never existed)`)
    return { path: request.path, anchoredPath: null, object: false, total: history.total, rows: (await history.rows(query)).map(versionInfo) }
  }

  private historyControl(): HistoryControl {
    if (this.client.history === undefined) throw errors.notSupported('retention on this mount')
    return this.client.history
  }

  /**
   * Embedded: the mount alone. Sharded (a ShardedClient): the cluster status of each shard's
   * group, and the global stable frontier (the least of theirs). Cluster (a RemoteClient): the group, the member this mount is
   * connected to, and every member's own status (RemoteClient.groupStatus: the connected one
   * over this mount's connection, the others over short-lived connections; an unreachable
   * member is listed with its error). The CLI renders it (src/cli/statusView.ts).
   */
  private async status(): Promise<Record<string, unknown>> {
    const base = { mountpoint: this.mounted.mountpoint, pid: process.pid }
    if (this.client instanceof ShardedClient) {
      // Each shard as its own cluster status (the same shape a one-group mount answers).
      const at = new Date().toISOString()
      const shards = (await this.client.shardStatus()).map((shard) => ({
        ...base,
        mode: 'cluster',
        shard: shard.shard,
        stateDir: this.dataDir,
        group: shard.group,
        connectedMember: shard.connectedMember,
        stableFrontier: shard.stableFrontier === null ? 'unknown' : hlcToIso(shard.stableFrontier),
        members: shard.members,
        at,
      }))
      const stableFrontier = await this.client.stableFrontier().then(hlcToIso, (err: Error) => `unknown (${err.message})`)
      const floor = await this.client.history.floor().catch(() => null)
      const historyFloor = floor === null ? 'unknown' : floor === 0n ? null : hlcToIso(floor)
      return { ...base, mode: 'sharded', stateDir: this.dataDir, group: this.client.group, stableFrontier, historyFloor, shards, at }
    }
    if (!(this.client instanceof RemoteClient)) {
      return { ...base, mode: 'embedded', dataDir: this.dataDir, stableFrontier: hlcToIso(await this.client.stableFrontier()), history: (await this.client.history?.state())?.[0] ?? null, disk: (await this.client.diskState?.()) ?? null }
    }
    const members = await this.client.groupStatus()
    const stableFrontier = await this.client.stableFrontier().then(hlcToIso, (err: Error) => `unknown (${err.message})`)
    return { ...base, mode: 'cluster', stateDir: this.dataDir, group: this.client.group, connectedMember: this.client.memberId, stableFrontier, members, at: new Date().toISOString() }
  }

  private async dispatch(request: ControlRequest): Promise<unknown> {
    switch (request.op) {
      case 'log':
        return this.log(request)
      case 'cat': {
        const { attr, anchoredPath } = await this.node(request.path)
        if (attr.kind === 'dir') throw errors.isDir(request.path)
        const { offset, length } = request as { offset?: unknown; length?: unknown }
        const from = typeof offset === 'number' && offset >= 0 ? offset : 0
        const want = typeof length === 'number' && length >= 0 ? Math.min(length, CAT_CHUNK_BYTES_MAX) : CAT_CHUNK_BYTES_MAX
        const into = Buffer.alloc(want)
        const n = await this.client.read(attr, from, into, want)
        return { sizeBytes: attr.sizeBytes, version: attr.version, anchoredPath, dataBase64: into.subarray(0, n).toString('base64') }
      }
      case 'ls': {
        const resolved = await this.resolver.resolve(parsePath(String(request.path)))
        if (resolved.place.kind === 'snapshots') return { anchoredPath: null, entries: (await this.client.snapshots()).map((s) => ({ name: s.name, kind: 'snapshot', sizeBytes: 0, version: 0, time: hlcToIso(BigInt(s.at)), stamp: s.at, mode: 0o555 })) }
        if (resolved.attr !== null && resolved.attr.kind !== 'dir') throw errors.notDir(String(request.path))
        const entries: EntryInfo[] = []
        const listed = await this.resolver.entries(resolved.place)
        const steps = await this.resolver.entrySteps(resolved.place, listed)
        listed.forEach((e, i) => {
          const attr = steps[i]?.attr
          if (attr != null) entries.push(entryInfo(e.name, attr))
        })
        return { anchoredPath: resolved.anchoredPath, entries }
      }
      case 'stat': {
        const { attr } = await this.node(request.path)
        return entryInfo(String(request.path).split('/').filter((c) => c !== '').pop() ?? '/', attr)
      }
      case 'ping':
        return { pid: process.pid, mountpoint: this.mounted.mountpoint }
      case 'snapshot.create':
        if (typeof request.name !== 'string') throw errors.invalid('snapshot name must be a string')
        return this.mounted.operations.createSnapshot(request.name, typeof request.at === 'string' ? request.at : null)
      case 'snapshot.list':
        return (await this.client.snapshots()).map((s) => ({ name: s.name, at: hlcToIso(BigInt(s.at)), spec: s.spec }))
      case 'snapshot.delete':
        if (typeof request.name !== 'string') throw errors.invalid('snapshot name must be a string')
        await this.mounted.operations.deleteSnapshot(request.name)
        return { name: request.name }
      case 'snapshot.hold':
      case 'snapshot.release':
        if (typeof request.name !== 'string' || typeof request.tag !== 'string') throw errors.invalid('a hold takes a snapshot name and a tag')
        await this.client.submit({ type: request.op === 'snapshot.hold' ? 'hold' : 'release', name: request.name, tag: request.tag })
        return { name: request.name, tag: request.tag }
      case 'gc':
        return (await this.historyControl().collect({ dryRun: request.dryRun === true })).map((run) => ({ ...run, line: describeRun(run.report) }))
      case 'gc.log': {
        const limit = typeof request.limit === 'number' && Number.isSafeInteger(request.limit) && request.limit > 0 ? request.limit : 1000
        return (await this.historyControl().audits(limit)).map(({ audit, ...who }) => ({ ...who, stamp: audit.stamp.toString(), time: hlcToIso(audit.stamp), kind: audit.kind, line: describeAudit(audit), audit: { ...audit, stamp: audit.stamp.toString() } }))
      }
      case 'status':
        // This mount's sensor-time counters (late writes refused, malformed records), whatever the mode.
        return { ...(await this.status()), sensor: { ...this.mounted.operations.sensorStats } }
      case 'cut':
        if (typeof request.spec !== 'string') throw errors.invalid('cut: spec must be a string')
        return cutReport(this.client, this.resolver, this.options, request.spec, typeof request.path === 'string' ? request.path : null)
      case 'changes': {
        if (typeof request.pattern !== 'string') throw errors.invalid('changes: pattern must be a string')
        const after = typeof request.after === 'string' && /^\d+$/.test(request.after) ? BigInt(request.after) : null
        return stableChanges(this.client, request.pattern, after)
      }
      case 'unmount':
        setImmediate(this.onUnmount)
        return { unmounting: this.mounted.mountpoint }
      default:
        throw errors.invalid(`unknown op '${(request as { op: string }).op}'`)
    }
  }
}
