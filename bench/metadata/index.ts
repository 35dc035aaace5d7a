// The metadata and small-file bench (`npm run bench -- metadata [--quick] [--rounds N]
// [--small-files N] [--targets ext4,embedded,embedded-sync,embedded-base,r3,gluster]
// [--base REPO] [--list-budget SECONDS]`): the same Python workload
// (workload.py: plain os calls, each kind of operation timed as one loop) against ext4 (a
// plain temp dir), fffs embedded (`fffs mount`; `embedded-sync` with `--durability
// sync-on-close`; `embedded-base` the fffs built in the checkout REPO, a baseline; these two
// only when named in --targets), fffs r=3 (a local group of 3 `fffs serve` members and `fffs
// mount --cluster`; more variants in FFFS_VARIANTS) and GlusterFS replica 3
// (three bricks on this host, FUSE client; set up and torn down here, see gluster.ts). Rounds
// are interleaved: each target takes its turn (its client mounted, measured, unmounted), then
// the next, and the whole sequence repeats.
//
// A turn: write `seqBytes`, remount the client (a fresh mount: see targets.ts) and drop the
// kernel's caches (`sync; echo 3 > /proc/sys/vm/drop_caches`), read it back cold; then the
// small-file rows (create + 4 KiB + close serially and from 4 processes, stat, scandir +
// lstat, read, rename, unlink, mkdir), `ls -l` of the listing directories live and at a past
// T (made once per target before the rounds, each within the list budget, 900 s by default;
// 10 files added after T so the two differ), and a `git clone`-like replay: `tar -xf` of a
// source tree (sourcetree.ts). Prints the table, writes bench/out/metadata.json and
// bench/out/metadata.png. Never asserts.
//
// Everything started here is stopped on success, failure and SIGINT/SIGTERM; a run that was
// killed outright leaves a lock file whose owner is dead, and the next run removes what it
// left (its mounts, processes and temp dir, and the bench's GlusterFS volume).

