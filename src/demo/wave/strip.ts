// The PNG strip: for a few frame instants (rows), the truth and the three reconstructions
// side by side (columns), each panel captioned with its error and whether it is torn.

import { Canvas, type Rgb } from './png.js'
import { fieldHeight, fieldWidth, type WaveModel } from './model.js'

export interface StripPanel {
  readonly caption: string
  readonly field: Float32Array // NaN: not read
}

export interface StripRow {
  readonly label: string
  readonly panels: readonly StripPanel[]
}

const BACKGROUND: Rgb = [255, 255, 255]
const INK: Rgb = [20, 20, 20]
const MISSING: Rgb = [255, 0, 255]
const PANEL_TARGET_PX = 240
const GAP_PX = 12
const TEXT_SCALE = 2
const LINE_PX = 7 * TEXT_SCALE

/** Diverging colour map, -1 blue, 0 near white, +1 red (coolwarm's end points). */
function colour(value: number): Rgb {
  if (Number.isNaN(value)) return MISSING
  const t = Math.min(1, Math.max(0, (value + 1) / 2))
  const cold: Rgb = [59, 76, 192]
  const mid: Rgb = [236, 236, 236]
  const warm: Rgb = [180, 4, 38]
  const [a, b, u] = t < 0.5 ? [cold, mid, t * 2] : [mid, warm, (t - 0.5) * 2]
  return [Math.round(a[0] + (b[0] - a[0]) * u), Math.round(a[1] + (b[1] - a[1]) * u), Math.round(a[2] + (b[2] - a[2]) * u)]
}

export function renderStrip(model: WaveModel, titles: readonly string[], rows: readonly StripRow[]): Buffer {
  const width = fieldWidth(model)
  const height = fieldHeight(model)
  const scale = Math.max(1, Math.floor(PANEL_TARGET_PX / Math.max(width, height)))
  const panelW = width * scale
  const panelH = height * scale
  const columns = titles.length
  const rowH = LINE_PX + panelH + LINE_PX + GAP_PX
  const canvas = new Canvas(GAP_PX + columns * (panelW + GAP_PX), GAP_PX + LINE_PX + rows.length * rowH, BACKGROUND)
  titles.forEach((title, c) => canvas.text(GAP_PX + c * (panelW + GAP_PX), GAP_PX, title, TEXT_SCALE, INK))
  rows.forEach((row, r) => {
    const top = GAP_PX + LINE_PX + r * rowH
    canvas.text(GAP_PX, top + 2, row.label, TEXT_SCALE, INK)
    row.panels.forEach((panel, c) => {
      const left = GAP_PX + c * (panelW + GAP_PX)
      const panelTop = top + LINE_PX + 2
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) canvas.fill(left + x * scale, panelTop + y * scale, scale, scale, colour(panel.field[y * width + x]!))
      canvas.text(left, panelTop + panelH + 3, panel.caption, TEXT_SCALE, INK)
    })
  })
  return canvas.png()
}
