// kill -9 during segment GC loses nothing and leaves no torn state. An embedded mount on a
// small tmpfs (4 MiB segments) keeps files written once and overwrites another many times, so
// once retention drops the overwritten versions the segments are mostly dead and GC copies the
// kept files' bytes forward, slowly (a small copy budget). The mount is killed at a random
// moment of that copy, restarted, and every file closed before reads back whole; a GC run to
// the end afterwards frees the space and the files still read back.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng } from '../../src/testing/prng.js'
import { runCli, startMount, type TestMount } from '../helpers/mount.js'

let root: string
let volume: string
let m: TestMount
const kept = new Map<string, string>() // file -> sha256 of its closed contents

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const segmentBytes = (): number => readdirSync(path.join(volume, 'data', 'segments')).reduce((sum, f) => sum + statSync(path.join(volume, 'data', 'segments', f)).size, 0)

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'fffs-gccrash-'))
  volume = path.join(root, 'volume')
  await fsp.mkdir(volume)
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', volume])
  m = await startMount(['--data-dir', path.join(volume, 'data'), '--keep-all-for', '1s', '--force-retention', '--gc-budget', '2'])
})

afterAll(async () => {
  await m?.cleanup()
  if (volume !== undefined) execFileSync('umount', ['-l', volume], { stdio: 'ignore' })
  rmSync(root, { recursive: true, force: true })
})

async function everyKeptFileIsWhole(): Promise<void> {
  for (const [name, digest] of kept) expect({ name, digest: sha(await fsp.readFile(name)) }).toEqual({ name, digest })
}

describe('kill -9 during segment GC', () => {
  const prng = new Prng(Number(process.env.FFFS_SEED ?? 20_260_101))
  for (let round = 0; round < 3; round++) {
    it(`round ${round}: killed while GC copies, restarted: every closed file reads back whole (seed ${prng.seed})`, async () => {
      // Kept files and overwrites of one churned file, interleaved in the log.
      for (let i = 0; i < 24; i++) {
        const name = m.p(`keep-${round}-${i}`)
        const bytes = Buffer.alloc(96 * 1024, (round * 24 + i) & 0xff)
        bytes.writeUInt32LE(i, 0)
        await fsp.writeFile(name, bytes)
        kept.set(name, sha(bytes))
        await fsp.writeFile(m.p('churn'), Buffer.alloc(1024 * 1024, i))
      }
      const collecting = `collecting` // the runner's line once it starts copying a run's live bytes
      const before = (m.output().match(/retention: collecting/g) ?? []).length
      for (const deadline = Date.now() + 30_000; (m.output().match(/retention: collecting/g) ?? []).length === before; await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`no GC run started copying within 30 s:\n${m.output().slice(-2000)}`)
      }
      await new Promise((r) => setTimeout(r, prng.int(0, 900))) // somewhere in the copy (2 MiB/s)
      expect(m.output()).toContain(collecting)
      await m.kill9()
      await m.restart()
      await everyKeptFileIsWhole()
      expect(m.output()).not.toMatch(/EIO|internal error|corruption/)
    })
  }

  it('a GC run to the end after the crashes frees the space, and the files still read back', async () => {
    const bytesBefore = segmentBytes()
    const run = runCli(['gc', '--mount', m.mountpoint])
    expect(run.status).toBe(0)
    await everyKeptFileIsWhole()
    expect(segmentBytes()).toBeLessThan(bytesBefore)
    // What is left: the kept files, the churned file's last version, and segments not yet sealed or still at the floor.
    expect(segmentBytes()).toBeLessThan(kept.size * 96 * 1024 * 2 + 16 * 1024 * 1024)
  })
})
