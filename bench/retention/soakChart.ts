// The retention soak's plot over time: disk use against live + retained history (and the 1.5x
// line), the write rate, and the history floor's age, as three panels sharing the time axis.
// Drawn with the wave experiment's canvas and PNG encoder (no dependency).

import { Canvas, TEXT_HEIGHT_UNITS, textWidth, type Rgb } from '../../src/demo/wave/png.js'
import { GRID, INK, SCALE, WHITE } from '../chartStyle.js'
import { DISK_RATIO_TARGET, type SoakBenchJson } from './soakTables.js'

const DISK: Rgb = [66, 133, 244]
const BOUND: Rgb = [15, 157, 88]
const LIMIT: Rgb = [219, 68, 55]
const LIVE: Rgb = [120, 120, 120]
const SUPERSEDED: Rgb = [0, 172, 193]
const RATE: Rgb = [244, 160, 0]
const FLOOR: Rgb = [171, 71, 188]
const LEFT_PX = 70
const PLOT_PX = 820
const RIGHT_PX = 20
const PANEL_PX = 170
const GAP_PX = 40

interface Series {
  readonly label: string
  readonly color: Rgb
  readonly values: readonly (number | null)[] // one per sample; null: no point
}

/** Joins consecutive points with 2-pixel strokes, one column at a time. */
function polyline(canvas: Canvas, points: readonly (readonly [number, number] | null)[], color: Rgb): void {
  let prev: readonly [number, number] | null = null
  for (const p of points) {
    if (p !== null && prev !== null) {
      for (let x = prev[0]; x <= p[0]; x++) {
        const y = p[0] === prev[0] ? p[1] : prev[1] + ((p[1] - prev[1]) * (x - prev[0])) / (p[0] - prev[0])
        const yBefore = x === prev[0] ? prev[1] : prev[1] + ((p[1] - prev[1]) * (x - 1 - prev[0])) / (p[0] - prev[0])
        const top = Math.round(Math.min(y, yBefore))
        canvas.fill(x, top - 1, 2, Math.round(Math.max(y, yBefore)) - top + 2, color)
      }
    }
    prev = p
  }
}

export function soakChart(j: SoakBenchJson): Buffer {
  const line = TEXT_HEIGHT_UNITS * SCALE + 6
  const top = line * 2
  const gib = (n: number): number => n / 1024 ** 3
  const panels: { title: string; series: Series[] }[] = [
    {
      title: 'DISK USE (GIB)',
      series: [
        { label: 'DISK', color: DISK, values: j.samples.map((s) => gib(s.diskBytes)) },
        { label: 'LIVE + RETAINED', color: BOUND, values: j.samples.map((s) => gib(s.liveBytes + s.retainedBoundBytes)) },
        { label: `${DISK_RATIO_TARGET}X THAT`, color: LIMIT, values: j.samples.map((s) => gib(s.liveBytes + s.retainedBoundBytes) * DISK_RATIO_TARGET) },
        { label: 'LIVE + SUPERSEDED', color: SUPERSEDED, values: j.samples.map((s) => gib(s.liveBytes + s.supersededBytes)) },
        { label: 'LIVE', color: LIVE, values: j.samples.map((s) => gib(s.liveBytes)) },
      ],
    },
    { title: 'WRITE RATE (MB/S, 0 WHILE THE BASELINE WRITES)', series: [{ label: 'WRITE RATE', color: RATE, values: j.samples.map((s, i) => (i === 0 ? null : s.writeMBps)) }] },
    { title: 'HISTORY FLOOR AGE (S)', series: [{ label: 'NOW - FLOOR', color: FLOOR, values: j.samples.map((s) => s.floorAgeSec) }] },
  ]
  const width = LEFT_PX + PLOT_PX + RIGHT_PX
  const height = top + panels.length * (PANEL_PX + GAP_PX) + line
  const canvas = new Canvas(width, height, WHITE)
  const tMax = Math.max(1, ...j.samples.map((s) => s.tSec))
  const xOf = (t: number): number => LEFT_PX + Math.round((t / tMax) * PLOT_PX)
  canvas.text(4, 4, `RETENTION SOAK: ${(j.samples.at(-1)!.writtenBytes / 1e9).toFixed(1)} GB, KEEPALLFOR ${j.keepAllFor}, TIME IN S`, SCALE, INK)

  panels.forEach((panel, n) => {
    const y0 = top + n * (PANEL_PX + GAP_PX) + line
    const vMax = Math.max(1e-9, ...panel.series.flatMap((s) => s.values.filter((v): v is number => v !== null))) * 1.05
    const yOf = (v: number): number => y0 + PANEL_PX - Math.round((v / vMax) * PANEL_PX)
    canvas.text(4, y0 - line, panel.title, SCALE, INK)
    if (panel.series.length > 1) {
      let legendX = 4 + textWidth(panel.title, SCALE) + 30
      for (const s of panel.series) {
        canvas.fill(legendX, y0 - line, 12, 10, s.color)
        canvas.text(legendX + 16, y0 - line, s.label, SCALE, INK)
        legendX += 16 + textWidth(s.label, SCALE) + 20
      }
    }
    for (let tick = 0; tick <= 4; tick++) {
      const v = (vMax / 1.05) * (tick / 4)
      const y = yOf(v)
      canvas.fill(LEFT_PX, y, PLOT_PX, 1, GRID)
      const label = v >= 100 ? v.toFixed(0) : v.toFixed(1)
      canvas.text(LEFT_PX - 6 - textWidth(label, SCALE), y - SCALE * 2, label, SCALE, INK)
    }
    for (let tick = 0; tick <= 8; tick++) {
      const t = (tMax * tick) / 8
      canvas.fill(xOf(t), y0, 1, PANEL_PX, GRID)
      if (n === panels.length - 1) canvas.text(xOf(t) - textWidth(t.toFixed(0), SCALE) / 2, y0 + PANEL_PX + 6, t.toFixed(0), SCALE, INK)
    }
    for (const s of [...panel.series].reverse()) {
      polyline(
        canvas,
        s.values.map((v, i) => (v === null ? null : ([xOf(j.samples[i]!.tSec), yOf(v)] as const))),
        s.color,
      )
    }
  })
  return canvas.png()
}
