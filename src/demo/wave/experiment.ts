// The wave experiment on a mounted fffs (FFFS's motivating experiment): sensor tiles write a
// travelling wave with GPS-like sample times, late and out of order; a reader reconstructs
// frames at fixed instants by live reads, platform-time cuts and sensor-time cuts and
// compares each with the truth. See docs/decisions.md, "Wave experiment".

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { request } from '../../control/client.js'
import { Progress } from '../../cli/progress.js'
import type { CutReport } from '../../control/inspect.js'
import type { LogReport } from '../../control/server.js'
import { errors } from '../../errors.js'
import { hlcPhysicalUs, wallClockUs } from '../../temporal/hlc.js'
import { parseTimeSpec } from '../../temporal/spec.js'
import { allMethodStats, checkFrames, frameStats, writerStats, type FrameStats, type MethodStats, type TileVersion, type WriterStats } from './analysis.js'
import { FileIo } from './fileio.js'
import { BLANK_SAMPLE, deliveries, encodeSample, fieldTruth, frameSamples, sampleInstantUs, tileCount, tileName, TILE_VALUES, type SamplingPlan, type WaveModel } from './model.js'
import type { WaveOptions } from './options.js'
import { METHODS, readFrames, tilePath, type FrameRead, type Method } from './reader.js'
import { renderStrip, type StripRow } from './strip.js'
import { runWriters, warmUp, type WriteRecord } from './writers.js'

export { WAVE_DEFAULTS, type WaveOptions } from './options.js'

export interface WaveResult {
  readonly options: WaveOptions
  readonly dir: string // the experiment's directory inside the mount
  readonly plan: SamplingPlan
  readonly frameSamples: readonly number[]
  readonly writers: WriterStats
  readonly methods: readonly MethodStats[]
  readonly frames: readonly FrameStats[]
  /** Cut frames read again after the run whose bytes differ from the first read (0: frozen). */
  readonly changedOnReread: Readonly<Record<'platform' | 'sensor', number>>
  readonly png: Buffer
}

const START_LEAD_US = 500_000 // between the writers' start and the first sample
const SETTLE_US = 200_000 // after the latest possible first delivery, before the first frame
const WRITE_TIMEOUT_MS = 60_000
const FRAME_TIMEOUT_MS = 120_000
const SETUP_CONCURRENCY = 16
const PATH_WRITES_IN_FLIGHT_PER_TILE = 4 // helper threads per tile when versions are stamped by path (more wait in its queue)

export function validateOptions(o: WaveOptions): void {
  const positive: Array<[string, number]> = [['tilesX', o.tilesX], ['tilesY', o.tilesY], ['rateHz', o.rateHz], ['durationMs', o.durationMs], ['frames', o.frames], ['wavelengthPoints', o.wavelengthPoints]]
  for (const [name, value] of positive) if (!(value > 0)) throw errors.invalid(`wave: ${name} must be positive, got ${value}`)
  if (o.rateHz > 1000) throw errors.invalid(`wave: rate ${o.rateHz} Hz is above 1000 Hz`)
  if (o.delayMaxMs < 0 || o.clockSkewMaxMs < 0) throw errors.invalid('wave: delays and skews are not negative')
  // A delivery reaches the platform at most delayMax + δ after its sample instant; fffs refuses
  // sensor writes older than now − Δ, so the plan must stay inside Δ with room for the commit.
  if (o.delayMaxMs + o.clockSkewMaxMs >= o.sensorLagMaxMs) {
    throw errors.invalid(`wave: delay max ${o.delayMaxMs} ms + clock skew ${o.clockSkewMaxMs} ms must stay below Δ = ${o.sensorLagMaxMs} ms (--sensor-lag-max)`)
  }
}

/** Fails unless the mount's sensor cuts stabilise at T + Δ + 2δ for the experiment's Δ and δ. */
async function checkMountBounds(mountpoint: string, o: WaveOptions): Promise<void> {
  const probeUs = wallClockUs()
  const report = await request<CutReport>(mountpoint, { op: 'cut', spec: `sensor:${probeUs}us` })
  const boundMs = (hlcPhysicalUs(BigInt(report.stamp)) - probeUs) / 1000
  const expectedMs = o.sensorLagMaxMs + 2 * o.clockSkewMaxMs
  if (boundMs !== expectedMs) {
    throw errors.invalid(`wave: the mount at ${mountpoint} stabilises sensor cuts at T + ${boundMs} ms, the experiment expects T + Δ + 2δ = ${expectedMs} ms: pass the mount's --sensor-lag-max and --clock-skew-max`)
  }
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work))
}

