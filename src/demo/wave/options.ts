// The wave experiment's options and their defaults: light, so the CLI can show them in its
// help without loading the experiment.

import type { StampMode } from './writers.js'

export interface WaveOptions {
  readonly tilesX: number
  readonly tilesY: number
  readonly rateHz: number // samples per tile per second
  readonly durationMs: number // of sampling
  readonly frames: number // frame instants, evenly over the run once every tile has delivered
  readonly delayMaxMs: number // deliveries are delayed uniformly in [0, delayMaxMs]
  readonly sensorLagMaxMs: number // Δ of the mount: delays must stay within it
  readonly clockSkewMaxMs: number // δ of the mount: writer clocks are skewed within it
  readonly wavelengthPoints: number
  readonly frequencyHz: number
  readonly seed: number
  readonly stripRows: number // frame instants drawn in the PNG
  readonly stamp: StampMode // how a version gets its sensor time (writers.ts)
  readonly warmupMs: number // tiles write blank content this long before the first sample
}

// Full scale: 100 tiles at 10 Hz. Δ is generous because on a busy 2-core machine a
// 3-replica group commits a few hundred tile versions/s, not the 1000/s offered: the backlog
// makes deliveries late by seconds, and a write later than Δ is refused.
export const WAVE_DEFAULTS: WaveOptions = {
  tilesX: 10,
  tilesY: 10,
  rateHz: 10,
  durationMs: 3000,
  frames: 6,
  delayMaxMs: 1000,
  sensorLagMaxMs: 15_000,
  clockSkewMaxMs: 50,
  wavelengthPoints: 40,
  frequencyHz: 0.25,
  seed: 1,
  stripRows: 4,
  stamp: 'xattr',
  warmupMs: 2000,
}
