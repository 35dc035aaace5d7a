// The metadata bench's bar chart: one group of horizontal bars per row, one bar per target
// (the median over the rounds), on a log scale because the rows span 1 to 10^6 per second.
// Drawn with the wave experiment's canvas and PNG encoder (no dependency).

import { Canvas, TEXT_HEIGHT_UNITS, textWidth, type Rgb } from '../../src/demo/wave/png.js'
import { GRID, INK, SCALE, WHITE } from '../chartStyle.js'
import { fmtRate, median, roundRates, rowDefs, type MetadataJson } from './tables.js'

const PALETTE: readonly Rgb[] = [
  [120, 120, 120], // ext4
  [66, 133, 244], // fffs embedded
  [15, 157, 88], // fffs r=3 (and further variants)
  [244, 160, 0],
  [171, 71, 188],
  [219, 68, 55], // GlusterFS: kept last
]
const BAR_PX = 9
const GROUP_GAP_PX = 10
const LABEL_PX = 180
const PLOT_PX = 700
const VALUE_PX = 60
const TICKS = ['1', '10', '100', '1K', '10K', '100K', '1M', '10M'] // 10^0 .. 10^7 per second
const DECADES = TICKS.length - 1

function colorOf(key: string, index: number): Rgb {
  return key === 'gluster' ? PALETTE[PALETTE.length - 1]! : PALETTE[Math.min(index, PALETTE.length - 2)]!
}

export function metadataChart(json: MetadataJson): Buffer {
  const rows = rowDefs(json.config)
  const targets = json.targets
  const line = TEXT_HEIGHT_UNITS * SCALE + 6
  const legendPx = line * 2
  const groupPx = targets.length * BAR_PX + GROUP_GAP_PX
  const top = legendPx + line
  const width = LABEL_PX + PLOT_PX + VALUE_PX
  const height = top + rows.length * groupPx + line * 2
  const canvas = new Canvas(width, height, WHITE)
  const xOf = (perSecond: number) => LABEL_PX + Math.round((Math.max(0, Math.log10(Math.max(1, perSecond))) / DECADES) * PLOT_PX)

  let legendX = 4
  targets.forEach((t, i) => {
    canvas.fill(legendX, 4, 12, 10, colorOf(t.key, i))
    canvas.text(legendX + 16, 4, t.label, SCALE, INK)
    legendX += 16 + textWidth(t.label, SCALE) + 20
  })
  canvas.text(4, 4 + line, 'PER SECOND - LOG SCALE - MEDIAN OF ROUNDS (OF TWO: THE LOWER)', SCALE, INK)
  for (let decade = 0; decade <= DECADES; decade++) {
    const x = LABEL_PX + Math.round((decade / DECADES) * PLOT_PX)
    canvas.fill(x, top - 4, 1, rows.length * groupPx + 4, GRID)
    const tick = TICKS[decade]!
    canvas.text(x - textWidth(tick, SCALE) / 2, top + rows.length * groupPx + 4, tick, SCALE, INK)
  }
  rows.forEach((row, r) => {
    const y0 = top + r * groupPx
    canvas.text(4, y0 + (targets.length * BAR_PX - TEXT_HEIGHT_UNITS * SCALE) / 2, row.short, SCALE, INK)
    targets.forEach((t, i) => {
      const value = median(roundRates(json, t.key, row.key))
      const y = y0 + i * BAR_PX
      if (value === null) {
        if (!row.pastCut || t.pastCuts) canvas.text(LABEL_PX + 3, y + 1, 'NO RESULT (SEE ERRORS)', 1, colorOf(t.key, i))
        return
      }
      canvas.fill(LABEL_PX, y, xOf(value) - LABEL_PX, BAR_PX - 1, colorOf(t.key, i))
      canvas.text(xOf(value) + 3, y + 1, fmtRate(value), 1, INK)
    })
  })
  return canvas.png()
}
