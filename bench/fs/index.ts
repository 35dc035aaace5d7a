// The file-system bench: fffs against a null fuse-native FS (the binding's ceiling) and the
// plain backing directory, plus frozen-read caching, time-travel latency and large listings.
// Everything is measured in one run; results are a table (returned) and a JSON object.

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchProgress } from '../progress.js'
import { dropFileCache, inWorker as runInWorker, killAll, startFffs, startNullFs, stopAll, type Mount } from './mounts.js'
import type { Latency, Listing, Made, Rate, Task, Throughput } from './tasks.js'
import { renderText, type Section } from '../tables.js'

const MiB = 1024 * 1024
const execFileP = promisify(execFile)
const here = path.dirname(fileURLToPath(import.meta.url))

export interface FsBenchConfig {
  seqBytes: number
  frozenBytes: number
  smallFiles: number
  smallFileBytes: number
  versionCounts: number[]
  ttSamples: number
  lsFiles: number
  createBudgetMs: number // per bulk creation (versions, listing files); scaled down past it
  repeats: number // interleaved rounds of section 1; the median is reported
}

export const defaultConfig: FsBenchConfig = {
  seqBytes: 512 * MiB,
  frozenBytes: 256 * MiB,
  smallFiles: 2000,
  smallFileBytes: 4096,
  versionCounts: [1, 1000, 100_000],
  ttSamples: 2000,
  lsFiles: 100_000,
  createBudgetMs: 360_000, // 100k durable versions or files at ~300-500 per second
  repeats: 3,
}

export const quickConfig: FsBenchConfig = {
  seqBytes: 32 * MiB,
  frozenBytes: 16 * MiB,
  smallFiles: 200,
  smallFileBytes: 4096,
  versionCounts: [1, 100, 1000],
  ttSamples: 200,
  lsFiles: 1000,
  createBudgetMs: 30_000,
  repeats: 1,
}

function inWorker<T>(task: Task, deadlineMs: number): Promise<T> {
  return runInWorker<T>(path.join(here, 'worker.js'), task, deadlineMs)
}

const mbps = (t: Throughput) => t.bytes / 1e6 / t.seconds
const perSec = (r: Rate) => r.count / r.seconds

const benchProgress = new BenchProgress('fs')
const progress = (text: string): void => benchProgress.step(text)

function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-'
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits)
}
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || b === 0 ? null : a / b)
const fmtRatio = (r: number | null) => (r === null || !Number.isFinite(r) ? '-' : r.toFixed(2))

async function safely<T>(label: string, errors: string[], run: () => Promise<T>): Promise<T | null> {
  try {
    return await run()
  } catch (err) {
    const message = `${label}: ${err instanceof Error ? err.message : String(err)}`
    errors.push(message)
    progress(`FAILED ${message}`)
    return null
  }
}

export interface FsBenchResult {
  json: Record<string, unknown>
  text: string
}

