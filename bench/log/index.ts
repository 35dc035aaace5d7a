// The log bench: `fffs log` of a file with 100k versions, through a real mount. A first page
// (--limit 20: oldest first, newest first, and since a recent instant) against the whole
// history (what `fffs log` returned before it paged: every version of the file), interleaved
// rounds, the control request alone (what the mount does for the CLI); and the CLI's wall time
// for a first page against `node -e 0` (start-up is most of it). Prints a table and writes
// bench/out/log.json. `--quick`: 10k versions.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from '../../src/control/client.js'
import type { LogReport } from '../../src/control/server.js'
import { ROOT_INO, type Mutation } from '../../src/store/records.js'
import { Store, type LoggedAt } from '../../src/store/store.js'
import { hlcOf, wallClockUs } from '../../src/temporal/hlc.js'
import { formatTimeSpec } from '../../src/temporal/spec.js'
import { startFffs, stopAll } from '../fs/mounts.js'
import { renderText } from '../tables.js'
import { logSections, type LogBenchJson } from './tables.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const FFFS_BIN = path.join(repoRoot, 'bin', 'fffs')
const RECORDS_PER_SYNC = 1000
const ROUNDS = 15
const CLI_ROUNDS = 9
const PAGE_ROWS = 20

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/**
 * A store with one file of `versions` versions: the records a mount would submit (a creation,
 * then a rewrite of it per version), appended to the store's log a batch at a time, synced,
 * then applied in order, as the embedded orderer does record by record.
 */
async function makeHistory(dataDir: string, versions: number): Promise<{ ratePerS: number; middleUs: number }> {
  const store = new Store(dataDir)
  await store.open()
  const startedMs = Date.now()
  const firstUs = wallClockUs() - versions * 100 // 100 µs apart, ending about now
  let physicalUs = firstUs
  const next = (): bigint => hlcOf((physicalUs += 100), 0)
  try {
    const mknod: Mutation = { type: 'mknod', parent: ROOT_INO, name: 'sensor.log', kind: 'file', mode: 0o644, uid: 0, gid: 0 }
    const createdAt = next()
    const created = await store.apply(createdAt, mknod, store.appendRecord(createdAt, mknod))
    if (!created.ok || created.ino === undefined) throw new Error(`log bench: create failed: ${JSON.stringify(created)}`)
    const ino = created.ino
    for (let done = 0; done < versions; ) {
      const batch: Array<{ stamp: bigint; mutation: Mutation; logged: LoggedAt }> = []
      const written: Promise<void>[] = []
      for (; batch.length < RECORDS_PER_SYNC && done < versions; done++) {
        // The whole file rewritten (a status file, a model checkpoint): appending a few bytes per
        // version would measure the store's block maps, which gain an extent per append.
        const line = Buffer.from(`reading ${done}\n`)
        const data = store.appendData(line)
        written.push(data.written)
        const mutation: Mutation = { type: 'version', ino, ops: [{ op: 'truncate', sizeBytes: 0 }, { op: 'write', offset: 0, sizeBytes: line.length, data: data.position }] }
        const stamp = next()
        const record = store.appendRecord(stamp, mutation)
        written.push(record.written)
        batch.push({ stamp, mutation, logged: record })
      }
      await Promise.all(written)
      await store.sync()
      for (const { stamp, mutation, logged } of batch) await store.apply(stamp, mutation, logged)
      if (done % 10_000 === 0) process.stderr.write(`log bench: ${done} versions\n`)
    }
  } finally {
    await store.close()
  }
  return { ratePerS: versions / ((Date.now() - startedMs) / 1000), middleUs: firstUs + (versions / 2) * 100 }
}

async function timedMs(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  await run()
  return Number(process.hrtime.bigint() - started) / 1e6
}

function wallMs(args: string[]): number {
  const started = process.hrtime.bigint()
  const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  if (run.status !== 0) throw new Error(`${args.join(' ')}: ${run.stderr.toString()}`)
  return Number(process.hrtime.bigint() - started) / 1e6
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick')
  const versions = quick ? 10_000 : 100_000
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-log-'))
  const header = `${new Date().toISOString()} node ${process.version} ${os.release()} ${os.cpus().length} CPUs load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${quick ? ' QUICK' : ''}`
  try {
    process.stderr.write(`log bench: making ${versions} versions\n`)
    const made = await makeHistory(path.join(root, 'data'), versions)
    const mountpoint = path.join(root, 'mnt')
    await startFffs(repoRoot, mountpoint, path.join(root, 'data'))
    const file = '/sensor.log'
    const middle = formatTimeSpec({ kind: 'platform', timeUs: made.middleUs })
    // The whole history first in each round: the garbage its answer leaves behind is collected
    // during the page queries that follow it, so each page query shares that cost alike.
    const queries: Array<[string, Record<string, unknown>]> = [
      ['whole history (baseline: every version, as before paging)', {}],
      ['first page, oldest first (--limit 20)', { limit: PAGE_ROWS }],
      ['first page, newest first (--reverse --limit 20)', { limit: PAGE_ROWS, reverse: true }],
      ['first page from the middle (--since T --limit 20)', { limit: PAGE_ROWS, since: middle }],
    ]
    const samples = queries.map(() => [] as number[])
    const rows = queries.map(() => 0)
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [, query]] of queries.entries()) {
        let report: LogReport | null = null
        samples[i]!.push(await timedMs(async () => (report = await request<LogReport>(mountpoint, { op: 'log', path: file, ...query }))))
        rows[i] = report!.rows.length
      }
    }
    const cli: number[] = []
    const node: number[] = []
    for (let round = 0; round < CLI_ROUNDS; round++) {
      node.push(wallMs(['-e', '0']))
      cli.push(wallMs([FFFS_BIN, 'log', '--limit', String(PAGE_ROWS), path.join(mountpoint, 'sensor.log')]))
    }
    await stopAll()
    const json: LogBenchJson = {
      header,
      versions,
      createPerS: made.ratePerS,
      queries: queries.map(([name], i) => ({ name, rows: rows[i]!, medianMs: median(samples[i]!), samplesMs: samples[i]! })),
      cliMedianMs: median(cli),
      nodeMedianMs: median(node),
      rounds: ROUNDS,
      cliRounds: CLI_ROUNDS,
    }
    process.stdout.write(`${header}\n${renderText(logSections(json))}\n`)
    const outDir = path.join(repoRoot, 'bench', 'out')
    fs.mkdirSync(outDir, { recursive: true })
    fs.writeFileSync(path.join(outDir, 'log.json'), JSON.stringify(json, null, 2) + '\n')
  } finally {
    await stopAll()
    fs.rmSync(root, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`log bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
