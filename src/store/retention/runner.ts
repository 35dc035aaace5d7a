// Runs retention for one store, in the background and on demand: the proposer (the embedded
// mount; in a group, one member) orders a `retain` record and the `compact` records that drop
// what it no longer needs, in inode ranges of bounded work; every store (each replica) then
// collects its own segments within an I/O budget. Records go through `submit`, the ordered path
// every mutation takes, so replicas drop the same versions at the same point of their logs.

import { hlcToIso } from '../../temporal/hlc.js'
import type { Mutation } from '../records.js'
import type { GcReport, GcVictim } from '../segmentGc.js'
import type { Store } from '../store.js'
import { emptyCounts, type CompactionCounts } from './compaction.js'
import { describePolicy, type RetentionPolicy } from './policy.js'

/** Versions looked at per `compact` record at most (each record's apply holds the store that long). */
const COMPACT_VERSIONS_PER_RECORD = 20_000
const INTERVAL_MS_MIN = 1000
const INTERVAL_MS_MAX = 10 * 60_000

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

/** What one run did (or, dry, would do). */
export interface RetentionRunReport {
  readonly policy: string | null
  readonly floor: string | null // ISO, the floor after the run
  readonly compaction: CompactionCounts | null // dry: what a compaction at the floor this run sets would drop
  readonly gc: GcReport
}

export class RetentionRunner {
  private readonly options: RetentionRunnerOptions
  private timer: { cancel(): void } | null = null
  private running: Promise<unknown> = Promise.resolve()
  private stopped = false

  constructor(options: RetentionRunnerOptions) {
    this.options = options
  }

  get policy(): RetentionPolicy | null {
    return this.options.policy
  }

  /** Runs in the background every keepAllFor/10 (1 s to 10 min). */
  start(): void {
    const policy = this.options.policy
    if (policy === null || this.timer !== null) return
    const intervalMs = Math.min(INTERVAL_MS_MAX, Math.max(INTERVAL_MS_MIN, Math.round(policy.keepAllForMs / 10)))
    const setTimer = this.options.setTimer ?? nodeTimer
    const next = (): void => {
      this.timer = setTimer(intervalMs, () => {
        void this.run({ background: true })
          .catch((err: Error) => this.options.onError(err))
          .finally(() => {
            if (!this.stopped) next()
          })
      })
    }
    next()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    this.timer = null
    await this.running.catch(() => undefined)
  }

  /** One run now (after any run under way): retain and compact (the proposer, or any runner told to `propose`), then collect segments. */
  run(options: { dryRun?: boolean; background?: boolean; propose?: boolean } = {}): Promise<RetentionRunReport> {
    const run = this.running.then(() => (options.dryRun === true ? this.preview() : this.runNow(options.background === true, options.propose ?? this.options.proposes())))
    this.running = run.catch(() => undefined)
    return run
  }

  private async runNow(background: boolean, proposes: boolean): Promise<RetentionRunReport> {
    const { store, policy, submit } = this.options
    let compaction: CompactionCounts | null = null
    if (policy !== null && proposes && !this.stopped) {
      await submit({ type: 'retain', policy })
      compaction = await this.compact()
    } else if (store.compactionCursor() !== null && proposes) {
      compaction = await this.compact() // a compaction a previous proposer left unfinished
    }
    const budget = background && this.options.copyBytesPerSecond !== undefined ? { copyBytesPerSecond: this.options.copyBytesPerSecond } : {}
    const gc = await store.gc({ ...budget, ...(this.options.onCollect !== undefined ? { onCollect: this.options.onCollect } : {}) })
    const report = { policy: policy === null ? null : describePolicy(policy), floor: store.floor.stamp === 0n ? null : hlcToIso(store.floor.stamp), compaction, gc }
    if (background && (gc.victims.length > 0 || (compaction !== null && compaction.versionsDropped > 0))) this.options.onRun(report)
    return report
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
