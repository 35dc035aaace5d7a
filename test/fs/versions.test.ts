// Versions, time paths and the namespace at a cut, through a real mount with node fs.

import { promises as fsp, constants as fsc } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount(['--max-wait', '1500'])
})
afterAll(async () => {
  await m?.cleanup()
})

describe('versions at commit points', () => {
  it('each close is a version, readable by time and by number', async () => {
    const f = m.p('notes.txt')
    const beforeCreate = await instantNow()
    await fsp.writeFile(f, 'one')
    const t1 = await instantNow()
    await fsp.writeFile(f, 'two two')
    const t2 = await instantNow()
    await fsp.appendFile(f, '+three')
    expect(await fsp.readFile(f, 'utf8')).toBe('two two+three')
    expect(await fsp.readFile(`${f}@${t1}`, 'utf8')).toBe('one')
    expect(await fsp.readFile(`${f}@${t2}`, 'utf8')).toBe('two two')
    expect(await errCode(fsp.readFile(`${f}@${beforeCreate}`))).toBe('ENOENT')
    // v1 is the empty file create() made; each write+close after it is the next version
    expect(await fsp.readFile(`${f}@v2`, 'utf8')).toBe('one')
    expect(await fsp.readFile(`${f}@v3`, 'utf8')).toBe('two two')
    expect(await errCode(fsp.readFile(`${f}@v99`))).toBe('ENOENT')
  })

  it('writes between commit points through one descriptor form one version; fsync is a commit point', async () => {
    const f = m.p('multi.bin')
    const fh = await fsp.open(f, 'w+')
    await fh.write(Buffer.from('aaaa'), 0, 4, 0)
    await fh.write(Buffer.from('bbbb'), 0, 4, 4)
    expect((await fh.read(Buffer.alloc(8), 0, 8, 0)).buffer.toString()).toBe('aaaabbbb') // own uncommitted writes
    await fh.sync()
    const afterSync = await instantNow()
    await fh.write(Buffer.from('cc'), 0, 2, 2)
    await fh.close()
    expect(await fsp.readFile(`${f}@${afterSync}`, 'utf8')).toBe('aaaabbbb')
    expect(await fsp.readFile(f, 'utf8')).toBe('aaccbbbb')
    expect(await fsp.readFile(`${f}@v2`, 'utf8')).toBe('aaaabbbb')
  })

  it('truncate and ftruncate keep history; growing reads zeros', async () => {
    const f = m.p('trunc.txt')
    await fsp.writeFile(f, 'abcdefgh')
    const before = await instantNow()
    await fsp.truncate(f, 3)
    expect(await fsp.readFile(f, 'utf8')).toBe('abc')
    await fsp.truncate(f, 6)
    expect(await fsp.readFile(f)).toEqual(Buffer.from([0x61, 0x62, 0x63, 0, 0, 0]))
    expect(await fsp.readFile(`${f}@${before}`, 'utf8')).toBe('abcdefgh')
  })

  it('large files across block boundaries, overwritten in the middle', async () => {
    const f = m.p('large.bin')
    const data = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
    await fsp.writeFile(f, data)
    // A version that writes no bytes: its reader finds every block's map at an earlier version's stamp.
    await fsp.chmod(f, 0o640)
    const t = await instantNow()
    const fh = await fsp.open(f, 'r+')
    await fh.write(Buffer.alloc(1024 * 1024, 0xee), 0, 1024 * 1024, 1024 * 1024 - 100)
    await fh.close()
    const now = await fsp.readFile(f)
    const expected = Buffer.from(data)
    expected.fill(0xee, 1024 * 1024 - 100, 2 * 1024 * 1024 - 100)
    expect(now.equals(expected)).toBe(true)
    expect((await fsp.readFile(`${f}@${t}`)).equals(data)).toBe(true)
    expect((await fsp.stat(`${f}@${t}`)).mode & 0o777).toBe(0o640)
    expect((await fsp.readFile(`${f}@v2`)).equals(data)).toBe(true) // the version that wrote the blocks
  })
})

