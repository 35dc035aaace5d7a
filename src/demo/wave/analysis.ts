// Compares each reconstructed frame with the truth and decides whether it is torn.
//
// Error: |value read - truth at T| over every sensor of every tile read.
// Torn: the frame is not the state of the field at any one instant on its own time axis.
// For live reads and platform cuts the axis is platform time: tile i's read content was
// current from its version's stamp p_i until its next version's stamp n_i, and the frame is
// a cut iff some τ lies in every [p_i, n_i), i.e. max p_i < min n_i. For sensor cuts the axis
// is sensor time: tile i's sample s_i held until the tile's next committed sample time.
// Mixed: the frame shows samples from more than one sample instant (a platform cut does,
// by design, when deliveries are delayed differently; it is still a cut).

import { HLC_MAX, type HlcStamp } from '../../temporal/hlc.js'
import { BLANK_SAMPLE, decodeSample, fieldHeight, fieldWidth, placeTile, SAMPLE_BYTES, tileCount, tileTruth, TILE_VALUES, type SamplingPlan } from './model.js'
import { METHODS, type FrameRead, type Method } from './reader.js'
import { isRefused, type WriteRecord } from './writers.js'

/** One version of a tile file, from its log. */
export interface TileVersion {
  readonly stamp: HlcStamp
  readonly sensorUs: number | null
  readonly sizeBytes: number
}

export interface FrameStats {
  readonly method: Method
  readonly sample: number
  readonly instantUs: number
  readonly meanAbsError: number
  readonly maxAbsError: number
  readonly exact: boolean // every tile read, every value equal to the truth
  readonly torn: boolean
  readonly uncommittedTiles: number // tiles whose bytes no committed version held
  readonly mixed: boolean
  readonly missingTiles: number // reads that failed
  readonly ageMsMean: number | null // mean of T - the read sample's instant
  readonly firstWaitMs: number // the frame's first open: for a cut, the wait until it was stable
  readonly readyMs: number // T until the frame's last tile was in hand
  readonly latenciesMs: readonly number[] // per tile read: T until it was in hand
  readonly errors: readonly string[]
  readonly field: Float32Array // the reconstruction; NaN where a tile could not be read
}

export interface MethodStats {
  readonly method: Method
  readonly frames: number
  readonly exactFrames: number
  readonly meanAbsError: number
  readonly maxAbsError: number
  readonly tornFrames: number
  readonly uncommittedReads: number
  readonly mixedFrames: number
  readonly missingReads: number
  readonly ageMsMean: number | null
  readonly latencyMsP50: number
  readonly latencyMsP99: number
  readonly waitMsMean: number
  readonly waitMsMax: number
  readonly errors: readonly string[]
}

export interface WriterStats {
  readonly offered: number
  readonly committed: number
  readonly refused: number
  readonly failed: number
  readonly committedPerSecond: number
  readonly latenessMsP50: number // fsync returned − sample instant
  readonly latenessMsP99: number
  readonly latenessMsMax: number
  readonly queuedMsP99: number // write began − planned delivery (the tile's previous write was still committing)
  readonly commitMsP50: number // one sample's setxattr + write + fsync
  readonly commitMsP99: number
  readonly errors: readonly string[]
}

/** The largest value; NaN for none (not -Infinity). */
function maxOf(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.max(...values)
}

export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!
}

const mean = (values: readonly number[]): number => (values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length)

/**
 * Which content a version holds, by the sensor time its bytes carry: a sample's (or a
 * warm-up write's) stamp; 0 for the initial blank content (no sensor time); null for a
 * version that is not a sample at all (the create).
 */
function contentKey(version: TileVersion): number | null {
  if (version.sensorUs !== null) return version.sensorUs
  return version.sizeBytes === SAMPLE_BYTES ? 0 : null
}

/**
 * Where the read content sits in the tile's committed history: [from, until) on the platform
 * axis (version stamp to the next version's) and on the sensor axis (sample time to the next
 * committed sample time). null: no committed version holds it (a live read can return bytes
 * a writer has written but not committed, from the kernel's page cache).
 */
function intervals(history: readonly TileVersion[], sensorUs: number): { platform: [HlcStamp, HlcStamp]; sensor: [number, number] } | null {
  for (let i = history.length - 1; i >= 0; i--) {
    if (contentKey(history[i]!) !== sensorUs) continue
    let until = Infinity
    for (const v of history) if (v.sensorUs !== null && v.sensorUs > sensorUs && v.sensorUs < until) until = v.sensorUs
    return { platform: [history[i]!.stamp, history[i + 1]?.stamp ?? HLC_MAX], sensor: [sensorUs, until] }
  }
  return null
}

