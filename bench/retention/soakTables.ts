// The retention soak's results as rows (bench/tables.ts): printed by the soak, written into
// docs/benchmarks.md by bench/report.ts.

import { parseDurationMs } from '../../src/temporal/duration.js'
import type { Section } from '../tables.js'

/** One sample of the GC mount during the soak. */
export interface SoakSample {
  readonly tSec: number
  readonly diskBytes: number // allocated blocks under its data dir
  readonly liveBytes: number // the files' sizes, through the mount
  readonly retainedBoundBytes: number // bytes written to it during the last keepAllFor: retention keeps them
  readonly supersededBytes: number // bytes of versions superseded during the last keepAllFor (rewritten files' old content): what retention must keep beyond the live data
  readonly writtenBytes: number // written to it so far
  readonly writeMBps: number // since the sample before (0 while the baseline phase runs)
  readonly floor: string | null // user.fffs.history_floor
  readonly floorAgeSec: number | null
  readonly sinceFloorBytes: number | null // bytes written to it since its floor: what the floor, lagging keepAllFor, lets it keep
}

export interface SoakPhase {
  readonly target: 'gc' | 'baseline'
  readonly index: number // the GC phase it is paired with
  readonly bytes: number
  readonly mbPerS: number // sampling time excluded
  readonly pastKeepAllFor: boolean // began once keepAllFor had passed since the start: retention had versions to drop
}

/** What a soak run records (bench/out/retention-soak.json). */
export interface SoakBenchJson {
  readonly header: string
  readonly totalGb: number // --total-gb: the GC mount's stream stops past it
  readonly files: number
  readonly rewriteBytes: number
  readonly appendBytes: number
  readonly rewriteOneIn: number
  readonly keepAllFor: string
  readonly gcBudgetMiBs: number
  readonly phaseBytes: number
  readonly baselineEvery: number
  readonly dataDir: string
  readonly baselineDiskBytes: number
  readonly samples: readonly SoakSample[]
  readonly phases: readonly SoakPhase[]
}

export const DISK_RATIO_TARGET = 1.5
const THROUGHPUT_RATIO_TARGET = 0.7
const ROWS_SHOWN = 12

/** Disk use over (live + retained history); null while nothing is written. */
const diskRatio = (s: SoakSample): number | null => (s.liveBytes + s.retainedBoundBytes > 0 ? s.diskBytes / (s.liveBytes + s.retainedBoundBytes) : null)

/** Disk use over (live + written since the floor): the segment GC's own lag, with the floor's taken out. */
const sinceFloorRatio = (s: SoakSample): number | null => (s.sinceFloorBytes === null ? null : s.diskBytes / (s.liveBytes + s.sinceFloorBytes))

/** Disk use over (live + superseded during the last keepAllFor): the stricter measure, since bytes appended in the window are both live and written. */
const strictDiskRatio = (s: SoakSample): number | null => (s.liveBytes + s.supersededBytes > 0 ? s.diskBytes / (s.liveBytes + s.supersededBytes) : null)

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)]!
}

/** Each baseline phase with the GC phase it was written next to. */
function soakPairs(j: SoakBenchJson): { index: number; gc: SoakPhase; baseline: SoakPhase; ratio: number }[] {
  return j.phases
    .filter((p) => p.target === 'baseline')
    .map((baseline) => {
      const gc = j.phases.find((p) => p.target === 'gc' && p.index === baseline.index)!
      return { index: baseline.index, gc, baseline, ratio: gc.mbPerS / baseline.mbPerS }
    })
}

