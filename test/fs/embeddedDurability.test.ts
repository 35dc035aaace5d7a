// The durability rules of an embedded mount, on a disk made slow or unable to sync (an
// LD_PRELOAD shim, test/fixtures/slowSync.c): close and metadata operations return once their
// record is written to the log, before it is synced, and survive kill -9 of the mount; a frozen
// read at a cut is not served while a record at or before it is unsynced; fsync returns once
// synced; `--durability sync-on-close` makes close and metadata operations wait for the sync.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, runCli, startMount, type TestMount } from '../helpers/mount.js'

const SLOW_SYNC_MS = 1_500 // far longer than a close, a frozen lookup's --max-wait and a status check take
const MAX_WAIT_MS = 200 // a frozen read at an unstable cut: EAGAIN after this long
const SETTLE_TIMEOUT_MS = 20_000

let shimDir: string
let gate: string // while it exists, the mount's syncs wait
let slow: string // while it exists, each of the mount's syncs takes SLOW_SYNC_MS longer

beforeAll(() => {
  shimDir = mkdtempSync(path.join(os.tmpdir(), 'fffs-slow-sync-'))
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', path.join(shimDir, 'slowSync.so'), path.join(__dirname, '../fixtures/slowSync.c'), '-ldl'])
  gate = path.join(shimDir, 'gate')
  slow = path.join(shimDir, 'slow')
})

afterAll(() => {
  rmSync(shimDir, { recursive: true, force: true })
})

function mountSlow(extraArgs: string[] = []): Promise<TestMount> {
  const env = { LD_PRELOAD: path.join(shimDir, 'slowSync.so'), FFFS_SYNC_GATE: gate, FFFS_SLOW_SYNC_TRIGGER: slow, FFFS_SLOW_SYNC_MS: String(SLOW_SYNC_MS) }
  return startMount(['--max-wait', String(MAX_WAIT_MS), ...extraArgs], { env })
}

/** Reads `file` until it succeeds (a frozen read waits for its cut to become stable), bounded. */
async function readWhenStable(file: string): Promise<string> {
  for (const deadline = Date.now() + SETTLE_TIMEOUT_MS; ; ) {
    try {
      return await fsp.readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) throw err
    }
  }
}

describe('embedded durability (write-on-close, the default)', () => {
  let m: TestMount
  beforeAll(async () => {
    m = await mountSlow()
  }, 30_000)
  afterAll(async () => {
    await fsp.rm(gate, { force: true })
    await fsp.rm(slow, { force: true })
    await m?.cleanup()
  }, 30_000)

  it('close and metadata operations return while the log cannot sync, and kill -9 right after loses none of them', async () => {
    await fsp.writeFile(gate, '')
    const written = new Map<string, string>()
    await fsp.mkdir(m.p('kept'))
    for (let i = 0; i < 8; i++) {
      const text = `acknowledged by close ${i}\n`.repeat(i + 1)
      await fsp.writeFile(m.p('kept', `tmp-${i}`), text)
      await fsp.rename(m.p('kept', `tmp-${i}`), m.p('kept', `file-${i}`))
      written.set(`file-${i}`, text)
    }
    await fsp.writeFile(m.p('kept', 'gone'), 'unlinked\n')
    await fsp.unlink(m.p('kept', 'gone'))
    // Nothing was synced: the gate held every sync (a frozen read of now says so).
    expect(await errCode(fsp.readdir(m.p(`kept@${await instantNow()}`)))).toBe('EAGAIN')
    await m.kill9()
    await fsp.rm(gate)
    await m.restart()
    expect((await fsp.readdir(m.p('kept'))).sort()).toEqual([...written.keys()].sort())
    for (const [name, text] of written) expect(await fsp.readFile(m.p('kept', name), 'utf8')).toBe(text)
  }, 60_000)

  it('a frozen read at a cut is not served while a record at or before it is unsynced, and is once it is synced', async () => {
    await fsp.writeFile(m.p('frozen'), 'first\n')
    await readWhenStable(m.p(`frozen@${await instantNow()}`)) // synced: the gate is open
    await fsp.writeFile(gate, '')
    try {
      const earlier = await instantNow()
      await fsp.writeFile(m.p('frozen'), 'second\n')
      const cut = await instantNow()
      expect(await fsp.readFile(m.p('frozen'), 'utf8')).toBe('second\n') // the live file has it at once
      expect(await errCode(fsp.readFile(m.p(`frozen@${cut}`)))).toBe('EAGAIN')
      // A cut below the first unsynced record is stable: it holds only what was synced.
      expect(await fsp.readFile(m.p(`frozen@${earlier}`), 'utf8')).toBe('first\n')
    } finally {
      await fsp.rm(gate)
    }
    expect(await readWhenStable(m.p(`frozen@${await instantNow()}`))).toBe('second\n')
  }, 60_000)

  it('fsync returns once what the mount acknowledged is synced', async () => {
    await fsp.writeFile(slow, '')
    try {
      await fsp.writeFile(m.p('other'), 'acknowledged, not yet synced\n')
      const file = await fsp.open(m.p('fsynced'), 'w')
      try {
        await file.write('synced before fsync returns\n')
        await file.sync()
      } finally {
        await file.close() // commits nothing new: the fsync did
      }
      // Every record up to now is synced: a frozen read of now is served within --max-wait, while each sync takes far longer.
      const cut = await instantNow()
      expect(await fsp.readFile(m.p(`fsynced@${cut}`), 'utf8')).toBe('synced before fsync returns\n')
      expect(await fsp.readFile(m.p(`other@${cut}`), 'utf8')).toBe('acknowledged, not yet synced\n')
    } finally {
      await fsp.rm(slow)
    }
  }, 60_000)
})

describe('embedded durability, --durability sync-on-close', () => {
  let m: TestMount
  beforeAll(async () => {
    m = await mountSlow(['--durability', 'sync-on-close'])
  }, 30_000)
  afterAll(async () => {
    await fsp.rm(slow, { force: true })
    await m?.cleanup()
  }, 30_000)

  it('close and metadata operations return once synced', async () => {
    await fsp.writeFile(slow, '')
    try {
      await fsp.mkdir(m.p('dir'))
      await fsp.writeFile(m.p('dir', 'tmp'), 'synced before close returns\n')
      await fsp.rename(m.p('dir', 'tmp'), m.p('dir', 'saved'))
      // Nothing unsynced: a frozen read of now is served within --max-wait, while each sync takes far longer.
      const cut = await instantNow()
      expect(await fsp.readdir(m.p(`dir@${cut}`))).toEqual(['saved'])
      expect(await fsp.readFile(m.p(`dir@${cut}`, 'saved'), 'utf8')).toBe('synced before close returns\n')
    } finally {
      await fsp.rm(slow)
    }
  }, 60_000)

  it('refuses --durability with --cluster and an unknown mode', async () => {
    const clustered = runCli(['mount', path.join(shimDir, 'mnt'), '--cluster', path.join(shimDir, 'config.json'), '--durability', 'sync-on-close'])
    expect(clustered.status).toBe(2)
    expect(clustered.stderr).toMatch(/--durability/)
    const unknown = runCli(['mount', path.join(shimDir, 'mnt'), '--durability', 'sometimes'])
    expect(unknown.status).not.toBe(0)
    expect(unknown.stderr).toMatch(/sometimes/)
  })
})
