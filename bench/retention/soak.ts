// The retention soak (`npm run bench -- retention --soak [--total-gb N] [--keep-all-for D]
// [--gc-budget MiBs] [--quick]`): a long sensor stream (100 files, each op either rewrites a
// file whole or appends to it) into an embedded mount with a short retention policy and
// background segment GC, its data dir on the real disk. Every few seconds it samples the data
// dir's disk use (allocated blocks), the live data (file sizes through the mount), the bytes
// written during the last keepAllFor (the retained-history bound the target is stated against),
// the old content of the files rewritten during it (what retention must keep, strictly), the
// history floor (user.fffs.history_floor) and the write rate. Throughput against a second mount
// keeping every version: the stream is written in phases, and every BASELINE_EVERY-th phase the
// same stream (a generator of its own) is also written to the baseline mount, before or after
// the GC phase in turn, so the baseline takes 1/BASELINE_EVERY of the bytes (its disk grows
// without bound) and its phases are spread over the whole run. Writes
// bench/out/retention-soak.json, retention-soak.png and the GC mount's log (retention-soak-mount.log).

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { READY_PREFIX } from '../../src/cli/output.js'
import { XATTR_HISTORY_FLOOR } from '../../src/fs/operations.js'
import { parseDurationMs } from '../../src/temporal/duration.js'
import { startMount, stopAll, type Mount } from '../fs/mounts.js'
import { renderText } from '../tables.js'
import { soakChart } from './soakChart.js'
import { soakSections, type SoakBenchJson, type SoakPhase, type SoakSample } from './soakTables.js'

const MiB = 1024 * 1024
const FILES = 100
const REWRITE_BYTES = 4 * MiB // a whole-file rewrite leaves the file this size
const APPEND_BYTES = 1 * MiB
const REWRITE_ONE_IN = 4 // one op in four rewrites, the others append
const BASELINE_EVERY = 4
const MIN_FREE_BYTES = 10e9 // the disk is shared: the soak stops rather than fill it

interface SoakConfig {
  readonly totalBytes: number
  readonly phaseBytes: number
  readonly keepAllFor: string
  readonly keepAllForMs: number
  readonly gcBudgetMiBs: number
  readonly sampleEveryMs: number
}

function configFrom(argv: readonly string[]): SoakConfig {
  const quick = argv.includes('--quick')
  const valueOf = (flag: string): string | undefined => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined)
  const totalGb = Number(valueOf('--total-gb') ?? (quick ? 1 : 20))
  if (!(totalGb > 0)) throw new Error(`--total-gb wants a positive number of GB, got ${valueOf('--total-gb')}`)
  // The stream runs at 200-400 MB/s here, so 20 GB spans several windows of 15 s; a longer
  // keepAllFor needs a longer stream (--total-gb) to be more than one window.
  const keepAllFor = valueOf('--keep-all-for') ?? (quick ? '3s' : '15s')
  const keepAllForMs = parseDurationMs(keepAllFor)
  if (keepAllForMs === null || keepAllForMs <= 0) throw new Error(`--keep-all-for wants a duration (10s, 2m), got ${keepAllFor}`)
  const gcBudgetMiBs = Number(valueOf('--gc-budget') ?? 64)
  if (!(gcBudgetMiBs > 0)) throw new Error(`--gc-budget wants MiB/s, got ${valueOf('--gc-budget')}`)
  return { totalBytes: totalGb * 1e9, phaseBytes: (quick ? 32 : 256) * MiB, keepAllFor, keepAllForMs, gcBudgetMiBs, sampleEveryMs: quick ? 500 : 2000 }
}

/** The sensor stream: op k picks a file (a fixed pseudo-random sequence) and rewrites it whole or appends. */
class SensorStream {
  private state = 0x2545f491
  private op = 0
  private readonly rewrite = Buffer.alloc(REWRITE_BYTES)
  private readonly append = Buffer.alloc(APPEND_BYTES)
  private readonly sizes = new Map<string, number>()

  constructor(private readonly dir: string) {}

