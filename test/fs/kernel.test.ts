// The FUSE layer's own decisions (src/fs/kernel.ts, native/src/fuse.cpp): node ids that follow
// renames, handles that outlive their names, cached pages kept only while a frozen name still
// means the same version, and the answers fffs gives without a handler. Real mount, real
// system calls (node fs, shell tools, Python).

import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount()
})
afterAll(async () => {
  await m?.cleanup()
})

describe('names and nodes', () => {
  it('a file written through a handle opened before its directory was renamed lands under the new name', async () => {
    await fsp.mkdir(m.p('before'))
    const fh = await fsp.open(m.p('before', 'log'), 'w')
    await fh.write('first ')
    await fsp.rename(m.p('before'), m.p('after'))
    await fh.write('second')
    await fh.close()
    expect(await fsp.readFile(m.p('after', 'log'), 'utf8')).toBe('first second')
    expect(await errCode(fsp.stat(m.p('before')))).toBe('ENOENT')
    // A new directory under the old name is a new node, not the renamed one.
    await fsp.mkdir(m.p('before'))
    expect(await fsp.readdir(m.p('before'))).toEqual([])
    expect(await fsp.readdir(m.p('after'))).toEqual(['log'])
  })

  it('fstat and reads of an open file keep working after its name is unlinked', async () => {
    await fsp.writeFile(m.p('doomed'), 'still here')
    const fh = await fsp.open(m.p('doomed'), 'r')
    await fsp.unlink(m.p('doomed'))
    expect(await errCode(fsp.stat(m.p('doomed')))).toBe('ENOENT')
    expect((await fh.stat()).size).toBe(10)
    const buf = Buffer.alloc(10)
    await fh.read(buf, 0, 10, 0)
    expect(buf.toString()).toBe('still here')
    await fh.close()
  })

  it('rename over an existing file: the old handle reads the old bytes, the name the new ones', async () => {
    await fsp.writeFile(m.p('target'), 'old target')
    await fsp.writeFile(m.p('incoming'), 'new bytes')
    const fh = await fsp.open(m.p('target'), 'r')
    await fsp.rename(m.p('incoming'), m.p('target'))
    expect(await fsp.readFile(m.p('target'), 'utf8')).toBe('new bytes')
    const buf = Buffer.alloc(10)
    await fh.read(buf, 0, 10, 0)
    expect(buf.toString()).toBe('old target')
    await fh.close()
  })

  it('renameat2 with RENAME_NOREPLACE refuses an existing target (EEXIST) and moves to a free one', () => {
    const script = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_NOREPLACE, RENAME_EXCHANGE = -100, 1, 2
def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    return 'ok' if r == 0 else os.strerror(ctypes.get_errno())
d = sys.argv[1]
for n in ('x', 'y'):
    open(os.path.join(d, n), 'w').write(n)
print(renameat2(os.path.join(d, 'x'), os.path.join(d, 'y'), RENAME_NOREPLACE))
print(renameat2(os.path.join(d, 'x'), os.path.join(d, 'z'), RENAME_NOREPLACE))
print(renameat2(os.path.join(d, 'z'), os.path.join(d, 'y'), RENAME_EXCHANGE))
print(sorted(os.listdir(d)), open(os.path.join(d, 'y')).read(), open(os.path.join(d, 'z')).read())
`
    execFileSync('mkdir', [m.p('noreplace')])
    const lines = python(script, m.p('noreplace')).trim().split('\n')
    expect(lines[0]).toBe('File exists')
    expect(lines[1]).toBe('ok')
    expect(lines[2]).toBe('Invalid argument') // fffs does not exchange names
    expect(lines[3]).toBe("['y', 'z'] y x")
  })

  it('a listing rewound sees names added since', async () => {
    await fsp.mkdir(m.p('growing'))
    await fsp.writeFile(m.p('growing', 'a'), 'a')
    const script = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
first = sorted(os.listdir(fd))
open(os.path.join(sys.argv[1], 'b'), 'w').write('b')
os.lseek(fd, 0, os.SEEK_SET)
print(first, sorted(os.listdir(fd)))
`
    expect(python(script, m.p('growing')).trim()).toBe("['a'] ['a', 'b']")
  })
})

describe('cached pages of frozen names', () => {
  it('a snapshot deleted and pinned again under the same name serves the new cut, not the cached pages', async () => {
    await fsp.writeFile(m.p('weights'), 'epoch 1 weights')
    expect(runCli(['snapshot', 'create', 'latest', '--mount', m.mountpoint]).status).toBe(0)
    const frozen = m.p('.snapshot', 'latest', 'weights')
    expect(await fsp.readFile(frozen, 'utf8')).toBe('epoch 1 weights')
    expect(await fsp.readFile(frozen, 'utf8')).toBe('epoch 1 weights') // now from the kernel's cache
    await fsp.writeFile(m.p('weights'), 'epoch 2 weights') // the same size: only the version tells
    // Through the CLI, not rmdir: the mount never sees the name go.
    expect(runCli(['snapshot', 'delete', 'latest', '--mount', m.mountpoint]).status).toBe(0)
    expect(runCli(['snapshot', 'create', 'latest', '--mount', m.mountpoint]).status).toBe(0)
    // Within the kernel's 1 s of caching the name: the open still finds the version changed.
    expect(await fsp.readFile(frozen, 'utf8')).toBe('epoch 2 weights')
  })

  it('a frozen path read twice returns the same bytes while the live file changes', async () => {
    await fsp.writeFile(m.p('frame'), Buffer.alloc(300_000, 1))
    const t = await instantNow()
    await fsp.writeFile(m.p('frame'), Buffer.alloc(300_000, 2))
    const first = await fsp.readFile(m.p(`frame@${t}`))
    await fsp.writeFile(m.p('frame'), Buffer.alloc(300_000, 3))
    const second = await fsp.readFile(m.p(`frame@${t}`))
    expect(first.equals(Buffer.alloc(300_000, 1))).toBe(true)
    expect(second.equals(first)).toBe(true)
    expect((await fsp.readFile(m.p('frame')))[0]).toBe(3)
  })
})

describe('requests of any size', () => {
  it('a 3 MiB write(2) and reads of every size come back byte-identical', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24
    await fsp.writeFile(m.p('big'), bytes)
    expect((await fsp.readFile(m.p('big'))).equals(bytes)).toBe(true)
    const digest = python(
      `
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], 'rb', buffering=0) as f:
    for n in (1, 4095, 4097, 131072, 1048576, 2000000, 10**7):
        h.update(f.read(n))
print(h.hexdigest())
`,
      m.p('big'),
    ).trim()
    const { createHash } = await import('node:crypto')
    expect(digest).toBe(createHash('sha256').update(bytes).digest('hex'))
  })
})

describe('the loop after requests', () => {
  it('polls only briefly after a reply: after a burst of requests the idle mount uses under 20% of a core', async () => {
    // A loop left polling would use a whole core.
    await fsp.mkdir(m.p('burst'))
    for (let i = 0; i < 200; i++) {
      await fsp.writeFile(m.p('burst', `f${i}`), 'x')
      await fsp.stat(m.p('burst', `f${i}`))
    }
    await new Promise((r) => setTimeout(r, 200))
    const cpuBeforeMs = m.cpuMs()
    const startedMs = Date.now()
    await new Promise((r) => setTimeout(r, 1000))
    expect((m.cpuMs() - cpuBeforeMs) / (Date.now() - startedMs)).toBeLessThan(0.2)
  })
})
