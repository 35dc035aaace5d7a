// What the kernel keeps of a live file's pages on a mount. The pages of the version an open
// reads stay cached across closes and opens while that version is current, and the bytes of a
// small version this mount just committed become the file's pages at its next open: reading a
// file again asks the mount nothing, and right after writing it nothing beyond the mount's
// memory. What the kernel holds is seen with fincore(1) (which pages of a file are in the page cache, by mincore(2) of a mapping,
// without reading them; its own open is an open like any other). Whatever it keeps, every read
// returns the current version's bytes. Proved on a plain directory first (ext4 keeps the pages
// a write or a read brought in), then on an embedded mount.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/cluster.js'
import { python, startMount, type TestMount } from '../helpers/mount.js'

const KiB = 1024
const PAGES_STORED_WITHIN_MS = 10_000 // a bound for a shared machine, not a measure

/** Bytes of `file` in the page cache now. */
function cachedBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim())
}

/** `sizeBytes` bytes that name `label` on every line, so a read of another version or file shows. */
function contents(label: string, sizeBytes: number): Buffer {
  const line = `${label} `.padEnd(63, '.') + '\n'
  return Buffer.from(line.repeat(Math.ceil(sizeBytes / line.length)).slice(0, sizeBytes))
}

/** The cases, against any directory; `restart` starts its file system afresh (nothing of it in the mount's memory), or is absent. */
function pageCases(dir: () => string, restart?: () => Promise<void>): void {
  const p = (name: string): string => path.join(dir(), name)

  it('a small file just written comes into the page cache at its next open, unread, and reads back its bytes', async () => {
    const bytes = contents('written', 12 * KiB)
    await fsp.writeFile(p('written.txt'), bytes)
    // fincore's open is that next open; the pages are stored behind its reply, so a later look finds them.
    await waitFor('the pages of the file just written', PAGES_STORED_WITHIN_MS, () => (cachedBytes(p('written.txt')) === 12 * KiB ? true : undefined))
    expect(readFileSync(p('written.txt')).equals(bytes)).toBe(true)
  })

  it('a file read once keeps its pages across a close and the next open', async () => {
    const bytes = contents('read once', 20 * KiB)
    await fsp.writeFile(p('read-once.txt'), bytes)
    await restart?.()
    expect(readFileSync(p('read-once.txt')).equals(bytes)).toBe(true)
    expect(cachedBytes(p('read-once.txt'))).toBe(20 * KiB)
  })

  it('a rewrite of the same size replaces the cached pages: the next read is the new version', async () => {
    await fsp.writeFile(p('rewritten.txt'), contents('first', 8 * KiB))
    expect(readFileSync(p('rewritten.txt')).equals(contents('first', 8 * KiB))).toBe(true)
    await fsp.writeFile(p('rewritten.txt'), contents('second', 8 * KiB))
    expect(readFileSync(p('rewritten.txt')).equals(contents('second', 8 * KiB))).toBe(true)
    expect(readFileSync(p('rewritten.txt')).equals(contents('second', 8 * KiB))).toBe(true) // the cached pages, this time
  })

  it('an append, a write past the end and a write in the middle read back whole, through read(2) and mmap', async () => {
    await fsp.writeFile(p('grown.txt'), contents('base', 6 * KiB))
    expect(readFileSync(p('grown.txt')).length).toBe(6 * KiB) // cached
    await fsp.appendFile(p('grown.txt'), 'tail\n')
    const out = python(
      `
import mmap, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY)          # a hole, then bytes past it; then bytes in the middle
os.pwrite(fd, b'far', 6 * 1024 + 5 + 3000)
os.pwrite(fd, b'MIDDLE', 100)
os.close(fd)
with open(path, 'rb') as f:
    data = f.read()
with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    mapped = bytes(m)
print(len(data), data == mapped, data[100:106].decode(), data[6 * 1024:6 * 1024 + 5].decode().strip(), data[6 * 1024 + 5:6 * 1024 + 5 + 3000].count(0), data[-3:].decode())
`,
      p('grown.txt'),
    )
    expect(out.trim()).toBe(`${6 * KiB + 5 + 3003} True MIDDLE tail 3000 far`)
    const expected = Buffer.concat([contents('base', 6 * KiB), Buffer.from('tail\n'), Buffer.alloc(3000), Buffer.from('far')])
    expected.write('MIDDLE', 100)
    expect(readFileSync(p('grown.txt')).equals(expected)).toBe(true)
  })

  it('a file too large to keep whole reads back its bytes', async () => {
    const bytes = contents('large', 1024 * KiB + 123)
    await fsp.writeFile(p('large.bin'), bytes)
    expect(readFileSync(p('large.bin')).equals(bytes)).toBe(true)
    expect(readFileSync(p('large.bin')).equals(bytes)).toBe(true)
  })
}

describe('on a plain directory (proves the cases)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-pages-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  pageCases(() => dir)
})

describe('on an embedded mount', () => {
  let m: TestMount
  beforeAll(async () => {
    m = await startMount()
  })
  afterAll(async () => {
    await m?.cleanup()
  })
  pageCases(
    () => m.mountpoint,
    async () => {
      await m.kill9() // the quickest way to a mount process with nothing in memory; what a close acknowledged is on disk
      await m.restart()
    },
  )
})
