// One rule for history: `fffs log P` lists exactly the versions `P@T` returns over time
// (content changes, replacement by rename, removal, re-creation), each with its object, and
// `P@vN` is row N; `--object` is one object's own history across names; a directory's log says
// what changed among its entries; --limit/--since/--until/--reverse page it. Real mount, shell
// tools for the changes, the CLI as a child process.

import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount(['--sensor-lag-max', '1000', '--clock-skew-max', '10'])
})
afterAll(async () => {
  await m?.cleanup()
})

interface Row {
  version: number
  time: string
  ino: number
  objectVersion: number | null
  sizeBytes: number | null
  change: string
}

function bash(script: string): string {
  return execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: m.mountpoint, encoding: 'utf8', timeout: 30_000 })
}

function log(...args: string[]): Row[] {
  const run = runCli(['log', '--json', ...args])
  expect(run.status, run.stderr).toBe(0)
  return JSON.parse(run.stdout) as Row[]
}

/** What a read of a path gives: its bytes, or the errno. */
async function readOrErrno(file: string): Promise<string> {
  try {
    return `bytes:${await fsp.readFile(file, 'utf8')}`
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'no code'
  }
}

/**
 * The rule itself: row N of `fffs log P` is what P@vN returns, and what P@T returns from the
 * row's time on (checked at rows whose instant no later row shares: a cut at a µs includes every
 * stamp of that µs).
 */
async function expectRowsAreWhatPathReturns(file: string, rows: readonly Row[]): Promise<void> {
  for (const [i, row] of rows.entries()) {
    const byVersion = await readOrErrno(`${file}@v${row.version}`)
    if (row.sizeBytes === null) expect(byVersion, `${file}@v${row.version}`).toBe('ENOENT')
    else expect(byVersion.length - 'bytes:'.length, `${file}@v${row.version}`).toBe(row.sizeBytes)
    if (rows[i + 1]?.time !== row.time) expect(await readOrErrno(`${file}@${row.time}`), `${file}@${row.time} (row ${row.version})`).toBe(byVersion)
  }
}