import { spawn, type ChildProcess, execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { killAll, stopAll } from '../fs/mounts.js'
import { BenchProgress } from '../progress.js'
import { renderText } from '../tables.js'
import { metadataChart } from './chart.js'
import { clearStaleGluster, mountsUnder, setUpGluster, type Gluster } from './gluster.js'
import { buildSourceTree, type SourceTree } from './sourcetree.js'
import { metadataSections, type MetadataConfig, type Timed, type Turn } from './tables.js'
import { embeddedTarget, FFFS_VARIANTS, glusterTarget, groupTarget, plainTarget, type EmbeddedVariant, type Target } from './targets.js'

const MiB = 1024 * 1024
const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..', '..') // dist/bench/metadata -> repo
const WORKLOAD = path.join(repoRoot, 'bench', 'metadata', 'workload.py')
const ROOT_PREFIX = 'fffs-metabench-'
// Host-wide, not under TMPDIR: the GlusterFS volume a run sets up and clears is the host's.
const LOCK_FILE = path.join(fs.existsSync('/run/lock') ? '/run/lock' : '/tmp', 'fffs-metabench.lock')
const execFileP = promisify(execFile)

export const defaultConfig: MetadataConfig = {
  seqBytes: 256 * MiB,
  smallFiles: 1000,
  procs: 4,
  mkdirs: 500,
  listSizes: [10_000, 100_000],
  treeFiles: 5000,
  rounds: 2,
  createBudgetMs: 900_000, // 100k files at a few hundred per second; fewer are listed past it (noted)
}

export const quickConfig: MetadataConfig = {
  seqBytes: 16 * MiB,
  smallFiles: 100,
  procs: 4,
  mkdirs: 50,
  listSizes: [200, 1000],
  treeFiles: 300,
  rounds: 1,
  createBudgetMs: 60_000,
}

const bench = new BenchProgress('metadata')
const progress = (text: string): void => bench.step(text)

// ---------------------------------------------------------------- running the workload

const liveWorkloads = new Set<ChildProcess>()

/** Runs workload.py (its own process group, so its create processes die with it) and parses its JSON; killed past the deadline. */
function workload<T>(args: string[], deadlineMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = spawn('python3', [WORKLOAD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    liveWorkloads.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    const timer = setTimeout(() => {
      killGroup(child)
      reject(new Error(`workload ${args[0]} timed out after ${deadlineMs / 1000} s`))
    }, deadlineMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      liveWorkloads.delete(child)
      if (code !== 0) return reject(new Error(`workload ${args.join(' ')}: exit ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' / ')}`))
      try {
        resolve(JSON.parse(stdout) as T)
      } catch {
        reject(new Error(`workload ${args[0]}: no JSON on stdout: ${stdout.slice(0, 200)}`))
      }
    })
  })
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------- caches

async function syncAll(): Promise<void> {
  await execFileP('sync', [], { timeout: 300_000 }).catch(() => undefined)
}

/** `sync; echo 3 > /proc/sys/vm/drop_caches`: page cache, dentries and inodes of the whole machine. */
async function dropKernelCaches(): Promise<boolean> {
  await syncAll()
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------- stale state of a killed run

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Takes the lock, first clearing what a run killed outright left (its owner is dead); refuses while another run is alive. */
async function takeLock(): Promise<void> {
  let owner: number | null = null
  try {
    owner = Number(fs.readFileSync(LOCK_FILE, 'utf8').trim())
  } catch {
    // no earlier run, or it finished cleanly
  }
  if (owner !== null && owner !== process.pid && alive(owner)) throw new Error(`another metadata bench is running (pid ${owner}; lock ${LOCK_FILE})`)
  fs.writeFileSync(LOCK_FILE, `${process.pid}\n`)
  await clearStaleGluster(progress)
  for (const name of fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(ROOT_PREFIX))) {
    const root = path.join(os.tmpdir(), name)
    progress(`clearing ${root}, left by a run that did not finish`)
    // Our mounts under it, deepest first, and the processes serving them (their command lines name the dir).
    for (const m of mountsUnder(root).sort((a, b) => b.length - a.length)) await execFileP('umount', ['-l', m]).catch(() => undefined)
    for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)) {
      try {
        if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(root)) process.kill(Number(entry), 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
  }
}

function releaseLock(): void {
  try {
    if (Number(fs.readFileSync(LOCK_FILE, 'utf8').trim()) === process.pid) fs.rmSync(LOCK_FILE)
  } catch {
    // not ours, or already gone
  }
}

// ---------------------------------------------------------------- the run

interface Listing {
  readonly size: number // as configured (made may fall short of it)
  readonly dir: string
  readonly atT: string | null // DIR@T of a target with past cuts
  readonly made: { count: number; seconds: number; hitBudget: boolean }
}

interface Run {
  readonly config: MetadataConfig
  readonly targets: Target[]
  readonly tree: SourceTree
  readonly errors: string[]
  readonly notes: string[]
  readonly turns: Turn[]
  readonly listings: Record<string, Listing[]>
  readonly load: Array<{ at: string; what: string; load1: number }>
}

const LONG_MS = 60 * 60_000

/** Set by SIGINT/SIGTERM: every step then fails instead of being recorded, so the run unwinds to its clean-up. */
let interrupted = false

class Interrupted extends Error {
  constructor() {
    super('interrupted')
  }
}

/** Runs a step; a failure is recorded and the run goes on (null), unless the run was interrupted. */
async function safely<T>(run: Run, label: string, work: () => Promise<T>): Promise<T | null> {
  if (interrupted) throw new Interrupted()
  try {
    return await work()
  } catch (err) {
    if (interrupted) throw new Interrupted()
    const message = `${label}: ${err instanceof Error ? err.message : String(err)}`
    run.errors.push(message)
    progress(`FAILED ${message}`)
    return null
  }
}

function noteLoad(run: Run, what: string): void {
  run.load.push({ at: new Date().toISOString(), what, load1: Math.round(os.loadavg()[0]! * 10) / 10 })
}

/** Makes the listing directories of one target, then T, then 10 files more in each. */
async function prepareListings(run: Run, target: Target): Promise<void> {
  const made: Array<{ size: number; dir: string; result: Listing['made'] }> = []
  for (const size of run.config.listSizes) {
    const dir = path.join(target.dir, `list-${size}`)
    progress(`${target.label}: making ${size} files for the listing rows`)
    const result = await safely(run, `${target.label} listing ${size}`, () =>
      workload<Listing['made']>(['make-files', dir, String(size), String(run.config.procs), String(run.config.createBudgetMs / 1000)], run.config.createBudgetMs + LONG_MS),
    )
    if (result === null) continue
    progress(`${target.label}: ${result.count} files in ${result.seconds.toFixed(1)} s (${(result.count / result.seconds).toFixed(0)}/s, ${run.config.procs} processes)`)
    if (result.hitBudget) run.notes.push(`${target.label}: only ${result.count} of ${size} files fit the ${run.config.createBudgetMs / 1000} s budget; the ${size} rows list ${result.count}`)
    made.push({ size, dir, result })
  }
  await new Promise((resolve) => setTimeout(resolve, 20))
  const T = new Date().toISOString()
  await new Promise((resolve) => setTimeout(resolve, 20))
  run.listings[target.key] = made.map(({ size, dir, result }) => {
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, `after-T-${i}`), 'x') // live differs from T
    return { size, dir, atT: target.pastCuts ? `${dir}@${T}` : null, made: result }
  })
}

