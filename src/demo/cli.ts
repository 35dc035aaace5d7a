// `fffs demo ...`: demonstrations that run against a group (src/demo/*). Registered on the
// CLI by main.ts with one call, so the demos' options live next to them.

import { Command, Option } from 'commander'
import { nonNegativeInt, positiveInt, positiveNumber, usageError } from '../cli/args.js'
import { logLine } from '../cli/output.js'
import { WAVE_DEFAULTS } from './wave/options.js'
import type { StampMode } from './wave/writers.js'

function tiles(text: string): [number, number] {
  const match = /^(\d+)x(\d+)$/.exec(text)
  if (match === null || Number(match[1]) < 1 || Number(match[2]) < 1) throw usageError(`--tiles takes COLUMNSxROWS (e.g. 10x10), got '${text}'`)
  return [Number(match[1]), Number(match[2])]
}

function stampMode(text: string): StampMode {
  if (text !== 'xattr' && text !== 'path') throw usageError(`--stamp takes xattr or path, got '${text}'`)
  return text
}

interface WaveFlags {
  mount?: string
  tiles: [number, number]
  rate: number
  duration: number
  frames: number
  delayMax: number
  sensorLagMax: number
  clockSkewMax: number
  replicas: number
  shards: number
  seed: number
  png: string
  json?: boolean
  stamp: StampMode
}

export function addDemoCommand(program: Command): void {
  const demo = program.command('demo').description('demonstrations on a replicated, sharded group')
  const d = WAVE_DEFAULTS
  demo
    .command('wave')
    .description('the wave experiment: sensor tiles write a travelling wave late and out of order; frames reconstructed by live reads, platform-time cuts and sensor-time cuts are compared with the truth (error table + PNG strip)')
    .option('--mount <dir>', 'run on this existing mount (its --sensor-lag-max/--clock-skew-max must match) instead of starting a local group')
    .addOption(new Option('--tiles <WxH>', 'tiles across and down, each 10×10 sensors and one file').argParser(tiles).default([d.tilesX, d.tilesY], `${d.tilesX}x${d.tilesY}`))
    .option('--rate <hz>', 'samples per tile per second', positiveNumber, d.rateHz)
    .option('--duration <ms>', 'how long the tiles sample', nonNegativeInt, d.durationMs)
    .option('--frames <n>', 'frame instants to reconstruct', nonNegativeInt, d.frames)
    .option('--delay-max <ms>', 'deliveries are delayed at random in [0, ms] (delay + skew stay below Δ)', nonNegativeInt, d.delayMaxMs)
    .option('--sensor-lag-max <ms>', 'Δ of the group the demo starts (must match the mount with --mount)', nonNegativeInt, d.sensorLagMaxMs)
    .option('--clock-skew-max <ms>', 'δ: writer clocks are skewed within it (must match the mount with --mount)', nonNegativeInt, d.clockSkewMaxMs)
    .option('--replicas <n>', 'replicas per shard of the group the demo starts', positiveInt, 3)
    .option('--shards <n>', 'data shards of the group the demo starts', positiveInt, 2)
    .option('--seed <n>', 'seed of the skews and delays', nonNegativeInt, d.seed)
    .option('--stamp <how>', "how a sample's version gets its sensor time: xattr (user.fffs.sensor_time on the open tile, one version in flight per tile) or path (open tile@sensor:T for each sample)", stampMode, d.stamp)
    .option('--png <file>', 'where to write the strip', 'fffs-wave.png')
    .option('--json', 'print the result as JSON instead of the table')
    .action(async (flags: WaveFlags) => {
      const { runWaveDemo } = await import('./wave/index.js') // loaded when the demo runs: the CLI starts without it
      await runWaveDemo(
        {
          ...WAVE_DEFAULTS,
          tilesX: flags.tiles[0],
          tilesY: flags.tiles[1],
          rateHz: flags.rate,
          durationMs: flags.duration,
          frames: flags.frames,
          delayMaxMs: flags.delayMax,
          sensorLagMaxMs: flags.sensorLagMax,
          clockSkewMaxMs: flags.clockSkewMax,
          seed: flags.seed,
          stamp: flags.stamp,
          replicas: flags.replicas,
          shards: flags.shards,
          png: flags.png,
          json: flags.json === true,
          ...(flags.mount !== undefined ? { mount: flags.mount } : {}),
        },
        (text) => process.stdout.write(text),
        logLine,
      )
    })
}
