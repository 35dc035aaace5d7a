// Finding a node's version at a past cut: versions are numbered densely from 1 and stamped in
// increasing order, so the version a cut sees is the last whose stamp is at or before it, found
// by a binary search over the V index (version number -> stamp) with synchronous gets, where
// one ordered seek would cost an async iterator's thread-pool round trips.
//
// The search steps down powers of two (probe p + 2^k, k falling), so its probe positions do not
// depend on how many versions there are: every search of a node probes the same few versions
// first, whether or not the node gained versions since. Those upper levels are remembered; a V
// entry never changes once written, so nothing remembered goes stale.

import type { HlcStamp } from '../temporal/hlc.js'
import type { Ino } from './records.js'

/** Probes of the first levels are remembered: at most 2^levels - 1 stamps per node. */
const REMEMBERED_LEVELS = 10
/** Nodes whose upper levels are remembered (least recently searched go first): ~50 KiB each at most. */
const REMEMBERED_NODES_MAX = 256

export class VersionSearch {
  private readonly upperLevels = new Map<Ino, Map<number, HlcStamp>>()

  /**
   * The stamp of the node's last version, among 1..`newest`, stamped at or before `cut`; null
   * when version 1 is later. `stampOf(version)` reads the V index; it throws on a gap.
   */
  latestAtOrBefore(ino: Ino, newest: number, cut: HlcStamp, stampOf: (version: number) => HlcStamp): HlcStamp | null {
    const remembered = this.remembered(ino)
    let version = 0
    let found: HlcStamp | null = null
    let level = 0
    for (let step = highestPowerOfTwoAtMost(newest); step >= 1; step = Math.floor(step / 2), level++) {
      const probe = version + step
      if (probe > newest) continue
      let stamp = level < REMEMBERED_LEVELS ? remembered.get(probe) : undefined
      if (stamp === undefined) {
        stamp = stampOf(probe)
        if (level < REMEMBERED_LEVELS) remembered.set(probe, stamp)
      }
      if (stamp <= cut) {
        version = probe
        found = stamp
      }
    }
    return found
  }

  private remembered(ino: Ino): Map<number, HlcStamp> {
    let stamps = this.upperLevels.get(ino)
    if (stamps !== undefined) {
      this.upperLevels.delete(ino) // re-inserted: most recently searched last
    } else {
      stamps = new Map()
      if (this.upperLevels.size >= REMEMBERED_NODES_MAX) this.upperLevels.delete(this.upperLevels.keys().next().value!)
    }
    this.upperLevels.set(ino, stamps)
    return stamps
  }
}

function highestPowerOfTwoAtMost(n: number): number {
  let power = 1
  while (power * 2 <= n) power *= 2
  return n < 1 ? 0 : power
}