export function frameStats(plan: SamplingPlan, frame: FrameRead, histories: ReadonlyMap<number, readonly TileVersion[]>): FrameStats {
  const { model } = plan
  const field = new Float32Array(fieldWidth(model) * fieldHeight(model)).fill(NaN)
  let errorSum = 0
  let errorCount = 0
  let maxAbsError = 0
  let missingTiles = 0
  const samples = new Set<number>()
  const ages: number[] = []
  const errors: string[] = []
  const platform: Array<[HlcStamp, HlcStamp]> = []
  const sensor: Array<[number, number]> = []
  let uncommittedTiles = 0
  frame.reads.forEach((read, tile) => {
    const decoded = read.ok && read.data !== undefined ? decodeSample(read.data) : null
    if (decoded === null || decoded.tile !== tile) {
      missingTiles++
      errors.push(read.ok ? `tile ${tile}: not a sample (${read.data?.length ?? 0} bytes)` : `tile ${tile}: ${read.step} ${read.error} (errno ${read.errno})`)
      return
    }
    placeTile(model, field, tile, decoded.values)
    const truth = tileTruth(model, tile, frame.instantUs)
    for (let i = 0; i < TILE_VALUES; i++) {
      const error = Math.abs(decoded.values[i]! - truth[i]!)
      errorSum += error
      errorCount++
      if (error > maxAbsError) maxAbsError = error
    }
    samples.add(decoded.sample)
    if (decoded.sample !== BLANK_SAMPLE) ages.push((frame.instantUs - decoded.sensorUs) / 1000)
    const found = intervals(histories.get(tile) ?? [], decoded.sensorUs)
    if (found === null) {
      uncommittedTiles++
      return
    }
    platform.push(found.platform)
    sensor.push(found.sensor)
  })
  // A frame holding bytes no committed version held is no state the file system ever had.
  let torn = uncommittedTiles > 0
  if (frame.method === 'sensor') torn ||= sensor.length > 0 && Math.max(...sensor.map((i) => i[0])) >= Math.min(...sensor.map((i) => i[1]))
  else torn ||= platform.length > 0 && platform.reduce((m, i) => (i[0] > m ? i[0] : m), 0n) >= platform.reduce((m, i) => (i[1] < m ? i[1] : m), HLC_MAX)
  const first = frame.reads[0]
  const latenciesMs = frame.reads.map((r) => (r.endUs - frame.instantUs) / 1000)
  return {
    method: frame.method,
    sample: frame.sample,
    instantUs: frame.instantUs,
    meanAbsError: errorCount === 0 ? NaN : errorSum / errorCount,
    maxAbsError,
    exact: missingTiles === 0 && maxAbsError === 0,
    torn,
    uncommittedTiles,
    mixed: samples.size > 1,
    missingTiles,
    ageMsMean: ages.length === 0 ? null : mean(ages),
    firstWaitMs: first === undefined ? NaN : (first.openedUs - first.startUs) / 1000,
    readyMs: maxOf(latenciesMs),
    latenciesMs,
    errors,
    field,
  }
}

export function methodStats(method: Method, frames: readonly FrameStats[]): MethodStats {
  const mine = frames.filter((f) => f.method === method)
  const ages = mine.flatMap((f) => (f.ageMsMean === null ? [] : [f.ageMsMean]))
  const latencies = mine.flatMap((f) => f.latenciesMs)
  const waits = mine.map((f) => f.firstWaitMs)
  return {
    method,
    frames: mine.length,
    exactFrames: mine.filter((f) => f.exact).length,
    meanAbsError: mean(mine.map((f) => f.meanAbsError)),
    maxAbsError: Math.max(0, ...mine.map((f) => f.maxAbsError)),
    tornFrames: mine.filter((f) => f.torn).length,
    uncommittedReads: mine.reduce((n, f) => n + f.uncommittedTiles, 0),
    mixedFrames: mine.filter((f) => f.mixed).length,
    missingReads: mine.reduce((n, f) => n + f.missingTiles, 0),
    ageMsMean: ages.length === 0 ? null : mean(ages),
    latencyMsP50: percentile(latencies, 0.5),
    latencyMsP99: percentile(latencies, 0.99),
    waitMsMean: mean(waits),
    waitMsMax: maxOf(waits),
    errors: [...new Set(mine.flatMap((f) => f.errors.map((e) => e.replace(/^tile \d+: /, ''))))],
  }
}

export function writerStats(plan: SamplingPlan, writes: readonly WriteRecord[]): WriterStats {
  const committed = writes.filter((w) => w.ok)
  const lateness = committed.map((w) => (w.endUs - w.sensorUs) / 1000)
  const lastEndUs = Math.max(plan.model.originUs, ...committed.map((w) => w.endUs))
  const spanSeconds = Math.max(1e-6, (lastEndUs - plan.model.originUs) / 1e6)
  const refused = writes.filter(isRefused)
  const failed = writes.filter((w) => !w.ok && !isRefused(w))
  return {
    offered: writes.length,
    committed: committed.length,
    refused: refused.length,
    failed: failed.length,
    committedPerSecond: committed.length / spanSeconds,
    latenessMsP50: percentile(lateness, 0.5),
    latenessMsP99: percentile(lateness, 0.99),
    latenessMsMax: maxOf(lateness),
    queuedMsP99: percentile(writes.map((w) => (w.startUs - w.issueUs) / 1000), 0.99),
    commitMsP50: percentile(committed.map((w) => (w.endUs - w.startUs) / 1000), 0.5),
    commitMsP99: percentile(committed.map((w) => (w.endUs - w.startUs) / 1000), 0.99),
    errors: [...new Set([...refused, ...failed].map((w) => `${w.step}: ${w.error} (errno ${w.errno})`))],
  }
}

export function allMethodStats(frames: readonly FrameStats[]): MethodStats[] {
  return METHODS.map((method) => methodStats(method, frames))
}

/** Checks an invariant of the analysis itself: every frame has one read per tile. */
export function checkFrames(plan: SamplingPlan, frames: readonly FrameRead[]): void {
  for (const frame of frames) {
    if (frame.reads.length !== tileCount(plan.model)) throw new Error(`wave analysis invariant: frame ${frame.method}@${frame.sample} has ${frame.reads.length} reads for ${tileCount(plan.model)} tiles`)
  }
}
