// The wave experiment's ground truth and sampling plan (pure: no I/O, no clocks).
//
// A ripple travels outward from a point beyond one corner of a field of sensor tiles. Each
// tile is TILE_SIDE × TILE_SIDE sensors (10 × 10, as in FFFS) and is one file; every sample
// of a tile is one version of that file, stamped with the sample's sensor (GPS-like) time.
// The value at grid point (x, y) and sensor instant t is a pure function, so the truth at any
// instant can be recomputed exactly and compared bit for bit with what a read returned.

import { Prng } from '../../testing/prng.js'

export const TILE_SIDE = 10
export const TILE_VALUES = TILE_SIDE * TILE_SIDE
const SAMPLE_MAGIC = 0x31564157 // 'WAV1' little-endian
const HEADER_BYTES = 24
export const SAMPLE_BYTES = HEADER_BYTES + TILE_VALUES * 4
/** Sample index of blank content: a tile's initial write and its warm-up writes before the first sample. */
export const BLANK_SAMPLE = 0xffff_ffff

export interface WaveModel {
  readonly tilesX: number
  readonly tilesY: number
  readonly wavelengthPoints: number // crest to crest, in grid points
  readonly frequencyHz: number // crests passing a point per second
  readonly originUs: number // sensor time at which the phase is zero (the run's first sample)
}

export interface SamplingPlan {
  readonly model: WaveModel
  readonly periodUs: number // between a tile's samples (1 / rate)
  readonly samples: number // per tile, k = 0 .. samples - 1 at originUs + k · periodUs
  readonly clockSkewMaxUs: number // δ: a writer's clock is off by at most this
  readonly delayMaxUs: number // deliveries are delayed uniformly in [0, delayMaxUs]
  readonly seed: number
}

/** One delivery: tile `tile` writes sample `sample` when the platform clock reads `issueUs`. */
export interface Delivery {
  readonly tile: number
  readonly sample: number
  readonly sensorUs: number
  readonly issueUs: number
}

export const tileCount = (model: WaveModel): number => model.tilesX * model.tilesY
export const fieldWidth = (model: WaveModel): number => model.tilesX * TILE_SIDE
export const fieldHeight = (model: WaveModel): number => model.tilesY * TILE_SIDE
export const tileName = (tile: number): string => `t${String(tile).padStart(4, '0')}`
export const sampleInstantUs = (plan: SamplingPlan, sample: number): number => plan.model.originUs + sample * plan.periodUs

/** The wave at grid point (x, y) and sensor time `sensorUs`, in [-1, 1], rounded to float32 (what a tile stores). */
export function waveValue(model: WaveModel, x: number, y: number, sensorUs: number): number {
  // The source sits a quarter of the field beyond the (0, 0) corner, so crests cross the field as arcs.
  const sourceX = -fieldWidth(model) / 4
  const sourceY = -fieldHeight(model) / 4
  const distance = Math.hypot(x - sourceX, y - sourceY)
  const seconds = (sensorUs - model.originUs) / 1e6
  return Math.fround(Math.sin(2 * Math.PI * (distance / model.wavelengthPoints - model.frequencyHz * seconds)))
}

/** The tile's TILE_VALUES values at a sensor instant, row-major. */
export function tileTruth(model: WaveModel, tile: number, sensorUs: number): Float32Array {
  const values = new Float32Array(TILE_VALUES)
  const x0 = (tile % model.tilesX) * TILE_SIDE
  const y0 = Math.floor(tile / model.tilesX) * TILE_SIDE
  for (let dy = 0; dy < TILE_SIDE; dy++) for (let dx = 0; dx < TILE_SIDE; dx++) values[dy * TILE_SIDE + dx] = waveValue(model, x0 + dx, y0 + dy, sensorUs)
  return values
}

/** The whole field at a sensor instant, row-major over fieldWidth × fieldHeight. */
export function fieldTruth(model: WaveModel, sensorUs: number): Float32Array {
  const field = new Float32Array(fieldWidth(model) * fieldHeight(model))
  for (let tile = 0; tile < tileCount(model); tile++) placeTile(model, field, tile, tileTruth(model, tile, sensorUs))
  return field
}

