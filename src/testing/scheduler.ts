// A deterministic discrete-event scheduler on virtual time. Nothing here reads a clock or
// sets a timer: time moves only when the owner steps it, so thousands of schedules run in
// seconds and one seed replays one schedule exactly.
//
// Events are ordered by (timeMs, insertion order). A step runs every event due at the
// earliest pending instant that was queued before the step began; events queued while
// the step runs (even for the same instant) belong to the next step. That boundary is what
// "coalesced per step" means for anything that batches (the simulated transport's `rows`).
//
// Background events (heartbeats, periodic checks) keep time meaningful but do not count as
// work: `idle` is true when only background events remain.

export interface ScheduleOptions {
  /** Periodic or housekeeping work; not counted by `idle`. Default false. */
  readonly background?: boolean
}

interface Entry {
  readonly timeMs: number
  readonly seq: number
  readonly background: boolean
  readonly run: () => void
  cancelled: boolean
}

export interface ScheduledEvent {
  cancel(): void
}

export class Scheduler {
  private nowMsValue = 0
  private seqNext = 0
  private heap: Entry[] = []
  private foregroundCount = 0
  private stepsDone = 0
  private readonly afterStepHooks: Array<() => void> = []

  get nowMs(): number {
    return this.nowMsValue
  }

  get steps(): number {
    return this.stepsDone
  }

  /** True when no foreground event is pending. */
  get idle(): boolean {
    return this.foregroundCount === 0
  }

  /** Time of the earliest pending event, or undefined when nothing is pending. */
  get nextEventMs(): number | undefined {
    this.dropCancelledHead()
    return this.heap[0]?.timeMs
  }

  /** Runs after every step, in registration order (for batching); returns the unsubscribe. */
  onAfterStep(hook: () => void): () => void {
    this.afterStepHooks.push(hook)
    return () => {
      const at = this.afterStepHooks.indexOf(hook)
      if (at >= 0) this.afterStepHooks.splice(at, 1)
    }
  }

  at(timeMs: number, run: () => void, options: ScheduleOptions = {}): ScheduledEvent {
    if (!Number.isFinite(timeMs) || timeMs < this.nowMsValue) {
      throw new RangeError(`scheduler: cannot schedule at ${timeMs} ms, now is ${this.nowMsValue} ms`)
    }
    const entry: Entry = { timeMs, seq: this.seqNext++, background: options.background === true, run, cancelled: false }
    if (!entry.background) this.foregroundCount++
    this.push(entry)
    return {
      cancel: () => {
        if (entry.cancelled) return
        entry.cancelled = true
        if (!entry.background) this.foregroundCount--
      },
    }
  }

  after(delayMs: number, run: () => void, options: ScheduleOptions = {}): ScheduledEvent {
    if (!(delayMs >= 0)) throw new RangeError(`scheduler: negative delay ${delayMs} ms`)
    return this.at(this.nowMsValue + delayMs, run, options)
  }

  /** Runs one instant (see the header). Returns false when nothing was pending. */
  step(): boolean {
    this.dropCancelledHead()
    const head = this.heap[0]
    if (head === undefined) return false
    if (head.timeMs < this.nowMsValue) throw new Error('scheduler invariant: event in the past')
    this.nowMsValue = head.timeMs
    const seqLimit = this.seqNext
    let ran = 0
    for (;;) {
      this.dropCancelledHead()
      const next = this.heap[0]
      if (next === undefined || next.timeMs !== this.nowMsValue || next.seq >= seqLimit) break
      this.pop()
      next.cancelled = true
      if (!next.background) this.foregroundCount--
      next.run()
      ran++
    }
    if (ran === 0) throw new Error('scheduler invariant: a step ran nothing')
    this.stepsDone++
    for (const hook of this.afterStepHooks) hook()
    return true
  }

  /** Runs every event due at or before now + ms, then sets the clock to now + ms. */
  advanceMs(ms: number, stepsMax = 10_000_000): number {
    if (!(ms >= 0)) throw new RangeError(`scheduler: cannot advance by ${ms} ms`)
    const targetMs = this.nowMsValue + ms
    let steps = 0
    for (;;) {
      const next = this.nextEventMs
      if (next === undefined || next > targetMs) break
      this.step()
      if (++steps > stepsMax) throw new Error(`scheduler: more than ${stepsMax} steps advancing ${ms} ms (livelock?)`)
    }
    this.nowMsValue = targetMs
    return steps
  }

  /** Steps until no foreground event is pending. Background events due meanwhile run too. */
  runUntilIdle(stepsMax = 10_000_000): number {
    let steps = 0
    while (!this.idle) {
      if (!this.step()) throw new Error('scheduler invariant: foreground count without events')
      if (++steps > stepsMax) throw new Error(`scheduler: not idle after ${stepsMax} steps (livelock?)`)
    }
    return steps
  }

  private dropCancelledHead(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop()
  }

  private static before(x: Entry, y: Entry): boolean {
    return x.timeMs < y.timeMs || (x.timeMs === y.timeMs && x.seq < y.seq)
  }

  private push(entry: Entry): void {
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!Scheduler.before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  private pop(): Entry {
    const heap = this.heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && Scheduler.before(heap[l]!, heap[m]!)) m = l
        if (r < heap.length && Scheduler.before(heap[r]!, heap[m]!)) m = r
        if (m === i) break
        ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
        i = m
      }
    }
    return top
  }
}

/** Lets promise reactions run: everything queued as microtasks before it settles first. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Steps `scheduler` until `promise` settles, letting the async code it drives run between steps
 * (real microtasks, virtual time); throws if nothing is left to step while it is pending.
 */
export async function runUntilSettled<T>(scheduler: Scheduler, promise: Promise<T>, stepsMax = 1_000_000): Promise<T> {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  for (let steps = 0; ; steps++) {
    await yieldToEventLoop()
    if (settled) return promise
    if (steps >= stepsMax) throw new Error(`scheduler: more than ${stepsMax} steps waiting for a promise (livelock?)`)
    if (!scheduler.step()) throw new Error('scheduler: nothing left to run and the promise is still pending')
  }
}
