// The version a cut sees: the last version stamped at or before it, found by a binary search
// that remembers the stamps it read. Checked against a linear scan while the node gains versions
// between searches, and for how many V-index reads a repeated search still makes.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { VersionSearch } from '../../src/store/versionSearch.js'

/** Stamps of versions 1..n: increasing, with gaps, from sorted distinct deltas. */
function stampsOf(deltas: readonly number[]): bigint[] {
  let stamp = 0n
  return deltas.map((delta) => (stamp += BigInt(delta)))
}

function linear(stamps: readonly bigint[], newest: number, cut: bigint): bigint | null {
  let found: bigint | null = null
  for (let version = 1; version <= newest && stamps[version - 1]! <= cut; version++) found = stamps[version - 1]!
  return found
}

describe('VersionSearch', () => {
  it('agrees with a linear scan at, between and around every stamp, as versions are added', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 300 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }), (deltas, newestCounts) => {
        const stamps = stampsOf(deltas)
        const search = new VersionSearch()
        const stampOf = (version: number): bigint => {
          const stamp = stamps[version - 1]
          if (stamp === undefined) throw new Error(`read past the newest version: ${version}`)
          return stamp
        }
        // The node grows between searches: remembered probes must stay right.
        for (const newest of [...newestCounts].map((n) => Math.min(n, stamps.length)).sort((a, b) => a - b)) {
          for (const stamp of [0n, ...stamps.slice(0, newest)]) {
            for (const cut of [stamp - 1n, stamp, stamp + 1n]) expect(search.latestAtOrBefore(7, newest, cut, stampOf)).toBe(linear(stamps, newest, cut))
          }
        }
      }),
      { numRuns: 200 },
    )
  })

  it('remembers what it read: a repeated search reads nothing, a nearby one only the probes it has not seen', () => {
    const newest = 100_000
    const stamps = stampsOf(Array.from({ length: newest }, (_, i) => 1 + (i % 7)))
    const search = new VersionSearch()
    let reads = 0
    const stampOf = (version: number): bigint => {
      reads++
      return stamps[version - 1]!
    }
    const cut = stamps[61_234]!
    expect(search.latestAtOrBefore(1, newest, cut, stampOf)).toBe(cut)
    expect(reads).toBe(17) // log2(100k), rounded up
    reads = 0
    expect(search.latestAtOrBefore(1, newest, cut + 1n, stampOf)).toBe(cut)
    expect(reads).toBe(0)
    expect(search.latestAtOrBefore(1, newest, stamps[61_230]!, stampOf)).toBe(stamps[61_230]!)
    expect(reads).toBeGreaterThan(0)
    expect(reads).toBeLessThan(17) // the upper levels are shared
    reads = 0
    expect(search.latestAtOrBefore(1, newest + 1, cut, stampOf)).toBe(cut) // one more version: same probes below it
    expect(reads).toBe(0)
    expect(search.latestAtOrBefore(2, newest, cut, stampOf)).toBe(cut) // another node remembers nothing yet
    expect(reads).toBe(17)
  })

  it('forgets the least recently searched node past its memory bound, and searches a node too large to remember all the same', () => {
    const search = new VersionSearch(64) // 8 stamps
    const stamps = stampsOf(Array.from({ length: 100 }, () => 5))
    let reads = 0
    const stampOf = (version: number): bigint => {
      reads++
      return stamps[version - 1]!
    }
    const searchAndCount = (ino: number, newest: number): number => {
      reads = 0
      expect(search.latestAtOrBefore(ino, newest, stamps[newest - 1]!, stampOf)).toBe(stamps[newest - 1]!)
      return reads
    }
    expect([searchAndCount(1, 3), searchAndCount(1, 3)]).toEqual([2, 0]) // 3 versions: a 4-stamp array
    expect([searchAndCount(2, 3), searchAndCount(1, 3)]).toEqual([2, 0]) // two fit
    expect([searchAndCount(3, 3), searchAndCount(1, 3), searchAndCount(2, 3)]).toEqual([2, 0, 2]) // 3 pushed out 2, searched least recently
    expect([searchAndCount(4, 100), searchAndCount(4, 100)]).toEqual([3, 3]) // 100 versions never fit 8 stamps: probes 64, 96, 100 each time
  })

  it('finds nothing before version 1 and nothing in a node without versions', () => {
    const search = new VersionSearch()
    const stampOf = (): bigint => 10n
    expect(search.latestAtOrBefore(1, 1, 9n, stampOf)).toBeNull()
    expect(search.latestAtOrBefore(1, 1, 10n, stampOf)).toBe(10n)
    expect(search.latestAtOrBefore(1, 0, 10n, stampOf)).toBeNull()
  })
})
