// A full disk loses nothing: an embedded mount whose data directory is on a small tmpfs. Writes
// that meet the full disk get ENOSPC (write, close, fsync; never EIO, never a hang), every file
// written and closed before reads back whole, the mount keeps serving reads, deletes and
// retention, `fffs status` says the disk is full, `df` shows nothing available; once space is
// freed (by deleting files, or outside fffs) writes resume without a restart; and a mount
// restarted on a full disk starts and serves reads.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

const FILE_BYTES = 4 * 1024 * 1024
const DISK = '48m'

let root: string
let volume: string
let m: TestMount
const written = new Map<string, string>() // file -> sha256 of what a successful close committed

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const filler = (): string => path.join(volume, 'filler')

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'fffs-fulldisk-'))
  volume = path.join(root, 'volume')
  await fsp.mkdir(volume)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK}`, 'tmpfs', volume])
  m = await startMount(['--data-dir', path.join(volume, 'data'), '--keep-all-for', '1s', '--force-retention', '--max-wait', '2000'])
})

afterAll(async () => {
  await m?.cleanup()
  if (volume !== undefined) execFileSync('umount', ['-l', volume], { stdio: 'ignore' })
  rmSync(root, { recursive: true, force: true })
})

/** Writes files of FILE_BYTES until one is refused; returns the error code of the refusal. */
async function fillUp(prefix: string): Promise<string> {
  for (let i = 0; i < 64; i++) {
    const name = m.p(`${prefix}${i}`)
    const bytes = Buffer.alloc(FILE_BYTES, (i * 31 + prefix.length) & 0xff)
    bytes.writeUInt32LE(i, 0)
    const code = await errCode(fsp.writeFile(name, bytes))
    if (code === 'no error') {
      written.set(name, sha(bytes))
      continue
    }
    return code
  }
  throw new Error('64 files of 4 MiB fitted on a 48 MiB disk')
}

async function everyWrittenFileIsWhole(): Promise<void> {
  for (const [name, digest] of written) expect({ name, digest: sha(await fsp.readFile(name)) }).toEqual({ name, digest })
}

/** Retries a small write until it is accepted (space freed comes back within a retention run). */
async function writableWithin(ms: number): Promise<void> {
  let last = ''
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    last = await errCode(fsp.writeFile(m.p('probe'), 'probe'))
    if (last === 'no error') return
  }
  throw new Error(`writes did not resume within ${ms} ms (last: ${last})`)
}

describe('a full disk', () => {
  it('refuses writes with ENOSPC, keeps what was written, and keeps serving reads, status and deletes', async () => {
    expect(await fillUp('a')).toBe('ENOSPC')
    expect(written.size).toBeGreaterThan(3)
    await everyWrittenFileIsWhole()
    expect(runCli(['status', '--mount', m.mountpoint]).stdout).toMatch(/^disk FULL: .* writes refused \(ENOSPC\)/m)
    expect((await fsp.statfs(m.mountpoint)).bavail).toBe(0)
    expect((await fsp.readdir(m.mountpoint)).length).toBeGreaterThan(3)
    expect(await errCode(fsp.mkdir(m.p('newdir')))).toBe('ENOSPC')
    expect(m.output()).not.toMatch(/EIO|internal error|corruption/)
  })

  it('frees space when files are deleted (retention, then segment GC) and writes resume without a restart', async () => {
    const victims = [...written.keys()].slice(0, 4)
    for (const name of victims) {
      await fsp.unlink(name)
      written.delete(name)
    }
    await writableWithin(20_000)
    expect((await fsp.statfs(m.mountpoint)).bavail).toBeGreaterThan(0)
    await everyWrittenFileIsWhole()
  })

  it('an fsync of a version that meets a full disk gets ENOSPC, and nothing acknowledged is lost', async () => {
    // Written while there is room; then the disk fills up from outside before the fsync.
    const result = python(
      [
        'import os, sys, errno',
        'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)',
        'os.write(fd, b"x" * 4096)',
        'with open(sys.argv[2], "wb") as filler:',
        '    try:',
        '        while True: filler.write(b"\\0" * 65536); filler.flush()',
        '    except OSError as e:',
        '        assert e.errno == errno.ENOSPC',
        'for call in (os.fsync, os.close):',
        '    try:',
        '        call(fd); print(call.__name__, "ok")',
        '    except OSError as e:',
        '        print(call.__name__, errno.errorcode[e.errno])',
      ].join('\n'),
      m.p('synced'),
      filler(),
    )
    expect(result).toMatch(/^fsync ENOSPC$/m)
    expect(result).not.toMatch(/EIO/)
    await everyWrittenFileIsWhole()
    await fsp.rm(filler())
    await writableWithin(20_000)
  })

  it('a mount restarted on a full disk starts, serves reads, and takes writes once space is freed', async () => {
    expect(await fillUp('b')).toBe('ENOSPC')
    await m.kill9()
    // The rest of the disk, to the last byte.
    python('import sys\ntry:\n    open(sys.argv[1], "wb").write(b"\\0" * (64 << 20))\nexcept OSError:\n    pass', filler())
    expect((await fsp.statfs(volume)).bavail).toBe(0)
    await m.restart()
    expect(m.output()).toMatch(/ready at .*\n.*\n?.*ready at/s) // a second ready line: the restarted mount serves
    await everyWrittenFileIsWhole()
    expect(await errCode(fsp.writeFile(m.p('after-restart'), 'x'))).toBe('ENOSPC')
    await fsp.rm(filler())
    await writableWithin(20_000)
    await everyWrittenFileIsWhole()
  })
})
