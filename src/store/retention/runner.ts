// Runs retention for one store, in the background and on demand: the proposer (the embedded
// mount; in a group, one member) orders a `retain` record and the `compact` records that drop
// what it no longer needs, in inode ranges of bounded work; every store (each replica) then
// collects its own segments within an I/O budget. Records go through `submit`, the ordered path
// every mutation takes, so replicas drop the same versions at the same point of their logs.

import { hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import type { Mutation } from '../records.js'
import type { GcReport, GcVictim } from '../segmentGc.js'
import type { Store } from '../store.js'
import { emptyCounts, type CompactionCounts } from './compaction.js'
import { describePolicy, type RetentionPolicy } from './policy.js'

/** Versions looked at per `compact` record at most (each record's apply holds the store that long). */
const COMPACT_VERSIONS_PER_RECORD = 20_000
const INTERVAL_MS_MIN = 1000
const INTERVAL_MS_MAX = 10 * 60_000
/** A background collection leaves a segment whose live bytes fell by more than this share since its last look (isDying)... */
const DYING_FALL_SHARE = 0.1
/** ...unless they are at most this share of the segment (cheap to copy anyway). */
const CHEAP_LIVE_SHARE = 0.1

export interface RetentionRunnerOptions {
  readonly store: Store
  /** Null: no retention (everything is kept; segment GC has nothing to collect). */
  readonly policy: RetentionPolicy | null
  /** Orders a mutation; resolves once it is applied here. */
  readonly submit: (mutation: Mutation) => Promise<void>
  /** Whether this store's runner orders retention (a group has one proposer; the others only collect). */
  readonly proposes: () => boolean
  /** Told of each background run that dropped or freed something, and of a background run's failure. */
  readonly onRun: (report: RetentionRunReport) => void
  /** Told when a run starts collecting segments (before it copies their live bytes). */
  readonly onCollect?: (victims: readonly GcVictim[]) => void
  readonly onError: (err: Error) => void
  /** The I/O budget of background segment GC (bytes copied per second); on-demand runs have none. */
  readonly copyBytesPerSecond?: number
  /** Runs `run` once after `delayMs` (default: a node timer that keeps no process alive; a member passes its clock's). */
  readonly setTimer?: (delayMs: number, run: () => void) => { cancel(): void }
}

function nodeTimer(delayMs: number, run: () => void): { cancel(): void } {
  const timer = setTimeout(run, delayMs)
  timer.unref()
  return { cancel: () => clearTimeout(timer) }
}

/** What one run did (or, dry, would do); a background pass moves the floor or collects, not both. */
export interface RetentionRunReport {
  readonly policy: string | null
  readonly floor: string | null // ISO, the floor after the run
  readonly compaction: CompactionCounts | null // dry: what a compaction at the floor this run sets would drop; null: no floor pass
  readonly gc: GcReport | null // null: a background floor pass (collection runs on its own)
}

export class RetentionRunner {
  private readonly options: RetentionRunnerOptions
  private readonly timers: Array<{ cancel(): void }> = []
  private floorQueue: Promise<unknown> = Promise.resolve() // floor passes, one at a time
  private collectQueue: Promise<unknown> = Promise.resolve() // collections, one at a time
  private collector: Promise<void> | null = null // the background collection loop, while it runs
  private collectedFloor: HlcStamp | null = null // the floor the last background collection began at
  private liveBytesSeen = new Map<number, number>() // each collectable segment's live bytes at the last background collection
  private stopped = false
  private readonly intervalMs: number // a floor pass at least this often
  private readonly floorSpacingMs: number // and, while the log grows, as often as this

  constructor(options: RetentionRunnerOptions) {
    this.options = options
    const keepAllForMs = options.policy?.keepAllForMs ?? INTERVAL_MS_MAX * 10
    this.intervalMs = Math.min(INTERVAL_MS_MAX, Math.max(INTERVAL_MS_MIN, Math.round(keepAllForMs / 10)))
    this.floorSpacingMs = Math.min(this.intervalMs, Math.max(INTERVAL_MS_MIN, Math.round(keepAllForMs / 20)))
  }

  get policy(): RetentionPolicy | null {
    return this.options.policy
  }

  /**
   * Runs in the background. The proposer moves the floor (retain and compact: index work, no
   * copying) every keepAllFor/10 (1 s to 10 min), and sooner while the log grows: once a segment
   * has filled since the last floor pass and keepAllFor/20 (at least 1 s) has gone by, so the
   * floor trails keepAllFor by little however fast data comes. (Each floor pass and collection
   * reads the index's block entries, as many as the window holds: their spacing grows with
   * keepAllFor so that this work stays in proportion to the writes.) Every store collects its segments
   * once the floor has moved (at once after a floor pass of its own; in a group, the leader's
   * records move it), within the I/O budget. Collection may take longer than a floor pass; the
   * floor does not wait for it, and a collection that began before the floor moved is followed
   * at once by another.
   */
  start(): void {
    const policy = this.options.policy
    if (policy === null || this.timers.length > 0) return
    const { store } = this.options
    let sinceFloorMs = 0
    let segmentAtFloor = store.tailSegment
    this.every(this.floorSpacingMs, async () => {
      sinceFloorMs += this.floorSpacingMs
      const grew = store.tailSegment > segmentAtFloor
      if (this.options.proposes() && (grew || sinceFloorMs >= this.intervalMs)) {
        sinceFloorMs = 0
        segmentAtFloor = store.tailSegment
        await this.queued('floor', () => this.moveFloor(true))
      }
      this.collectInBackground()
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const timer of this.timers.splice(0)) timer.cancel()
    await Promise.all([this.floorQueue, this.collectQueue, this.collector].map((p) => p?.catch(() => undefined)))
  }

  /** One run now (after any pass under way): retain and compact (the proposer, or any runner told to `propose`), then collect segments with no budget. */
  async run(options: { dryRun?: boolean; propose?: boolean } = {}): Promise<RetentionRunReport> {
    if (options.dryRun === true) return this.queued('collect', () => this.preview())
    const proposes = options.propose ?? this.options.proposes()
    const compaction = proposes ? await this.queued('floor', () => this.moveFloor(false)) : null
    const gc = await this.queued('collect', () => this.collect(false))
    return this.report(compaction, gc)
  }

  /** Runs `pass` every `intervalMs` (the next interval begins once it is done) until stopped. */
  private every(intervalMs: number, pass: () => Promise<void>): void {
    const setTimer = this.options.setTimer ?? nodeTimer
    const next = (): void => {
      const timer = setTimer(intervalMs, () => {
        this.timers.splice(this.timers.indexOf(timer), 1)
        void pass()
          .catch((err: Error) => this.options.onError(err))
          .finally(() => {
            if (!this.stopped) next()
          })
      })
      this.timers.push(timer)
    }
    next()
  }

  /** Runs `fn` after the passes of its kind under way. */
  private queued<T>(queue: 'floor' | 'collect', fn: () => Promise<T>): Promise<T> {
    const key = queue === 'floor' ? 'floorQueue' : 'collectQueue'
    const run = this[key].then(fn)
    this[key] = run.catch(() => undefined)
    return run
  }

  /** Collects in the background while the floor has moved since the last collection began (one loop at a time). */
  private collectInBackground(): void {
    if (this.collector !== null || this.stopped) return
    const loop = async (): Promise<void> => {
      while (!this.stopped && this.options.store.floor.stamp !== this.collectedFloor) {
        this.collectedFloor = this.options.store.floor.stamp
        await this.queued('collect', () => this.collect(true))
      }
    }
    // `finally` runs after the assignment, also when the loop has nothing to do.
    this.collector = loop()
      .catch((err: Error) => this.options.onError(err))
      .finally(() => void (this.collector = null))
  }

  /** A floor pass: `retain` (the floor moves by the policy) and the `compact` records that drop what it no longer needs; null without a policy and nothing left to compact. */
  private async moveFloor(background: boolean): Promise<CompactionCounts | null> {
    const { store, policy, submit } = this.options
    if (this.stopped) return null
    if (policy !== null) await submit({ type: 'retain', policy })
    else if (store.compactionCursor() === null) return null // else: a compaction a previous proposer left unfinished
    const compaction = await this.compact()
    if (background && compaction.versionsDropped > 0) this.options.onRun(this.report(compaction, null))
    return compaction
  }

  /** A collection: segments whose live bytes are few are copied forward and deleted, within the I/O budget in the background. */
  private async collect(background: boolean): Promise<GcReport> {
    const { copyBytesPerSecond } = this.options
    // A background run copies about an interval's budget, so it ends about when the floor moves again.
    const budget = background && copyBytesPerSecond !== undefined ? { copyBytesPerSecond, copyBytesMax: (copyBytesPerSecond * this.intervalMs) / 1000 } : {}
    const seen = new Map<number, number>()
    const defer = (c: GcVictim): boolean => {
      seen.set(c.segment, c.liveBytes)
      return isDying(c, this.liveBytesSeen.get(c.segment))
    }
    const gc = await this.options.store.gc({ ...budget, ...(background ? { defer } : {}), ...(this.options.onCollect !== undefined ? { onCollect: this.options.onCollect } : {}) })
    if (background) this.liveBytesSeen = seen
    if (background && gc.victims.length > 0) this.options.onRun(this.report(null, gc))
    return gc
  }

  private report(compaction: CompactionCounts | null, gc: GcReport | null): RetentionRunReport {
    const { store, policy } = this.options
    return { policy: policy === null ? null : describePolicy(policy), floor: store.floor.stamp === 0n ? null : hlcToIso(store.floor.stamp), compaction, gc }
  }

  /** The `compact` records of the compaction the last `retain` started, each over a bounded range of inodes; what they dropped. */
  private async compact(): Promise<CompactionCounts> {
    const { store, submit } = this.options
    for (let cursor = store.compactionCursor(); cursor !== null && !this.stopped; cursor = store.compactionCursor()) {
      await submit({ type: 'compact', toIno: await store.compactionChunkEnd(cursor.nextIno, COMPACT_VERSIONS_PER_RECORD) })
    }
    return (await store.lastRetention()) ?? emptyCounts()
  }

  /** What a run now would do: the compaction at the floor a `retain` now would set, and what GC could collect now. */
  private async preview(): Promise<RetentionRunReport> {
    const { store, policy } = this.options
    const preview = policy === null ? null : await store.compactionPreview(policy)
    const gc = await store.gc({ dryRun: true })
    return { policy: policy === null ? null : describePolicy(policy), floor: preview === null ? null : hlcToIso(preview.floor), compaction: preview?.counts ?? null, gc }
  }
}

/**
 * Whether a segment GC could collect is better left for now: its live bytes are still falling
 * (the floor is passing the versions that name them; first seen: not known yet) and are more
 * than a few. Bytes copied forward land at the log's tail, above the floor, and stay on disk a
 * whole keepAllFor even when the versions naming them go a second later; a segment left a few
 * floor moves longer gives most of them back without copying. Live bytes that stay (files not
 * rewritten) are copied once they stop falling.
 */
function isDying(candidate: GcVictim, liveBytesBefore: number | undefined): boolean {
  if (candidate.liveBytes <= CHEAP_LIVE_SHARE * candidate.sizeBytes) return false
  return liveBytesBefore === undefined || candidate.liveBytes < (1 - DYING_FALL_SHARE) * liveBytesBefore
}
