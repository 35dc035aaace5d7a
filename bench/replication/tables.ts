// The replication bench's tables, from its summary (bench/replication/index.ts prints them;
// bench/report.ts writes them into docs/benchmarks.md from bench/out/replication.json).

import type { Section } from '../tables.js'

const MiB = 1024 * 1024

/** Medians over the rounds, by group size (replicas). */
export interface Summary {
  seqWriteMBps: Record<number, number | null>
  seqCpuMsPerMiB: Record<number, number | null>
  seqReadMBps?: Record<number, number | null> // absent in results from before the bench read the file back
  closeP50Ms: Record<number, number | null>
  closeP99Ms: Record<number, number | null>
  smallFilesPerSec: Record<number, number | null>
  messages: Record<number, Array<{ inFlight: number; perSec: number | null; p50Ms: number | null; p99Ms: number | null }>>
}

/** The part of the bench's config the tables name. */
export interface TablesConfig {
  seqBytes: number
  smallFiles: number
  smallFileBytes: number
  messageBytes: number
  repeats: number
}

function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-'
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits)
}
const fmtRatio = (r: number | null) => (r === null || !Number.isFinite(r) ? '-' : r.toFixed(2))
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b)
const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS')

export function replicationSections(s: Summary, config: TablesConfig, provider: string): Section[] {
  const seqRatio = ratio(s.seqWriteMBps[3] ?? null, s.seqWriteMBps[1] ?? null)
  const p50Ratio = ratio(s.closeP50Ms[3] ?? null, s.closeP50Ms[1] ?? null)
  const messages = [['shard', 'in flight', 'records/s', 'p50 (ms)', 'p99 (ms)']]
  for (const r of [3, 1]) for (const m of s.messages[r] ?? []) messages.push([`${r} member${r > 1 ? 's' : ''}`, String(m.inFlight), fmt(m.perSec), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2)])
  return [
    {
      heading: `replication: through a FUSE mount of a local group, members as processes on 127.0.0.1 (provider ${provider}); median of ${config.repeats} interleaved rounds; MB/s = 10^6 B/s`,
      rows: [
        ['workload', 'r=1', 'r=3', 'r=3/r=1', 'target'],
        [`seq write ${config.seqBytes / MiB} MiB, 1 MiB writes, incl. close = durable at every member (MB/s)`, fmt(s.seqWriteMBps[1]), fmt(s.seqWriteMBps[3]), fmtRatio(seqRatio), `r=3/r=1 >= 0.60: ${verdict(seqRatio === null ? null : seqRatio >= 0.6)}`],
        [`  CPU of the members and the mount during it (ms per MiB; 2 cores in all)`, fmt(s.seqCpuMsPerMiB[1], 1), fmt(s.seqCpuMsPerMiB[3], 1), fmtRatio(ratio(s.seqCpuMsPerMiB[3] ?? null, s.seqCpuMsPerMiB[1] ?? null)), ''],
        [`seq read of it, 1 MiB reads, opened afresh (MB/s)`, fmt(s.seqReadMBps?.[1]), fmt(s.seqReadMBps?.[3]), fmtRatio(ratio(s.seqReadMBps?.[3] ?? null, s.seqReadMBps?.[1] ?? null)), ''],
        [`close latency p50: create + write ${config.smallFileBytes / 1024} KiB + close (ms)`, fmt(s.closeP50Ms[1], 2), fmt(s.closeP50Ms[3], 2), fmtRatio(p50Ratio), `r=3/r=1 <= 3.00: ${verdict(p50Ratio === null ? null : p50Ratio <= 3)}`],
        [`close latency p99 (ms)`, fmt(s.closeP99Ms[1], 2), fmt(s.closeP99Ms[3], 2), fmtRatio(ratio(s.closeP99Ms[3] ?? null, s.closeP99Ms[1] ?? null)), ''],
        [`small files: ${config.smallFiles} x ${config.smallFileBytes / 1024} KiB create+write+close (files/s)`, fmt(s.smallFilesPerSec[1]), fmt(s.smallFilesPerSec[3]), fmtRatio(ratio(s.smallFilesPerSec[3] ?? null, s.smallFilesPerSec[1] ?? null)), ''],
      ],
      after: [],
    },
    {
      heading: `replication: ordered ${config.messageBytes} B records (RemoteClient submit of a setxattr; returns when ordered, applied and durable at every member)`,
      rows: messages,
      after: [],
    },
  ]
}
