// The recovery bench's tables, from its results (bench/recovery/index.ts prints them;
// bench/report.ts writes them into docs/benchmarks.md from bench/out/recovery.json).

import type { Section } from '../tables.js'

const MiB = 1024 * 1024

/** One group size's measurements (times in ms, from the restart to the member's "running in view" line). */
export interface SizeResult {
  sizeBytes: number
  heldBytes: number // in one member's data directory, after the fill
  versions: number
  a0: { runningMs: number; transferBytes: number; gapKillMs: number; gapRejoinMs: number } | null // restarted at once
  a1: { runningMs: number; transferBytes: number; transferSeconds: number; rateMBps: number; boundMs: number; gapKillMs: number; gapRejoinMs: number } | null
  b: { runningMs: number; firstWriteMs: number } | null
  c: { runningMs: number; transferBytes: number; transferSeconds: number; rateMBps: number; progressLines: number; sampleLine: string } | null
  writerFailures: number
}

/** The part of the bench's config and run the tables name. */
export interface TablesConfig {
  missedBytes: number
  disk: { writeMBps: number; readMBps: number }
  suspectTimeoutMs: number
}

const s = (ms: number | null | undefined): string => (typeof ms === 'number' && Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '-')
const gb = (bytes: number | undefined): string => (bytes === undefined ? '-' : (bytes / 1e9).toFixed(2))
const mbps = (rate: number | undefined): string => (rate === undefined || !Number.isFinite(rate) ? '-' : rate.toFixed(0))
const size = (r: SizeResult): string => `${(r.sizeBytes / MiB).toFixed(0)} MiB`
const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS')
const ratio = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined || b <= 0 ? null : a / b)

export function recoverySections(results: readonly SizeResult[], config: TablesConfig): Section[] {
  const diskMBps = Math.min(config.disk.writeMBps, config.disk.readMBps)
  const first = results[0]
  const last = results[results.length - 1]
  const figures: string[] = []
  if (first !== undefined && last !== undefined && first !== last) {
    const ra = ratio(last.a0?.runningMs, first.a0?.runningMs)
    const rb = ratio(last.b?.runningMs, first.b?.runningMs)
    figures.push(
      `time at ${size(last)} / time at ${size(first)}: (a) ${ra?.toFixed(2) ?? '-'} (target <= 1.5: ${verdict(ra === null ? null : ra <= 1.5)}), (b) ${rb?.toFixed(2) ?? '-'} (target <= 1.5: ${verdict(rb === null ? null : rb <= 1.5)}); (b) at ${size(last)} within 15 s: ${verdict(last.b === null ? null : last.b.runningMs <= 15_000)}`,
    )
  }
  return [
    {
      heading: 'recovery: time to running (s) by data held; a 3-member group of processes, filled through a mount',
      rows: [
        ['held', 'held per member (GB)', 'versions', '(a) member killed, restarted at once', '(b) every member killed, restarted (cold)', '(b) first write through the mount'],
        ...results.map((r) => [size(r), gb(r.heldBytes), String(r.versions), s(r.a0?.runningMs), s(r.b?.runningMs), s(r.b?.firstWriteMs)]),
      ],
      after: figures,
    },
    {
      heading: `recovery: (a) a member killed while a writer streams, restarted after missing ${(config.missedBytes / MiB).toFixed(0)} MiB`,
      rows: [
        ['held', 'running (s)', 'transferred (GB)', 'transfer rate (MB/s)', 'bound: 10 s + missed at half the disk rate (s)', 'within'],
        ...results.map((r) => [size(r), s(r.a1?.runningMs), gb(r.a1?.transferBytes), mbps(r.a1?.rateMBps), s(r.a1?.boundMs), verdict(r.a1 === null ? null : r.a1.runningMs <= r.a1.boundMs)]),
      ],
      after: [`disk (dd, O_DIRECT, 1 GiB in the bench's temp dir): write ${mbps(config.disk.writeMBps)} MB/s, read ${mbps(config.disk.readMBps)} MB/s`],
    },
    {
      heading: 'recovery: (c) a member whose data was wiped rejoins by full transfer',
      rows: [
        ['held', 'running (s)', 'transferred (GB)', 'transfer rate (MB/s)', 'rate / disk rate', 'progress lines logged'],
        ...results.map((r) => [size(r), s(r.c?.runningMs), gb(r.c?.transferBytes), mbps(r.c?.rateMBps), r.c === null || !(diskMBps > 0) ? '-' : (r.c.rateMBps / diskMBps).toFixed(2), r.c === null ? '-' : String(r.c.progressLines)]),
      ],
      after: results.flatMap((r) => (r.c?.sampleLine ? [`first progress line at ${size(r)}: ${r.c.sampleLine}`] : [])),
    },
    {
      heading: `recovery: (a) longest gap between acknowledged closes of a writer (1 KiB files in a loop), s; failure detection = suspect timeout ${config.suspectTimeoutMs / 1000} s`,
      rows: [
        ['held', 'kill (none missed)', 'rejoin (none missed)', 'kill (missed)', 'rejoin (missed)', 'failed closes'],
        ...results.map((r) => [size(r), s(r.a0?.gapKillMs), s(r.a0?.gapRejoinMs), s(r.a1?.gapKillMs), s(r.a1?.gapRejoinMs), String(r.writerFailures)]),
      ],
      after: [],
    },
  ]
}
