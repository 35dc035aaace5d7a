// Ordering: the one place records get their HLC stamp and their place in the sequence that
// every replica applies, for the embedded mount (the LocalOrderer below). A group orders
// records with the protocol core instead (src/replication/core/group.ts, member.ts); the file
// system above sees neither, only the Client interface (client.ts), so it has no second code
// path for "local".

import { errors, FffsError } from '../errors.js'
import type { ApplyResult, Mutation } from '../store/records.js'
import type { Store } from '../store/store.js'
import { HybridClock, hlcOf, hlcPhysicalUs, wallClockUs, type HlcStamp } from '../temporal/hlc.js'

/**
 * When a submit is answered (the embedded mount's `--durability`, as a group's config says it):
 * 'written' once its record is written to the log (in the page cache: it survives kill -9 of the
 * process) and applied, the sync following in the background; 'synced' once it is synced too.
 */
export type Acknowledge = 'written' | 'synced'

export interface Orderer {
  /** Orders, persists and applies one record; resolves once it is applied and written (or synced: Acknowledge). */
  submit(mutation: Mutation): Promise<{ stamp: HlcStamp; result: ApplyResult }>
  /** Every cut at or below this stamp is final: no record stamped at or before it can still arrive, or still be lost to a power loss. */
  stableFrontier(): HlcStamp
  /** Resolves once `cut` is stable; throws EAGAIN after `maxWaitMs` (0: at once). */
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  /** Resolves once every record answered so far is synced; EIO after `maxWaitMs`. */
  syncAnswered(maxWaitMs: number): Promise<void>
  close(): Promise<void>
}

/**
 * How long the background sync waits after the first record it will cover (write-on-close): a
 * burst of creates shares one fdatasync instead of paying one each; a frozen read of the present
 * waits this much longer.
 */
const SYNC_DELAY_MS = 5

interface InFlight {
  readonly stamp: HlcStamp
}

/**
 * Orders records in one process: stamp, append to the log, apply in order, answer; a group-commit
 * fdatasync runs beside the applies (records submitted meanwhile share it). The stable frontier
 * stays below the first record not yet both applied and synced, so a frozen cut never holds a
 * record a power loss could take back.
 */
export class LocalOrderer implements Orderer {
  private readonly store: Store
  private readonly clock: HybridClock
  private readonly nowUs: () => number
  private readonly acknowledge: Acknowledge
  private readonly inFlight: InFlight[] = [] // stamped, not yet applied, in stamp order
  private readonly unsynced: HlcStamp[] = [] // appended, not yet synced, in stamp order
  private answeredStamp: HlcStamp = 0n
  /** The background sync waiting for its time (syncSoon); `run` starts it at once. */
  private nextSync: { readonly promise: Promise<void>; readonly run: () => void } | null = null
  private applyChain: Promise<unknown> = Promise.resolve()
  private readonly waiters = new Set<() => void>()
  private closed = false

  constructor(store: Store, options: { readonly acknowledge?: Acknowledge; readonly nowUs?: () => number } = {}) {
    this.store = store
    this.nowUs = options.nowUs ?? wallClockUs
    this.acknowledge = options.acknowledge ?? 'written'
    this.clock = new HybridClock(this.nowUs)
    if (store.appliedStamp > 0n) {
      // Never stamp at or below what the log already holds (the wall clock may have stepped back).
      this.clock.observe(store.appliedStamp)
      // The log may end in records a killed process wrote and never synced (replayed from the page
      // cache): no cut holding them is stable before the log's first sync.
      this.syncFrom(store.appliedStamp)
    }
  }