describe('directory trees at a cut', () => {
  it('lists and reads a subtree as it was, after renames and deletes', async () => {
    await fsp.mkdir(m.p('cams'))
    await fsp.mkdir(m.p('cams', 'c1'))
    await fsp.writeFile(m.p('cams', 'c1', 'f.png'), 'frame-1')
    await fsp.writeFile(m.p('cams', 'gone.txt'), 'soon gone')
    const t = await instantNow()
    await fsp.rename(m.p('cams', 'c1'), m.p('cams', 'c2'))
    await fsp.writeFile(m.p('cams', 'c2', 'f.png'), 'frame-2')
    await fsp.unlink(m.p('cams', 'gone.txt'))
    await fsp.writeFile(m.p('cams', 'new.txt'), 'new')

    expect((await fsp.readdir(m.p('cams'))).sort()).toEqual(['c2', 'new.txt'])
    expect((await fsp.readdir(m.p(`cams@${t}`))).sort()).toEqual(['c1', 'gone.txt'])
    expect(await fsp.readFile(m.p(`cams@${t}`, 'c1', 'f.png'), 'utf8')).toBe('frame-1')
    expect(await fsp.readFile(m.p(`cams@${t}`, 'gone.txt'), 'utf8')).toBe('soon gone')
    expect(await errCode(fsp.stat(m.p(`cams@${t}`, 'c2')))).toBe('ENOENT')
    // readdir never lists @ variants
    expect((await fsp.readdir(m.p())).some((n) => n.includes('@'))).toBe(false)
  })

  it('rename over an existing file and across directories', async () => {
    await fsp.mkdir(m.p('r1'))
    await fsp.mkdir(m.p('r2'))
    await fsp.writeFile(m.p('r1', 'a'), 'A')
    await fsp.writeFile(m.p('r2', 'b'), 'B')
    const t = await instantNow()
    await fsp.rename(m.p('r1', 'a'), m.p('r2', 'b'))
    expect(await fsp.readFile(m.p('r2', 'b'), 'utf8')).toBe('A')
    expect(await errCode(fsp.stat(m.p('r1', 'a')))).toBe('ENOENT')
    expect(await fsp.readFile(m.p('r2', `b@${t}`), 'utf8')).toBe('B')
    await fsp.mkdir(m.p('r2', 'sub'))
    expect(await errCode(fsp.rename(m.p('r2'), m.p('r2', 'sub', 'inside')))).toBe('EINVAL')
    expect(await errCode(fsp.rmdir(m.p('r2')))).toBe('ENOTEMPTY')
  })

  it('symlinks, modes, owners and times are versioned metadata', async () => {
    await fsp.writeFile(m.p('target.txt'), 'T')
    await fsp.symlink('target.txt', m.p('link'))
    expect(await fsp.readlink(m.p('link'))).toBe('target.txt')
    expect(await fsp.readFile(m.p('link'), 'utf8')).toBe('T')
    await fsp.chmod(m.p('target.txt'), 0o600)
    expect((await fsp.stat(m.p('target.txt'))).mode & 0o777).toBe(0o600)
    await fsp.chown(m.p('target.txt'), 1234, 5678)
    const st = await fsp.stat(m.p('target.txt'))
    expect([st.uid, st.gid]).toEqual([1234, 5678])
    const when = new Date('2020-01-02T03:04:05Z')
    await fsp.utimes(m.p('target.txt'), when, when)
    expect((await fsp.stat(m.p('target.txt'))).mtime.getTime()).toBe(when.getTime())
    const fs = await fsp.statfs(m.p())
    expect(fs.bsize).toBeGreaterThan(0)
  })
})

describe('errors', () => {
  it('time paths are read-only; malformed specs are EINVAL', async () => {
    await fsp.writeFile(m.p('ro.txt'), 'x')
    const t = await instantNow()
    expect(await errCode(fsp.writeFile(m.p(`ro.txt@${t}`), 'y'))).toBe('EROFS')
    expect(await errCode(fsp.unlink(m.p(`ro.txt@${t}`)))).toBe('EROFS')
    expect(await errCode(fsp.chmod(m.p(`ro.txt@${t}`), 0o600))).toBe('EROFS')
    expect(await errCode(fsp.mkdir(m.p('dir@1763719200s')))).toBe('EROFS')
    expect(await errCode(fsp.readFile(m.p('ro.txt@2026-13-45T00:00:00Z')))).toBe('EINVAL')
    expect(await errCode(fsp.readFile(m.p('ro.txt@sensor:nope')))).toBe('EINVAL')
    expect(await errCode(fsp.readdir(m.p(`cams@${t}`, `c1@${t}`)))).toBe('EINVAL')
    // an @ that is not a spec is an ordinary character
    await fsp.writeFile(m.p('alice@example.org.txt'), 'mail')
    await fsp.writeFile(m.p('icon@2x.png'), 'png')
    expect(await fsp.readFile(m.p('alice@example.org.txt'), 'utf8')).toBe('mail')
    expect((await fsp.readdir(m.p())).includes('icon@2x.png')).toBe(true)
  })

  it('a cut in the future waits up to --max-wait, then EAGAIN; O_NONBLOCK fails at once', async () => {
    await fsp.writeFile(m.p('future.txt'), 'x')
    const future = new Date(Date.now() + 60_000).toISOString()
    const started = Date.now()
    expect(await errCode(fsp.readFile(m.p(`future.txt@${future}`)))).toBe('EAGAIN')
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000) // waited (max-wait is 1500 ms here)
    const soon = new Date(Date.now() + 300).toISOString()
    expect(await errCode(fsp.open(m.p(`future.txt@${new Date(Date.now() + 30_000).toISOString()}`), fsc.O_RDONLY | fsc.O_NONBLOCK))).toBe('EAGAIN')
    expect(await fsp.readFile(m.p(`future.txt@${soon}`), 'utf8')).toBe('x') // becomes stable while waiting
  })
})