  /** Writes one op; returns the bytes written and the bytes it superseded (a rewrite: the file's old content; an append: none, they stay live). */
  next(): { writtenBytes: number; supersededBytes: number } {
    this.state = (Math.imul(this.state, 1103515245) + 12345) >>> 0
    const file = path.join(this.dir, `sensor-${String((this.state >>> 8) % FILES).padStart(3, '0')}.bin`)
    const before = this.sizes.get(file)
    const whole = (this.state >>> 4) % REWRITE_ONE_IN === 0 || before === undefined
    const payload = whole ? this.rewrite : this.append
    payload.fill(this.op & 0xff) // each op's bytes differ from the last (no dedup can flatter it)
    payload.writeUInt32LE(this.op++, 0)
    if (whole) fs.writeFileSync(file, payload)
    else fs.appendFileSync(file, payload)
    this.sizes.set(file, (whole ? 0 : before!) + payload.length)
    return { writtenBytes: payload.length, supersededBytes: whole ? (before ?? 0) : 0 }
  }
}

/** Allocated bytes under a directory (du's default: blocks, not sizes). */
function diskBytes(dir: string): number {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const st = fs.lstatSync(path.join(entry.parentPath, entry.name))
    total += st.blocks * 512
  }
  return total + fs.lstatSync(dir).blocks * 512
}

function liveBytes(mountpoint: string): number {
  return fs.readdirSync(mountpoint).reduce((sum, name) => sum + fs.statSync(path.join(mountpoint, name)).size, 0)
}

function freeBytes(dir: string): number {
  const st = fs.statfsSync(dir)
  return st.bavail * st.bsize
}

/** The mount's history floor, or null while it has none. */
function historyFloor(mountpoint: string): string | null {
  try {
    const value = execFileSync('getfattr', ['--only-values', '-n', XATTR_HISTORY_FLOOR, mountpoint], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return value === '' ? null : value
  } catch {
    return null // no floor yet (ENODATA)
  }
}

/** A running total over time (bytes written, bytes superseded), to answer "how much during the last keepAllFor". */
class RunningTotal {
  private readonly times: number[] = [0]
  private readonly totals: number[] = [0]

  add(atMs: number, total: number): void {
    this.times.push(atMs)
    this.totals.push(total)
  }

  /** How much the total grew in (atMs - windowMs, atMs]. */
  within(atMs: number, windowMs: number): number {
    const from = atMs - windowMs
    let lo = 0
    let hi = this.times.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.times[mid]! <= from) lo = mid
      else hi = mid - 1
    }
    return this.totals[this.totals.length - 1]! - this.totals[lo]!
  }
}