function isoUs(iso: string): number {
  const spec = parseTimeSpec(iso)
  if (spec.kind === 'version') throw new Error(`wave: a log's sensor time is not a time: ${iso}`)
  return spec.timeUs
}

/** Every tile's versions, from the mount's log (the same answer `fffs log --json` prints). */
async function tileHistories(mountpoint: string, dir: string, tiles: number): Promise<Map<number, TileVersion[]>> {
  const histories = new Map<number, TileVersion[]>()
  const inner = '/' + path.relative(mountpoint, dir)
  await inBatches(Array.from({ length: tiles }, (_, tile) => tile), SETUP_CONCURRENCY, async (tile) => {
    const { rows } = await request<LogReport>(mountpoint, { op: 'log', path: `${inner}/${tileName(tile)}` })
    const list = rows.flatMap((v) => (v.sizeBytes === null ? [] : [{ stamp: BigInt(v.stamp), sensorUs: v.sensorTime === null ? null : isoUs(v.sensorTime), sizeBytes: v.sizeBytes }]))
    histories.set(tile, list.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : 0)))
  })
  return histories
}

/** Reads the cut frames again and counts those whose bytes differ from the first read. */
async function rereadCuts(io: FileIo, dir: string, frames: readonly FrameRead[]): Promise<Record<'platform' | 'sensor', number>> {
  const changed = { platform: 0, sensor: 0 }
  for (const frame of frames) {
    if (frame.method === 'live') continue
    const paths = frame.reads.map((_, tile) => tilePath(dir, tile, frame.method, frame.instantUs))
    const again = await io.readFrame(paths, FRAME_TIMEOUT_MS)
    const same = again.every((read, tile) => {
      const first = frame.reads[tile]!
      return read.ok === first.ok && (read.data ?? Buffer.alloc(0)).equals(first.data ?? Buffer.alloc(0))
    })
    if (!same) changed[frame.method]++
  }
  return changed
}

const CAPTION_OF: Readonly<Record<Method, string>> = { live: 'LIVE READS AT T', platform: 'PLATFORM CUT @T', sensor: 'SENSOR CUT @SENSOR:T' }

function strip(plan: SamplingPlan, samples: readonly number[], frames: readonly FrameStats[], rows: number): Buffer {
  const picked = rows >= samples.length ? samples : [...new Set(Array.from({ length: rows }, (_, r) => samples[Math.round((r * (samples.length - 1)) / Math.max(1, rows - 1))]!))]
  const stripRows: StripRow[] = picked.map((sample) => {
    const instantUs = sampleInstantUs(plan, sample)
    const panels = METHODS.map((method) => {
      const f = frames.find((x) => x.method === method && x.sample === sample)!
      const verdict = f.exact ? 'EXACT' : `ERR ${f.meanAbsError.toFixed(3)}${f.torn === true ? ' TORN' : ''}`
      return { caption: f.missingTiles > 0 ? `${verdict} ${f.missingTiles} MISSING` : verdict, field: f.field }
    })
    const seconds = (instantUs - plan.model.originUs) / 1e6
    return { label: `T = ${new Date(instantUs / 1000).toISOString()} (T0+${seconds.toFixed(1)}S)`, panels: [{ caption: `TRUTH SAMPLE ${sample}`, field: fieldTruth(plan.model, instantUs) }, ...panels] }
  })
  return renderStrip(plan.model, ['TRUTH', ...METHODS.map((m) => CAPTION_OF[m])], stripRows)
}

/**
 * Runs the experiment in a fresh directory of the mount. The mount's Δ and δ must be the
 * options' (checked). Writers and readers run concurrently; resolves after the last
 * sensor-time frame (≈ Δ + 2δ after the last sample) and the analysis.
 */
