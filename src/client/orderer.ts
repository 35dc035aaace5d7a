// Ordering: the one place records get their HLC stamp and their place in the sequence that
// every replica applies, for the embedded mount (the LocalOrderer below). A group orders
// records with the protocol core instead (src/replication/core/group.ts, member.ts); the file
// system above sees neither, only the Client interface (client.ts), so it has no second code
// path for "local".

import { errors } from '../errors.js'
import type { ApplyResult, Mutation } from '../store/records.js'
import type { Store } from '../store/store.js'
import { HybridClock, hlcOf, hlcPhysicalUs, wallClockUs, type HlcStamp } from '../temporal/hlc.js'

export interface Orderer {
  /** Orders, persists and applies one record; resolves once it is durable and applied. */
  submit(mutation: Mutation): Promise<{ stamp: HlcStamp; result: ApplyResult }>
  /** Every cut at or below this stamp is final: no record stamped at or before it can still arrive. */
  stableFrontier(): HlcStamp
  /** Resolves once `cut` is stable; throws EAGAIN after `maxWaitMs` (0: at once). */
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  close(): Promise<void>
}

interface InFlight {
  readonly stamp: HlcStamp
}

/** Orders records in one process: stamp, append to the log, group-commit fsync (overlapping the applies before it), apply in order. */
export class LocalOrderer implements Orderer {
  private readonly store: Store
  private readonly clock: HybridClock
  private readonly nowUs: () => number
  private readonly inFlight: InFlight[] = [] // stamped, not yet applied, in stamp order
  private applyChain: Promise<unknown> = Promise.resolve()
  private readonly waiters = new Set<() => void>()
  private closed = false

  constructor(store: Store, nowUs: () => number = wallClockUs) {
    this.store = store
    this.nowUs = nowUs
    this.clock = new HybridClock(nowUs)
    // Never stamp at or below what the log already holds (the wall clock may have stepped back).
    if (store.appliedStamp > 0n) this.clock.observe(store.appliedStamp)
  }

  submit(mutation: Mutation): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    if (this.closed) return Promise.reject(errors.invalid('file system is shutting down'))
    // Stamp and append synchronously, so log order, stamp order and apply order agree.
    const stamp = this.clock.now()
    const logged = this.store.appendRecord(stamp, mutation)
    const entry: InFlight = { stamp }
    this.inFlight.push(entry)
    // The sync starts now, not when the records before this one have applied: it runs while they
    // apply, and records submitted meanwhile share one fdatasync (SegmentLog.sync coalesces).
    const synced = this.store.sync()
    synced.catch(() => undefined) // reported by the apply below, which awaits it
    const applied = this.applyChain.then(async () => {
      let result: ApplyResult
      try {
        await synced
        result = await this.store.apply(stamp, mutation, logged)
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
    return applied
  }

  stableFrontier(): HlcStamp {
    const first = this.inFlight[0]
    if (first !== undefined) return first.stamp - 1n
    // The clock never again issues a stamp at or below max(last issued, wall clock now).
    const wall = hlcOf(this.nowUs(), 0) - 1n
    const issued = this.clock.peek()
    return wall > issued ? wall : issued
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

  async close(): Promise<void> {
    this.closed = true
    await this.applyChain
    this.wake()
  }
}
