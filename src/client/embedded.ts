// The embedded client: a mount's own store and a local orderer in one process (`fffs mount`
// without --cluster). An embedded write goes from the file system through here to the store;
// no replication code runs.

import { promises as fsp } from 'node:fs'
import { isFffsError } from '../errors.js'
import type { Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../store/records.js'
import { describePolicy, type RetentionPolicy } from '../store/retention/policy.js'
import { RetentionRunner } from '../store/retention/runner.js'
import { DiskGuard, type DiskState } from '../store/diskSpace.js'
import { addsData, Store } from '../store/store.js'
import type { PageOffsetOf } from '../store/segmentLog.js'
import { hlcToIso, type HlcStamp } from '../temporal/hlc.js'
import type { Durability } from './durability.js'
import { unwrap, type Client, type DataChunk, type SubmitOptions, type Submitted } from './client.js'
import { describeCollect, describeRun, type HistoryControl } from './history.js'
import { LogChunks, type LoggedData } from './logChunks.js'
import { LocalOrderer, type Orderer } from './orderer.js'

/**
 * The embedded log keeps its newest synced bytes in the page cache and syncs in the background
 * every so many appended bytes, so a long write recycles a bounded set of cache pages
 * (SegmentLog.dropSyncedPages; fresh pages cost ~3 ms/MiB on the VMs this runs on).
 */
const LOG_CACHE_KEEP_BYTES = 32 * 1024 * 1024
const LOG_SYNC_EVERY_BYTES = 32 * 1024 * 1024 // each sync commits the journal, which holds log writes back a moment

export interface EmbeddedOptions {
  /** The mount's retention policy (null or absent: every version is kept). */
  readonly retention?: RetentionPolicy | null
  /** The I/O budget of background segment GC, in bytes copied per second. */
  readonly gcCopyBytesPerSecond?: number
  /** Where background retention runs are reported. */
  readonly log?: (line: string) => void
  /** The log's segment size (tests and benches of segment GC use small ones). */
  readonly segmentSizeBytes?: number
  /** When close and metadata operations return (default 'write-on-close': once written to the log; fsync waits for the sync). */
  readonly durability?: Durability
}

export class EmbeddedClient implements Client, LoggedData {
  readonly history: HistoryControl
  private readonly store: Store
  private readonly orderer: Orderer
  private readonly retention: RetentionRunner
  private readonly disk: DiskGuard
  private readonly chunks: LogChunks

  private constructor(store: Store, orderer: Orderer, disk: DiskGuard, pageOffsetOf: PageOffsetOf | undefined, options: EmbeddedOptions) {
    this.store = store
    this.orderer = orderer
    this.disk = disk
    this.chunks = new LogChunks(pageOffsetOf)
    const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'))
    this.retention = new RetentionRunner({
      store,
      policy: options.retention ?? null,
      submit: async (mutation) => {
        unwrap((await orderer.submit(mutation)).result)
        await store.settled() // the runner reads the store directly next
      },
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
      audits: async (limit) => {
        await store.settled()
        return (await store.audits(limit)).map((audit) => ({ audit }))
      },
    }
    this.retention.start()
  }

  static async open(dataDir: string, options: EmbeddedOptions = {}): Promise<{ client: EmbeddedClient; replayedRecords: number; truncatedBytes: number }> {
    await fsp.mkdir(dataDir, { recursive: true })
    const disk = new DiskGuard(dataDir)
    await disk.start() // on a full disk, its reserve file is given back: the store can open and free space
    const store = new Store(dataDir, { soleCopy: true, ...(options.segmentSizeBytes !== undefined ? { segmentSizeBytes: options.segmentSizeBytes } : {}) })
    const { replayedRecords, truncatedBytes } = await store.open()
    const pageOffsetOf = store.useHostDisk({ cacheKeepBytes: LOG_CACHE_KEEP_BYTES, syncEveryBytes: LOG_SYNC_EVERY_BYTES }) ?? undefined
    return { client: new EmbeddedClient(store, new LocalOrderer(store, { acknowledge: options.durability === 'sync-on-close' ? 'synced' : 'written' }), disk, pageOffsetOf, options), replayedRecords, truncatedBytes }
  }

  // Every query first waits for the index writes under way (Store.settled): a submit is
  // answered once its record is applied, before its index write is in.
  async walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    await this.store.settled()
    return this.store.walk(components, cut)
  }
  async attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    await this.store.settled()
    return this.store.attr(ino, cut)
  }
  async attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>> {
    await this.store.settled()
    return Promise.all(inos.map((ino) => this.store.attr(ino, cut)))
  }
  async lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    await this.store.settled()
    return this.store.lookup(dir, name, cut)
  }
  async child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    await this.store.settled()
    return this.store.child(dir, name, cut)
  }
  async readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>> {
    await this.store.settled()
    return this.store.readdir(dir, cut, page)
  }
  async read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    await this.store.settled()
    return this.store.read(attr, offset, into, lengthBytes)
  }
  readBuffer(lengthBytes: number): Buffer {
    return this.store.readBuffer(lengthBytes)
  }
  async versions(ino: Ino, range?: VersionRange): Promise<Attr[]> {
    await this.store.settled()
    return this.store.versions(ino, range)
  }
  async nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]> {
    await this.store.settled()
    return this.store.nameHistory(dir, name, page)
  }
  async stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    await this.store.settled()
    return this.store.stampOfVersion(ino, version)
  }
  async stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    await this.store.settled()
    return this.store.stampAtSensorTime(ino, sensorUs)
  }
  async sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    await this.store.settled()
    return this.store.sensorPick(ino, sensorUs)
  }
  async snapshots(page?: DirPage): Promise<Snapshot[]> {
    await this.store.settled()
    return this.store.snapshots(page)
  }
  async snapshot(name: string): Promise<Snapshot | null> {
    await this.store.settled()
    return this.store.snapshot(name)
  }
  /** Chunks whose bytes the log takes with their CRC and page alignment, and reads back once written (logChunks.ts). */
  newChunk(ino: Ino, sizeBytes: number): DataChunk {
    return this.chunks.take(this, ino, sizeBytes)
  }

  /** `crc`: crc32c(bytes) as the caller computed it when the bytes arrived (a chunk), instead of the log reading them again (SegmentLog.append). */
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
  /** Reads back bytes handed to `appendData` (readable once appended). */
  readData(ref: DataRef, into: Buffer, intoOffset: number, lengthBytes: number): Promise<void> {
    if ('blob' in ref) throw new Error(`internal: the embedded log names no blobs (blob ${ref.blob})`)
    return this.store.readData(ref, into, intoOffset, lengthBytes)
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
  /** The local orderer answers a submit once its record is written (or synced, with 'sync-on-close'); this waits for the sync. */
  syncAcknowledged(maxWaitMs: number): Promise<void> {
    return this.orderer.syncAnswered(maxWaitMs)
  }

  async close(): Promise<void> {
    await this.retention.stop()
    await this.chunks.close()
    await this.orderer.close()
    await this.store.close()
  }
}
