// A member's clock in the simulation: virtual time from the world's scheduler, a wall clock
// skewed per member (as real ones are), and timers that die with the process: after `kill()`
// nothing this clock scheduled runs, so no code of a crashed member runs again.

import type { Clock, Timer } from '../replication/clock.js'
import type { ScheduledEvent, Scheduler } from './scheduler.js'

export class SimClock implements Clock {
  private readonly scheduler: Scheduler
  private readonly baseUs: number
  private readonly skewUs: number
  private readonly timers = new Set<ScheduledEvent>()
  private dead = false

  /** `baseUs`: the wall clock at virtual time 0; `skewUs`: this member's offset from it. */
  constructor(scheduler: Scheduler, baseUs: number, skewUs: number) {
    this.scheduler = scheduler
    this.baseUs = baseUs
    this.skewUs = skewUs
  }

  nowMs(): number {
    return this.scheduler.nowMs
  }

  wallClockUs(): number {
    return this.baseUs + Math.round(this.scheduler.nowMs * 1000) + this.skewUs
  }

  setTimer(delayMs: number, run: () => void): Timer {
    if (this.dead) return { cancel: () => undefined }
    const event: ScheduledEvent = this.scheduler.after(
      Math.max(0, delayMs),
      () => {
        this.timers.delete(event)
        if (!this.dead) run()
      },
      { background: true },
    )
    this.timers.add(event)
    return {
      cancel: () => {
        event.cancel()
        this.timers.delete(event)
      },
    }
  }

  defer(run: () => void): void {
    this.setTimer(0, run)
  }

  /** The process died: no timer of it fires, none is set any more. */
  kill(): void {
    this.dead = true
    for (const timer of this.timers) timer.cancel()
    this.timers.clear()
  }
}
