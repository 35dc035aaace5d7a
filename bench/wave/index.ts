// The wave experiment at full scale (`node dist/bench/wave/index.js [--quick] [--stamp xattr|path]`,
// after `npm run build`): 100 sensor tiles of 10×10 values at 10 Hz for 3 s, deliveries
// delayed up to 1 s, writer clocks skewed within δ = 50 ms, Δ = 15 s, on a local group of
// 3 member processes (a meta shard and 2 data shards of 3 replicas) started with `fffs up`.
// Frames at 6 instants by live reads, platform-time cuts and sensor-time cuts are compared
// with the truth. Prints the error table (with read latency at T and the wait a stable read
// incurred) and writes bench/out/wave.json and bench/out/wave.png. Never asserts.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { logLine } from '../../src/cli/output.js'
import { renderWave, runWaveExperiment, startUpGroup, WAVE_DEFAULTS, waveJson, type WaveOptions } from '../../src/demo/wave/index.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..') // dist/bench/wave -> repo
const outDir = path.join(repoRoot, 'bench', 'out')

const FULL: WaveOptions = { ...WAVE_DEFAULTS } // 10×10 tiles, 10 Hz, 3 s, 6 frames
const QUICK: WaveOptions = { ...WAVE_DEFAULTS, tilesX: 5, tilesY: 5, durationMs: 2000, frames: 4, sensorLagMaxMs: 5000 }

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const stampAt = args.indexOf('--stamp')
  const stamp = stampAt >= 0 ? args[stampAt + 1] : 'xattr'
  if (stamp !== 'xattr' && stamp !== 'path') throw new Error(`--stamp takes xattr or path, got '${stamp}'`)
  const options: WaveOptions = { ...(quick ? QUICK : FULL), stamp }
  const started = new Date()
  const header = `fffs wave bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''} · load ${os.loadavg()[0]!.toFixed(1)}${quick ? ' · QUICK' : ''}`
  const log = (line: string): void => logLine(line)
  const group = await startUpGroup({ replicas: 3, shards: 2, sensorLagMaxMs: options.sensorLagMaxMs, clockSkewMaxMs: options.clockSkewMaxMs }, log)
  const onSignal = (): void => void group.stop().finally(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let result
  try {
    result = await runWaveExperiment(group.mountpoint, options, log, true)
  } finally {
    await group.stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  fs.mkdirSync(outDir, { recursive: true })
  const pngFile = path.join(outDir, 'wave.png')
  const jsonFile = path.join(outDir, 'wave.json')
  fs.writeFileSync(pngFile, result.png)
  fs.writeFileSync(jsonFile, JSON.stringify({ started: started.toISOString(), header, ...waveJson(result, path.relative(repoRoot, pngFile)) }, null, 2) + '\n')
  const rel = (file: string): string => path.relative(process.cwd(), file) || file
  process.stdout.write(`${header}\n\n${renderWave(result, group.description)}\n(wrote ${rel(jsonFile)} and ${rel(pngFile)}; took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
