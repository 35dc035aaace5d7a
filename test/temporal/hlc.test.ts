import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  HLC_LOGICAL_BITS,
  HLC_MAX,
  HLC_MIN,
  HybridClock,
  hlcCeilingOfUs,
  hlcLogical,
  hlcOf,
  hlcPhysicalUs,
  hlcToIso,
  hlcToString,
  wallClockUs,
  type HlcStamp,
} from '../../src/temporal/hlc.js'

// A physical clock the test sets by hand.
function manualClock(startUs: number): { nowUs: () => number; set: (us: number) => void } {
  let currentUs = startUs
  return { nowUs: () => currentUs, set: (us) => (currentUs = us) }
}

describe('stamp packing', () => {
  it('packs physical µs above 12 logical bits', () => {
    expect(HLC_LOGICAL_BITS).toBe(12n)
    expect(HLC_MIN).toBe(0n)
    expect(HLC_MAX).toBe(18446744073709551615n)
    expect(hlcOf(1, 0)).toBe(4096n)
    expect(hlcOf(1, 4095)).toBe(8191n)
    expect(hlcOf(2 ** 52 - 1, 4095)).toBe(HLC_MAX)
    expect(hlcPhysicalUs(hlcOf(1795255200123456, 7))).toBe(1795255200123456)
    expect(hlcLogical(hlcOf(1795255200123456, 7))).toBe(7)
  })

  it('round-trips every physical/logical pair', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 52 - 1 }), fc.integer({ min: 0, max: 4095 }), (physicalUs, logical) => {
        const stamp = hlcOf(physicalUs, logical)
        expect(hlcPhysicalUs(stamp)).toBe(physicalUs)
        expect(hlcLogical(stamp)).toBe(logical)
      }),
    )
  })

  it('rejects parts outside their fields', () => {
    expect(() => hlcOf(-1, 0)).toThrow(/temporal invariant/)
    expect(() => hlcOf(1.5, 0)).toThrow(/temporal invariant/)
    expect(() => hlcOf(2 ** 52, 0)).toThrow(/temporal invariant/)
    expect(() => hlcOf(0, 4096)).toThrow(/temporal invariant/)
    expect(() => hlcOf(0, -1)).toThrow(/temporal invariant/)
    expect(() => hlcPhysicalUs(-1n)).toThrow(/temporal invariant/)
    expect(() => hlcLogical(HLC_MAX + 1n)).toThrow(/temporal invariant/)
  })

  it('ceiling of T is the last stamp of that µs, and clamps beyond the 52-bit range', () => {
    expect(hlcCeilingOfUs(5)).toBe(5n * 4096n + 4095n)
    expect(hlcCeilingOfUs(5) < hlcOf(6, 0)).toBe(true)
    expect(hlcCeilingOfUs(2 ** 52 - 1)).toBe(HLC_MAX)
    expect(hlcCeilingOfUs(Number.MAX_SAFE_INTEGER)).toBe(HLC_MAX)
    expect(() => hlcCeilingOfUs(-1)).toThrow(/temporal invariant/)
  })

  it('prints ISO with microseconds and the logical part only when non-zero', () => {
    const timeUs = Date.UTC(2026, 10, 21, 10, 0, 0) * 1000 + 123456
    expect(hlcToIso(hlcOf(timeUs, 7))).toBe('2026-11-21T10:00:00.123456Z')
    expect(hlcToString(hlcOf(timeUs, 7))).toBe('2026-11-21T10:00:00.123456Z+7')
    expect(hlcToString(hlcOf(timeUs, 0))).toBe('2026-11-21T10:00:00.123456Z')
    expect(hlcToIso(hlcOf(1, 0))).toBe('1970-01-01T00:00:00.000001Z')
  })
})

