// The wave experiment at small scale: 16 sensor tiles at 10 Hz write a travelling
// wave with skewed clocks and deliveries delayed at random, on a group of 3 real `fffs serve`
// processes with a meta shard and 2 data shards, through a real FUSE mount. Frames read at
// fixed instants: the sensor-time cut equals the truth exactly at every instant; live reads
// are torn (no single instant held what they read); platform-time cuts are cuts (never torn,
// frozen) yet miss the truth by the delivery delays. Plus the pure parts: sample encoding,
// the delivery plan's bounds, the torn rule and the PNG encoder. No timed assertions; every
// wait is bounded.

import { inflateSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { frameStats, type TileVersion } from '../../src/demo/wave/analysis.js'
import { runWaveExperiment, WAVE_DEFAULTS, type WaveOptions, type WaveResult } from '../../src/demo/wave/experiment.js'
import { decodeSample, deliveries, encodeSample, SAMPLE_BYTES, sampleInstantUs, tileTruth, type SamplingPlan } from '../../src/demo/wave/model.js'
import { encodePng } from '../../src/demo/wave/png.js'
import type { FrameRead } from '../../src/demo/wave/reader.js'
import { hlcOf } from '../../src/temporal/hlc.js'
import { startGroup, type ClusterMount, type TestGroup } from '../helpers/cluster.js'

const plan: SamplingPlan = {
  model: { tilesX: 2, tilesY: 2, wavelengthPoints: 40, frequencyHz: 0.25, originUs: 1_795_000_000_000_000 },
  periodUs: 100_000,
  samples: 30,
  clockSkewMaxUs: 50_000,
  delayMaxUs: 400_000,
  seed: 7,
}

describe('wave model (pure)', () => {
  it('a sample round-trips through its bytes and the truth is a pure function of (x, y, t)', () => {
    const sensorUs = sampleInstantUs(plan, 12)
    const values = tileTruth(plan.model, 3, sensorUs)
    const bytes = encodeSample({ tile: 3, sample: 12, sensorUs, values })
    expect(bytes.length).toBe(SAMPLE_BYTES)
    const back = decodeSample(bytes)!
    expect([back.tile, back.sample, back.sensorUs]).toEqual([3, 12, sensorUs])
    expect(back.values).toEqual(tileTruth(plan.model, 3, sensorUs))
    expect(back.values).not.toEqual(tileTruth(plan.model, 3, sampleInstantUs(plan, 13))) // the wave moves
    expect(decodeSample(bytes.subarray(1))).toBeNull()
  })

  it('deliveries: every sample once per tile, within [-δ, delay max + δ] of its instant, some out of order', () => {
    const all = deliveries(plan)
    expect(all.length).toBe(4)
    let reordered = 0
    for (const list of all) {
      expect(list.map((d) => d.sample).sort((a, b) => a - b)).toEqual([...Array(plan.samples).keys()])
      for (const d of list) {
        expect(d.issueUs - d.sensorUs).toBeGreaterThanOrEqual(-plan.clockSkewMaxUs)
        expect(d.issueUs - d.sensorUs).toBeLessThanOrEqual(plan.delayMaxUs + plan.clockSkewMaxUs)
      }
      list.forEach((d, i) => (reordered += i > 0 && d.sample < list[i - 1]!.sample ? 1 : 0))
    }
    expect(reordered).toBeGreaterThan(0) // delays span several periods
    expect(deliveries(plan)).toEqual(all) // one seed, one plan
  })

  it('torn: a frame is torn when no one platform instant held every tile it read', () => {
    const instantUs = sampleInstantUs(plan, 10)
    const read = (tile: number, sample: number) => ({ ok: true, data: encodeSample({ tile, sample, sensorUs: sampleInstantUs(plan, sample), values: tileTruth(plan.model, tile, sampleInstantUs(plan, sample)) }), startUs: instantUs, openedUs: instantUs, endUs: instantUs })
    // Tile t's sample k was committed at stamp 100·k + t: versions of different tiles interleave.
    const histories = new Map<number, TileVersion[]>()
    for (let tile = 0; tile < 4; tile++) histories.set(tile, [...Array(12).keys()].map((k) => ({ stamp: hlcOf(1000 + 100 * k + tile, 0), sensorUs: sampleInstantUs(plan, k), sizeBytes: SAMPLE_BYTES })))
    const frame = (samples: number[], method: FrameRead['method'] = 'live'): FrameRead => ({ method, sample: 10, instantUs, reads: samples.map((k, tile) => read(tile, k)) })
    expect(frameStats(plan, frame([9, 9, 9, 9]), histories).torn).toBe(false)
    expect(frameStats(plan, frame([9, 9, 8, 8]), histories).torn).toBe(false) // at a stamp between 9·100+1 and 9·100+2
    expect(frameStats(plan, frame([9, 9, 8, 8]), histories).mixed).toBe(true)
    expect(frameStats(plan, frame([9, 8, 9, 9]), histories).torn).toBe(true) // tile 1 had moved to 9 before tile 2 reached 9
    expect(frameStats(plan, frame([10, 10, 10, 10], 'sensor'), histories)).toMatchObject({ torn: false, exact: true, maxAbsError: 0 })
    expect(frameStats(plan, frame([10, 10, 9, 10], 'sensor'), histories)).toMatchObject({ torn: true, exact: false })
  })

  it('the PNG encoder writes chunks with valid CRCs and the pixels back out of IDAT', () => {
    const rgb = Uint8Array.from({ length: 3 * 4 * 2 }, (_, i) => (i * 37) % 256)
    const png = encodePng(4, 2, rgb)
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    const types: string[] = []
    let idat: Buffer = Buffer.alloc(0)
    for (let at = 8; at < png.length; ) {
      const size = png.readUInt32BE(at)
      const type = png.toString('ascii', at + 4, at + 8)
      types.push(type)
      if (type === 'IDAT') idat = png.subarray(at + 8, at + 8 + size)
      at += 12 + size
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND'])
    const rows = inflateSync(idat)
    expect(rows.length).toBe(2 * (1 + 12))
    expect(Buffer.concat([rows.subarray(1, 13), rows.subarray(14, 26)])).toEqual(Buffer.from(rgb))
  })
})

describe('the wave experiment on a sharded group (3 processes, meta + 2 data shards of 3 replicas)', () => {
  let group: TestGroup
  let mount: ClusterMount
  let result: WaveResult
  // The mount's defaults: Δ = 5 s, δ = 50 ms. Delays stay well inside Δ, so no sample is refused even on a busy machine.
  const options: WaveOptions = { ...WAVE_DEFAULTS, tilesX: 4, tilesY: 4, rateHz: 10, durationMs: 2000, frames: 8, delayMaxMs: 400, sensorLagMaxMs: 5000, clockSkewMaxMs: 50, warmupMs: 1000, seed: 5 }

  beforeAll(async () => {
    group = await startGroup(3, { shards: 2 })
    for (const m of group.config.members) group.startMember(m.id)
    await group.waitView([0, 1, 2], 30_000)
    mount = await group.mount('mnt')
    result = await runWaveExperiment(mount.mountpoint, options)
  }, 120_000)

  afterAll(async () => {
    await group?.cleanup()
  })

  const method = (name: 'live' | 'platform' | 'sensor') => result.methods.find((m) => m.method === name)!
  const frames = (name: 'live' | 'platform' | 'sensor') => result.frames.filter((f) => f.method === name)

  it('every sample was committed (none refused as late, none failed)', () => {
    expect(result.writers, JSON.stringify(result.writers)).toMatchObject({ offered: 16 * 20, committed: 16 * 20, refused: 0, failed: 0 })
  })

  it('the sensor-time cut equals the truth exactly at every instant, and is a cut', () => {
    expect(frames('sensor').length).toBe(result.frameSamples.length)
    for (const f of frames('sensor')) {
      expect({ sample: f.sample, missing: f.missingTiles, errors: f.errors, maxAbsError: f.maxAbsError, torn: f.torn, mixed: f.mixed }).toEqual({ sample: f.sample, missing: 0, errors: [], maxAbsError: 0, torn: false, mixed: false })
      expect(f.exact).toBe(true)
    }
  })

  it('live reads are torn: frames mixing tiles that were never current together', () => {
    expect(method('live').missingReads).toBe(0)
    expect(method('live').tornFrames, JSON.stringify(frames('live').map((f) => [f.sample, f.torn, f.mixed]))).toBeGreaterThan(0)
  })

  it('platform-time cuts are cuts (never torn, frozen) but miss the truth by the delivery delays', () => {
    const platform = method('platform')
    expect(platform.missingReads).toBe(0)
    expect(platform.tornFrames).toBe(0)
    expect(result.changedOnReread).toEqual({ platform: 0, sensor: 0 })
    expect(platform.exactFrames).toBeLessThan(platform.frames)
    expect(platform.meanAbsError).toBeGreaterThan(0)
    expect(platform.ageMsMean!).toBeGreaterThan(0) // they show samples older than T
  })

  it('writes the PNG strip', () => {
    expect(result.png.subarray(1, 4).toString('ascii')).toBe('PNG')
  })
})
