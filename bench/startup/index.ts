// Start-up bench: how long `npm start` takes to its ready line in a fresh clone (node modules,
// native addons, TypeScript build, then the group) and again with nothing changed; and the
// CLI's own start-up (`fffs --help`, `status`, `log`, `cat` against the running mount) beside
// `node -e 0`, in paired rounds, as medians and ratios. Writes bench/out/startup.json.
//
// The clone is of the committed HEAD (git clone of this repository), in a temp dir whose
// ./mnt is the mount; XDG_DATA_HOME points into it, so the group's data goes away with it.
// `--quick`: no fresh clone (its build is the slow part) and fewer rounds.

import { execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { READY_PREFIX } from '../../src/cli/output.js'
import { BenchProgress } from '../progress.js'
import { textTable } from '../tables.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..', '..') // dist/bench/startup -> repo
const outDir = path.join(repoRoot, 'bench', 'out')
const READY_TIMEOUT_MS = 15 * 60_000
const STOP_TIMEOUT_MS = 30_000

const quick = process.argv.includes('--quick')
const progress = new BenchProgress('startup')

interface Start {
  readonly readyMs: number
  readonly stop: () => Promise<void>
}

/** `npm start` in `clone`, timed to its ready line; stop() sends Ctrl-C to its process group. */
async function npmStart(clone: string, env: NodeJS.ProcessEnv): Promise<Start> {
  const startedMs = performance.now()
  const child = spawn('npm', ['start'], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(-child.pid!, 'SIGINT')
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start: no ready line within ${READY_TIMEOUT_MS} ms:\n${out}`)), READY_TIMEOUT_MS)
    const check = (): void => {
      if (!out.includes(READY_PREFIX)) return
      clearTimeout(timer)
      resolve(performance.now() - startedMs)
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`npm start exited (${code}) before its ready line:\n${out}`))
    })
  }).catch(async (err: unknown) => {
    await stop()
    throw err
  })
  return { readyMs, stop }
}

/** Wall time of one run of a command, ms (it must succeed). */
function wallMs(command: string, args: string[], cwd: string): number {
  const startedMs = performance.now()
  const run = spawnSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
  const ms = performance.now() - startedMs
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${run.status}: ${run.stderr.toString()}`)
  return ms
}

/**
 * CPU time (user + system) of one run, ms: on a loaded machine the steadier measure of how much
 * work a start is. bash's `times` prints its children's totals on its second line.
 */
function cpuMs(command: string, args: string[], cwd: string): number {
  const run = spawnSync('bash', ['-c', '"$@" >/dev/null || exit 1; times', 'bash', command, ...args], { cwd, encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${run.status}: ${run.stderr}`)
  const [user, system] = run.stdout.trim().split('\n')[1]!.split(/\s+/) // "0m0.040s 0m0.012s"
  const ms = (t: string): number => {
    const [minutes, seconds] = t.replace(/s$/, '').split('m')
    return (Number(minutes) * 60 + Number(seconds)) * 1000
  }
  return ms(user!) + ms(system!)
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!

async function main(): Promise<void> {
  const started = new Date()
  const header = `fffs startup bench ${started.toISOString()} · node ${process.version} · ${os.cpus().length} CPU · load ${os.loadavg()[0]!.toFixed(1)}${quick ? ' · QUICK' : ''}`
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-startup-'))
  const clone = path.join(root, 'fffs')
  const env = { ...process.env, XDG_DATA_HOME: path.join(root, 'xdg') }
  const rows: string[][] = [['measure', 'value', 'baseline', 'ratio']]
  const json: Record<string, unknown> = { started: started.toISOString(), header }
  let running: Start | null = null
  try {
    progress.step(`cloning HEAD into ${clone}`)
    execFileSync('git', ['clone', '--quiet', repoRoot, clone])
    if (quick) {
      // Build the clone without timing it: the unchanged start is what is measured.
      for (const dir of ['node_modules', 'native/build', 'dist']) fs.cpSync(path.join(repoRoot, dir), path.join(clone, dir), { recursive: true, verbatimSymlinks: true })
      execFileSync('bash', ['scripts/setup.sh'], { cwd: clone, env, stdio: 'inherit' })
    } else {
      progress.step('npm start in the fresh clone (node modules, native addons, build, the group)')
      running = await npmStart(clone, env)
      json.freshCloneReadyMs = Math.round(running.readyMs)
      rows.push(['npm start to the ready line, fresh clone', (running.readyMs / 1000).toFixed(1) + ' s', '', ''])
      await running.stop()
    }
    progress.step('npm start with nothing changed')
    running = await npmStart(clone, env)
    json.unchangedReadyMs = Math.round(running.readyMs)
    rows.push(['npm start to the ready line, nothing changed', (running.readyMs / 1000).toFixed(1) + ' s', 'target < 5 s', running.readyMs < 5000 ? 'PASS' : 'MISS'])

    // The CLI against the running mount, beside node's own start, in paired rounds.
    const mnt = path.join(clone, 'mnt')
    fs.writeFileSync(path.join(mnt, 'bench.txt'), 'startup bench\n')
    const fffs = path.join(clone, 'bin', 'fffs')
    const commands: Record<string, string[]> = {
      'node -e 0': ['-e', '0'],
      'fffs --help': [fffs, '--help'],
      'fffs status': [fffs, 'status', '--mount', mnt],
      'fffs log': [fffs, 'log', path.join(mnt, 'bench.txt')],
      'fffs cat': [fffs, 'cat', path.join(mnt, 'bench.txt')],
    }
    const rounds = quick ? 5 : 15
    progress.step(`CLI start-up: ${rounds} paired rounds of ${Object.keys(commands).join(', ')}`)
    const wall: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
    const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
    for (let r = 0; r < rounds; r++) {
      const order = Object.keys(commands)
      if (r % 2 === 1) order.reverse() // alternate which goes first
      for (const name of order) {
        wall[name]!.push(wallMs(process.execPath, commands[name]!, clone))
        cpu[name]!.push(cpuMs(process.execPath, commands[name]!, clone))
      }
    }
    const medians = (samples: Record<string, number[]>): Record<string, number> => Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.round(median(v) * 10) / 10]))
    json.cliMedianWallMs = medians(wall)
    json.cliMedianCpuMs = medians(cpu)
    const [nodeWallMs, nodeCpuMs] = [median(wall['node -e 0']!), median(cpu['node -e 0']!)]
    for (const name of Object.keys(commands)) {
      if (name === 'node -e 0') continue
      const ratio = median(wall[name]!) / nodeWallMs
      rows.push([`${name}: wall (median of ${rounds})`, `${median(wall[name]!).toFixed(0)} ms`, `node -e 0 ${nodeWallMs.toFixed(0)} ms`, `${ratio.toFixed(2)}× ${ratio <= 1.5 ? 'PASS' : 'MISS'} (≤ 1.5×)`])
      rows.push([`  CPU (user + system)`, `${median(cpu[name]!).toFixed(0)} ms`, `node -e 0 ${nodeCpuMs.toFixed(0)} ms`, `${(median(cpu[name]!) / nodeCpuMs).toFixed(2)}×`])
    }
  } finally {
    await running?.stop()
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
  }
  json.rows = rows // printed here and by bench/report.ts
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'startup.json')
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n')
  process.stdout.write(`${header}\n\n${textTable(rows)}\n(wrote ${path.relative(process.cwd(), file) || file})\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
