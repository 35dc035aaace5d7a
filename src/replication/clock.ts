// Time as the member runtime sees it, injected: the system's clock and timers in `fffs serve`,
// the simulation's virtual clock under test (src/testing/simClock.ts), so the same runtime code
// runs in both and a simulated schedule is replayed exactly by its seed.

import { wallClockUs } from '../temporal/hlc.js'

export interface Timer {
  cancel(): void
}

export interface Clock {
  /** Milliseconds, for intervals and timeouts. */
  nowMs(): number
  /** Microseconds since the epoch, for HLC stamps. */
  wallClockUs(): number
  /** Runs `run` once after `delayMs`. */
  setTimer(delayMs: number, run: () => void): Timer
  /** Runs `run` after the current turn of the event loop (and the events already due). */
  defer(run: () => void): void
}

/** The system's clock. Timers never keep the process alive (a member's sockets do). */
export const systemClock: Clock = {
  nowMs: () => Date.now(),
  wallClockUs,
  setTimer: (delayMs, run) => {
    const timer = setTimeout(run, delayMs)
    timer.unref()
    return { cancel: () => clearTimeout(timer) }
  },
  defer: (run) => void setImmediate(run),
}

export function sleep(clock: Clock, delayMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(delayMs, resolve))
}