export async function runFsBench(repoRoot: string, config: FsBenchConfig): Promise<FsBenchResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-'))
  const dirs = { fffsMnt: path.join(root, 'fffs-mnt'), fffsData: path.join(root, 'fffs-data'), nullMnt: path.join(root, 'null-mnt'), plain: path.join(root, 'plain') }
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true })
  const errors: string[] = []
  const notes: string[] = []
  const r: Record<string, unknown> = {}
  let fffs: Mount | null = null
  const onSignal = () => {
    void killAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    fffs = await startFffs(repoRoot, dirs.fffsMnt, dirs.fffsData)
    await startNullFs(repoRoot, dirs.nullMnt)
    const F = (p: string) => path.join(dirs.fffsMnt, p)
    const N = (p: string) => path.join(dirs.nullMnt, p)
    const P = (p: string) => path.join(dirs.plain, p)
    const big = 30 * 60_000

    // 1. Sequential write / read and small files: `repeats` interleaved rounds, median reported
    // (the host is shared and noisy). A `sync` before each write starts every run with no dirty
    // pages left by the previous one.
    const seq = { bytes: config.seqBytes, blockBytes: MiB }
    const runs: Record<string, Record<string, Array<Throughput | Rate>>> = { seqWrite: {}, seqRead: {}, smallFiles: {} }
    const keep = (group: string, key: string, value: Throughput | Rate | null) => {
      if (value !== null) (runs[group]![key] ??= []).push(value)
    }
    const settle = () => execFileP('sync', [], { timeout: 300_000 }).catch(() => undefined)
    const w = async (label: string, file: string, fsync: boolean) => {
      await settle()
      progress(`${label}: write ${config.seqBytes / MiB} MiB${fsync ? ' + fsync' : ''}`)
      return safely(label, errors, () => inWorker<Throughput>({ kind: 'seqWrite', file, ...seq, fsync }, big))
    }
    const rd = async (label: string, file: string) => {
      const dropped = await dropFileCache(file)
      if (!dropped) notes.push(`could not drop the page cache of ${label} ${path.basename(file)}: its read may be warm`)
      progress(`${label}: read ${path.basename(file)} (page cache dropped: ${dropped})`)
      return safely(label, errors, () => inWorker<Throughput>({ kind: 'seqRead', file, blockBytes: MiB }, big))
    }
    const sf = async (label: string, dir: string, fsync: boolean) => {
      await settle()
      progress(`${label}: ${config.smallFiles} small files${fsync ? ' + fsync' : ''}`)
      return safely(label, errors, () => inWorker<Rate>({ kind: 'smallFiles', dir, count: config.smallFiles, bytes: config.smallFileBytes, fsync }, big))
    }
    for (let round = 0; round < config.repeats; round++) {
      benchProgress.round(round, config.repeats)
      keep('seqWrite', 'fffs', await w('fffs', F('seq'), false))
      keep('seqWrite', 'null', await w('null', N('seq'), false))
      keep('seqWrite', 'plain', await w('plain', P('seq'), false))
      keep('seqWrite', 'fffsFsync', await w('fffs', F('seq-fsync'), true))
      keep('seqWrite', 'plainFsync', await w('plain', P('seq-fsync'), true))
      keep('seqRead', 'fffs', await rd('fffs', F('seq')))
      keep('seqRead', 'null', await rd('null', N('seq')))
      keep('seqRead', 'plain', await rd('plain', P('seq')))
      keep('smallFiles', 'fffs', await sf('fffs', F(`small-${round}`), false))
      keep('smallFiles', 'null', await sf('null', N(`small-${round}`), false))
      keep('smallFiles', 'plain', await sf('plain', P(`small-${round}`), false))
      keep('smallFiles', 'plainFsync', await sf('plain', P(`small-fsync-${round}`), true))
    }
    const median = (xs: Array<Throughput | Rate>) => {
      const rate = (x: Throughput | Rate) => ('bytes' in x ? x.bytes : x.count) / x.seconds
      return [...xs].sort((a, b) => rate(a) - rate(b))[Math.floor((xs.length - 1) / 2)]!
    }
    for (const group of Object.keys(runs)) r[group] = Object.fromEntries(Object.entries(runs[group]!).map(([k, xs]) => [k, median(xs)]))
    r.runs = runs

    // 2. Frozen snapshot: first read vs second (kernel cache).
    progress(`fffs: frozen ${config.frozenBytes / MiB} MiB file, read twice at T`)
    const frozen = await safely('frozen', errors, async () => {
      await inWorker<Throughput>({ kind: 'seqWrite', file: F('frozen'), bytes: config.frozenBytes, blockBytes: MiB, fsync: false }, big)
      await new Promise((resolve) => setTimeout(resolve, 20))
      const T = new Date().toISOString()
      await new Promise((resolve) => setTimeout(resolve, 20))
      const file = F(`frozen@${T}`)
      const first = await inWorker<Throughput>({ kind: 'seqRead', file, blockBytes: MiB }, big)
      const second = await inWorker<Throughput>({ kind: 'seqRead', file, blockBytes: MiB }, big)
      return { T, first, second }
    })
    r.frozen = frozen

    // 3. Time travel: open+read+close of 4 KiB at a random instant of a file with N versions.
    const timeTravel: Array<{ wanted: number; made: Made | null; latency: Latency | null }> = []
    for (const wanted of config.versionCounts) {
      const file = F(`tt-${wanted}`)
      progress(`fffs: creating ${wanted} versions of ${path.basename(file)}`)
      const made = await safely(`versions ${wanted}`, errors, () =>
        inWorker<Made>({ kind: 'makeVersions', file, count: wanted, bytes: 4096, budgetMs: config.createBudgetMs }, config.createBudgetMs + 120_000),
      )
      let latency: Latency | null = null
      if (made !== null) {
        if (made.hitBudget) notes.push(`time travel: only ${made.count} of ${wanted} versions fit the ${config.createBudgetMs / 1000} s budget (${fmt(made.count / made.seconds)} versions/s); measured at ${made.count}`)
        // Like every section, measured from a settled start: the creation's dirty pages written back first.
        await settle()
        const toMs = made.count === 1 ? Date.now() - 10 : made.lastMs
        progress(`fffs: ${config.ttSamples} time-travel reads of ${path.basename(file)} (${made.count} versions)`)
        latency = await safely(`time travel ${wanted}`, errors, () =>
          // From the ms after the first version's close returned: within that ms, an instant
          // (whole ms) can fall before the version's µs stamp, and the file is still empty there.
          inWorker<Latency>({ kind: 'timeTravel', file, fromMs: made.firstMs + 1, toMs: Math.max(toMs, made.firstMs + 1), samples: config.ttSamples, readBytes: 4096, seed: wanted, budgetMs: 120_000 }, 300_000),
        )
        if (latency !== null && latency.errors > 0) notes.push(`time travel ${made.count}: ${latency.errors} failed reads, first: ${latency.firstError}`)
      }
      timeTravel.push({ wanted, made, latency })
    }
    r.timeTravel = timeTravel
    // The binding's floor for the same kernel requests: fresh names of the null FS's 4 KiB time-path files.
    progress(`null: ${config.ttSamples} opens of fresh time-path names`)
    await settle()
    r.timeTravelNull = await safely('time travel null', errors, () =>
      inWorker<Latency>({ kind: 'timeTravel', file: N('tt'), fromMs: Date.now() - 3_600_000, toMs: Date.now(), samples: config.ttSamples, readBytes: 4096, seed: 1, budgetMs: 120_000 }, 300_000),
    )

    // 4. Listing a directory of many files, live and at a past T (plain directory for reference).
    progress(`fffs: creating ${config.lsFiles} files for ls`)
    const lsMade = await safely('ls files', errors, () => inWorker<Rate & { hitBudget: boolean }>({ kind: 'makeFiles', dir: F('many'), count: config.lsFiles, budgetMs: config.createBudgetMs }, config.createBudgetMs + 120_000))
    let ls: Record<string, Listing | null> | null = null
    if (lsMade !== null) {
      if (lsMade.hitBudget) notes.push(`ls: only ${lsMade.count} of ${config.lsFiles} files fit the ${config.createBudgetMs / 1000} s budget (${fmt(perSec(lsMade))} creates/s); listed ${lsMade.count}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
      const T = new Date().toISOString()
      await new Promise((resolve) => setTimeout(resolve, 20))
      for (let i = 0; i < 10; i++) fs.writeFileSync(F(`many/after-T-${i}`), 'x') // live differs from T
      await inWorker<Rate & { hitBudget: boolean }>({ kind: 'makeFiles', dir: P('many'), count: lsMade.count, budgetMs: config.createBudgetMs }, config.createBudgetMs + 120_000)
      const l = (label: string, dir: string, stat: boolean) => {
        progress(`${label}: ${stat ? 'readdir + lstat' : 'readdir'} of ${path.basename(dir)}`)
        return safely(label, errors, () => inWorker<Listing>({ kind: 'ls', dir, stat }, 600_000))
      }
      ls = {
        liveReaddir: await l('fffs', F('many'), false),
        liveStat: await l('fffs', F('many'), true),
        pastReaddir: await l('fffs', F(`many@${T}`), false),
        pastStat: await l('fffs', F(`many@${T}`), true),
        plainReaddir: await l('plain', P('many'), false),
        plainStat: await l('plain', P('many'), true),
      }
    }
    r.ls = { created: lsMade, ...ls }
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err))
  } finally {
    progress('unmounting')
    await stopAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
  }
  if (fffs !== null && fffs.log.some((l) => l.includes('internal error'))) notes.push('fffs logged internal errors: ' + fffs.log.filter((l) => l.includes('internal error')).join(' ').slice(0, 500))
  r.errors = errors
  r.notes = notes
  r.config = config
  return { json: r, text: render(r, config) }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The tables of a run, from its JSON (`r`, as runFsBench returns it or bench/out/fs.json holds it). */
export function fsSections(r: Record<string, any>, config: FsBenchConfig): Section[] {
  const sections: Section[] = []
  const sw = r.seqWrite ?? {}
  const sr = r.seqRead ?? {}
  const sm = r.smallFiles ?? {}
  const m = (t: Throughput | null | undefined) => (t ? mbps(t) : null)
  const fs_ = (x: Rate | null | undefined) => (x ? perSec(x) : null)
  const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS')
  const seqRatio = ratio(m(sw.fffs), m(sw.null))
  const mb = `${config.seqBytes / MiB} MiB`
  const tail = (t: Throughput | undefined) => (t?.tailSeconds === undefined ? '-' : `${t.tailSeconds.toFixed(2)} of ${t.seconds.toFixed(2)} s`)
  sections.push({
    heading: `fs: sequential and small files (median of ${config.repeats} interleaved rounds; MB/s = 10^6 B/s; ratios are fffs/other)`,
    rows: [
      ['workload', 'fffs', 'null FS', 'plain dir', 'fffs/null', 'fffs/plain', 'target'],
      [`seq write ${mb}, 1 MiB writes, incl. close (MB/s) [fffs close = durable; plain = page cache]`, fmt(m(sw.fffs)), fmt(m(sw.null)), fmt(m(sw.plain)), fmtRatio(seqRatio), fmtRatio(ratio(m(sw.fffs), m(sw.plain))), `fffs/null >= 0.70: ${verdict(seqRatio === null ? null : seqRatio >= 0.7)}`],
      [`seq write ${mb} + fsync before close (MB/s) [both durable: like for like]`, fmt(m(sw.fffsFsync)), '-', fmt(m(sw.plainFsync)), '-', fmtRatio(ratio(m(sw.fffsFsync), m(sw.plainFsync))), ''],
      [`seq read ${mb}, 1 MiB reads, page cache dropped first (MB/s)`, fmt(m(sr.fffs)), fmt(m(sr.null)), fmt(m(sr.plain)), fmtRatio(ratio(m(sr.fffs), m(sr.null))), fmtRatio(ratio(m(sr.fffs), m(sr.plain))), ''],
      [`small files: ${config.smallFiles} x ${config.smallFileBytes / 1024} KiB create+write+close (files/s)`, fmt(fs_(sm.fffs)), fmt(fs_(sm.null)), fmt(fs_(sm.plain)), fmtRatio(ratio(fs_(sm.fffs), fs_(sm.null))), fmtRatio(ratio(fs_(sm.fffs), fs_(sm.plain))), ''],
      [`small files + fsync each on plain (files/s) [like for like with fffs close]`, fmt(fs_(sm.fffs)), '-', fmt(fs_(sm.plainFsync)), '-', fmtRatio(ratio(fs_(sm.fffs), fs_(sm.plainFsync))), ''],
    ],
    after: [`time in the final [fsync+]close of the median seq write: fffs ${tail(sw.fffs)}, fffs+fsync ${tail(sw.fffsFsync)}, null ${tail(sw.null)}, plain ${tail(sw.plain)}, plain+fsync ${tail(sw.plainFsync)}`],
  })

  const fr = r.frozen
  const frRatio = fr ? ratio(mbps(fr.second), mbps(fr.first)) : null
  sections.push({
    heading: `fs: frozen snapshot read, file@T of a ${config.frozenBytes / MiB} MiB file`,
    rows: [
      ['read', 'MB/s', 'seconds'],
      ['first read of file@T', fmt(fr ? mbps(fr.first) : null), fr ? fr.first.seconds.toFixed(3) : '-'],
      ['second read of file@T', fmt(fr ? mbps(fr.second) : null), fr ? fr.second.seconds.toFixed(3) : '-'],
      ['second/first', fmtRatio(frRatio), `target >= 2.00: ${verdict(frRatio === null ? null : frRatio >= 2)}`],
    ],
    after: [],
  })

  const tt: Array<{ wanted: number; made: Made | null; latency: Latency | null }> = r.timeTravel ?? []
  const rows = [['versions (asked -> made)', 'create (versions/s)', 'samples', 'p50 (ms)', 'p99 (ms)', 'mean (ms)', 'errors']]
  const ms = (us: number | undefined) => (us === undefined ? '-' : (us / 1000).toFixed(3))
  const latencyCells = (l: Latency | null) => [String(l?.samples ?? '-'), ms(l?.p50Us), ms(l?.p99Us), ms(l?.meanUs), String(l?.errors ?? '-')]
  for (const t of tt) rows.push([`${t.wanted} -> ${t.made?.count ?? '-'}`, t.made ? fmt(t.made.count / t.made.seconds) : '-', ...latencyCells(t.latency)])
  const ttNull: Latency | null = r.timeTravelNull ?? null
  rows.push(['null FS (the same requests, no work)', '-', ...latencyCells(ttNull)])
  const verdicts: string[] = []
  const largest = tt[tt.length - 1]
  const middle = tt.find((t) => t.wanted === 1000) ?? tt[tt.length - 2]
  if (largest?.latency && middle?.latency) {
    const growth = largest.latency.p50Us / middle.latency.p50Us
    const p50ms = largest.latency.p50Us / 1000
    verdicts.push(`p50 at ${largest.made?.count} versions: ${p50ms.toFixed(3)} ms, target <= 1 ms: ${verdict(p50ms <= 1)}`)
    verdicts.push(`p50 growth ${middle.made?.count} -> ${largest.made?.count} versions: ${growth.toFixed(2)}x, target <= 2x: ${verdict(growth <= 2)}`)
    if (ttNull !== null) verdicts.push(`p50 at ${largest.made?.count} versions / null FS p50: ${(largest.latency.p50Us / ttNull.p50Us).toFixed(2)}x (what fffs adds to the binding's round trips)`)
  }
  sections.push({ heading: `fs: time travel, open+read 4 KiB+close of file@<random ISO instant in the file's life>`, rows, after: verdicts })

  const ls = r.ls
  const lrow = (label: string, x: Listing | null | undefined) => [label, String(x?.entries ?? '-'), x ? (x.seconds * 1000).toFixed(1) : '-', x ? fmt(x.entries / x.seconds) : '-']
  sections.push({
    heading: `fs: ls of a directory with ${ls?.created?.count ?? '-'} files (fffs creates: ${fmt(ls?.created ? perSec(ls.created) : null)} files/s)`,
    rows: [
      ['listing', 'entries', 'ms', 'entries/s'],
      lrow('fffs live: readdir', ls?.liveReaddir),
      lrow('fffs live: readdir + lstat each (ls -l)', ls?.liveStat),
      lrow('fffs dir@T: readdir', ls?.pastReaddir),
      lrow('fffs dir@T: readdir + lstat each (ls -l)', ls?.pastStat),
      lrow('plain dir: readdir', ls?.plainReaddir),
      lrow('plain dir: readdir + lstat each', ls?.plainStat),
    ],
    after: [],
  })
  return sections
}

function render(r: Record<string, any>, config: FsBenchConfig): string {
  const notes = [...(r.notes ?? []).map((n: string) => `note: ${n}`), ...(r.errors ?? []).map((e: string) => `ERROR: ${e}`)]
  return [renderText(fsSections(r, config)), ...notes].join('\n')
}
