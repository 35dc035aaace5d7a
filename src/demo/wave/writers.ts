// The sensor writers: one per tile, each delivering its samples in the order and at the
// platform instants the plan gives (skewed clock, random delay), one version per sample.
// A tile's writes are serial (one open file, one pending version at a time): a delivery
// due while the previous one is still committing waits for it, as a real collector's would.

import { wallClockUs } from '../../temporal/hlc.js'
import type { FileIo } from './fileio.js'
import { encodeSample, tileTruth, type Delivery, type SamplingPlan } from './model.js'

export interface WriteRecord {
  readonly tile: number
  readonly sample: number
  readonly sensorUs: number
  readonly issueUs: number // when the plan delivers it (platform clock)
  readonly startUs: number // when the write began (later when the tile's previous write was slow)
  readonly endUs: number // when fsync returned: durable on every replica of its shard
  readonly ok: boolean
  readonly step?: string
  readonly errno?: number
  readonly error?: string
}

export const EINVAL = 22

/** A refused write: fffs answers EINVAL to a sensor time older than now − Δ (and to nothing else a writer here sends). */
export const isRefused = (w: WriteRecord): boolean => !w.ok && w.errno === EINVAL

export async function sleepUntilUs(targetUs: number): Promise<void> {
  const waitMs = (targetUs - wallClockUs()) / 1000
  if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs))
}

/**
 * How a sample's version gets its sensor time:
 * - 'xattr': the tile stays open for the whole run; per sample set user.fffs.sensor_time on
 *   it, write, fsync. The xattr stamps every open writer of the file, so a tile has one
 *   version in flight at a time: a delivery due while the previous commit runs waits.
 * - 'path': per sample open `tile@sensor:T` for writing, write, close. Each version carries
 *   its own stamp, so a tile's deliveries go out when due, several in flight.
 */
export type StampMode = 'xattr' | 'path'

/**
 * Writes every tile's blank content at `rateHz` for `durationMs`, stamped with the current
 * time, through the same path as the samples: a group just started (cold JIT, first
 * connections) commits several times slower for its first seconds, which is not what the
 * experiment measures. Failures are returned, not thrown.
 */
export async function warmUp(io: FileIo, tiles: number, blank: (tile: number, sensorUs: number) => Buffer, mode: StampMode, pathOf: (tile: number) => string, rateHz: number, durationMs: number, writeTimeoutMs: number): Promise<number> {
  const endUs = wallClockUs() + durationMs * 1000
  let failed = 0
  await Promise.all(
    Array.from({ length: tiles }, async (_, tile) => {
      for (let dueUs = wallClockUs(); dueUs < endUs; dueUs += 1e6 / rateHz) {
        await sleepUntilUs(dueUs)
        const nowUs = Math.floor(wallClockUs())
        const bytes = blank(tile, nowUs)
        const result = mode === 'xattr' ? await io.write(pathOf(tile), `${nowUs}us`, bytes, writeTimeoutMs) : await io.writeAt(`${pathOf(tile)}@sensor:${nowUs}us`, bytes, writeTimeoutMs)
        if (!result.ok) failed++
      }
    }),
  )
  return failed
}

/** Runs every tile's writer to the end of its plan; resolves with one record per delivery. */
export async function runWriters(io: FileIo, plan: SamplingPlan, perTile: readonly (readonly Delivery[])[], mode: StampMode, pathOf: (tile: number) => string, writeTimeoutMs: number): Promise<WriteRecord[]> {
  const records: WriteRecord[] = []
  const write = async (delivery: Delivery): Promise<void> => {
    const bytes = encodeSample({ tile: delivery.tile, sample: delivery.sample, sensorUs: delivery.sensorUs, values: tileTruth(plan.model, delivery.tile, delivery.sensorUs) })
    const path = pathOf(delivery.tile)
    const result = mode === 'xattr' ? await io.write(path, `${delivery.sensorUs}us`, bytes, writeTimeoutMs) : await io.writeAt(`${path}@sensor:${delivery.sensorUs}us`, bytes, writeTimeoutMs)
    records.push({ tile: delivery.tile, sample: delivery.sample, sensorUs: delivery.sensorUs, issueUs: delivery.issueUs, ...result })
  }
  await Promise.all(
    perTile.map(async (list) => {
      const inFlight: Array<Promise<void>> = []
      for (const delivery of list) {
        await sleepUntilUs(delivery.issueUs)
        if (mode === 'xattr') await write(delivery)
        else inFlight.push(write(delivery))
      }
      await Promise.all(inFlight)
    }),
  )
  return records
}
