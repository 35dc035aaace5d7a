// The retention bench's results as rows (bench/tables.ts): printed by the bench, written into
// docs/benchmarks.md by bench/report.ts.

import type { Section } from '../tables.js'

export interface RetentionRound {
  readonly target: 'gc' | 'baseline'
  readonly mbPerS: number
  readonly usedMiBAfter: number // the target's data volume, df used after the round
}

/** What a run of this bench records (bench/out/retention.json). */
export interface RetentionBenchJson {
  readonly header: string
  readonly files: number
  readonly fileBytes: number
  readonly roundBytes: number
  readonly keepAllFor: string
  readonly gcBudgetMiBs: number
  readonly volumeMiB: number
  readonly rounds: readonly RetentionRound[]
  readonly freed: { readonly liveMiB: number; readonly usedBeforeMiB: number; readonly usedAfterRmMiB: number; readonly usedAfterGcMiB: number; readonly gcLine: string }
}

const RATIO_TARGET = 0.7

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

export function retentionSections(j: RetentionBenchJson): Section[] {
  const gc = j.rounds.filter((r) => r.target === 'gc')
  const base = j.rounds.filter((r) => r.target === 'baseline')
  const ratios = gc.map((r, i) => r.mbPerS / base[i]!.mbPerS)
  const ratio = median(ratios)
  const mib = (n: number): string => n.toFixed(0)
  return [
    {
      heading: `sensor stream: ${j.files} files rewritten whole (${j.fileBytes / 1024 / 1024} MiB each), ${j.roundBytes / 1024 / 1024} MiB per round, two embedded mounts side by side, rounds interleaved`,
      rows: [
        ['round', 'GC mount MB/s', 'baseline MB/s', 'GC/baseline', 'GC volume used MiB', 'baseline volume used MiB'],
        ...gc.map((r, i) => [String(i + 1), r.mbPerS.toFixed(1), base[i]!.mbPerS.toFixed(1), ratios[i]!.toFixed(2), mib(r.usedMiBAfter), mib(base[i]!.usedMiBAfter)]),
      ],
      after: [
        `GC mount: --keep-all-for ${j.keepAllFor} --force-retention --gc-budget ${j.gcBudgetMiBs} (background retention and segment GC); baseline: every version kept. Each on a ${j.volumeMiB} MiB tmpfs of its own.`,
        `write throughput with GC running / without, median of rounds: ${ratio.toFixed(2)}, target >= ${RATIO_TARGET.toFixed(2)}: ${ratio >= RATIO_TARGET ? 'PASS' : 'MISS'}`,
      ],
    },
    {
      heading: 'space back from rm + fffs gc (the GC mount, df of its volume)',
      rows: [
        ['state', 'used MiB'],
        ['after the stream (live data ' + mib(j.freed.liveMiB) + ' MiB)', mib(j.freed.usedBeforeMiB)],
        ['after rm of every file', mib(j.freed.usedAfterRmMiB)],
        ['after keepAllFor passed and fffs gc (background runs go on meanwhile)', mib(j.freed.usedAfterGcMiB)],
      ],
      after: [`freed by rm + gc: ${mib(j.freed.usedBeforeMiB - j.freed.usedAfterGcMiB)} MiB`, `fffs gc: ${j.freed.gcLine}`],
    },
  ]
}
