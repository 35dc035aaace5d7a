// What the benches' PNG charts share: paper, ink, grid lines and the text size.

import type { Rgb } from '../src/demo/wave/png.js'

export const WHITE: Rgb = [255, 255, 255]
export const INK: Rgb = [30, 30, 30]
export const GRID: Rgb = [225, 225, 225]
export const SCALE = 2 // font pixel size
