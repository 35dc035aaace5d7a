// Bench entry (`npm run bench [-- NAME ...] [--FLAG ...]`): runs the named benches (default:
// all, in this order) one after another, each in a process of its own, so no bench's mounts,
// groups or threads overlap another's measurement. Each prints its table and writes
// bench/out/NAME.json. The flags (from the first `--` on, values included) go to every bench:
// `--quick` asks each for a smoke-sized run. Exits non-zero if any failed.

import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const distBench = path.dirname(fileURLToPath(import.meta.url)) // dist/bench

const BENCHES: Readonly<Record<string, string>> = {
  fs: 'fs/main.js', // the mount against a null FUSE FS and the plain directory
  transport: 'transport/native-bench.js', // SST, SMC, RDMC against net and iperf3
  replication: 'replication/index.js', // r=1 against r=3 through a mount
  metadata: 'metadata/index.js', // small files and metadata: ext4, fffs embedded and r=3, GlusterFS
  wave: 'wave/index.js', // the wave experiment at full scale, with its PNG
  log: 'log/index.js', // fffs log's first page on a file with 100k versions, against its whole history
  startup: 'startup/index.js', // npm start to the ready line (fresh clone, unchanged); the CLI's start-up against node
  recovery: 'recovery/index.js', // a member's rejoin, a total restart and a full transfer at 0, 1 and 4 GiB held
  retention: 'retention/index.js', // a sensor stream with background retention and GC against one keeping everything; rm + fffs gc (--soak: the long run on disk)
}

function main(): number {
  const args = process.argv.slice(2)
  const firstFlag = args.findIndex((a) => a.startsWith('--'))
  const names = firstFlag === -1 ? args : args.slice(0, firstFlag)
  const flags = firstFlag === -1 ? [] : args.slice(firstFlag) // with their values: each bench reads its own
  const unknown = names.filter((n) => !(n in BENCHES))
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown bench ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})\n`)
    return 2
  }
  const failed: string[] = []
  for (const name of names.length > 0 ? names : Object.keys(BENCHES)) {
    process.stdout.write(`\n=== bench ${name} ===\n`)
    const run = spawnSync(process.execPath, [path.join(distBench, BENCHES[name]!), ...flags], { stdio: 'inherit' })
    if (run.status !== 0) failed.push(`${name} (${run.status ?? run.signal})`)
  }
  if (failed.length > 0) process.stderr.write(`bench: failed: ${failed.join(', ')}\n`)
  return failed.length > 0 ? 1 : 0
}

process.exitCode = main()