/** Copies one tile's values into a field buffer. */
export function placeTile(model: WaveModel, field: Float32Array, tile: number, values: Float32Array): void {
  const width = fieldWidth(model)
  const x0 = (tile % model.tilesX) * TILE_SIDE
  const y0 = Math.floor(tile / model.tilesX) * TILE_SIDE
  for (let dy = 0; dy < TILE_SIDE; dy++) for (let dx = 0; dx < TILE_SIDE; dx++) field[(y0 + dy) * width + x0 + dx] = values[dy * TILE_SIDE + dx]!
}

export interface Sample {
  readonly tile: number
  readonly sample: number // BLANK_SAMPLE for the initial content
  readonly sensorUs: number
  readonly values: Float32Array
}

/** A tile file's bytes: magic, tile, sample index, reserved, sensor µs (f64, exact below 2^53), then float32 values. */
export function encodeSample(sample: Sample): Buffer {
  const bytes = Buffer.alloc(SAMPLE_BYTES)
  bytes.writeUInt32LE(SAMPLE_MAGIC, 0)
  bytes.writeUInt32LE(sample.tile, 4)
  bytes.writeUInt32LE(sample.sample, 8)
  bytes.writeDoubleLE(sample.sensorUs, 16)
  for (let i = 0; i < TILE_VALUES; i++) bytes.writeFloatLE(sample.values[i]!, HEADER_BYTES + i * 4)
  return bytes
}

/** Parses a tile file's bytes; null when they are not a sample (wrong size or magic). */
export function decodeSample(bytes: Buffer): Sample | null {
  if (bytes.length !== SAMPLE_BYTES || bytes.readUInt32LE(0) !== SAMPLE_MAGIC) return null
  const values = new Float32Array(TILE_VALUES)
  for (let i = 0; i < TILE_VALUES; i++) values[i] = bytes.readFloatLE(HEADER_BYTES + i * 4)
  return { tile: bytes.readUInt32LE(4), sample: bytes.readUInt32LE(8), sensorUs: bytes.readDoubleLE(16), values }
}

/**
 * Every delivery of the run, per tile in issue order. Writer i's clock is off by a skew s_i
 * drawn once in [-δ, δ]; it delivers sample k when its own clock reads t_k + d (d drawn per
 * sample in [0, delayMax]), i.e. at platform time t_k + d - s_i. Deliveries of one tile can
 * therefore leave sample order (d varies by more than a period), and a delivery can reach
 * the platform up to δ before the instant it is stamped with: both are what Δ and δ bound.
 */
export function deliveries(plan: SamplingPlan): Delivery[][] {
  const prng = new Prng(plan.seed)
  const perTile: Delivery[][] = []
  for (let tile = 0; tile < tileCount(plan.model); tile++) {
    const rng = prng.fork() // one stream per tile: changing the sample count keeps other tiles' draws
    const skewUs = rng.int(-plan.clockSkewMaxUs, plan.clockSkewMaxUs)
    const list: Delivery[] = []
    for (let sample = 0; sample < plan.samples; sample++) {
      const sensorUs = sampleInstantUs(plan, sample)
      list.push({ tile, sample, sensorUs, issueUs: sensorUs + rng.int(0, plan.delayMaxUs) - skewUs })
    }
    list.sort((a, b) => a.issueUs - b.issueUs || a.sample - b.sample)
    perTile.push(list)
  }
  return perTile
}

/** `count` frame instants on the sample grid, evenly from sample `firstSample` to the last sample. */
export function frameSamples(plan: SamplingPlan, firstSample: number, count: number): number[] {
  const last = plan.samples - 1
  const first = Math.min(Math.max(0, firstSample), last)
  if (count <= 1) return [last]
  const picked = new Set<number>()
  for (let j = 0; j < count; j++) picked.add(first + Math.round((j * (last - first)) / (count - 1)))
  return [...picked].sort((a, b) => a - b)
}
