// The client API: everything the FUSE front end and the control socket need from the layers
// below. The embedded client runs the store and a local orderer in-process; a cluster client
// (replication) implements the same interface against a group of `fffs serve` processes.

import { promises as fsp } from 'node:fs'
import { FffsError, isFffsError } from '../errors.js'
import type { ApplyResult, Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../store/records.js'
import { describePolicy, type RetentionPolicy } from '../store/retention/policy.js'
import { RetentionRunner } from '../store/retention/runner.js'
import { DiskGuard, type DiskState } from '../store/diskSpace.js'
import { addsData, Store, type LocatedBytes } from '../store/store.js'
import { hlcToIso } from '../temporal/hlc.js'
import { describeCollect, describeRun, type HistoryControl } from './history.js'
import type { PageOffsetOf } from '../store/segmentLog.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { LocalOrderer, type Orderer } from './orderer.js'
import { pageCacheDropper, pageOffsetFinder } from './transport/native.js'

/**
 * The embedded log keeps its newest synced bytes in the page cache and syncs in the background
 * every so many appended bytes, so a long write recycles a bounded set of cache pages
 * (SegmentLog.dropSyncedPages; fresh pages cost ~3 ms/MiB on the VMs this runs on).
 */
const LOG_CACHE_KEEP_BYTES = 32 * 1024 * 1024
const LOG_SYNC_EVERY_BYTES = 32 * 1024 * 1024 // each sync commits the journal, which holds log writes back a moment

/**
 * Names one submit across reconnects: a client that lost its connection with a submit in
 * flight re-sends it with the same id to the next member, which must apply it at most once
 * (docs/decisions.md, "Cluster edge"). `seq` increases per client; `oldestPendingSeq` is
 * the lowest seq the client still waits for, so outcomes below it can be forgotten.
 */
export interface SubmitId {
  readonly clientId: string
  readonly seq: number
  readonly oldestPendingSeq: number
}

export interface SubmitOptions {
  /** Deduplication across reconnects (see SubmitId). */
  readonly id?: SubmitId
  /**
   * The highest stamp the submitting client has seen (HLC piggybacking): the mutation is
   * stamped above it, so a version written after reading another, on any shard, is later in
   * every cut (docs/decisions.md, "Shards").
   */
  readonly after?: HlcStamp
}

/**
 * What one applied record changed, as a mount's kernel caches see it (src/fs/kernel.ts forgets
 * what they hold of it): names bound, unbound or rebound, nodes whose attributes changed, files
 * whose contents changed, snapshot names pinned or deleted.
 */
export interface ChangeNote {
  readonly entries?: ReadonlyArray<readonly [dir: Ino, name: string]>
  readonly nodes?: readonly Ino[]
  readonly contents?: readonly Ino[]
  readonly snapshots?: readonly string[]
}

/** Told of the changes other clients make (Client.watchChanges). */
export interface ChangeListener {
  changed(note: ChangeNote): void
  /**
   * Whether every change made from now on will be told: false once the feed is lost (its
   * connection died: changes may be missed from then on), true again once a new one runs
   * (changes made in between were not told: what is cached of the live tree may be stale).
   */
  inSync(synced: boolean): void
}

/**
 * What a submit returns: the record's stamp, a new node's inode, and the attributes of the node
 * it made or changed, after it (ApplyResult's `attr`), when the client has them whole (a sharded
 * client has only one shard's half of a file's).
 */
export interface Submitted {
  readonly stamp: HlcStamp
  readonly ino?: Ino
  readonly attr?: Attr
}

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

// Every query is async (a cluster client answers it over the network). `appendData` alone
// returns synchronously: its reference is opaque and made locally, so a FUSE write never waits
// for a round trip; the bytes travel in the background.
export interface Client {
  walk(components: readonly string[], cut: HlcStamp): Promise<Attr>
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null>
  /** `attr` of many nodes in one call (a listing's entries: one round trip in a group), in order. */
  attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>>
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null>
  /** The node named `name` in directory `dir` at the cut, with its attributes there (lookup and attr in one step); null when none. */
  child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null>
  /** A directory's entries at the cut, sorted by name; `page`: a window of them (DirPage). */
  readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>>
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number>
  /** A buffer `read` fills fastest with `lengthBytes`, when the client has a preference (a local log's direct reads want page-aligned memory). */
  readBuffer?(lengthBytes: number): Buffer
  /** Where the bytes `read` would return lie in the local log's files (Store.locate): a member's, for a mount on its host; null when not known. */
  locate?(attr: Attr, offset: number, lengthBytes: number): Promise<LocatedBytes | null>
  /** A node's versions in `range` (default: all), oldest first unless `range.reverse`. */
  versions(ino: Ino, range?: VersionRange): Promise<Attr[]>
  /** Every binding of `name` in directory `dir` over time, oldest first (what `dir/name@T` named at each T). */
  nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]>
  stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null>
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null>
  /** The version a read at sensor time `sensorUs` sees, and for a record-format file the prefix of it (Store.sensorPick). */
  sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null>
  /** The named snapshots by name; `page`: a window of them. */
  snapshots(page?: DirPage): Promise<Snapshot[]>
  snapshot(name: string): Promise<Snapshot | null>
  /**
   * Hands file bytes to the data path and returns at once; a 'version' mutation then refers to
   * them by `ref` (or `dataRefAt(ref, n)` for the bytes from offset n). `written` resolves once
   * the bytes are handed to the log or the network. The caller must not modify `bytes`
   * afterwards (a cluster client may re-send them after a failover until the version commits).
   * `ino` is the file the bytes are for: a sharded client sends them to that file's data shard.
   * `crc` is crc32c(bytes) when the caller computed it as the bytes arrived (or is computing it
   * off this thread); a client may use it instead of reading them again (it must come from
   * these very bytes).
   */
  appendData(ino: Ino, bytes: Uint8Array, crc?: number | Promise<number>): { ref: DataRef; written: Promise<void> }
  /** True when appendData uses the `crc` it is given (the embedded log); others ignore it, so callers need not compute one. */
  readonly takesDataCrc?: boolean
  /**
   * Set when appendData writes large page-aligned buffers straight to disk (O_DIRECT, the
   * embedded log): callers that can choose their buffers align them with it.
   */
  readonly pageOffsetOf?: PageOffsetOf
  /**
   * Reads back bytes handed to `appendData` once their `written` resolved. Only a client whose
   * data path keeps them readable has it (the embedded log); its callers may reuse their
   * buffers once written. Without it, callers keep their buffers until the version commits.
   */
  readData?(ref: DataRef, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void>
  /** A blob handed to `appendData` that no version will name (its sender went away): a client that holds such bytes back for the version (ReplicaClient) lets go. */
  releaseData?(ref: DataRef): void
  /** Orders, persists and applies a mutation; throws the FffsError of a failed apply. */
  submit(mutation: Mutation, options?: SubmitOptions): Promise<Submitted>
  stableFrontier(): Promise<HlcStamp>
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  /** History retention: the floor, the policy, on-demand runs (history.ts). */
  readonly history?: HistoryControl
  /** Throws ENOSPC when new data would be refused (the disk below its reserve): a write learns it before it buffers. */
  refuseWhenFull?(): void
  /** The disk under the store (embedded) or the fullest of the members' (a group): what `df` and `fffs status` report. */
  diskState?(): Promise<DiskState | null>
  /**
   * Returns once every mutation this client's submits returned is synced in the log of every
   * replica (fsync): a group may answer a submit once its record is only written there
   * (GroupConfig.durability).
   */
  syncAcknowledged(maxWaitMs: number): Promise<void>
  /**
   * Tells `listener` of the changes other clients make, as they apply (a group's members push
   * them). Absent: no other client changes the tree (the embedded store). Returns the unsubscribe.
   */
  watchChanges?(listener: ChangeListener): () => void
  close(): Promise<void>
}

/** The reference to the bytes `offsetBytes` into the data `ref` names. */
export function dataRefAt(ref: DataRef, offsetBytes: number): DataRef {
  return 'blob' in ref ? { blob: ref.blob, offset: ref.offset + offsetBytes } : { segment: ref.segment, offset: ref.offset + offsetBytes }
}

export interface EmbeddedOptions {
  /** The mount's retention policy (null or absent: every version is kept). */
  readonly retention?: RetentionPolicy | null
  /** The I/O budget of background segment GC, in bytes copied per second. */
  readonly gcCopyBytesPerSecond?: number
  /** Where background retention runs are reported. */
  readonly log?: (line: string) => void
  /** The log's segment size (tests and benches of segment GC use small ones). */
  readonly segmentSizeBytes?: number
}

export class EmbeddedClient implements Client {
  readonly takesDataCrc = true
  readonly pageOffsetOf?: PageOffsetOf
  readonly history: HistoryControl
  private readonly store: Store
  private readonly orderer: Orderer
  private readonly retention: RetentionRunner
  private readonly disk: DiskGuard

  private constructor(store: Store, orderer: Orderer, disk: DiskGuard, pageOffsetOf: PageOffsetOf | undefined, options: EmbeddedOptions) {
    this.store = store
    this.orderer = orderer
    this.disk = disk
    if (pageOffsetOf !== undefined) this.pageOffsetOf = pageOffsetOf
    const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'))
    this.retention = new RetentionRunner({
      store,
      policy: options.retention ?? null,
      submit: async (mutation) => void unwrap((await orderer.submit(mutation)).result),
      proposes: () => true,
      onRun: (report) => log(`fffs: retention: ${describeRun(report)}`),
      onCollect: (victims) => log(`fffs: retention: collecting ${describeCollect(victims)}`),
      onError: (err) => log(`fffs: retention: ${err.message}`),
      ...(options.gcCopyBytesPerSecond !== undefined ? { copyBytesPerSecond: options.gcCopyBytesPerSecond } : {}),
    })
    this.history = {
      state: async () => [{ floor: store.floor.stamp === 0n ? null : hlcToIso(store.floor.stamp), floorStamp: store.floor.stamp.toString(), policy: this.retention.policy === null ? null : describePolicy(this.retention.policy), logBase: store.logBase.toString(), compacting: store.compactionCursor() !== null }],
      floor: async () => store.floor.stamp,
      knownFloor: () => store.floor.stamp,
      collect: async ({ dryRun }) => [{ report: await this.retention.run({ dryRun: dryRun === true }) }],
      audits: async (limit) => (await store.audits(limit)).map((audit) => ({ audit })),
    }
    this.retention.start()
  }

  static async open(dataDir: string, options: EmbeddedOptions = {}): Promise<{ client: EmbeddedClient; replayedRecords: number; truncatedBytes: number }> {
    await fsp.mkdir(dataDir, { recursive: true })
    const disk = new DiskGuard(dataDir)
    await disk.start() // on a full disk, its reserve file is given back: the store can open and free space
    const store = new Store(dataDir, options.segmentSizeBytes !== undefined ? { segmentSizeBytes: options.segmentSizeBytes } : {})
    const { replayedRecords, truncatedBytes } = await store.open()
    const dropPages = pageCacheDropper()
    if (dropPages !== null) store.log.dropSyncedPages(dropPages, LOG_CACHE_KEEP_BYTES, LOG_SYNC_EVERY_BYTES)
    const pageOffsetOf = pageOffsetFinder() ?? undefined
    if (pageOffsetOf !== undefined) store.log.writeLargePayloadsDirect(pageOffsetOf)
    return { client: new EmbeddedClient(store, new LocalOrderer(store), disk, pageOffsetOf, options), replayedRecords, truncatedBytes }
  }

  walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.store.walk(components, cut)
  }
  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    return this.store.attr(ino, cut)
  }
  async attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>> {
    return Promise.all(inos.map((ino) => this.store.attr(ino, cut)))
  }
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.store.lookup(dir, name, cut)
  }
  child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    return this.store.child(dir, name, cut)
  }
  readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>> {
    return this.store.readdir(dir, cut, page)
  }
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    return this.store.read(attr, offset, into, lengthBytes)
  }
  readBuffer(lengthBytes: number): Buffer {
    return this.store.readBuffer(lengthBytes)
  }
  versions(ino: Ino, range?: VersionRange): Promise<Attr[]> {
    return this.store.versions(ino, range)
  }
  nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]> {
    return this.store.nameHistory(dir, name, page)
  }
  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return this.store.stampOfVersion(ino, version)
  }
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return this.store.stampAtSensorTime(ino, sensorUs)
  }
  sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    return this.store.sensorPick(ino, sensorUs)
  }
  snapshots(page?: DirPage): Promise<Snapshot[]> {
    return this.store.snapshots(page)
  }
  async snapshot(name: string): Promise<Snapshot | null> {
    return this.store.snapshot(name)
  }
  appendData(_ino: Ino, bytes: Uint8Array, crc?: number | Promise<number>): { ref: DataRef; written: Promise<void> } {
    this.disk.refuseWhenFull('write')
    this.disk.appended(bytes.byteLength)
    const { position, written } = this.store.appendData(bytes, crc)
    written.catch((err: unknown) => this.fullDisk(err))
    return { ref: position, written }
  }

  refuseWhenFull(): void {
    this.disk.refuseWhenFull('write')
  }

  async diskState(): Promise<DiskState> {
    return this.disk.current()
  }

  /** The disk filled up under the log (something else wrote to it): the reserve file goes, so deletes and retention can run. */
  private fullDisk(err: unknown): void {
    if (isFffsError(err) && err.code === 'ENOSPC') void this.disk.release().then(() => this.disk.refresh()).catch(() => undefined)
  }
  readData(ref: DataRef, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> {
    if ('blob' in ref) throw new Error(`internal: the embedded log names no blobs (blob ${ref.blob})`)
    return this.store.log.read(ref, into, intoOffset, lengthBytes)
  }

  /**
   * One process, no reconnects, one clock whose stamps every read of this client came from: no
   * options needed. A mutation that adds data is refused (ENOSPC) while the disk is below its
   * reserve; the ones that free space always go.
   */
  async submit(mutation: Mutation, _options?: SubmitOptions): Promise<Submitted> {
    if (addsData(mutation)) this.disk.refuseWhenFull(mutation.type)
    this.store.refuseUnwrittenData(mutation)
    try {
      const { stamp, result } = await this.orderer.submit(mutation)
      return { stamp, ...unwrap(result) }
    } catch (err) {
      this.fullDisk(err)
      throw err
    }
  }

  async stableFrontier(): Promise<HlcStamp> {
    return this.orderer.stableFrontier()
  }
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    return this.orderer.waitStable(cut, maxWaitMs)
  }
  /** The local orderer answers a submit once its record is synced. */
  async syncAcknowledged(_maxWaitMs: number): Promise<void> {}

  async close(): Promise<void> {
    await this.retention.stop()
    await this.orderer.close()
    await this.store.close()
  }
}

/** A submit's outcome: its inode and attributes, or the FffsError of a failed apply. */
export function unwrap(result: ApplyResult): { ino?: Ino; attr?: Attr } {
  if (!result.ok) throw new FffsError(result.code, result.message, result.reason)
  return { ...(result.ino !== undefined ? { ino: result.ino } : {}), ...(result.attr !== undefined ? { attr: result.attr } : {}) }
}

/** The blobs a version names (each once). */
export function blobIdsOf(mutation: Mutation): string[] {
  if (mutation.type !== 'version') return []
  const ids = new Set<string>()
  for (const op of mutation.ops) if (op.op === 'write' && 'blob' in op.data) ids.add(op.data.blob)
  return [...ids]
}
