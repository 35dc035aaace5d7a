// A member's replica: its store (log and index) on its disk, who may read it, and replacing it
// by an empty one when its log turned out not to be a prefix of the group's (catch-up).

import path from 'node:path'
import { isIndexAheadOfCompactedLog } from '../../errors.js'
import type { Disk } from '../../store/disk.js'
import { Store, type ShardRole } from '../../store/store.js'
import { sleep, type Clock } from '../clock.js'
import { finishImageInstall, ImageImport } from '../storeImage.js'
import { MemberBehindError } from '../wire.js'

const DISCARDED_PREFIX = 'discarded-' // a discarded store's files, in the data directory until deleted
const READS_DRAIN_MAX_MS = 5_000 // before discarding the store, reads already running get this long to finish
const READS_DRAIN_POLL_MS = 10

export class Replica {
  readonly store: Store
  private readonly memberId: number
  private readonly disk: Disk
  private readonly dataDir: string
  private readonly clock: Clock
  private readonly log: (line: string) => void
  private replaced = false // discarded and not yet caught up: reads refused
  private swapping = false // closed and reopened empty: even prefix reads refused
  private readsRunning = 0

  private constructor(memberId: number, disk: Disk, dataDir: string, store: Store, clock: Clock, log: (line: string) => void) {
    this.memberId = memberId
    this.disk = disk
    this.dataDir = dataDir
    this.store = store
    this.clock = clock
    this.log = log
  }

  /** Opens the store in `dataDir` (removing what a crash during a discard left, finishing the install of a complete whole-store image or removing an incomplete one). */
  static async open(options: { memberId: number; disk: Disk; dataDir: string; role?: ShardRole; clock: Clock; log: (line: string) => void }): Promise<Replica> {
    const { disk, dataDir } = options
    await disk.mkdirp(dataDir)
    for (const name of await disk.list(dataDir)) if (name.startsWith(DISCARDED_PREFIX)) await disk.remove(path.join(dataDir, name))
    const installed = await finishImageInstall(disk, dataDir)
    if (installed !== null) options.log(`installed the whole-store image (at ${installed}) a transfer had completed before this member stopped`)
    const store = new Store(dataDir, { disk, ...(options.role !== undefined ? { role: options.role } : {}) })
    await store.open().catch(async (err: unknown) => {
      // The index got ahead of a log whose start segment GC deleted (a machine crash): the log
      // cannot rebuild it, so this replica starts empty and is fetched whole from the group.
      if (!isIndexAheadOfCompactedLog(err)) throw err
      options.log(`${(err as Error).message}; starting empty, to be fetched whole from the group`)
      const trash = await moveAside(disk, dataDir, options.clock.nowMs())
      await disk.remove(trash)
      await store.open()
    })
    return new Replica(options.memberId, disk, dataDir, store, options.clock, options.log)
  }

  /** Discarded and not caught up since: the store does not hold what this member called stable. */
  get isReplaced(): boolean {
    return this.replaced
  }

  /** A catch-up completed (or this member's log is the epoch's): reads are answered again. */
  caughtUp(): void {
    this.replaced = false
  }

  /**
   * Runs a read of the store. Refused (MemberBehindError: the client asks another member)
   * while the store is replaced, unless a prefix of the group's log will do.
   */
  async read<T>(options: { prefixIsEnough?: boolean }, read: (store: Store) => Promise<T> | T): Promise<T> {
    if (this.swapping || (this.replaced && options.prefixIsEnough !== true)) {
      throw new MemberBehindError(`member ${this.memberId} is replacing its replica (its log had records the group went on without)`)
    }
    this.readsRunning++
    try {
      return await read(this.store)
    } finally {
      this.readsRunning--
    }
  }

  /** Where a whole-store image is written before it replaces the store (storeImage.ts). */
  stageImage(): ImageImport {
    return new ImageImport(this.disk, this.dataDir)
  }

  /**
   * Replaces the store by the complete whole-store image `stageImage` wrote (finishImageInstall:
   * crash-safe), and opens it. Reads stay refused until a catch-up completes.
   */
  async installImage(): Promise<void> {
    this.replaced = true
    this.swapping = true
    try {
      await this.drainReads()
      await this.store.close()
      await finishImageInstall(this.disk, this.dataDir)
      await this.store.open()
    } finally {
      this.swapping = false
    }
  }

  private async drainReads(): Promise<void> {
    const drainStartedMs = this.clock.nowMs()
    while (this.readsRunning > 0 && this.clock.nowMs() - drainStartedMs < READS_DRAIN_MAX_MS) await sleep(this.clock, READS_DRAIN_POLL_MS)
  }

  /**
   * Replaces the store by an empty one, durably: the index directory is moved away first (a
   * crash then leaves the log, and opening replays it), then the segments (a crash leaves an
   * empty store); each step is made durable before the next, and the files are deleted after.
   * Any state in between is a prefix of some order this member may hold: the old log, nothing,
   * or (once fetching) a prefix of the donor's. Reads are refused until a catch-up completes.
   */
  async discard(): Promise<void> {
    this.replaced = true
    this.swapping = true
    await this.drainReads()
    await this.store.close()
    const trash = await moveAside(this.disk, this.dataDir, this.clock.nowMs())
    await this.store.open()
    this.swapping = false
    void this.disk.remove(trash).catch((err: Error) => this.log(`deleting ${trash}: ${err.message}`))
  }
}

/** Moves a store's index, then its segments, into a `discarded-*` directory, each step durable before the next; returns that directory. */
async function moveAside(disk: Disk, dataDir: string, nowMs: number): Promise<string> {
  const trash = path.join(dataDir, `${DISCARDED_PREFIX}${nowMs}`)
  await disk.mkdirp(trash)
  for (const name of ['index', 'segments']) {
    await disk.rename(path.join(dataDir, name), path.join(trash, name))
    await disk.syncDir(dataDir)
  }
  return trash
}
