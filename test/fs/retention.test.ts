// History retention through a real embedded mount: the policy flags and their errors; the floor
// moving by itself; reads below it ERANGE (the mount says why, the CLI prints the floor and the
// policy) while reads at and above it and at a pinned snapshot read as before; holds; the
// floor in `fffs status` and user.fffs.history_floor; `fffs log` keeping its numbering; the
// audit of runs; `fffs gc --dry-run`.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

describe('retention flags', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--keep-all-for', '5m'], /--keep-all-for: 5m is below the safety floor of 1h: .*--force-retention/],
    [['--keep-all-for', '7x'], /--keep-all-for: '7x' is not a duration/],
    [['--tier', '7d:1h'], /--tier needs --keep-all-for/],
    [['--keep-all-for', '7d', '--tier', '1d:1h'], /--tier 1d:1h: 1d must equal keepAllFor \(7d\)/],
    [['--keep-all-for', '7d', '--tier', '7d:1h', '--tier', '30d:90m'], /--tier 30d:90m: 1h30m is not a multiple of the tier before's 1h/],
    [['--keep-all-for', '7d', '--tier', '7d'], /--tier 7d: expected AFTER:EVERY/],
    [['--keep-all-for', '7d', '--cluster', '/nonexistent/config.json'], /--keep-all-for: a group's retention is its config's/],
  ]
  for (const [flags, message] of cases) {
    it(`fffs mount ${flags.join(' ')}: exit 2 and one line saying why`, () => {
      const run = runCli(['mount', '/tmp/fffs-never-mounted', ...flags])
      expect({ status: run.status, stderr: run.stderr }).toMatchObject({ status: 2, stderr: expect.stringMatching(message) })
      expect(run.stderr.trim().split('\n')).toHaveLength(1)
    })
  }
})

