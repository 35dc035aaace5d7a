// The recovery bench (`node dist/bench/recovery/index.js [--quick] [--sizes-mib 0,1024,4096] [--scenarios a,b,c]`,
// after `npm run build`; `npm run bench -- recovery`): a local group of 3 `fffs serve`
// processes (writeLocalGroup: 127.0.0.1), mounted with `fffs mount --cluster`, filled through
// the mount with `size` bytes of mixed files (large files written in 1 MiB writes as several
// versions each, medium files, and 2000 small files of three versions each), then, for each
// size (0, 1 and 4 GiB by default):
// (a) a writer closes 1 KiB files in a loop; member 2 is killed (SIGKILL) and restarted at once
//     ("without missed data"), then killed again and restarted after `missed` bytes were
//     written without it: time from its restart to running in a view of all three, the bytes
//     its state transfer moved and their rate, against "10 s + what it missed at half the
//     measured disk rate"; the writer's longest gap between acknowledged closes;
// (b) every member killed (SIGKILL), their log and index files dropped from the page cache, all
//     restarted: time to every member running, and to the mount's first acknowledged write;
// (c) member 2 killed, its data directory wiped, restarted: a full state transfer, with the
//     progress lines it logged.
// The figure: time at the largest size / time at 0 for (a) without missed data and (b)
// (target <= 1.5). The disk rate is measured first with dd (O_DIRECT write and read of 1 GiB
// in the bench's temp dir). Targets are reported as PASS/MISS, never asserted.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { READY_PREFIX } from '../../src/cli/output.js'
import { loadGroupConfig, writeLocalGroup, type GroupConfig } from '../../src/replication/config.js'
import { TRANSPORT_DEFAULTS } from '../../src/replication/transport/types.js'
import { dropFileCache, killAll, startMount, stopAll, type Mount } from '../fs/mounts.js'
import { renderText } from '../tables.js'
import { recoverySections, type SizeResult } from './tables.js'

const MiB = 1024 * 1024
const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..', '..') // dist/bench/recovery -> repo
const FFFS_BIN = path.join(repoRoot, 'bin', 'fffs')
const execFileP = promisify(execFile)
const RUNNING_TIMEOUT_MS = 10 * 60_000

interface BenchConfig {
  sizesBytes: number[]
  scenarios: Scenario[]
  missedBytes: number // what member 2 misses in (a)
  smallFiles: number
  smallVersions: number
}

