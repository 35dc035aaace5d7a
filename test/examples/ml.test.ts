// The ML example (examples/ml-frozen-snapshot) on a real mount: a Python writer keeps appending
// samples to dataset/ while train.py runs twice on dataset@T; both runs read byte-identical data
// and fit bit-identical models, and a run on the live dataset/ reads different data.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REPO, startMount, type TestMount } from '../helpers/mount.js'

const EXAMPLE = path.join(REPO, 'examples', 'ml-frozen-snapshot')
const STEP_TIMEOUT_MS = 15_000

interface TrainResult {
  data: string
  files: number
  bytes: number
  samples: number
  sha256: string
  w: number[]
  b: number
  loss: number
  accuracy: number
  model_sha256: string
}

let m: TestMount
beforeAll(async () => {
  m = await startMount()
})
afterAll(async () => {
  await m?.cleanup()
})

function python(args: string[], timeoutMs = STEP_TIMEOUT_MS): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('python3', args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

async function train(data: string): Promise<TrainResult> {
  const r = await python([path.join(EXAMPLE, 'train.py'), '--data', data, '--json', '--epochs', '100'])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as TrainResult
}

/** Rows in the live directory (header lines excluded). */
async function liveSamples(dir: string): Promise<number> {
  let rows = 0
  for (const name of await fsp.readdir(dir)) {
    const text = await fsp.readFile(path.join(dir, name), 'utf8')
    rows += text.split('\n').length - 1 - (text.match(/^x1,/gm)?.length ?? 0)
  }
  return rows
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** SIGTERM, bounded wait, then SIGKILL; resolves with the writer's stdout. */
function stopWriter(child: ChildProcess, stdout: () => string): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(stdout())
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(stdout())
    })
    child.kill('SIGTERM')
  })
}

/** The trainer's digest, computed independently: sorted relative paths, each with length and bytes. */
async function digestOf(root: string): Promise<string> {
  const h = createHash('sha256')
  for (const name of (await fsp.readdir(root)).sort()) {
    const data = await fsp.readFile(path.join(root, name))
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(data.length))
    h.update(Buffer.concat([Buffer.from(`${name}\0`), len, data]))
  }
  return h.digest('hex')
}

describe('ML example: training on a frozen snapshot', () => {
  it('two runs on dataset@T see byte-identical data and fit the same model while a writer appends; live dataset/ differs', async () => {
    const live = m.p('dataset')
    await fsp.mkdir(live)
    const writer = spawn('python3', [path.join(EXAMPLE, 'writer.py'), live, '--interval', '0.02'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    writer.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    writer.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    let first: TrainResult, second: TrainResult, current: TrainResult, t: string
    try {
      await waitFor('100 samples from the writer', async () => (await liveSamples(live)) >= 100)
      t = new Date().toISOString().replace('Z', '000Z') // platform time, µs; a read at T waits until T is stable
      first = await train(`${live}@${t}`)
      const afterFirst = await liveSamples(live)
      await waitFor('100 more samples', async () => (await liveSamples(live)) >= afterFirst + 100)
      second = await train(`${live}@${t}`)
      current = await train(live)
    } finally {
      out = await stopWriter(writer, () => out)
    }
    expect(out).toMatch(/^writer: stopped after \d+ rows/m)

    expect(first.samples).toBeGreaterThanOrEqual(100)
    expect(first.samples % 10).toBe(0) // whole appends only: each is one version
    expect(second.sha256).toBe(first.sha256)
    expect([second.files, second.bytes, second.samples]).toEqual([first.files, first.bytes, first.samples])
    expect(second.w).toEqual(first.w)
    expect(second.b).toBe(first.b)
    expect(second.loss).toBe(first.loss)
    expect(second.model_sha256).toBe(first.model_sha256)
    // the trainer hashed what the cut holds
    expect(await digestOf(`${live}@${t}`)).toBe(first.sha256)

    // the live dataset moved on
    expect(current.sha256).not.toBe(first.sha256)
    expect(current.samples).toBeGreaterThanOrEqual(first.samples + 100)
    expect(current.model_sha256).not.toBe(first.model_sha256)
  })

  it('run.py does it end to end and exits 0', async () => {
    const r = await python(
      [path.join(EXAMPLE, 'run.py'), m.mountpoint, '--dataset', 'dataset-run', '--min-samples', '100', '--more-samples', '100', '--epochs', '50', '--timeout', '15', '--json'],
      25_000,
    )
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^same data at T +yes/m)
    expect(r.stdout).toMatch(/^same model at T +yes/m)
    expect(r.stdout).toMatch(/^live data moved +yes/m)
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ok: boolean; runs: TrainResult[]; live: TrainResult }
    expect(summary.ok).toBe(true)
    expect(summary.runs[1]!.sha256).toBe(summary.runs[0]!.sha256)
    expect(summary.live.sha256).not.toBe(summary.runs[0]!.sha256)
  })
})
