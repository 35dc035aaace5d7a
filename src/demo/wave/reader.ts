// The reconstructor's reads: at each frame instant T (a sample instant), three readers start
// at once, each reading every tile one after another:
//   live      the plain tile paths, at platform time T (what any program sees "now");
//   platform  `tile@<T>us`, the platform-time cut at T (waits until T is stable);
//   sensor    `tile@sensor:<T>us`, the sensor-time cut at T (waits until T + Δ + 2δ is stable).
// The first read of a cut does the waiting; the rest of the frame is then read at once.

import path from 'node:path'
import type { FileIo, ReadResult } from './fileio.js'
import { sampleInstantUs, tileCount, tileName, type SamplingPlan } from './model.js'
import { sleepUntilUs } from './writers.js'

export const METHODS = ['live', 'platform', 'sensor'] as const
export type Method = (typeof METHODS)[number]

export const METHOD_LABELS: Readonly<Record<Method, string>> = {
  live: 'live reads at T',
  platform: 'platform cut tile@T',
  sensor: 'sensor cut tile@sensor:T',
}

export interface FrameRead {
  readonly method: Method
  readonly sample: number // the frame instant is this sample's instant
  readonly instantUs: number
  readonly reads: readonly ReadResult[] // by tile
}

export function tilePath(dir: string, tile: number, method: Method, instantUs: number): string {
  const name = tileName(tile)
  switch (method) {
    case 'live':
      return path.join(dir, name)
    case 'platform':
      return path.join(dir, `${name}@${instantUs}us`)
    case 'sensor':
      return path.join(dir, `${name}@sensor:${instantUs}us`)
  }
}

/** Reads every frame of the plan at its instant; resolves once the last (sensor) frame is in. */
export async function readFrames(io: FileIo, plan: SamplingPlan, dir: string, frameSamples: readonly number[], frameTimeoutMs: number): Promise<FrameRead[]> {
  const pending: Array<Promise<FrameRead>> = []
  const tiles = Array.from({ length: tileCount(plan.model) }, (_, tile) => tile)
  for (const sample of frameSamples) {
    const instantUs = sampleInstantUs(plan, sample)
    await sleepUntilUs(instantUs)
    for (const method of METHODS) {
      const paths = tiles.map((tile) => tilePath(dir, tile, method, instantUs))
      pending.push(io.readFrame(paths, frameTimeoutMs).then((reads) => ({ method, sample, instantUs, reads })))
    }
  }
  return Promise.all(pending)
}