const USABLE_WAIT_MS = 180_000

/**
 * Waits (bounded) until `probe` stops throwing right after a start: a mount of an fffs group
 * whose members are still recovering prints its ready line and answers EROFS (node's recursive
 * mkdir reports it as ENOENT) until they run. How long it took is noted.
 */
async function waitUsable(run: Run, label: string, probe: () => void): Promise<void> {
  const startedMs = Date.now()
  let firstError: string | null = null
  for (;;) {
    try {
      probe()
      break
    } catch (err) {
      firstError ??= err instanceof Error ? err.message : String(err)
      if (Date.now() - startedMs > USABLE_WAIT_MS) throw new Error(`not usable ${USABLE_WAIT_MS / 1000} s after it mounted: ${firstError}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  if (firstError !== null) run.notes.push(`${label}: mounted, but ${firstError} for ${((Date.now() - startedMs) / 1000).toFixed(1)} s before it answered`)
}

/** One target's turn in one round. */
async function turn(run: Run, target: Target, round: number): Promise<void> {
  const values: Record<string, Timed> = {}
  run.turns.push({ round, target: target.key, values })
  const label = `${target.label} round ${round + 1}`
  const base = path.join(target.dir, `round-${round}`)
  const keep = async (row: string, what: string, work: () => Promise<Timed>) => {
    progress(`${label}: ${what}`)
    const result = await safely(run, `${label} ${row}`, work)
    if (result !== null) values[row] = result
  }
  noteLoad(run, label)
  if ((await safely(run, `${label} start`, () => target.start())) === null) return
  try {
    if ((await safely(run, `${label} start`, () => waitUsable(run, `${label} start`, () => fs.mkdirSync(base, { recursive: true })))) === null) return
    const big = path.join(base, 'seq')
    await keep('seqWrite', `write ${run.config.seqBytes / MiB} MiB`, () => workload<Timed>(['seq-write', big, String(run.config.seqBytes)], LONG_MS))
    await syncAll()
    progress(`${label}: fresh mount and drop_caches`)
    const restarted = await safely(run, `${label} fresh mount`, async () => {
      await target.stop()
      await target.start()
      await waitUsable(run, `${label} fresh mount`, () => fs.statSync(base))
    })
    if (restarted === null) return // the finally still stops what did start
    if (!(await dropKernelCaches())) run.notes.push(`${label}: could not write /proc/sys/vm/drop_caches (not root?): the read may be warm`)
    if (values.seqWrite !== undefined) await keep('coldRead', 'cold read', () => workload<Timed>(['seq-read', big], LONG_MS))
    const small = await safely(run, `${label} small files`, () => {
      progress(`${label}: small files (${run.config.smallFiles}) and mkdir (${run.config.mkdirs})`)
      return workload<Record<string, Timed>>(['small', path.join(base, 'small'), String(run.config.smallFiles), String(run.config.procs), String(run.config.mkdirs)], LONG_MS)
    })
    Object.assign(values, small ?? {})
    for (const listing of run.listings[target.key] ?? []) {
      const size = listing.size
      await keep(`list${size}`, `ls -l of ${listing.made.count} files, live`, () => workload<Timed>(['ls', listing.dir], LONG_MS))
      if (listing.atT !== null) await keep(`list${size}AtT`, `ls -l of ${listing.made.count} files at T`, () => workload<Timed>(['ls', listing.atT!], LONG_MS))
    }
    await keep('untar', `tar -xf of ${run.tree.files} files`, () => workload<Timed>(['untar', run.tree.tarball, path.join(base, 'tree')], LONG_MS))
    if (values.untar !== undefined && values.untar.count !== run.tree.files) run.errors.push(`${label} untar: ${values.untar.count} files unpacked, ${run.tree.files} in the tarball`)
  } finally {
    await syncAll()
    await safely(run, `${label} stop`, () => target.stop())
  }
}

function parseArgs(argv: string[]): { config: MetadataConfig; only: string[] | null; quick: boolean; baseRepo: string | null } {
  const quick = argv.includes('--quick')
  const value = (flag: string) => {
    const at = argv.indexOf(flag)
    return at >= 0 ? argv[at + 1] : undefined
  }
  const rounds = value('--rounds')
  const budget = value('--list-budget') // seconds per listing directory
  const smallFiles = value('--small-files')
  const config = {
    ...(quick ? quickConfig : defaultConfig),
    ...(rounds !== undefined ? { rounds: Number(rounds) } : {}),
    ...(smallFiles !== undefined ? { smallFiles: Number(smallFiles), mkdirs: Math.max(1, Math.floor(Number(smallFiles) / 2)) } : {}),
    ...(budget !== undefined ? { createBudgetMs: Number(budget) * 1000 } : {}),
  }
  if (!(Number.isInteger(config.rounds) && config.rounds > 0)) throw new Error(`--rounds ${rounds}: a positive integer expected`)
  if (!(config.createBudgetMs > 0)) throw new Error(`--list-budget ${budget}: a positive number of seconds expected`)
  if (!(Number.isInteger(config.smallFiles) && config.smallFiles > 0)) throw new Error(`--small-files ${smallFiles}: a positive integer expected`)
  const base = value('--base')
  const baseRepo = base === undefined ? null : path.resolve(base)
  if (baseRepo !== null && !fs.existsSync(path.join(baseRepo, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`--base ${base}: no built fffs there (dist/src/cli/main.js)`)
  const only = value('--targets')?.split(',') ?? null
  const known = ['ext4', 'embedded', 'embedded-sync', ...(baseRepo !== null ? ['embedded-base'] : []), ...FFFS_VARIANTS.map((v) => v.key), 'gluster']
  const unknown = (only ?? []).filter((k) => !known.includes(k))
  if (unknown.length > 0) throw new Error(`--targets: unknown ${unknown.join(', ')} (known: ${known.join(', ')}; embedded-base needs --base REPO)`)
  return { config, only, quick, baseRepo }
}

/** The embedded mounts measured: this checkout's in both durability modes, and the baseline's (`--base`). */
function embeddedVariants(baseRepo: string | null): EmbeddedVariant[] {
  const variants: EmbeddedVariant[] = [
    { key: 'embedded', label: 'fffs embedded', repoRoot, flags: [] },
    { key: 'embedded-sync', label: 'fffs embedded sync-on-close', repoRoot, flags: ['--durability', 'sync-on-close'] },
  ]
  if (baseRepo !== null) variants.push({ key: 'embedded-base', label: `fffs embedded, base ${path.basename(baseRepo)}`, repoRoot: baseRepo, flags: [] })
  return variants
}

/** Sets up the targets, makes their listing directories, then the interleaved rounds. */
async function measure(run: Run, wanted: (key: string) => boolean, root: string, baseRepo: string | null, onGluster: (g: Gluster) => void): Promise<void> {
  if (wanted('ext4')) run.targets.push(plainTarget(root))
  for (const variant of embeddedVariants(baseRepo)) if (wanted(variant.key)) run.targets.push(embeddedTarget(root, variant))
  for (const variant of FFFS_VARIANTS) if (wanted(variant.key)) run.targets.push(groupTarget(repoRoot, root, variant))
  if (wanted('gluster')) {
    const gluster = await safely(run, 'GlusterFS set-up', () => setUpGluster(path.join(root, 'gluster-bricks'), progress))
    if (gluster !== null) {
      onGluster(gluster)
      run.targets.push(glusterTarget(root, gluster))
      run.notes.push(`GlusterFS: ${gluster.version}, default volume options; glusterd ${gluster.startedGlusterd ? 'started by the bench' : 'already running'}`)
    }
  }
  for (const target of run.targets) {
    noteLoad(run, `${target.label} listings`)
    if ((await safely(run, `${target.label} start`, () => target.start())) === null) continue
    try {
      await safely(run, `${target.label} listings`, () => prepareListings(run, target))
    } finally {
      await syncAll()
      await safely(run, `${target.label} stop`, () => target.stop())
    }
  }
  for (let round = 0; round < run.config.rounds; round++) {
    bench.round(round, run.config.rounds)
    for (const target of run.targets) await turn(run, target, round)
  }
  noteLoad(run, 'end')
}

async function main(): Promise<void> {
  const { config, only, quick, baseRepo } = parseArgs(process.argv.slice(2))
  const wanted = (key: string) => (only === null ? key !== 'embedded-sync' && key !== 'embedded-base' : only.includes(key))
  const started = new Date()
  const header = `fffs metadata bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''} · tmp ${os.tmpdir()} · load ${os.loadavg()[0]!.toFixed(1)}${quick ? ' · QUICK' : ''}`
  await takeLock()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), ROOT_PREFIX))
  let gluster: Gluster | null = null
  const targets: Target[] = []
  const cleanUp = async () => {
    for (const child of liveWorkloads) killGroup(child)
    await stopAll()
    for (const target of targets) await target.close().catch((err: unknown) => progress(`${target.label}: close: ${String(err)}`))
    await gluster?.teardown()
    gluster = null
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
    releaseLock()
  }
  // A signal fails the step under way (its workload and mounts killed) and every step after it;
  // the finally below then stops the rest. Should that hang, the process exits anyway.
  const onSignal = () => {
    progress('interrupted: stopping every mount, group and GlusterFS volume of this run')
    interrupted = true
    for (const child of liveWorkloads) killGroup(child)
    void killAll()
    setTimeout(() => process.exit(130), 180_000).unref()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let run: Run
  try {
    progress(`packing the source tree (${config.treeFiles} files)`)
    const tree = await buildSourceTree(path.join(root, 'tree.tar'), config.treeFiles)
    run = { config, tree, targets, errors: [], notes: [], turns: [], listings: {}, load: [] }
    await measure(run, wanted, root, baseRepo, (g) => (gluster = g))
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    progress('stopping everything this run started')
    await cleanUp()
  }
  const json = {
    started: started.toISOString(),
    header,
    config,
    targets: run.targets.map((t) => ({ key: t.key, label: t.label, freshMount: t.freshMount, pastCuts: t.pastCuts })),
    turns: run.turns,
    listings: Object.fromEntries(Object.entries(run.listings).map(([k, ls]) => [k, ls.map((l) => l.made)])),
    tree: { source: run.tree.source, files: run.tree.files, bytes: run.tree.bytes, sha256: run.tree.sha256 },
    load: run.load,
    notes: run.notes,
    errors: run.errors,
  }
  const outDir = path.join(repoRoot, 'bench', 'out')
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'metadata.json')
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + '\n')
  fs.writeFileSync(path.join(outDir, 'metadata.png'), metadataChart(json))
  const text = [
    renderText(metadataSections(json)),
    ...run.notes.map((n) => `note: ${n}`),
    ...run.errors.map((e) => `ERROR: ${e}`),
  ].join('\n')
  process.stdout.write(`${header}\n\n${text}\n\n(wrote ${path.relative(process.cwd(), file) || file} and metadata.png; took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`)
  if (run.errors.length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  if (err instanceof Interrupted) {
    process.stderr.write('bench: interrupted; everything this run started is stopped, nothing written\n')
    process.exitCode = 130
    return
  }
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