const defaultConfig: BenchConfig = { sizesBytes: [0, 1024 * MiB, 4096 * MiB], scenarios: ['a', 'b', 'c'], missedBytes: 512 * MiB, smallFiles: 2000, smallVersions: 3 }
const quickConfig: BenchConfig = { sizesBytes: [0, 64 * MiB, 256 * MiB], scenarios: ['a', 'b', 'c'], missedBytes: 32 * MiB, smallFiles: 200, smallVersions: 2 }

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`)
}

// ---------------------------------------------------------------- members as processes

/** One `fffs serve` process; its output lines with the time each arrived. */
class MemberProcess {
  readonly id: number
  private readonly configPath: string
  child: ChildProcess | null = null
  lines: Array<{ atMs: number; text: string }> = []

  constructor(id: number, configPath: string) {
    this.id = id
    this.configPath = configPath
  }

  start(): number {
    this.lines = []
    const child = spawn(process.execPath, [FFFS_BIN, 'serve', '--config', this.configPath, '--id', String(this.id)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let partial = ''
    const take = (chunk: Buffer): void => {
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop()!
      const atMs = performance.now()
      for (const text of parts) if (text.trim() !== '') this.lines.push({ atMs, text })
    }
    child.stdout!.on('data', take)
    child.stderr!.on('data', take)
    this.child = child
    live.add(child)
    child.once('exit', () => live.delete(child))
    return performance.now()
  }

  async kill9(): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await gone
  }

  async stop(): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await gone
    clearTimeout(timer)
  }

  /** When a line matching `pattern` arrived at or after `sinceMs` (waiting for it, bounded); its text too. */
  async line(pattern: RegExp, sinceMs = 0, timeoutMs = RUNNING_TIMEOUT_MS): Promise<{ atMs: number; text: string }> {
    const deadlineMs = performance.now() + timeoutMs
    for (;;) {
      const found = this.lines.find((l) => l.atMs >= sinceMs && pattern.test(l.text))
      if (found !== undefined) return found
      if (this.child?.exitCode != null) throw new Error(`member ${this.id} exited: ${this.lines.map((l) => l.text).join('\n')}`)
      if (performance.now() > deadlineMs) throw new Error(`member ${this.id}: no line ${pattern} within ${timeoutMs} ms: ${this.lines.slice(-20).map((l) => l.text).join('\n')}`)
      await sleep(20)
    }
  }
}

const live = new Set<ChildProcess>()
const RUNNING_ALL = /running in view \d+ \[0, 1, 2\]/

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

interface Group {
  readonly config: GroupConfig
  readonly members: MemberProcess[]
  readonly mount: Mount
  stop(): Promise<void>
}

async function startGroup(root: string): Promise<Group> {
  const dir = path.join(root, 'group')
  fs.rmSync(dir, { recursive: true, force: true })
  const config = await loadGroupConfig(await writeLocalGroup(dir, { replicas: 3, shards: 1 }))
  const members = config.members.map((m) => new MemberProcess(m.id, config.path))
  for (const m of members) m.start()
  await Promise.all(members.map((m) => m.line(RUNNING_ALL, 0, 60_000)))
  const mountpoint = path.join(root, 'mnt')
  fs.mkdirSync(mountpoint, { recursive: true })
  const mount = await startMount('fffs cluster', [FFFS_BIN, 'mount', mountpoint, '--cluster', config.path], mountpoint, READY_PREFIX)
  return {
    config,
    members,
    mount,
    async stop() {
      await mount.stop()
      await Promise.all(members.map((m) => m.stop()))
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
    },
  }
}

// ---------------------------------------------------------------- workloads

const pattern = randomBytes(32 * MiB) // file contents: slices of it (no compression or dedupe anywhere to fool)

function slice(seed: number, sizeBytes: number): Buffer {
  const start = (seed * 7_919_993) % (pattern.length - Math.min(sizeBytes, pattern.length))
  return pattern.subarray(start, start + Math.min(sizeBytes, pattern.length))
}

/** Writes `sizeBytes` at `offset` of an open file in 1 MiB writes. */
async function writeRange(handle: fs.promises.FileHandle, offset: number, sizeBytes: number, seed: number): Promise<void> {
  for (let done = 0; done < sizeBytes; ) {
    const n = Math.min(MiB, sizeBytes - done)
    await handle.write(slice(seed + done, n), 0, n, offset + done)
    done += n
  }
}

/** Fills the mount with about `sizeBytes`: large files in 4 versions each (appended quarters), medium files, small files of several versions. */
async function fill(dir: string, sizeBytes: number, config: BenchConfig): Promise<{ bytes: number; versions: number }> {
  if (sizeBytes === 0) return { bytes: 0, versions: 0 }
  fs.mkdirSync(dir, { recursive: true })
  let bytes = 0
  let versions = 0
  const largeBytes = 128 * MiB
  for (let i = 0; bytes < sizeBytes * 0.7; i++) {
    const handle = await fs.promises.open(path.join(dir, `large-${i}`), 'w')
    await handle.close()
    for (let quarter = 0; quarter < 4; quarter++) {
      const h = await fs.promises.open(path.join(dir, `large-${i}`), 'r+')
      await writeRange(h, quarter * (largeBytes / 4), largeBytes / 4, i * 4 + quarter)
      await h.close()
      versions++
    }
    bytes += largeBytes
  }
  for (let i = 0; bytes < sizeBytes * 0.95; i++) {
    const size = (1 + (i % 8)) * MiB
    await fs.promises.writeFile(path.join(dir, `medium-${i}`), slice(i, size))
    bytes += size
    versions++
  }
  for (let v = 0; v < config.smallVersions; v++) {
    for (let i = 0; i < config.smallFiles; i++) {
      const size = 4096 * (1 + ((i * 13 + v) % 16))
      await fs.promises.writeFile(path.join(dir, `small-${i}`), slice(i * 31 + v, size))
      bytes += size
      versions++
    }
  }
  return { bytes, versions }
}

/** Closes 1 KiB files in a loop; the longest gap between acknowledged closes in a window. */
class CloseWriter {
  private readonly closedAtMs: number[] = []
  private failures = 0
  private stopped = false
  private loop: Promise<void> | null = null

  start(dir: string): void {
    fs.mkdirSync(dir, { recursive: true })
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        try {
          await fs.promises.writeFile(path.join(dir, `c-${i % 5000}`), slice(i, 1024))
          this.closedAtMs.push(performance.now())
        } catch {
          this.failures++
          await sleep(20)
        }
      }
    })()
  }

  async stop(): Promise<{ failures: number }> {
    this.stopped = true
    await this.loop
    return { failures: this.failures }
  }

  /** The longest time without an acknowledged close between fromMs and toMs. */
  longestGapMs(fromMs: number, toMs: number): number {
    const inside = this.closedAtMs.filter((t) => t >= fromMs && t <= toMs)
    const points = [fromMs, ...inside, toMs]
    let longest = 0
    for (let i = 1; i < points.length; i++) longest = Math.max(longest, points[i]! - points[i - 1]!)
    return longest
  }

  count(): number {
    return this.closedAtMs.length
  }
}

/** Writes `sizeBytes` more through the mount (4 MiB files), as data a stopped member misses. */
async function writeMissed(dir: string, sizeBytes: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true })
  for (let i = 0, done = 0; done < sizeBytes; i++, done += 4 * MiB) await fs.promises.writeFile(path.join(dir, `missed-${i}`), slice(1000 + i, 4 * MiB))
}

/** Drops a member's log and index files from the page cache (a cold restart, as after a reboot). */
async function dropMemberCache(dataDir: string): Promise<void> {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.isFile()) files.push(full)
    }
  }
  if (fs.existsSync(dataDir)) walk(dataDir)
  for (const file of files) await dropFileCache(file)
}

/** The transfer summary line a member logs ("state transfer from member 0: N records, 1.2 GB in 5.1 s (235 MB/s)"), summed over its transfers. */
function transfers(member: MemberProcess, sinceMs: number): { bytes: number; seconds: number; lines: number; progressLines: number } {
  let bytes = 0
  let seconds = 0
  let lines = 0
  const units: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }
  for (const { atMs, text } of member.lines) {
    if (atMs < sinceMs) continue
    const m = /state transfer from member \d+: \d+ records, ([\d.]+) (B|kB|MB|GB|TB) in ([\d.]+) s/.exec(text)
    if (m === null) continue
    bytes += Number(m[1]) * units[m[2]!]!
    seconds += Number(m[3])
    lines++
  }
  const progressLines = member.lines.filter((l) => l.atMs >= sinceMs && /catching up from member/.test(l.text)).length
  return { bytes, seconds, lines, progressLines }
}

// ---------------------------------------------------------------- scenarios

function dirBytes(dir: string): number {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    total += entry.isDirectory() ? dirBytes(full) : fs.statSync(full).size
  }
  return total
}

type Scenario = 'a' | 'b' | 'c'

async function runSize(root: string, sizeBytes: number, config: BenchConfig, diskMBps: number, errors: string[]): Promise<SizeResult> {
  const label = `${(sizeBytes / MiB).toFixed(0)} MiB`
  const result: SizeResult = { sizeBytes, heldBytes: 0, versions: 0, a0: null, a1: null, b: null, c: null, writerFailures: 0 }
  progress(`${label}: starting a group of 3`)
  const group = await startGroup(root)
  try {
    progress(`${label}: filling`)
    const filled = await fill(path.join(group.mount.mountpoint, 'data'), sizeBytes, config)
    result.versions = filled.versions
    await execFileP('sync', [], { timeout: 600_000 })
    result.heldBytes = dirBytes(dataDirOf(group, 0))
    progress(`${label}: ${filled.bytes} bytes in ${filled.versions} versions; member 0 holds ${result.heldBytes} bytes`)
    if (config.scenarios.includes('a')) await rejoins(group, config, diskMBps, label, result)
    if (config.scenarios.includes('b')) result.b = await totalRestart(group, label)
    if (config.scenarios.includes('c')) result.c = await wipedRejoins(group, label)
  } catch (err) {
    const message = `${label}: ${err instanceof Error ? err.message : String(err)}`
    errors.push(message)
    progress(`FAILED ${message}`)
  } finally {
    progress(`${label}: stopping the group`)
    await group.stop()
  }
  return result
}

const dataDirOf = (group: Group, id: number): string => group.config.members.find((m) => m.id === id)!.dataDir

/** (a) While a writer closes files: member 2 killed and restarted at once, then killed and restarted after it missed `missedBytes`. */
async function rejoins(group: Group, config: BenchConfig, diskMBps: number, label: string, result: SizeResult): Promise<void> {
  const member2 = group.members[2]!
  const writer = new CloseWriter()
  writer.start(path.join(group.mount.mountpoint, 'closes'))
  const rejoin = async (missedBytes: number): Promise<{ runningMs: number; moved: ReturnType<typeof transfers>; gapKillMs: number; gapRejoinMs: number }> => {
    const killedMs = performance.now()
    await member2.kill9()
    await group.members[0]!.line(/installed view \d+ \[0, 1\]/, killedMs)
    if (missedBytes > 0) await writeMissed(path.join(group.mount.mountpoint, 'missed'), missedBytes)
    const restartedMs = member2.start()
    const running = await member2.line(RUNNING_ALL)
    await sleep(500) // the last transfer line follows
    return { runningMs: running.atMs - restartedMs, moved: transfers(member2, restartedMs), gapKillMs: writer.longestGapMs(killedMs, restartedMs), gapRejoinMs: writer.longestGapMs(restartedMs, performance.now()) }
  }
  try {
    await sleep(1000)
    progress(`${label}: (a) kill -9 member 2, restart at once`)
    const now = await rejoin(0)
    result.a0 = { runningMs: now.runningMs, transferBytes: now.moved.bytes, gapKillMs: now.gapKillMs, gapRejoinMs: now.gapRejoinMs }
    progress(`${label}: (a) kill -9 member 2, write ${config.missedBytes / MiB} MiB, restart`)
    const later = await rejoin(config.missedBytes)
    result.a1 = {
      runningMs: later.runningMs,
      transferBytes: later.moved.bytes,
      transferSeconds: later.moved.seconds,
      rateMBps: later.moved.seconds > 0 ? later.moved.bytes / 1e6 / later.moved.seconds : 0,
      boundMs: 10_000 + (config.missedBytes / 1e6 / (diskMBps / 2)) * 1000,
      gapKillMs: later.gapKillMs,
      gapRejoinMs: later.gapRejoinMs,
    }
  } finally {
    result.writerFailures = (await writer.stop()).failures
  }
}

/** (b) Every member killed, its files dropped from the page cache, all restarted: time to running, and to the mount's first write. */
async function totalRestart(group: Group, label: string): Promise<NonNullable<SizeResult['b']>> {
  progress(`${label}: (b) kill -9 every member, drop their files from the page cache, restart`)
  await Promise.all(group.members.map((m) => m.kill9()))
  for (const m of group.config.members) await dropMemberCache(m.dataDir)
  const restartedMs = performance.now()
  for (const m of group.members) m.start()
  const runningAll = await Promise.all(group.members.map((m) => m.line(RUNNING_ALL)))
  let firstWriteMs = NaN
  for (let i = 0; performance.now() - restartedMs < RUNNING_TIMEOUT_MS; i++) {
    try {
      await fs.promises.writeFile(path.join(group.mount.mountpoint, `after-restart-${i}`), 'x')
      firstWriteMs = performance.now() - restartedMs
      break
    } catch {
      await sleep(50)
    }
  }
  return { runningMs: Math.max(...runningAll.map((l) => l.atMs)) - restartedMs, firstWriteMs }
}

/** (c) Member 2 killed, its data directory wiped, restarted: a full state transfer. */
async function wipedRejoins(group: Group, label: string): Promise<NonNullable<SizeResult['c']>> {
  progress(`${label}: (c) kill -9 member 2, wipe its data, restart`)
  const member2 = group.members[2]!
  await member2.kill9()
  fs.rmSync(dataDirOf(group, 2), { recursive: true, force: true })
  const wipedMs = member2.start()
  const rejoined = await member2.line(RUNNING_ALL)
  await sleep(500)
  const full = transfers(member2, wipedMs)
  return {
    runningMs: rejoined.atMs - wipedMs,
    transferBytes: full.bytes,
    transferSeconds: full.seconds,
    rateMBps: full.seconds > 0 ? full.bytes / 1e6 / full.seconds : 0,
    progressLines: full.progressLines,
    sampleLine: member2.lines.find((l) => l.atMs >= wipedMs && /catching up from member/.test(l.text))?.text ?? '',
  }
}

// ---------------------------------------------------------------- report

/** O_DIRECT write then read of 1 GiB in `dir` with dd: the slower of the two, MB/s (10^6 B/s). */
async function diskRateMBps(dir: string, sizeMiB: number): Promise<{ writeMBps: number; readMBps: number }> {
  const file = path.join(dir, 'disk-rate')
  const rate = (stderr: string): number => {
    const m = /([\d.]+) s, /.exec(stderr)
    return m === null ? NaN : (sizeMiB * MiB) / 1e6 / Number(m[1])
  }
  try {
    const written = await execFileP('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${sizeMiB}`, 'oflag=direct', 'conv=fsync'], { timeout: 600_000 })
    const read = await execFileP('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=direct'], { timeout: 600_000 })
    return { writeMBps: rate(written.stderr), readMBps: rate(read.stderr) }
  } finally {
    fs.rmSync(file, { force: true })
  }
}