describe('fffs log P lists what P@T returns, and P@vN is row N', () => {
  it('a save-by-rename (printf new > .doc.tmp && mv .doc.tmp doc.txt) is one row of doc.txt, with the new object', async () => {
    bash('printf old > doc.txt')
    bash('printf new-text > .doc.tmp && mv .doc.tmp doc.txt')
    const rows = log(m.p('doc.txt'))
    expect(rows.map((r) => [r.version, r.sizeBytes, r.change])).toEqual([
      [1, 0, 'create'],
      [2, 3, 'version'],
      [3, 8, 'replaced by rename'],
    ])
    expect(rows[2]!.ino).not.toBe(rows[0]!.ino)
    expect(await fsp.readFile(m.p('doc.txt@v2'), 'utf8')).toBe('old')
    expect(await fsp.readFile(m.p('doc.txt@v3'), 'utf8')).toBe('new-text')
    expect(runCli(['cat', m.p('doc.txt@v2')]).stdout).toBe('old')
    await expectRowsAreWhatPathReturns(m.p('doc.txt'), rows)
    // the temp file's own history is the object's, across its names
    const object = log('--object', m.p('doc.txt'))
    expect(object.map((r) => [r.version, r.sizeBytes, r.change, r.ino])).toEqual([
      [1, 0, 'create', rows[2]!.ino],
      [2, 8, 'version', rows[2]!.ino],
      [3, 8, 'rename', rows[2]!.ino],
    ])
    // the replaced object's own history goes on after the name left it: its last name gone by the rename over it
    expect(log('--object', m.p(`doc.txt@${rows[1]!.time}`)).map((r) => [r.ino, r.change])).toEqual([[rows[0]!.ino, 'create'], [rows[0]!.ino, 'version'], [rows[0]!.ino, 'rename']])
  })

  it('a move to another directory: the new name has rows from the move on, the old one ends "renamed away"', async () => {
    bash('mkdir -p data other && echo one > data/f3 && echo two >> data/f3 && mv data/f3 other/')
    const moved = log(m.p('other', 'f3'))
    expect(moved.map((r) => [r.version, r.change])).toEqual([[1, 'renamed here']])
    await expectRowsAreWhatPathReturns(m.p('other', 'f3'), moved)
    expect(await errCode(fsp.stat(m.p('other', `f3@${new Date(Date.parse(moved[0]!.time) - 1).toISOString()}`)))).toBe('ENOENT') // before the move
    const left = log(m.p('data', 'f3'))
    expect(left.map((r) => r.change)).toEqual(['create', 'version', 'version', 'renamed away'])
    expect(left[3]!.sizeBytes).toBeNull()
    await expectRowsAreWhatPathReturns(m.p('data', 'f3'), left)
  })

  it('a removed file keeps its history, ending in its removal; a re-created one continues it with a new object', async () => {
    bash('echo keep > precious.txt && rm precious.txt')
    const removed = log(m.p('precious.txt'))
    expect(removed.map((r) => [r.version, r.change, r.sizeBytes])).toEqual([[1, 'create', 0], [2, 'version', 5], [3, 'removed', null]])
    expect(await fsp.readFile(m.p('precious.txt@v2'), 'utf8')).toBe('keep\n')
    expect(await errCode(fsp.stat(m.p('precious.txt@v3')))).toBe('ENOENT')
    const cat = runCli(['cat', m.p('precious.txt@v3')])
    expect(cat.stderr).toMatch(/version 3 of precious.txt is its removal/)
    const beyond = runCli(['cat', m.p('precious.txt@v9')])
    expect(beyond.stderr).toMatch(/precious.txt has 3 versions/)
    bash('echo again > precious.txt')
    const again = log(m.p('precious.txt'))
    expect(again.map((r) => r.change)).toEqual(['create', 'version', 'removed', 'create', 'version'])
    expect(again[3]!.ino).not.toBe(again[0]!.ino)
    await expectRowsAreWhatPathReturns(m.p('precious.txt'), again)
    const never = runCli(['log', m.p('never-was.txt')])
    expect(never.status).not.toBe(0)
    expect(never.stderr).toMatch(/^fffs: no such file or directory: \/never-was.txt \(it has never existed\)/)
  })

  it('a directory log says what changed among its entries', () => {
    bash('mkdir d && touch d/a && mv d/a d/b && rm d/b && mkdir d/sub && echo x > x && mv x d/ && mkdir d/sub2 && mv -T d/sub2 d/sub')
    const rows = log(m.p('d'))
    expect(rows.map((r) => r.change)).toEqual(['create', '+ a', 'renamed a → b', '- b', '+ sub', '+ x (moved in)', '+ sub2', 'renamed sub2 → sub (replacing the one before)'])
    const text = runCli(['log', m.p('d')]).stdout
    expect(text).toMatch(/^VERSION\s+TIME\s+SENSOR_TIME\s+SIZE\s+LINKS\s+INODE\s+CHANGE$/m)
    expect(text).toMatch(/renamed a → b$/m)
    expect(log(m.p()).map((r) => r.change)).toContain('- x (moved out)')
  })
})

describe('fffs log --limit, --since, --until, --reverse', () => {
  it('pages and filters the rows, keeping their numbers', async () => {
    const file = m.p('paged.txt')
    for (let i = 1; i <= 20; i++) await fsp.writeFile(file, `v${i}`) // rows 1 (create) .. 21
    const all = log(file)
    expect(all.map((r) => r.version)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1))
    expect(log('--limit', '5', file).map((r) => r.version)).toEqual([1, 2, 3, 4, 5])
    expect(log('--reverse', '--limit', '3', file).map((r) => r.version)).toEqual([21, 20, 19])
    expect(log('--reverse', file).map((r) => r.version)).toEqual(all.map((r) => r.version).reverse())
    const since = all[9]!.time
    const until = all[14]!.time
    expect(log('--since', since, file)[0]!.version).toBeLessThanOrEqual(10)
    expect(log('--since', since, file).map((r) => r.version)).toEqual(all.filter((r) => r.time >= since).map((r) => r.version))
    expect(log('--until', until, file).map((r) => r.version)).toEqual(all.filter((r) => r.time <= until).map((r) => r.version))
    expect(log('--since', since, '--until', until, '--reverse', '--limit', '2', file).map((r) => r.version)).toEqual(
      all.filter((r) => r.time >= since && r.time <= until).map((r) => r.version).reverse().slice(0, 2),
    )
    expect(await fsp.readFile(`${file}@v${all[15]!.version}`, 'utf8')).toBe('v15')
    const bad = runCli(['log', '--limit', '0', file])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/^fffs: not a positive integer: '0'$/m)
    const badSpec = runCli(['log', '--since', 'v3', file])
    expect(badSpec.status).not.toBe(0)
    expect(badSpec.stderr).toMatch(/--since takes a platform time/)
  })
})