export function soakSections(j: SoakBenchJson): Section[] {
  const gb = (n: number): string => (n / 1e9).toFixed(2)
  const maxOf = (ratio: (s: SoakSample) => number | null): number => Math.max(...j.samples.map(ratio).filter((r): r is number => r !== null))
  const maxRatio = maxOf(diskRatio)
  const last = j.samples.at(-1)!
  const finalRatio = diskRatio(last) ?? Number.NaN
  // Once a keepAllFor has passed, retention drops what the window no longer holds: the steady state.
  const keepAllForSec = (parseDurationMs(j.keepAllFor) ?? 0) / 1000
  const steady = j.samples.filter((s) => s.tSec >= keepAllForSec)
  const medianRatio = median(steady.map(diskRatio).filter((r): r is number => r !== null))
  const step = Math.max(1, Math.floor(j.samples.length / ROWS_SHOWN))
  const shown = j.samples.filter((_, i) => i % step === 0 || i === j.samples.length - 1)
  const pairs = soakPairs(j)
  const active = pairs.filter((p) => p.gc.pastKeepAllFor && p.baseline.pastKeepAllFor)
  const activeRatio = median(active.map((p) => p.ratio))
  const sum = (target: 'gc' | 'baseline', key: 'bytes' | 'seconds'): number =>
    j.phases.filter((p) => p.target === target).reduce((s, p) => s + (key === 'bytes' ? p.bytes : p.bytes / 1e6 / p.mbPerS), 0)
  const aggregate = (target: 'gc' | 'baseline'): number => sum(target, 'bytes') / 1e6 / sum(target, 'seconds')
  const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS')
  return [
    {
      heading: `soak: ${j.files} files, one op in ${j.rewriteOneIn} a whole-file rewrite (${j.rewriteBytes / 1024 / 1024} MiB), the others appends (${j.appendBytes / 1024 / 1024} MiB); ${gb(last.writtenBytes)} GB written to an embedded mount with --keep-all-for ${j.keepAllFor} --force-retention --gc-budget ${j.gcBudgetMiBs}, data dir on ${j.dataDir}`,
      rows: [
        ['t s', 'written GB', 'disk GB', 'live GB', 'retained bound GB', 'superseded GB', 'disk / (live + retained)', 'disk / (live + superseded)', 'floor age s', 'MB/s'],
        ...shown.map((s) => {
          const r = diskRatio(s)
          const strict = strictDiskRatio(s)
          return [s.tSec.toFixed(0), gb(s.writtenBytes), gb(s.diskBytes), gb(s.liveBytes), gb(s.retainedBoundBytes), gb(s.supersededBytes), r === null ? '-' : r.toFixed(2), strict === null ? '-' : strict.toFixed(2), s.floorAgeSec === null ? '-' : s.floorAgeSec.toFixed(0), s.writeMBps.toFixed(0)]
        }),
      ],
      after: [
        `disk: allocated blocks under the data dir; live: file sizes through the mount; retained bound: bytes written during the last keepAllFor; superseded: old content of the files rewritten during the last keepAllFor; ${j.samples.length} samples, ${shown.length} shown`,
        `disk / (live + retained): max ${maxRatio.toFixed(2)}, median ${medianRatio.toFixed(2)} (${steady.length} samples past the first keepAllFor), final ${finalRatio.toFixed(2)}, target <= ${DISK_RATIO_TARGET.toFixed(1)}: ${verdict(maxRatio <= DISK_RATIO_TARGET)}`,
        `disk / (live + superseded), the stricter measure: max ${maxOf(strictDiskRatio).toFixed(2)}, final ${(strictDiskRatio(last) ?? Number.NaN).toFixed(2)}`,
        `disk / (live + written since the floor), the floor's lag behind keepAllFor taken out (what is left is segment collection's): max ${maxOf(sinceFloorRatio).toFixed(2)}, final ${(sinceFloorRatio(last) ?? Number.NaN).toFixed(2)}; floor age max ${Math.max(...j.samples.map((s) => s.floorAgeSec ?? 0)).toFixed(0)} s against keepAllFor ${j.keepAllFor}`,
        `the baseline mount (every version kept) held ${gb(j.baselineDiskBytes)} GB on disk for ${gb(sum('baseline', 'bytes'))} GB written`,
      ],
    },
    {
      heading: `write throughput with GC running / without: every ${j.baselineEvery}th phase of ${j.phaseBytes / 1024 / 1024} MiB also written to a mount keeping every version, before or after the GC phase in turn`,
      rows: [
        ['phase', 'GC mount MB/s', 'baseline MB/s', 'GC/baseline', 'past keepAllFor'],
        ...pairs.map((p) => [String(p.index + 1), p.gc.mbPerS.toFixed(1), p.baseline.mbPerS.toFixed(1), p.ratio.toFixed(2), p.gc.pastKeepAllFor && p.baseline.pastKeepAllFor ? 'yes' : 'no']),
      ],
      after: [
        `median GC/baseline over the pairs begun past the first keepAllFor (retention dropping): ${activeRatio.toFixed(2)} (${active.length} pairs), over all pairs: ${median(pairs.map((p) => p.ratio)).toFixed(2)}; target >= ${THROUGHPUT_RATIO_TARGET.toFixed(2)}: ${verdict(activeRatio >= THROUGHPUT_RATIO_TARGET)}`,
        `every phase: GC mount ${aggregate('gc').toFixed(1)} MB/s, baseline ${aggregate('baseline').toFixed(1)} MB/s`,
      ],
    },
  ]
}