export async function runWaveExperiment(mountpoint: string, options: WaveOptions, log: (line: string) => void = () => undefined, showProgress = false): Promise<WaveResult> {
  validateOptions(options)
  await checkMountBounds(mountpoint, options)
  const tiles = options.tilesX * options.tilesY
  const dir = path.join(mountpoint, `wave-${Date.now()}`)
  await fsp.mkdir(dir)
  log(`wave: ${tiles} tiles in ${dir}`)
  // Blank content carries the sensor time it is stamped with (0: none), so a read of it is matched to its version.
  const blank = (tile: number, sensorUs = 0): Buffer => encodeSample({ tile, sample: BLANK_SAMPLE, sensorUs, values: new Float32Array(TILE_VALUES) })
  const tileList = Array.from({ length: tiles }, (_, tile) => tile)
  await inBatches(tileList, SETUP_CONCURRENCY, (tile) => fsp.writeFile(path.join(dir, tileName(tile)), blank(tile)))

  const periodUs = Math.round(1e6 / options.rateHz)
  // Threads for every write in flight (xattr: one per tile) and every frame reader.
  const io = FileIo.start((options.stamp === 'xattr' ? tiles : PATH_WRITES_IN_FLIGHT_PER_TILE * tiles) + 3 * options.frames + 8)
  try {
    if (options.stamp === 'xattr') await Promise.all(tileList.map((tile) => io.openWriter(path.join(dir, tileName(tile)), WRITE_TIMEOUT_MS)))
    if (options.warmupMs > 0) {
      const failed = await warmUp(io, tiles, blank, options.stamp, (tile) => path.join(dir, tileName(tile)), options.rateHz, options.warmupMs, WRITE_TIMEOUT_MS)
      log(`wave: warmed up for ${options.warmupMs} ms${failed > 0 ? ` (${failed} warm-up writes failed)` : ''}`)
    }
    const originUs = Math.ceil((wallClockUs() + START_LEAD_US) / periodUs) * periodUs // on the sample grid
    const model: WaveModel = { tilesX: options.tilesX, tilesY: options.tilesY, wavelengthPoints: options.wavelengthPoints, frequencyHz: options.frequencyHz, originUs }
    const plan: SamplingPlan = {
      model,
      periodUs,
      samples: Math.max(1, Math.round((options.durationMs * options.rateHz) / 1000)),
      clockSkewMaxUs: options.clockSkewMaxMs * 1000,
      delayMaxUs: options.delayMaxMs * 1000,
      seed: options.seed,
    }
    const firstFrame = Math.ceil((plan.delayMaxUs + plan.clockSkewMaxUs + SETTLE_US) / periodUs)
    const samples = frameSamples(plan, firstFrame, options.frames)
    log(`wave: ${plan.samples} samples per tile at ${options.rateHz} Hz from ${new Date(originUs / 1000).toISOString()}; frames at samples ${samples.join(', ')}`)
    const sampling = Promise.all([
      runWriters(io, plan, deliveries(plan), options.stamp, (tile) => path.join(dir, tileName(tile)), WRITE_TIMEOUT_MS),
      readFrames(io, plan, dir, samples, FRAME_TIMEOUT_MS),
    ])
    // It ends with the later of the last delivery and the last frame's sensor cut turning stable (T + Δ + 2δ).
    const endUs = Math.max(originUs + plan.samples * periodUs + plan.delayMaxUs, originUs + samples[samples.length - 1]! * periodUs + (options.sensorLagMaxMs + 2 * options.clockSkewMaxMs) * 1000)
    const [writes, frameReads] = showProgress ? await Progress.timed('wave: sampling and reading frames', Math.max(0, (endUs - wallClockUs()) / 1000), sampling) : await sampling
    checkFrames(plan, frameReads)
    if (options.stamp === 'xattr') await Promise.all(tileList.map((tile) => io.closeWriter(path.join(dir, tileName(tile)), WRITE_TIMEOUT_MS)))
    log('wave: writers done; reading the cuts again and the tiles\' logs')
    const changedOnReread = await rereadCuts(io, dir, frameReads)
    const histories = await tileHistories(mountpoint, dir, tileCount(plan.model))
    const frames = frameReads.map((f) => frameStats(plan, f, histories))
    return {
      options,
      dir,
      plan,
      frameSamples: samples,
      writers: writerStats(plan, writes satisfies WriteRecord[]),
      methods: allMethodStats(frames),
      frames,
      changedOnReread,
      png: strip(plan, samples, frames, options.stripRows),
    }
  } finally {
    await io.stop()
  }
}
