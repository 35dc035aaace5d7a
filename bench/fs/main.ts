// The file system bench (`node dist/bench/fs/main.js [--quick]`, or `npm run bench -- fs`):
// fffs, a null fuse-native FS and the plain backing directory side by side; prints the table
// and writes bench/out/fs.json. `--quick`: small sizes for a smoke run. Targets are reported
// as PASS/MISS next to the measurement, never asserted.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultConfig, quickConfig, runFsBench } from './index.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..') // dist/bench/fs -> repo
const outDir = path.join(repoRoot, 'bench', 'out')

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const config = quick ? quickConfig : defaultConfig
  const started = new Date()
  const header = `fffs bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''} · tmp ${os.tmpdir()}${quick ? ' · QUICK' : ''}`
  const fsResult = await runFsBench(repoRoot, config)
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'fs.json')
  fs.writeFileSync(file, JSON.stringify({ started: started.toISOString(), header, ...fsResult.json }, null, 2) + '\n')
  process.stdout.write(`${header}\n\n${fsResult.text}\n\n(wrote ${path.relative(process.cwd(), file) || file}; took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`)
  if (((fsResult.json.errors as string[] | undefined) ?? []).length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