describe('HybridClock', () => {
  it('follows the physical clock and ticks logically when it stalls or steps back', () => {
    const physical = manualClock(10)
    const clock = new HybridClock(physical.nowUs)
    expect(clock.peek()).toBe(HLC_MIN)
    expect(clock.now()).toBe(hlcOf(10, 0))
    expect(clock.now()).toBe(hlcOf(10, 1))
    physical.set(3) // backwards jump
    expect(clock.now()).toBe(hlcOf(10, 2))
    physical.set(11)
    expect(clock.now()).toBe(hlcOf(11, 0))
    expect(clock.peek()).toBe(hlcOf(11, 0))
  })

  it('applies the receive rules of Kulkarni et al.', () => {
    const physical = manualClock(10)
    const clock = new HybridClock(physical.nowUs)
    clock.now() // (10, 0)
    expect(clock.observe(hlcOf(20, 5))).toBe(hlcOf(20, 6)) // remote ahead: its logical + 1
    expect(clock.now()).toBe(hlcOf(20, 7))
    expect(clock.observe(hlcOf(20, 3))).toBe(hlcOf(20, 8)) // same physical, local logical larger
    expect(clock.observe(hlcOf(15, 100))).toBe(hlcOf(20, 9)) // remote behind
    physical.set(30)
    expect(clock.observe(hlcOf(25, 9))).toBe(hlcOf(30, 0)) // physical ahead of both
    expect(clock.observe(hlcOf(30, 0))).toBe(hlcOf(30, 1))
  })

  it('carries logical overflow into the physical part instead of wrapping', () => {
    const clock = new HybridClock(() => 1000)
    let stamp: HlcStamp = HLC_MIN
    for (let i = 0; i < 4096; i++) stamp = clock.now()
    expect(stamp).toBe(hlcOf(1000, 4095))
    expect(clock.now()).toBe(hlcOf(1001, 0))
    expect(clock.observe(hlcOf(1002, 4095))).toBe(hlcOf(1003, 0))
  })

  it('refuses to go past the end of the stamp space and rejects bad inputs', () => {
    const clock = new HybridClock(() => 0)
    expect(() => clock.observe(HLC_MAX)).toThrow(/exhausted/)
    expect(() => clock.observe(-1n)).toThrow(/temporal invariant/)
    expect(() => new HybridClock(() => Number.NaN).now()).toThrow(/temporal invariant/)
    expect(() => new HybridClock(() => 1.5).now()).toThrow(/temporal invariant/)
  })

  type Op = { kind: 'tick' | 'send'; node: number; physicalUs: number } | { kind: 'receive'; node: number; physicalUs: number; pick: number }

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constantFrom('tick' as const, 'send' as const), node: fc.nat(2), physicalUs: fc.nat(50) }),
    fc.record({ kind: fc.constant('receive' as const), node: fc.nat(2), physicalUs: fc.nat(50), pick: fc.nat() }),
  )

  it('is strictly monotone per node and respects causality under random schedules', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        // Each node's physical clock is set arbitrarily per event, so it jumps both ways.
        const physicalUs = [0, 0, 0]
        const clocks = physicalUs.map((_, node) => new HybridClock(() => physicalUs[node]!))
        const lastByNode: HlcStamp[] = [HLC_MIN, HLC_MIN, HLC_MIN]
        const inFlight: HlcStamp[] = []
        let maxPhysicalUs = 0
        ops.forEach((op, eventCount) => {
          physicalUs[op.node] = op.physicalUs
          maxPhysicalUs = Math.max(maxPhysicalUs, op.physicalUs)
          const clock = clocks[op.node]!
          let stamp: HlcStamp
          if (op.kind === 'receive' && inFlight.length > 0) {
            const [remote] = inFlight.splice(op.pick % inFlight.length, 1)
            stamp = clock.observe(remote!)
            expect(stamp > remote!).toBe(true)
          } else {
            stamp = clock.now()
            if (op.kind === 'send') inFlight.push(stamp)
          }
          expect(stamp > lastByNode[op.node]!).toBe(true)
          expect(clock.peek()).toBe(stamp)
          expect(hlcPhysicalUs(stamp) >= op.physicalUs).toBe(true)
          // HLC stays close to physical time: it only exceeds the largest physical reading by
          // carries, one per 4096 events.
          expect(hlcPhysicalUs(stamp) <= maxPhysicalUs + Math.ceil((eventCount + 1) / 4096)).toBe(true)
          lastByNode[op.node] = stamp
        })
      }),
      { numRuns: 300 },
    )
  })

  it('observe(x) > x and > every earlier stamp for arbitrary remote stamps', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 1n << 60n }), fc.nat(1_000_000)), { maxLength: 100 }), (events) => {
        let physicalUs = 0
        const clock = new HybridClock(() => physicalUs)
        let previous = clock.peek()
        for (const [remote, nextPhysicalUs] of events) {
          physicalUs = nextPhysicalUs
          const stamp = clock.observe(remote)
          expect(stamp > remote).toBe(true)
          expect(stamp > previous).toBe(true)
          previous = stamp
        }
      }),
    )
  })
})

describe('wallClockUs', () => {
  it('tracks Date.now in µs, never decreases, and resolves below a millisecond', () => {
    const beforeMs = Date.now()
    const readings: number[] = []
    for (let i = 0; i < 20_000; i++) readings.push(wallClockUs())
    const afterMs = Date.now()
    for (let i = 1; i < readings.length; i++) expect(readings[i]! >= readings[i - 1]!).toBe(true)
    expect(readings.every(Number.isSafeInteger)).toBe(true)
    expect(readings[0]! >= beforeMs * 1000 - 1000).toBe(true)
    expect(readings.at(-1)! <= afterMs * 1000 + 3000).toBe(true)
    expect(readings.some((us) => us % 1000 !== 0)).toBe(true)
  })

  it('drives the default HybridClock', () => {
    const clock = new HybridClock()
    const stamp = clock.now()
    expect(Math.abs(hlcPhysicalUs(stamp) - Date.now() * 1000)).toBeLessThan(50_000)
  })
})