// ---------------------------------------------------------------- entry

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const sizesAt = args.indexOf('--sizes-mib')
  const scenariosAt = args.indexOf('--scenarios')
  const config: BenchConfig = {
    ...(quick ? quickConfig : defaultConfig),
    ...(sizesAt >= 0 ? { sizesBytes: args[sizesAt + 1]!.split(',').map((s) => Number(s) * MiB) } : {}),
    ...(scenariosAt >= 0 ? { scenarios: args[scenariosAt + 1]!.split(',') as Scenario[] } : {}),
  }
  if (!config.sizesBytes.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--sizes-mib ${args[sizesAt + 1]}: MiB counts expected (0,1024,4096)`)
  if (!config.scenarios.every((s) => ['a', 'b', 'c'].includes(s))) throw new Error(`--scenarios ${args[scenariosAt + 1]}: a, b and/or c expected (a,c)`)
  const started = new Date()
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ')
  const header = `fffs recovery bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''} · tmp ${os.tmpdir()} · load ${load}${quick ? ' · QUICK' : ''}`
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-recovery-'))
  const errors: string[] = []
  const results: SizeResult[] = []
  const onSignal = (): void => {
    for (const child of live) child.kill('SIGKILL')
    void killAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let disk = { writeMBps: NaN, readMBps: NaN }
  try {
    progress('measuring the disk rate (dd, O_DIRECT)')
    disk = await diskRateMBps(root, quick ? 256 : 1024)
    const diskMBps = Math.min(disk.writeMBps, disk.readMBps)
    for (const sizeBytes of config.sizesBytes) {
      const result = await runSize(root, sizeBytes, config, diskMBps, errors)
      results.push(result)
    }
  } finally {
    await stopAll()
    for (const child of live) child.kill('SIGKILL')
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
  }
  const loadAfter = os.loadavg().map((l) => l.toFixed(1)).join(' ')
  const outDir = path.join(repoRoot, 'bench', 'out')
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'recovery.json')
  const tablesConfig = { missedBytes: config.missedBytes, disk, suspectTimeoutMs: TRANSPORT_DEFAULTS.suspectTimeoutMs } // writeLocalGroup's
  fs.writeFileSync(file, JSON.stringify({ started: started.toISOString(), header, loadAfter, config, tablesConfig, results, errors }, null, 2) + '\n')
  process.stdout.write(`${header}\n\n${renderText(recoverySections(results, tablesConfig))}\n${errors.map((e) => `ERROR: ${e}\n`).join('')}\n(wrote ${path.relative(process.cwd(), file) || file}; load after ${loadAfter}; took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`)
  if (errors.length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
