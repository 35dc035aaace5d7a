// The measured workloads: plain synchronous node `fs` in tight loops, run in a worker thread
// (worker.ts) so the main thread can bound them with a deadline and kill a hung mount.

import fs from 'node:fs'
import path from 'node:path'

export type Task =
  | { kind: 'seqWrite'; file: string; bytes: number; blockBytes: number; fsync: boolean }
  | { kind: 'seqRead'; file: string; blockBytes: number }
  | { kind: 'smallFiles'; dir: string; count: number; bytes: number; fsync: boolean }
  | { kind: 'makeVersions'; file: string; count: number; bytes: number; budgetMs: number }
  | { kind: 'timeTravel'; file: string; fromMs: number; toMs: number; samples: number; readBytes: number; seed: number; budgetMs: number }
  | { kind: 'makeFiles'; dir: string; count: number; budgetMs: number }
  | { kind: 'ls'; dir: string; stat: boolean }

export interface Throughput {
  bytes: number
  seconds: number
  tailSeconds?: number // seqWrite: the fsync (if any) + close at the end, included in seconds
}
export interface Rate {
  count: number
  seconds: number
}
export interface Made {
  count: number
  seconds: number
  firstMs: number // wall clock just after the first commit
  lastMs: number // wall clock just after the last commit
  hitBudget: boolean
}
export interface Latency {
  samples: number
  errors: number
  firstError: string | null
  p50Us: number
  p99Us: number
  meanUs: number
}
export interface Listing {
  entries: number
  seconds: number
}

const now = () => performance.now() / 1000

function seqWrite(t: Extract<Task, { kind: 'seqWrite' }>): Throughput {
  const block = Buffer.alloc(t.blockBytes, 0x5a)
  for (let i = 0; i < block.length; i += 4096) block.writeUInt32LE(i, i) // not all one byte
  const start = now()
  const fd = fs.openSync(t.file, 'w')
  let written = 0
  while (written < t.bytes) written += fs.writeSync(fd, block, 0, Math.min(block.length, t.bytes - written), written)
  const tail = now()
  if (t.fsync) fs.fsyncSync(fd)
  fs.closeSync(fd)
  const end = now()
  return { bytes: written, seconds: end - start, tailSeconds: end - tail }
}

function seqRead(t: Extract<Task, { kind: 'seqRead' }>): Throughput {
  const block = Buffer.alloc(t.blockBytes)
  const start = now()
  const fd = fs.openSync(t.file, 'r')
  let total = 0
  for (;;) {
    const n = fs.readSync(fd, block, 0, block.length, total)
    if (n === 0) break
    total += n
  }
  fs.closeSync(fd)
  return { bytes: total, seconds: now() - start }
}

function smallFiles(t: Extract<Task, { kind: 'smallFiles' }>): Rate {
  fs.mkdirSync(t.dir, { recursive: true })
  const data = Buffer.alloc(t.bytes, 0x61)
  const start = now()
  for (let i = 0; i < t.count; i++) {
    const fd = fs.openSync(path.join(t.dir, `f${i}`), 'w')
    fs.writeSync(fd, data, 0, data.length, 0)
    if (t.fsync) fs.fsyncSync(fd)
    fs.closeSync(fd)
  }
  return { count: t.count, seconds: now() - start }
}

function makeVersions(t: Extract<Task, { kind: 'makeVersions' }>): Made {
  const data = Buffer.alloc(t.bytes)
  const start = now()
  const deadline = start + t.budgetMs / 1000
  let firstMs = 0
  let lastMs = 0
  let count = 0
  let hitBudget = false
  while (count < t.count) {
    data.writeUInt32LE(count + 1, 0) // version number in the first bytes
    const fd = fs.openSync(t.file, 'w') // O_TRUNC: each open/write/close is one version
    fs.writeSync(fd, data, 0, data.length, 0)
    fs.closeSync(fd)
    count++
    lastMs = Date.now()
    if (count === 1) firstMs = lastMs
    if (count % 256 === 0 && now() > deadline) {
      hitBudget = count < t.count
      break
    }
  }
  return { count, seconds: now() - start, firstMs, lastMs, hitBudget }
}

/** An ISO instant with µs digits so that random instants rarely repeat a path the kernel has cached. */
function isoUs(ms: number, us: number): string {
  return new Date(ms).toISOString().slice(0, 23) + String(us).padStart(3, '0') + 'Z'
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

function timeTravel(t: Extract<Task, { kind: 'timeTravel' }>): Latency {
  const random = mulberry32(t.seed)
  const buf = Buffer.alloc(t.readBytes)
  const times: number[] = []
  let errors = 0
  let firstError: string | null = null
  const warmup = Math.min(50, t.samples)
  const deadline = now() + t.budgetMs / 1000
  for (let i = 0; i < warmup + t.samples; i++) {
    if (i % 64 === 0 && now() > deadline) break
    const ms = t.fromMs + Math.floor(random() * (t.toMs - t.fromMs + 1))
    const target = `${t.file}@${isoUs(ms, Math.floor(random() * 1000))}`
    const start = process.hrtime.bigint()
    try {
      const fd = fs.openSync(target, 'r')
      const n = fs.readSync(fd, buf, 0, buf.length, 0)
      fs.closeSync(fd)
      if (n !== t.readBytes) throw new Error(`short read ${n} of ${target}`)
    } catch (err) {
      errors++
      firstError ??= err instanceof Error ? err.message : String(err)
      continue
    }
    const us = Number(process.hrtime.bigint() - start) / 1000
    if (i >= warmup) times.push(us)
  }
  times.sort((a, b) => a - b)
  const meanUs = times.reduce((a, b) => a + b, 0) / Math.max(1, times.length)
  return { samples: times.length, errors, firstError, p50Us: percentile(times, 0.5), p99Us: percentile(times, 0.99), meanUs }
}

function makeFiles(t: Extract<Task, { kind: 'makeFiles' }>): Rate & { hitBudget: boolean } {
  fs.mkdirSync(t.dir, { recursive: true })
  const start = now()
  const deadline = start + t.budgetMs / 1000
  let count = 0
  while (count < t.count) {
    fs.closeSync(fs.openSync(path.join(t.dir, `file-${String(count).padStart(6, '0')}`), 'w'))
    count++
    if (count % 256 === 0 && now() > deadline) break
  }
  return { count, seconds: now() - start, hitBudget: count < t.count }
}

function ls(t: Extract<Task, { kind: 'ls' }>): Listing {
  const start = now()
  const names = fs.readdirSync(t.dir)
  if (t.stat) for (const name of names) fs.lstatSync(path.join(t.dir, name))
  return { entries: names.length, seconds: now() - start }
}

export function runTask(task: Task): unknown {
  switch (task.kind) {
    case 'seqWrite':
      return seqWrite(task)
    case 'seqRead':
      return seqRead(task)
    case 'smallFiles':
      return smallFiles(task)
    case 'makeVersions':
      return makeVersions(task)
    case 'timeTravel':
      return timeTravel(task)
    case 'makeFiles':
      return makeFiles(task)
    case 'ls':
      return ls(task)
  }
}
