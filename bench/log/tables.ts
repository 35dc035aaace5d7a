// The log bench's results as rows (bench/tables.ts): printed by the bench, written into
// docs/benchmarks.md by bench/report.ts.

import type { Section } from '../tables.js'

/** What a run of this bench records (bench/out/log.json). */
export interface LogBenchJson {
  readonly header: string
  readonly versions: number
  readonly createPerS: number
  readonly queries: ReadonlyArray<{ readonly name: string; readonly rows: number; readonly medianMs: number; readonly samplesMs: readonly number[] }>
  readonly cliMedianMs: number
  readonly nodeMedianMs: number
  readonly rounds: number
  readonly cliRounds: number
}

const FIRST_PAGE_TARGET_MS = 100

/** The run as rows: printed by the bench, written into docs/benchmarks.md by bench/report.ts. */
export function logSections(j: LogBenchJson): Section[] {
  const baseline = j.queries[0]!.medianMs
  const newest = j.queries.find((q) => q.name.includes('newest first'))
  return [
    {
      heading: `fffs log of one file with ${j.versions} versions (control request to the mount, median of ${j.rounds} interleaved rounds)`,
      rows: [['query', 'rows', 'ms', 'x whole history'], ...j.queries.map((q) => [q.name, String(q.rows), q.medianMs.toFixed(1), (q.medianMs / baseline).toFixed(4)])],
      after: [newest === undefined ? '' : `first page (newest first) ${newest.medianMs.toFixed(1)} ms, target <= ${FIRST_PAGE_TARGET_MS} ms: ${newest.medianMs <= FIRST_PAGE_TARGET_MS ? 'PASS' : 'MISS'}`, `${j.versions} versions made at ${j.createPerS.toFixed(0)}/s`],
    },
    {
      heading: `CLI wall time (median of ${j.cliRounds}, interleaved)`,
      rows: [['command', 'ms', 'x node -e 0'], ['fffs log --limit 20 FILE', j.cliMedianMs.toFixed(1), (j.cliMedianMs / j.nodeMedianMs).toFixed(2)], ['node -e 0', j.nodeMedianMs.toFixed(1), '1.00']],
      after: [],
    },
  ]
}
