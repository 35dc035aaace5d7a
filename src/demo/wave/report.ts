// The experiment's printed table and its JSON form (pure functions of a WaveResult).

import type { MethodStats } from './analysis.js'
import type { WaveResult } from './experiment.js'
import { TILE_SIDE } from './model.js'
import { METHOD_LABELS } from './reader.js'

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n')
}

// null as well as NaN: bench/report.ts renders these from JSON, where NaN became null.
const ms = (value: number | null): string => (value === null || Number.isNaN(value) ? '-' : value.toFixed(value >= 100 ? 0 : 1))
const num = (value: number | null): string => (value === null || Number.isNaN(value) ? '-' : value.toFixed(4))

function methodRow(m: MethodStats): string[] {
  return [
    METHOD_LABELS[m.method],
    `${m.exactFrames}/${m.frames}`,
    num(m.meanAbsError),
    num(m.maxAbsError),
    `${m.tornFrames}/${m.frames}`,
    `${m.mixedFrames}/${m.frames}`,
    ms(m.ageMsMean),
    ms(m.latencyMsP50),
    ms(m.latencyMsP99),
    ms(m.waitMsMean),
    ms(m.waitMsMax),
    String(m.uncommittedReads),
    String(m.missingReads),
  ]
}

/** The per-method table: a header row, then one row per reconstruction. */
export function methodTable(methods: readonly MethodStats[]): string[][] {
  return [
    ['METHOD', 'EXACT', 'MEAN|ERR|', 'MAX|ERR|', 'TORN', 'MIXED', 'AGE_MS', 'LAT@T_P50_MS', 'LAT@T_P99_MS', 'WAIT_MS_MEAN', 'WAIT_MS_MAX', 'UNCOMMITTED', 'FAILED_READS'],
    ...methods.map(methodRow),
  ]
}

/** The header lines, the writers' line and the per-method table. */
export function renderWave(result: WaveResult, where: string): string {
  const o = result.options
  const w = result.writers
  const lines = [
    `wave experiment on ${where}`,
    `${o.tilesX * o.tilesY} tiles (${o.tilesX}×${o.tilesY} tiles of ${TILE_SIDE}×${TILE_SIDE} sensors) at ${o.rateHz} Hz for ${(o.durationMs / 1000).toFixed(1)} s; ` +
      `delivery delay 0..${o.delayMaxMs} ms, writer clock skew within δ = ${o.clockSkewMaxMs} ms; Δ = ${o.sensorLagMaxMs} ms; seed ${o.seed}; ` +
      (o.stamp === 'xattr' ? 'sensor time set by xattr on the open tile, fsync per sample' : 'each sample written through tile@sensor:T'),
    `writers: ${w.offered} samples, ${w.committed} committed (${w.committedPerSecond.toFixed(0)}/s), ${w.refused} refused (late), ${w.failed} failed; ` +
      `fsync returned after the sample instant by p50 ${ms(w.latenessMsP50)} ms, p99 ${ms(w.latenessMsP99)} ms, max ${ms(w.latenessMsMax)} ms; queued behind the tile's previous write p99 ${ms(w.queuedMsP99)} ms; setxattr + write + fsync p50 ${ms(w.commitMsP50)} ms, p99 ${ms(w.commitMsP99)} ms`,
    ...w.errors.map((e) => `  write error: ${e}`),
    `frames at ${result.frameSamples.length} instants T (samples ${result.frameSamples.join(', ')}); from T each reader reads every tile one after another`,
    '',
    table(methodTable(result.methods)),
    '',
    'EXACT: frames equal to the truth at T in every value. TORN: frames that are no cut (no one instant of their time axis',
    'held all the tiles read). MIXED: frames showing samples of more than one instant. AGE: T − the read sample\'s instant.',
    'UNCOMMITTED: tile reads that returned bytes no committed version held (a frame with one is torn).',
    'LAT@T: T until a tile read returned. WAIT: the first open of the frame (a cut waits there until it is stable).',
    `frozen: cut frames read again after the run that differ: platform ${result.changedOnReread.platform}, sensor ${result.changedOnReread.sensor}`,
  ]
  for (const m of result.methods) for (const e of m.errors) lines.push(`  ${METHOD_LABELS[m.method]}: ${e}`)
  return lines.join('\n') + '\n'
}

/** Everything but the reconstructed fields and the PNG bytes. */
export function waveJson(result: WaveResult, pngPath: string | null): Record<string, unknown> {
  return {
    options: result.options,
    dir: result.dir,
    originUs: result.plan.model.originUs,
    periodUs: result.plan.periodUs,
    samples: result.plan.samples,
    frameSamples: result.frameSamples,
    writers: result.writers,
    methods: result.methods,
    changedOnReread: result.changedOnReread,
    frames: result.frames.map(({ field: _field, latenciesMs: _latencies, ...rest }) => rest),
    png: pngPath,
  }
}
