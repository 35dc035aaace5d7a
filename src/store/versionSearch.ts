// Finding a node's version at a past cut: versions are numbered densely from 1 and stamped in
// increasing order, so the version a cut sees is the last whose stamp is at or before it, found
// by a binary search over the V index (version number -> stamp) with synchronous gets, where
// one ordered seek would cost an async iterator's thread-pool round trips.
//
// The search steps down powers of two (probe p + 2^k, k falling), so its probe positions do not
// depend on how many versions there are: searches of a node keep probing the same versions,
// whether or not it gained versions since. Every stamp a search reads is remembered, in a
// per-node array indexed by version; a V entry never changes once written, so nothing
// remembered goes stale, and a node searched often is soon searched without reading the index.

import type { HlcStamp } from '../temporal/hlc.js'
import type { Ino } from './records.js'

/** Memory for remembered stamps, all nodes together; the least recently searched go first. */
const REMEMBERED_BYTES_MAX = 64 * 1024 * 1024
/** No stamp read yet (a real one never is: stamps stay below HLC_MAX). */
const UNKNOWN = 0xffff_ffff_ffff_ffffn

export class VersionSearch {
  private readonly stampsByNode = new Map<Ino, BigUint64Array>()
  private readonly rememberedBytesMax: number
  private rememberedBytes = 0

  constructor(rememberedBytesMax = REMEMBERED_BYTES_MAX) {
    this.rememberedBytesMax = rememberedBytesMax
  }

  /**
   * The stamp of the node's last version, among 1..`newest`, stamped at or before `cut`; null
   * when version 1 is later. `stampOf(version)` reads the V index; it throws on a gap.
   */
  latestAtOrBefore(ino: Ino, newest: number, cut: HlcStamp, stampOf: (version: number) => HlcStamp): HlcStamp | null {
    if (newest < 1) return null
    const remembered = this.remembered(ino, newest)
    let version = 0
    let found: HlcStamp | null = null
    for (let step = highestPowerOfTwoAtMost(newest); step >= 1; step = Math.floor(step / 2)) {
      const probe = version + step
      if (probe > newest) continue
      let stamp = remembered === null ? UNKNOWN : remembered[probe]!
      if (stamp === UNKNOWN) {
        stamp = stampOf(probe)
        if (remembered !== null) remembered[probe] = stamp
      }
      if (stamp <= cut) {
        version = probe
        found = stamp
      }
    }
    return found
  }

  /** The node's array of remembered stamps, grown to hold version `newest` (≥ 1); null if it would not fit at all. */
  private remembered(ino: Ino, newest: number): BigUint64Array | null {
    let stamps = this.stampsByNode.get(ino)
    if (stamps !== undefined) this.stampsByNode.delete(ino) // re-inserted below: most recently searched last
    if (stamps === undefined || stamps.length <= newest) {
      const capacity = highestPowerOfTwoAtMost(newest) * 2 // index 0 unused; room to grow
      if (capacity * 8 > this.rememberedBytesMax) {
        if (stamps !== undefined) this.rememberedBytes -= stamps.byteLength
        return null
      }
      const grown = new BigUint64Array(capacity).fill(UNKNOWN)
      if (stamps !== undefined) {
        grown.set(stamps)
        this.rememberedBytes -= stamps.byteLength
      }
      this.rememberedBytes += grown.byteLength
      stamps = grown
      while (this.rememberedBytes > this.rememberedBytesMax) {
        const [oldestIno, oldest] = this.stampsByNode.entries().next().value!
        this.stampsByNode.delete(oldestIno)
        this.rememberedBytes -= oldest.byteLength
      }
    }
    this.stampsByNode.set(ino, stamps)
    return stamps
  }
}

function highestPowerOfTwoAtMost(n: number): number {
  let power = 1
  while (power * 2 <= n) power *= 2
  return power
}
