// Hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014), packed
// into one u64 so stamps compare, sort and index as plain integers:
//   stamp = (physicalUs << 12) | logical
// 52 bits of epoch microseconds reach 2112-06; 12 logical bits allow 4096 events per µs.
// When the logical part would overflow it carries into the physical part (a stamp is just
// incremented), so stamps never wrap and stay strictly ordered; the physical part then runs
// slightly ahead of real time until the physical clock catches up.

import { invariant } from './assert.js'
import { isoOfUs } from './civil.js'

export type HlcStamp = bigint

export const HLC_LOGICAL_BITS = 12n
export const HLC_MIN: HlcStamp = 0n
export const HLC_MAX: HlcStamp = (1n << 64n) - 1n

const LOGICAL_MASK = (1n << HLC_LOGICAL_BITS) - 1n
const LOGICAL_MAX = Number(LOGICAL_MASK)
const PHYSICAL_US_MAX = Number(HLC_MAX >> HLC_LOGICAL_BITS) // 2^52 - 1, a safe integer

function assertStamp(stamp: HlcStamp): void {
  invariant(typeof stamp === 'bigint' && stamp >= HLC_MIN && stamp <= HLC_MAX, `stamp ${String(stamp)} outside u64`)
}

function assertPhysicalUs(physicalUs: number): void {
  invariant(
    Number.isSafeInteger(physicalUs) && physicalUs >= 0 && physicalUs <= PHYSICAL_US_MAX,
    `physical time ${physicalUs} µs is not an integer in [0, 2^52)`,
  )
}

export function hlcOf(physicalUs: number, logical: number): HlcStamp {
  assertPhysicalUs(physicalUs)
  invariant(Number.isInteger(logical) && logical >= 0 && logical <= LOGICAL_MAX, `logical ${logical} outside [0, 4095]`)
  return (BigInt(physicalUs) << HLC_LOGICAL_BITS) | BigInt(logical)
}

export function hlcPhysicalUs(stamp: HlcStamp): number {
  assertStamp(stamp)
  return Number(stamp >> HLC_LOGICAL_BITS)
}

export function hlcLogical(stamp: HlcStamp): number {
  assertStamp(stamp)
  return Number(stamp & LOGICAL_MASK)
}

// A cut "at T" includes every stamp <= this. T beyond the 52-bit physical range (the
// spec layer accepts times up to 2255) includes every stamp there can be, so it clamps.
export function hlcCeilingOfUs(timeUs: number): HlcStamp {
  invariant(Number.isSafeInteger(timeUs) && timeUs >= 0, `cut time ${timeUs} µs is not a non-negative integer`)
  if (timeUs > PHYSICAL_US_MAX) return HLC_MAX
  return hlcOf(timeUs, LOGICAL_MAX)
}

export function hlcToIso(stamp: HlcStamp): string {
  return isoOfUs(hlcPhysicalUs(stamp))
}

export function hlcToString(stamp: HlcStamp): string {
  const logical = hlcLogical(stamp)
  return logical > 0 ? `${hlcToIso(stamp)}+${logical}` : hlcToIso(stamp)
}

// Date.now() has ms resolution and may step (NTP); performance.now() is monotonic with
// sub-µs resolution but drifts from wall time over days. Combine them: extrapolate from an
// anchor with performance.now(), re-anchor whenever the extrapolation leaves a 1 ms band
// around Date.now(), and never return less than before so callers see a non-decreasing
// clock even when the wall clock steps back (the HLC absorbs the stall in its logical part).
const REANCHOR_TOLERANCE_US = 1000
let anchorWallUs = Date.now() * 1000
let anchorPerfMs = performance.now()
let wallClockLastUs = 0

export function wallClockUs(): number {
  const perfMs = performance.now()
  const dateUs = Date.now() * 1000
  let timeUs = Math.floor(anchorWallUs + (perfMs - anchorPerfMs) * 1000)
  if (timeUs < dateUs - REANCHOR_TOLERANCE_US || timeUs > dateUs + 1000 + REANCHOR_TOLERANCE_US) {
    anchorWallUs = dateUs
    anchorPerfMs = perfMs
    timeUs = dateUs
  }
  if (timeUs > wallClockLastUs) wallClockLastUs = timeUs
  return wallClockLastUs
}

export class HybridClock {
  private readonly nowUs: () => number
  // Invariant: lastStamp is >= every stamp this clock returned or observed.
  private lastStamp: HlcStamp = HLC_MIN

  constructor(nowUs: () => number = wallClockUs) {
    this.nowUs = nowUs
  }

  // Send or local event. Kulkarni's rule (l' = max(l, pt); c' = l' == l ? c + 1 : 0) is,
  // on packed stamps, max(last + 1, pt << 12): the +1 carries on logical overflow.
  now(): HlcStamp {
    return this.advance(this.lastStamp + 1n)
  }

  // Receive event: l' = max(l, l_m, pt) with c' one past the largest logical among the
  // inputs sharing l'; packed, that is max(last + 1, remote + 1, pt << 12).
  observe(remote: HlcStamp): HlcStamp {
    assertStamp(remote)
    const floor = remote > this.lastStamp ? remote + 1n : this.lastStamp + 1n
    const stamp = this.advance(floor)
    invariant(stamp > remote, 'observe result must exceed the observed stamp')
    return stamp
  }

  peek(): HlcStamp {
    return this.lastStamp
  }

  private advance(floor: HlcStamp): HlcStamp {
    const physicalUs = this.nowUs()
    assertPhysicalUs(physicalUs)
    const physicalStamp = BigInt(physicalUs) << HLC_LOGICAL_BITS
    const stamp = physicalStamp > floor ? physicalStamp : floor
    invariant(stamp <= HLC_MAX, 'hybrid clock exhausted the u64 stamp space')
    invariant(stamp > this.lastStamp, 'hybrid clock must be strictly increasing')
    this.lastStamp = stamp
    return stamp
  }
}
