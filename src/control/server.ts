// The mount process's control socket server: answers the CLI's inspection and snapshot
// requests. Every request gets exactly one response; malformed ones get an error response.

import { promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { errors, isFffsError } from '../errors.js'
import type { MountedFs } from '../fs/mount.js'
import { parsePath, Resolver, type TimeOptions } from '../fs/resolve.js'
import type { Client } from '../replication/client.js'
import { RemoteClient } from '../replication/remote.js'
import { ShardedClient } from '../replication/sharded.js'
import type { Attr } from '../store/records.js'
import { hlcToIso } from '../temporal/hlc.js'
import { formatTimeSpec } from '../temporal/spec.js'
import { cutReport, stableChanges } from './inspect.js'
import { CONTROL_REQUEST_BYTES_MAX, controlSocketPath, type ControlRequest, type ControlResponse } from './protocol.js'

export const CAT_CHUNK_BYTES_MAX = 1024 * 1024

export interface VersionInfo {
  version: number
  time: string
  stamp: string // the exact HLC stamp, decimal (`time` is its physical part)
  sensorTime: string | null
  sizeBytes: number
  /** How many names the file had with this version (hard links; 0 once the last is removed). */
  links: number
  change: string
}

export interface EntryInfo {
  name: string
  kind: string
  sizeBytes: number
  version: number
  time: string
}

function versionInfo(attr: Attr): VersionInfo {
  return {
    version: attr.version,
    time: hlcToIso(BigInt(attr.stamp)),
    stamp: attr.stamp,
    sensorTime: attr.sensorUs === undefined ? null : formatTimeSpec({ kind: 'platform', timeUs: attr.sensorUs }),
    sizeBytes: attr.sizeBytes,
    links: attr.nlink ?? 1,
    change: attr.change,
  }
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
        void this.answer(line).then((response) => socket.write(JSON.stringify(response) + '\n'))
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
      if (isFffsError(err)) return { ok: false, code: err.code, message: err.message }
      return { ok: false, code: 'EIO', message: err instanceof Error ? err.message : String(err) }
    }
  }

  private async node(pathText: unknown): Promise<Attr> {
    if (typeof pathText !== 'string') throw errors.invalid('path must be a string')
    const resolved = await this.resolver.resolve(parsePath(pathText))
    if (resolved.kind !== 'node') throw errors.invalid(`${pathText} is the snapshot directory`)
    return resolved.attr
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
      return { ...base, mode: 'sharded', stateDir: this.dataDir, group: this.client.group, stableFrontier, shards, at }
    }
    if (!(this.client instanceof RemoteClient)) {
      return { ...base, mode: 'embedded', dataDir: this.dataDir, stableFrontier: hlcToIso(await this.client.stableFrontier()) }
    }
    const members = await this.client.groupStatus()
    const stableFrontier = await this.client.stableFrontier().then(hlcToIso, (err: Error) => `unknown (${err.message})`)
    return { ...base, mode: 'cluster', stateDir: this.dataDir, group: this.client.group, connectedMember: this.client.memberId, stableFrontier, members, at: new Date().toISOString() }
  }

  private async dispatch(request: ControlRequest): Promise<unknown> {
    switch (request.op) {
      case 'log': {
        const attr = await this.node(request.path)
        return (await this.client.versions(attr.ino)).map(versionInfo)
      }
      case 'cat': {
        const attr = await this.node(request.path)
        if (attr.kind === 'dir') throw errors.isDir(request.path)
        const { offset, length } = request as { offset?: unknown; length?: unknown }
        const from = typeof offset === 'number' && offset >= 0 ? offset : 0
        const want = typeof length === 'number' && length >= 0 ? Math.min(length, CAT_CHUNK_BYTES_MAX) : CAT_CHUNK_BYTES_MAX
        const into = Buffer.alloc(want)
        const n = await this.client.read(attr, from, into, want)
        return { sizeBytes: attr.sizeBytes, version: attr.version, dataBase64: into.subarray(0, n).toString('base64') }
      }
      case 'ls': {
        const resolved = await this.resolver.resolve(parsePath(String(request.path)))
        if (resolved.kind !== 'node') return (await this.client.snapshots()).map((s) => ({ name: s.name, kind: 'snapshot', sizeBytes: 0, version: 0, time: hlcToIso(BigInt(s.at)) }))
        if (resolved.attr.kind !== 'dir') throw errors.notDir(String(request.path))
        const names = await this.resolver.list(resolved.attr, resolved.cut)
        const entries: EntryInfo[] = []
        for (const name of names) {
          const attr = await this.resolver.child(resolved.attr, name, resolved.cut)
          entries.push({ name, kind: attr.kind, sizeBytes: attr.sizeBytes, version: attr.version, time: hlcToIso(BigInt(attr.stamp)) })
        }
        return entries
      }
      case 'snapshot.create':
        if (typeof request.name !== 'string') throw errors.invalid('snapshot name must be a string')
        return this.mounted.operations.createSnapshot(request.name, typeof request.at === 'string' ? request.at : null)
      case 'snapshot.list':
        return (await this.client.snapshots()).map((s) => ({ name: s.name, at: hlcToIso(BigInt(s.at)), spec: s.spec }))
      case 'snapshot.delete':
        if (typeof request.name !== 'string') throw errors.invalid('snapshot name must be a string')
        await this.client.submit({ type: 'unsnapshot', name: request.name })
        return { name: request.name }
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