export async function runSoak(argv: readonly string[], repoRoot: string): Promise<void> {
  const config = configFrom(argv)
  const quick = argv.includes('--quick')
  // At worst (nothing collected) both mounts keep everything written to them.
  const worstBytes = config.totalBytes * (1 + 1 / BASELINE_EVERY) + MIN_FREE_BYTES
  if (freeBytes(os.tmpdir()) < worstBytes) throw new Error(`${os.tmpdir()} has ${(freeBytes(os.tmpdir()) / 1e9).toFixed(0)} GB free, the soak may need ${(worstBytes / 1e9).toFixed(0)} GB: try a smaller --total-gb`)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-soak-')) // on the real disk: 20 GB does not fit a tmpfs
  const header = `${new Date().toISOString()} node ${process.version} ${os.release()} ${os.cpus().length} CPUs load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${quick ? ' QUICK' : ''}`
  const fffsBin = path.join(repoRoot, 'bin', 'fffs')
  try {
    const mountOf = async (target: 'gc' | 'baseline'): Promise<{ mount: Mount; dataDir: string }> => {
      const mountpoint = path.join(root, `${target}-mnt`)
      const dataDir = path.join(root, `${target}-data`)
      const flags = target === 'gc' ? ['--keep-all-for', config.keepAllFor, '--force-retention', '--gc-budget', String(config.gcBudgetMiBs)] : []
      const mount = await startMount(`fffs (${target})`, [fffsBin, 'mount', mountpoint, '--data-dir', dataDir, ...flags], mountpoint, READY_PREFIX)
      return { mount, dataDir }
    }
    const gc = await mountOf('gc')
    const baseline = await mountOf('baseline')
    const streams = { gc: new SensorStream(gc.mount.mountpoint), baseline: new SensorStream(baseline.mount.mountpoint) }

    const startMs = performance.now()
    const written = new RunningTotal()
    const superseded = new RunningTotal()
    let gcSuperseded = 0
    const samples: SoakSample[] = []
    const phases: SoakPhase[] = []
    let gcWritten = 0
    let lastSample = { atMs: 0, gcWritten: 0 }
    let sampleMs = 0 // time spent sampling, kept out of the phases' write time

    const sample = (): void => {
      const began = performance.now()
      if (freeBytes(root) < MIN_FREE_BYTES) throw new Error(`under ${MIN_FREE_BYTES / 1e9} GB free on ${root}: stopping`)
      const floor = historyFloor(gc.mount.mountpoint)
      const atMs = performance.now() - startMs
      const floorAgeSec = floor === null ? null : (Date.now() - Date.parse(floor)) / 1000
      samples.push({
        tSec: atMs / 1000,
        diskBytes: diskBytes(gc.dataDir),
        liveBytes: liveBytes(gc.mount.mountpoint),
        retainedBoundBytes: written.within(atMs, config.keepAllForMs),
        supersededBytes: superseded.within(atMs, config.keepAllForMs),
        writtenBytes: gcWritten,
        writeMBps: (gcWritten - lastSample.gcWritten) / 1e6 / ((atMs - lastSample.atMs) / 1000),
        floor,
        floorAgeSec,
        sinceFloorBytes: floorAgeSec === null ? null : written.within(atMs, floorAgeSec * 1000),
      })
      lastSample = { atMs, gcWritten }
      sampleMs += performance.now() - began
    }

    const writePhase = (target: 'gc' | 'baseline', index: number): void => {
      const began = performance.now()
      const sampledBefore = sampleMs
      let bytes = 0
      while (bytes < config.phaseBytes) {
        const op = streams[target].next()
        bytes += op.writtenBytes
        if (target === 'gc') {
          const atMs = performance.now() - startMs
          gcWritten += op.writtenBytes
          gcSuperseded += op.supersededBytes
          written.add(atMs, gcWritten)
          superseded.add(atMs, gcSuperseded)
        }
        if (performance.now() - startMs - lastSample.atMs >= config.sampleEveryMs) sample()
      }
      const seconds = (performance.now() - began - (sampleMs - sampledBefore)) / 1000
      phases.push({ target, index, bytes, mbPerS: bytes / 1e6 / seconds, pastKeepAllFor: began - startMs >= config.keepAllForMs })
    }

    sample()
    for (let index = 0; gcWritten < config.totalBytes; index++) {
      const withBaseline = index % BASELINE_EVERY === BASELINE_EVERY - 1
      const baselineFirst = Math.floor(index / BASELINE_EVERY) % 2 === 1 // alternate the order of each pair
      if (withBaseline && baselineFirst) writePhase('baseline', index)
      writePhase('gc', index)
      if (withBaseline && !baselineFirst) writePhase('baseline', index)
      await new Promise((resolve) => setImmediate(resolve)) // the writes are synchronous: let the mounts' log pipes drain (a full pipe would stall a mount)
      process.stderr.write(`retention soak: phase ${index + 1}: ${(gcWritten / 1e9).toFixed(2)} GB written, disk ${(samples.at(-1)!.diskBytes / 1e9).toFixed(2)} GB, ${phases.at(-1)!.mbPerS.toFixed(0)} MB/s\n`)
    }
    sample()
    const baselineDiskBytes = diskBytes(baseline.dataDir)
    await stopAll()
    const gcMountLog = gc.mount.log.join('')

    const json: SoakBenchJson = {
      header,
      totalGb: config.totalBytes / 1e9,
      files: FILES,
      rewriteBytes: REWRITE_BYTES,
      appendBytes: APPEND_BYTES,
      rewriteOneIn: REWRITE_ONE_IN,
      keepAllFor: config.keepAllFor,
      gcBudgetMiBs: config.gcBudgetMiBs,
      phaseBytes: config.phaseBytes,
      baselineEvery: BASELINE_EVERY,
      dataDir: `${os.tmpdir()} (${fs.statfsSync(os.tmpdir()).type === 0x01021994 ? 'tmpfs' : 'disk'})`,
      baselineDiskBytes,
      samples,
      phases,
    }
    process.stdout.write(`${header}\n${renderText(soakSections(json))}\n`)
    const outDir = path.join(repoRoot, 'bench', 'out')
    fs.mkdirSync(outDir, { recursive: true })
    fs.writeFileSync(path.join(outDir, 'retention-soak.json'), JSON.stringify(json, null, 2) + '\n')
    fs.writeFileSync(path.join(outDir, 'retention-soak.png'), soakChart(json))
    fs.writeFileSync(path.join(outDir, 'retention-soak-mount.log'), gcMountLog) // the GC mount's retention runs, timestamped (its last lines)
  } finally {
    await stopAll()
    fs.rmSync(root, { recursive: true, force: true })
  }
}