describe('retention on an embedded mount', () => {
  let m: TestMount
  beforeAll(async () => {
    m = await startMount(['--keep-all-for', '1s', '--force-retention', '--max-wait', '2000'])
  })
  afterAll(async () => {
    await m?.cleanup()
  })

  /** The floor the mount root shows (null: none yet). */
  const floorOf = (): string | null => {
    try {
      return python('import os,sys; print(os.getxattr(sys.argv[1], "user.fffs.history_floor").decode())', m.mountpoint).trim()
    } catch {
      return null
    }
  }
  const waitFloorPast = async (iso: string): Promise<string> => {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const floor = floorOf()
      if (floor !== null && floor > iso) return floor
    }
    throw new Error(`the history floor did not pass ${iso} within 20 s (it is ${floorOf()})`)
  }

  it('drops history below the floor: ERANGE there, the same bytes at and above it and at a held snapshot', async () => {
    const f = m.p('sensor.log')
    await fsp.writeFile(f, 'one')
    const afterOne = await instantNow()
    expect(runCli(['snapshot', 'create', 'early', '--mount', m.mountpoint]).status).toBe(0)
    expect(runCli(['snapshot', 'hold', 'early', 'audit', '--mount', m.mountpoint]).stdout).toBe('snapshot early held (audit)\n')
    await fsp.writeFile(f, 'two')
    const afterTwo = await instantNow()
    await fsp.writeFile(f, 'three')
    expect(await fsp.readFile(`${f}@${afterTwo}`, 'utf8')).toBe('two')

    const floor = await waitFloorPast(afterTwo)
    // Below the floor, at a cut no snapshot pins: ERANGE, and the mount logs the floor.
    expect(await errCode(fsp.readFile(`${f}@${afterTwo}`))).toBe('ERANGE')
    expect(await m.outputMatching('fffs: ERANGE: history before')).toMatch(/fffs: ERANGE: history before \S+ was compacted \(policy keepAllFor 1s\)/)
    const cat = runCli(['cat', `${f}@${afterTwo}`])
    expect(cat.status).toBe(1)
    expect(cat.stderr).toMatch(/^fffs: history before \d{4}-\S+Z was compacted \(policy keepAllFor 1s\)\n$/)
    // At and above the floor, and live: as before.
    expect(await fsp.readFile(`${f}@${floor}`, 'utf8')).toBe('three')
    expect(await fsp.readFile(f, 'utf8')).toBe('three')
    // The snapshot pins its cut: the version it shows is kept, and it is held.
    expect(await fsp.readFile(m.p('.snapshot', 'early', 'sensor.log'), 'utf8')).toBe('one')
    expect(await fsp.readFile(`${f}@${afterOne}`, 'utf8').catch((err: NodeJS.ErrnoException) => err.code)).toBe('ERANGE') // pinned is the snapshot's own cut
    const busy = runCli(['snapshot', 'delete', 'early', '--mount', m.mountpoint])
    expect(busy.status).toBe(1)
    expect(busy.stderr).toMatch(/snapshot early is held \(audit\)/)
    expect(await errCode(fsp.rmdir(m.p('.snapshot', 'early')))).toBe('EBUSY')
    expect(runCli(['snapshot', 'release', 'early', 'audit', '--mount', m.mountpoint]).status).toBe(0)
    expect(runCli(['snapshot', 'delete', 'early', '--mount', m.mountpoint]).status).toBe(0)
  })

  it('keeps the numbering of fffs log and P@vN: the versions kept read by number, dropped ones are ERANGE', async () => {
    const f = m.p('numbered.txt')
    for (const text of ['a', 'b', 'c']) await fsp.writeFile(f, text) // v1 the create, v2..v4 the writes
    await waitFloorPast(await instantNow())
    await fsp.writeFile(f, 'd') // v5, after the floor
    const log = JSON.parse(runCli(['log', f, '--json']).stdout) as Array<{ version: number; sizeBytes: number }>
    expect(log.map((r) => r.version)).toEqual([4, 5]) // the version the floor sees, and the one after it
    expect(await fsp.readFile(`${f}@v4`, 'utf8')).toBe('c')
    expect(await fsp.readFile(`${f}@v5`, 'utf8')).toBe('d')
    expect(await errCode(fsp.readFile(`${f}@v2`))).toBe('ERANGE')
    expect(await errCode(fsp.readFile(`${f}@v9`))).toBe('ENOENT') // never existed: ENOENT keeps its meaning
  })

  it('shows the floor in fffs status, the runs in fffs log --gc, and what a run would do with --dry-run', async () => {
    const status = runCli(['status', '--mount', m.mountpoint])
    expect(status.stdout).toMatch(/^history floor \d{4}-\S+Z \(policy keepAllFor 1s\)/m)
    expect(status.stdout).toMatch(/^disk: [\d.]+ MiB free of [\d.]+ MiB/m)
    const json = JSON.parse(runCli(['status', '--mount', m.mountpoint, '--json']).stdout) as { history: { floor: string; policy: string } }
    expect(json.history).toMatchObject({ floor: expect.stringMatching(/Z$/), policy: 'keepAllFor 1s' })
    const audit = runCli(['log', '--gc', '--mount', m.mountpoint])
    expect(audit.stdout).toMatch(/retention \(keepAllFor 1s\): floor \S+; \d+ versions and \d+ deleted nodes dropped/)
    const dry = runCli(['gc', '--dry-run', '--mount', m.mountpoint])
    expect(dry.status).toBe(0)
    expect(dry.stdout).toMatch(/^dry run: floor \S+; \d+ versions and \d+ deleted nodes would be dropped .*; \d+ of \d+ log segments .* could be freed/)
    expect(runCli(['gc', '--mount', m.mountpoint]).stdout).toMatch(/^floor \S+;/)
    expect(runCli(['log', '--mount', m.mountpoint]).stderr).toMatch(/missing argument 'path' \(or --gc\)/)
  })

  it('refuses a snapshot below the floor', async () => {
    const old = new Date(Date.now() - 60_000).toISOString()
    const run = runCli(['snapshot', 'create', 'late', '--at', old, '--mount', m.mountpoint])
    expect(run.status).toBe(1)
    expect(run.stderr).toMatch(/history before \S+ was compacted/)
    expect(path.basename(m.mountpoint)).toBe('mnt')
  })
})
