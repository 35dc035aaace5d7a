// `fffs demo wave`: runs the wave experiment on a sharded local group it starts itself
// (`fffs up` in a temp dir: 3 replicas, a meta shard and 2 data shards by default), or on
// an existing mount (--mount), prints the error table and writes the PNG strip.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { READY_PREFIX } from '../../cli/output.js'
import { locate } from '../../control/client.js'
import { unmountLazy } from '../../fs/mountTable.js'
import { runWaveExperiment, type WaveOptions, type WaveResult } from './experiment.js'
import { renderWave, waveJson } from './report.js'

export { runWaveExperiment, WAVE_DEFAULTS, type WaveOptions, type WaveResult } from './experiment.js'
export { renderWave, waveJson } from './report.js'

const UP_READY_TIMEOUT_MS = 90_000
const UP_STOP_TIMEOUT_MS = 30_000
const MAX_WAIT_MS_MIN = 10_000

/** The repository root (holds bin/fffs), from this module in src/ or in dist/src/. */
function repoRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'bin', 'fffs')) && existsSync(path.join(dir, 'package.json'))) return dir
  }
  throw new Error('wave: cannot find bin/fffs above ' + fileURLToPath(import.meta.url))
}

export interface LocalGroup {
  readonly mountpoint: string
  readonly description: string
  stop(): Promise<void>
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/**
 * `fffs up` on a temp dir with the experiment's Δ and δ; resolves once mounted. The child
 * leads its own process group (its members inherit it), so a stop that times out can take
 * the whole group down by that id.
 */
export async function startUpGroup(options: { replicas: number; shards: number; sensorLagMaxMs: number; clockSkewMaxMs: number }, log: (line: string) => void): Promise<LocalGroup> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'fffs-wave-'))
  const mountpoint = path.join(root, 'mnt')
  const maxWaitMs = Math.max(MAX_WAIT_MS_MIN, options.sensorLagMaxMs + 2 * options.clockSkewMaxMs + 5_000)
  const args = ['up', mountpoint, '--group-dir', path.join(root, 'group'), '--replicas', String(options.replicas), '--shards', String(options.shards)]
  args.push('--sensor-lag-max', String(options.sensorLagMaxMs), '--clock-skew-max', String(options.clockSkewMaxMs), '--max-wait', String(maxWaitMs))
  const child = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'fffs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let stopping: Promise<void> | null = null
  // Once: a signal handler and a finally block may both ask.
  const stop = (): Promise<void> => (stopping ??= stopOnce())
  const stopOnce = async (): Promise<void> => {
    child.kill('SIGTERM') // up unmounts, then stops its members
    if (!(await exited(child, UP_STOP_TIMEOUT_MS)) && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await exited(child, 5_000)
    }
    await unmountLazy(mountpoint) // a no-op once up unmounted
    await fsp.rm(root, { recursive: true, force: true, maxRetries: 3 })
  }
  log(`wave: starting fffs ${args.join(' ')}`)
  const deadlineMs = Date.now() + UP_READY_TIMEOUT_MS
  while (!output.includes(READY_PREFIX)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadlineMs) {
      await stop()
      throw new Error(`wave: fffs up did not mount within ${UP_READY_TIMEOUT_MS} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // The ready line: `fffs: ready at DIR: 3 members, a meta shard and 2 data shards of 3 replicas, views ...; Ctrl-C to stop`.
  const layout = new RegExp(`${READY_PREFIX}\\S+: (.*); Ctrl-C to stop`).exec(output)?.[1] ?? 'a local group'
  return { mountpoint, description: `local group (fffs up, ${root}): ${layout}`, stop }
}

export interface WaveDemoOptions extends WaveOptions {
  readonly mount?: string
  readonly replicas: number
  readonly shards: number
  readonly png: string
  readonly json: boolean
}

/** Starts (or uses) a mount, runs the experiment, prints the table and writes the PNG. */
export async function runWaveDemo(options: WaveDemoOptions, print: (text: string) => void, log: (line: string) => void): Promise<WaveResult> {
  const group = options.mount === undefined ? await startUpGroup(options, log) : null
  // The group leads its own process group, so Ctrl-C does not reach it: stop it here.
  const onSignal = (): void => void (group?.stop() ?? Promise.resolve()).finally(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let result: WaveResult
  let where: string
  try {
    const mountpoint = group?.mountpoint ?? locate(options.mount!).mountpoint
    where = group?.description ?? `the mount at ${mountpoint}`
    result = await runWaveExperiment(mountpoint, options, log, true)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await group?.stop()
  }
  const pngPath = path.resolve(options.png)
  await fsp.mkdir(path.dirname(pngPath), { recursive: true })
  await fsp.writeFile(pngPath, result.png)
  print(options.json ? JSON.stringify(waveJson(result, pngPath), null, 2) + '\n' : `${renderWave(result, where)}\nPNG: ${pngPath} (rows: frame instants; columns: truth, live reads, platform cut, sensor cut; magenta: tile not read)\n`)
  return result
}
