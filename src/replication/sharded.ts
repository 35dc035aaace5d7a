// The Client of a sharded group: one RemoteClient per shard group (src/replication/shards.ts),
// composed so the file system above sees one state machine.
//
// Routing: file contents (a `version`, and a file's atime/mtime) go to the inode's data shard;
// every other mutation and every namespace query goes to the meta shard. A file's attributes
// are the meta shard's (kind, mode, owner, parent, xattrs) joined with the data shard's
// (size, times, sensor time); its version number counts the changes on both, so `v<N>` and
// `fffs log` mean what they mean on one shard.
//
// Causality across shards: all the shard clients share one SeenStamp, and every submit carries
// it, so a version written after this client read (or wrote) anything on another shard is
// stamped above it: a cut that contains the later write contains the earlier one.
// Stability: a cut is stable when it is stable on every shard.

import { FffsError } from '../errors.js'
import type { Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../store/records.js'
import { HLC_MAX, type HlcStamp } from '../temporal/hlc.js'
import type { ChangeListener, Client, SubmitOptions, Submitted } from '../client/client.js'
import type { GroupConfig } from './config.js'
import type { HistoryControl } from '../client/history.js'
import { groupInfo, RemoteClient, SeenStamp, type GroupInfo, type MemberStatusReport, type RemoteClientOptions } from './remoteClient.js'
import { dataShardOf, shardGroups, startPerShard } from './shards.js'

/** A shard's part of `fffs status`: what a RemoteClient of one group reports. */
export interface ShardStatus {
  readonly shard: string
  readonly group: GroupInfo
  readonly connectedMember: number | null
  readonly stableFrontier: HlcStamp | null
  readonly members: MemberStatusReport[]
}

const CONTENT_CACHE_ENTRIES = 4096

export class ShardedClient implements Client {
  readonly config: GroupConfig
  private readonly meta: RemoteClient
  private readonly data: readonly RemoteClient[]
  private readonly names: readonly string[] // meta first, then data shards
  /** Recently joined data shard attributes (ino@stamp), so most reads need no extra round trip. */
  private readonly contentOf = new Map<string, Attr>()

  private constructor(config: GroupConfig, meta: RemoteClient, data: readonly RemoteClient[], names: readonly string[]) {
    this.config = config
    this.meta = meta
    this.data = data
    this.names = names
  }

  /** Connects to every shard (to its first reachable member, in config order). */
  static async connect(config: GroupConfig, options: Omit<RemoteClientOptions, 'seen'> = {}): Promise<ShardedClient> {
    const groups = shardGroups(config)
    if (groups.length < 2) throw new FffsError('EINVAL', `${config.path}: one data shard: mount it with a RemoteClient`)
    const seen = new SeenStamp()
    const clients = await startPerShard(groups, (group) => RemoteClient.connect(group.config, { ...options, seen }), (client) => client.close())
    return new ShardedClient(config, clients[0]!, clients.slice(1), groups.map((g) => g.name))
  }

  /** Each shard's retention (its own floor, moved by its own ordered records); a cut across shards is read against the greatest floor. */
  readonly history: HistoryControl = {
    state: async () => (await Promise.all(this.all.map((client, i) => client.history.state().then((states) => states.map((state) => ({ ...state, shard: this.names[i]! })))))).flat(),
    floor: async () => (await Promise.all(this.all.map((client) => client.history.floor()))).reduce((a, b) => (a > b ? a : b), 0n),
    knownFloor: () => this.all.map((client) => client.history.knownFloor()).reduce((a, b) => (a > b ? a : b), 0n),
    collect: async (options) => (await Promise.all(this.all.map((client, i) => client.history.collect(options).then((runs) => runs.map((run) => ({ ...run, shard: this.names[i]! })))))).flat(),
    audits: async (limit) => (await Promise.all(this.all.map((client, i) => client.history.audits(limit).then((audits) => audits.map((audit) => ({ ...audit, shard: this.names[i]! })))))).flat(),
  }

  private dataOf(ino: Ino): RemoteClient {
    return this.data[dataShardOf(ino, this.data.length)]!
  }

  private get all(): RemoteClient[] {
    return [this.meta, ...this.data]
  }

  // ------------------------------------------------ queries

  async walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    const attr = await this.meta.walk(components, cut)
    return attr.kind === 'file' ? this.joined(attr, await this.dataOf(attr.ino).attr(attr.ino, cut)) : attr
  }

  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    const [attr, content] = await Promise.all([this.meta.attr(ino, cut), this.dataOf(ino).attr(ino, cut)])
    return attr === null ? null : this.joined(attr, content)
  }

  /** The meta shard's attributes of all, then each data shard's of the files among them, in parallel. */
  async attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>> {
    const namespace = await this.meta.attrs(inos, cut)
    const files = namespace.filter((a): a is Attr => a?.kind === 'file')
    const byShard = new Map<RemoteClient, Attr[]>()
    for (const file of files) {
      const shard = this.dataOf(file.ino)
      const list = byShard.get(shard)
      if (list === undefined) byShard.set(shard, [file])
      else list.push(file)
    }
    const contents = new Map<Ino, Attr | null>()
    await Promise.all(
      [...byShard].map(async ([shard, attrs]) => {
        const found = await shard.attrs(attrs.map((a) => a.ino), cut)
        attrs.forEach((a, i) => contents.set(a.ino, found[i] ?? null))
      }),
    )
    return namespace.map((attr) => (attr?.kind === 'file' ? this.joined(attr, contents.get(attr.ino) ?? null) : attr))
  }

  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.meta.lookup(dir, name, cut)
  }

  async child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    const attr = await this.meta.child(dir, name, cut)
    return attr?.kind === 'file' ? this.joined(attr, await this.dataOf(attr.ino).attr(attr.ino, cut)) : attr
  }

  readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>> {
    return this.meta.readdir(dir, cut, page)
  }

  async read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    if (attr.kind !== 'file') return this.meta.read(attr, offset, into, lengthBytes)
    if (attr.contentStamp === undefined) return 0 // never written: empty
    const shard = this.dataOf(attr.ino)
    // The data shard's attributes at their own stamp are exactly that version's.
    const content = this.contentOf.get(contentKey(attr.ino, attr.contentStamp)) ?? (await shard.attr(attr.ino, BigInt(attr.contentStamp)))
    if (content === null) throw new FffsError('EIO', `inode ${attr.ino}: data shard has no version at ${attr.contentStamp}`)
    // A sensor-time read of a record-format file is a prefix of that version: attr.sizeBytes bounds it.
    return shard.read(content, offset, into, Math.min(lengthBytes, Math.max(0, attr.sizeBytes - offset)))
  }

  /**
   * The versions in `range`, joined: the meta shard's and the data shard's changes in stamp
   * order, each with the other shard's state at its stamp. With a limit each shard gives its
   * `limit` nearest, whose union holds the joined `limit` nearest.
   */
  async versions(ino: Ino, range: VersionRange = {}): Promise<Attr[]> {
    const byStamp = (a: Attr, b: Attr): number => (BigInt(a.stamp) < BigInt(b.stamp) ? -1 : BigInt(a.stamp) > BigInt(b.stamp) ? 1 : 0)
    const [namespace, contents] = await Promise.all([this.meta.versions(ino, range), this.dataOf(ino).versions(ino, range)])
    namespace.sort(byStamp)
    contents.sort(byStamp)
    const firsts = [namespace[0], contents[0]].filter((a): a is Attr => a !== undefined).map((a) => BigInt(a.stamp))
    if (firsts.length === 0) return []
    const before = firsts.reduce((a, b) => (a < b ? a : b)) - 1n
    // Each shard's state just before the range's first change: the other half of its first joined row.
    let [attr, content] = before < 0n ? [null, null] : await Promise.all([this.meta.attr(ino, before), this.dataOf(ino).attr(ino, before)])
    const kind = (attr ?? namespace[0])?.kind
    const out: Attr[] = []
    if (kind !== 'file') {
      out.push(...namespace)
    } else {
      for (let i = 0, j = 0; i < namespace.length || j < contents.length; ) {
        const takeMeta = j >= contents.length || (i < namespace.length && BigInt(namespace[i]!.stamp) <= BigInt(contents[j]!.stamp))
        if (takeMeta) attr = namespace[i++]!
        else content = contents[j++]!
        if (attr !== null) out.push(this.joined(attr, content))
      }
    }
    if (range.reverse === true) out.reverse()
    return range.limit !== undefined ? out.slice(0, range.limit) : out
  }

  /** The meta shard's bindings, without their rows: a file's rows count its versions on both shards (history.ts counts them). */
  async nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]> {
    return (await this.meta.nameHistory(dir, name, page)).map(({ stamp, ino }) => ({ stamp, ino }))
  }

  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    const found = (await this.versions(ino)).find((v) => v.version === version)
    return found === undefined ? null : BigInt(found.stamp)
  }

  /** A create (meta) and later versions (data) can carry sensor times: the later of the two shards' answers. */
  async stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    const stamps = (await Promise.all([this.meta.stampAtSensorTime(ino, sensorUs), this.dataOf(ino).stampAtSensorTime(ino, sensorUs)])).filter((s): s is HlcStamp => s !== null)
    return stamps.length === 0 ? null : stamps.reduce((a, b) => (a > b ? a : b))
  }

  /** As stampAtSensorTime; the data shard's pick carries a record-format file's prefix. */
  async sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    const picks = (await Promise.all([this.meta.sensorPick(ino, sensorUs), this.dataOf(ino).sensorPick(ino, sensorUs)])).filter((p): p is SensorPick => p !== null)
    return picks.length === 0 ? null : picks.reduce((a, b) => (a.stamp > b.stamp ? a : b))
  }

  snapshots(page?: DirPage): Promise<Snapshot[]> {
    return this.meta.snapshots(page)
  }

  snapshot(name: string): Promise<Snapshot | null> {
    return this.meta.snapshot(name)
  }

  /** The global frontier: the least of the shards'. */
  async stableFrontier(): Promise<HlcStamp> {
    const frontiers = await Promise.all(this.all.map((c) => c.stableFrontier()))
    return frontiers.reduce((a, b) => (a < b ? a : b))
  }

  /** Each shard's own frontier, meta first (`fffs cut`). */
  async shardFrontiers(): Promise<Array<{ shard: string; frontier: HlcStamp }>> {
    const frontiers = await Promise.all(this.all.map((c) => c.stableFrontier()))
    return frontiers.map((frontier, i) => ({ shard: this.names[i]!, frontier }))
  }

  /** Stable everywhere: each shard waits (in parallel) within the same bound. */
  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    await Promise.all(this.all.map((c) => c.waitStable(cut, maxWaitMs)))
  }

  /** Each shard syncs what it acknowledged to this client (in parallel). */
  async syncAcknowledged(maxWaitMs: number): Promise<void> {
    await Promise.all(this.all.map((c) => c.syncAcknowledged(maxWaitMs)))
  }

  // ------------------------------------------------ writes

  appendData(ino: Ino, bytes: Uint8Array): { ref: DataRef; written: Promise<void> } {
    return this.dataOf(ino).appendData(ino, bytes)
  }

  /** A file's attributes are joined from two shards: a submit returns them only for a new node (no contents yet) or one that is no file. */
  async submit(mutation: Mutation, options?: SubmitOptions): Promise<Submitted> {
    const { attr, ...submitted } = await this.route(mutation, options)
    return attr !== undefined && (attr.kind !== 'file' || mutation.type === 'mknod') ? { ...submitted, attr } : submitted
  }

  private async route(mutation: Mutation, _options?: SubmitOptions): Promise<Submitted> {
    if (mutation.type === 'version') return this.dataOf(mutation.ino).submit(mutation)
    if (mutation.type === 'setattr' && (mutation.atimeMs !== undefined || mutation.mtimeMs !== undefined)) {
      const attr = await this.meta.attr(mutation.ino, HLC_MAX)
      if (attr?.kind === 'file') {
        // A file's times live with its contents (a write sets mtime); the rest with the namespace.
        const { atimeMs, mtimeMs, ...rest } = mutation
        const times = { type: 'setattr' as const, ino: mutation.ino, ...(atimeMs !== undefined ? { atimeMs } : {}), ...(mtimeMs !== undefined ? { mtimeMs } : {}) }
        const changes = [this.dataOf(mutation.ino).submit(times)]
        if (rest.mode !== undefined || rest.uid !== undefined || rest.gid !== undefined) changes.push(this.meta.submit(rest))
        const results = await Promise.all(changes)
        return results.reduce((a, b) => (a.stamp > b.stamp ? a : b))
      }
    }
    return this.meta.submit(mutation)
  }

  /** Every shard's changes; in sync while every shard's feed is (a shard that syncs again may have missed some). */
  watchChanges(listener: ChangeListener): () => void {
    const synced = this.all.map(() => false)
    const unwatch = this.all.map((client, i) =>
      client.watchChanges({
        changed: (note) => listener.changed(note),
        inSync: (shardSynced) => {
          const was = synced.every(Boolean)
          synced[i] = shardSynced
          const now = synced.every(Boolean)
          if (now !== was || (now && shardSynced)) listener.inSync(now)
        },
      }),
    )
    return () => unwatch.forEach((stop) => stop())
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()))
  }

  // ------------------------------------------------ status

  /** What `fffs status` shows of the whole group (never the key). */
  get group(): GroupInfo {
    return groupInfo(this.config)
  }

  /** Each shard's members as they report themselves (RemoteClient.groupStatus), meta first. */
  async shardStatus(): Promise<ShardStatus[]> {
    return Promise.all(
      this.all.map(async (client, i): Promise<ShardStatus> => ({
        shard: this.names[i]!,
        group: client.group,
        connectedMember: client.memberId,
        stableFrontier: await client.stableFrontier().catch(() => null),
        members: await client.groupStatus(),
      })),
    )
  }

  // ------------------------------------------------ joining a file's two halves

  /** A file's attributes from the meta shard's `attr` and the data shard's `content` (null: never written). */
  private joined(attr: Attr, content: Attr | null): Attr {
    if (attr.kind !== 'file' || content === null) return attr
    const newer = BigInt(content.stamp) > BigInt(attr.stamp) ? content : attr
    const { sensorUs: _namespaceSensorUs, ...namespace } = attr
    const joined: Attr = {
      ...namespace,
      sizeBytes: content.sizeBytes,
      atimeMs: content.atimeMs,
      mtimeMs: content.mtimeMs,
      ctimeMs: Math.max(attr.ctimeMs, content.ctimeMs),
      version: attr.version + content.version,
      stamp: newer.stamp,
      change: newer.change,
      ...(content.sensorUs !== undefined ? { sensorUs: content.sensorUs } : {}),
      ...(content.records !== undefined ? { records: content.records } : {}),
      contentStamp: content.stamp,
    }
    this.rememberContent(content)
    return joined
  }

  private rememberContent(content: Attr): void {
    const key = contentKey(content.ino, content.stamp)
    this.contentOf.delete(key)
    this.contentOf.set(key, content)
    if (this.contentOf.size > CONTENT_CACHE_ENTRIES) this.contentOf.delete(this.contentOf.keys().next().value!)
  }
}

const contentKey = (ino: Ino, stamp: string): string => `${ino}@${stamp}`

/** The client of a group config: sharded when its layout has more than one data shard. */
export async function connectGroup(config: GroupConfig, options: Omit<RemoteClientOptions, 'seen'> = {}): Promise<RemoteClient | ShardedClient> {
  return shardGroups(config).length > 1 ? ShardedClient.connect(config, options) : RemoteClient.connect(config, options)
}