  submit(mutation: Mutation): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    if (this.closed) return Promise.reject(errors.invalid('file system is shutting down'))
    // Stamp and append synchronously, so log order, stamp order and apply order agree.
    const stamp = this.clock.now()
    const logged = this.store.appendRecord(stamp, mutation)
    const entry: InFlight = { stamp }
    this.inFlight.push(entry)
    // The sync runs beside the applies: records submitted meanwhile share one fdatasync
    // (syncSoon, and SegmentLog.sync coalesces).
    const synced = this.syncFrom(stamp)
    const applied = this.applyChain.then(async () => {
      let result: ApplyResult
      try {
        // The index is written once the record is in the log's file (logged.written), and the
        // answer does not wait for it: queries do (Store.settled, EmbeddedClient).
        result = (await this.store.applyAhead(stamp, mutation, logged)).result
      } catch (err) {
        // Not in the log (a full disk), or the log failed: the record is no more; the next ones go on.
        if (this.inFlight[0] === entry) this.inFlight.shift()
        this.wake()
        throw err
      }
      if (this.inFlight.shift() !== entry) throw new Error('records applied out of order')
      this.wake()
      return { stamp, result }
    })
    this.applyChain = applied.catch(() => undefined)
    const answered = this.acknowledge === 'synced' ? applied.then(async (done) => (await synced, done)) : applied
    return answered.then((done) => {
      if (stamp > this.answeredStamp) this.answeredStamp = stamp
      return done
    })
  }

  /** Syncs the log past the record stamped `stamp` (just appended); the stable frontier waits for it. */
  private syncFrom(stamp: HlcStamp): Promise<void> {
    this.unsynced.push(stamp)
    const synced = (this.acknowledge === 'synced' ? this.store.sync() : this.syncSoon()).then(() => this.syncedUpTo(stamp))
    synced.catch(() => undefined) // a failed sync is sticky in the log: every later append and sync reports it
    return synced
  }

  /**
   * The background sync of records nobody waits on (write-on-close): SYNC_DELAY_MS after the
   * first of them, so the records of that while share one fdatasync. `syncAnswered` and `close`
   * sync at once (SegmentLog.sync coalesces whatever is in flight).
   */
  private syncSoon(): Promise<void> {
    if (this.nextSync === null) {
      let settle!: { resolve: () => void; reject: (err: unknown) => void }
      const promise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }))
      const run = (): void => {
        clearTimeout(timer)
        if (this.nextSync?.promise === promise) this.nextSync = null
        this.store.sync().then(settle.resolve, settle.reject)
      }
      const timer = setTimeout(run, SYNC_DELAY_MS)
      this.nextSync = { promise, run }
    }
    return this.nextSync.promise
  }

  /** A sync covers every entry appended before it began: every record up to `stamp`. */
  private syncedUpTo(stamp: HlcStamp): void {
    while (this.unsynced.length > 0 && this.unsynced[0]! <= stamp) this.unsynced.shift()
    this.wake()
  }

  stableFrontier(): HlcStamp {
    let first = this.inFlight[0]?.stamp
    const firstUnsynced = this.unsynced[0]
    if (firstUnsynced !== undefined && (first === undefined || firstUnsynced < first)) first = firstUnsynced
    if (first !== undefined) return first - 1n
    // The clock never again issues a stamp at or below max(last issued, wall clock now).
    const wall = hlcOf(this.nowUs(), 0) - 1n
    const issued = this.clock.peek()
    return wall > issued ? wall : issued
  }

  async syncAnswered(maxWaitMs: number): Promise<void> {
    const answered = this.answeredStamp
    if (this.unsynced.length === 0 || this.unsynced[0]! > answered) return
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new FffsError('EIO', `the log did not sync within ${maxWaitMs} ms`)), maxWaitMs)
    })
    const appended = this.unsynced.at(-1)!
    this.nextSync?.run()
    try {
      await Promise.race([this.store.sync(), timedOut]) // everything appended so far: a superset of what was answered
    } finally {
      clearTimeout(timer)
    }
    this.syncedUpTo(appended)
  }

  async waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    const startedMs = Date.now()
    for (;;) {
      if (this.stableFrontier() >= cut) return
      const waitedMs = Date.now() - startedMs
      if (waitedMs >= maxWaitMs || this.closed) throw errors.notStable(`cut ${cut}`, waitedMs)
      // Sleep until the wall clock passes the cut, or a record applies, whichever is first.
      const untilCutMs = Math.ceil((hlcPhysicalUs(cut) - this.nowUs()) / 1000) + 1
      const sleepMs = Math.max(1, Math.min(maxWaitMs - waitedMs, untilCutMs))
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, sleepMs)
        function done(): void {
          clearTimeout(timer)
          waiters.delete(done)
          resolve()
        }
        const waiters = this.waiters
        waiters.add(done)
      })
    }
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  /** Waits for the records in flight, and syncs them (an unmount leaves nothing to a power loss, as on a local file system). */
  async close(): Promise<void> {
    this.closed = true
    await this.applyChain
    this.nextSync?.run()
    await this.store.sync().catch(() => undefined) // a failed sync was reported to whoever waited for it
    this.wake()
  }
}
