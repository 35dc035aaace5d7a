// The retention bench: a sensor stream (files rewritten whole, again and again) into two
// embedded mounts side by side, one with a short retention policy (background retention and
// segment GC running) and one keeping every version, in interleaved rounds (order alternating),
// each mount's data on a tmpfs of its own; write throughput of each round and the disk used
// after it. Then the space `rm` and `fffs gc` give back on the GC mount (df of its volume).
// Prints tables and writes bench/out/retention.json. `--quick`: a smoke-sized run. `--soak`:
// the long run on the real disk instead (soak.ts).

import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { READY_PREFIX } from '../../src/cli/output.js'
import { startMount, stopAll, type Mount } from '../fs/mounts.js'
import { renderText } from '../tables.js'
import { runSoak } from './soak.js'
import { retentionSections, type RetentionBenchJson, type RetentionRound } from './tables.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const FFFS_BIN = path.join(repoRoot, 'bin', 'fffs')
const FILES = 16
const FILE_BYTES = 1024 * 1024
const KEEP_ALL_FOR = '2s'
const KEEP_ALL_FOR_MS = 2000
const GC_BUDGET_MIBS = 64
const VOLUME_MIB = 2048

function usedMiB(volume: string): number {
  const s = fs.statfsSync(volume)
  return ((s.blocks - s.bfree) * s.bsize) / 1024 / 1024
}

/** Writes `roundBytes` as whole-file rewrites of the stream's files, in turn; MB/s. */
function writeRound(mountpoint: string, roundBytes: number, round: number): number {
  const payload = Buffer.alloc(FILE_BYTES, round & 0xff)
  const started = process.hrtime.bigint()
  for (let done = 0, i = 0; done < roundBytes; done += FILE_BYTES, i++) {
    payload.writeUInt32LE(i, 0)
    fs.writeFileSync(path.join(mountpoint, `sensor-${i % FILES}.bin`), payload)
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return roundBytes / 1e6 / seconds
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick')
  const rounds = quick ? 2 : 6
  const roundBytes = (quick ? 48 : 192) * 1024 * 1024
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-retention-'))
  const header = `${new Date().toISOString()} node ${process.version} ${os.release()} ${os.cpus().length} CPUs load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${quick ? ' QUICK' : ''}`
  const volumes: string[] = []
  try {
    const targets = {} as Record<RetentionRound['target'], { mount: Mount; volume: string }>
    for (const target of ['gc', 'baseline'] as const) {
      const volume = path.join(root, `${target}-volume`)
      fs.mkdirSync(volume)
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${VOLUME_MIB}m`, 'tmpfs', volume])
      volumes.push(volume)
      const mountpoint = path.join(root, `${target}-mnt`)
      const flags = target === 'gc' ? ['--keep-all-for', KEEP_ALL_FOR, '--force-retention', '--gc-budget', String(GC_BUDGET_MIBS)] : []
      const mount = await startMount(`fffs (${target})`, [FFFS_BIN, 'mount', mountpoint, '--data-dir', path.join(volume, 'data'), ...flags], mountpoint, READY_PREFIX)
      targets[target] = { mount, volume }
    }
    const results: RetentionRound[] = []
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['gc', 'baseline'] as const) : (['baseline', 'gc'] as const)
      for (const target of order) {
        const { mount, volume } = targets[target]
        const mbPerS = writeRound(mount.mountpoint, roundBytes, round)
        results.push({ target, mbPerS, usedMiBAfter: usedMiB(volume) })
        process.stderr.write(`retention bench: round ${round + 1} ${target}: ${mbPerS.toFixed(1)} MB/s, volume ${usedMiB(volume).toFixed(0)} MiB used\n`)
      }
    }

    const gc = targets.gc
    const usedBeforeMiB = usedMiB(gc.volume)
    for (let i = 0; i < FILES; i++) fs.rmSync(path.join(gc.mount.mountpoint, `sensor-${i}.bin`))
    const usedAfterRmMiB = usedMiB(gc.volume)
    await new Promise((resolve) => setTimeout(resolve, KEEP_ALL_FOR_MS + 500)) // the deletes superseded the last versions: past keepAllFor, they go
    const run = spawnSync(process.execPath, [FFFS_BIN, 'gc', '--mount', gc.mount.mountpoint], { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`fffs gc: ${run.stderr}`)
    const usedAfterGcMiB = usedMiB(gc.volume)
    await stopAll()

    const json: RetentionBenchJson = {
      header,
      files: FILES,
      fileBytes: FILE_BYTES,
      roundBytes,
      keepAllFor: KEEP_ALL_FOR,
      gcBudgetMiBs: GC_BUDGET_MIBS,
      volumeMiB: VOLUME_MIB,
      rounds: results, // in the order measured; tables.ts pairs them round by round
      freed: { liveMiB: (FILES * FILE_BYTES) / 1024 / 1024, usedBeforeMiB, usedAfterRmMiB, usedAfterGcMiB, gcLine: run.stdout.trim() },
    }
    process.stdout.write(`${header}\n${renderText(retentionSections(json))}\n`)
    const outDir = path.join(repoRoot, 'bench', 'out')
    fs.mkdirSync(outDir, { recursive: true })
    fs.writeFileSync(path.join(outDir, 'retention.json'), JSON.stringify(json, null, 2) + '\n')
  } finally {
    await stopAll()
    for (const volume of volumes) spawnSync('umount', ['-l', volume])
    fs.rmSync(root, { recursive: true, force: true })
  }
}

const run = process.argv.includes('--soak') ? runSoak(process.argv.slice(2), repoRoot) : main()
run.catch((err: unknown) => {
  process.stderr.write(`retention bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
