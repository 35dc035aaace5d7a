// Frozen cuts: readers at any T see whole versions, named snapshots pin cuts, sensor time
// stamps versions; checked with node fs, shell tools and Python.

import { execFileSync } from 'node:child_process'
import { constants as fsConstants, promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount(['--sensor-lag-max', '1000', '--clock-skew-max', '10'])
})
afterAll(async () => {
  await m?.cleanup()
})

describe('no torn reads', () => {
  it('a reader at any instant sees one whole version of a multi-block file', async () => {
    const f = m.p('frame.raw')
    const sizeBytes = 2 * 1024 * 1024 + 5000
    const instants: string[] = []
    const writing = (async () => {
      for (let v = 0; v < 25; v++) {
        const fh = await fsp.open(f, 'w')
        for (let at = 0; at < sizeBytes; at += 100_000) await fh.write(Buffer.alloc(Math.min(100_000, sizeBytes - at), v), 0, Math.min(100_000, sizeBytes - at), at)
        await fh.close()
      }
    })()
    const reading = (async () => {
      for (let r = 0; r < 40; r++) {
        instants.push(new Date().toISOString())
        await new Promise((res) => setTimeout(res, 3))
      }
    })()
    await Promise.all([writing, reading])
    let seen = 0
    for (const t of instants) {
      let data: Buffer
      try {
        data = await fsp.readFile(`${f}@${t}`)
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOENT') // before the first version
        continue
      }
      seen++
      expect(data.length === 0 || data.length === sizeBytes).toBe(true)
      if (data.length > 0) expect(data.every((b) => b === data[0])).toBe(true)
    }
    expect(seen).toBeGreaterThan(5)
    // and live reads of the last version
    const live = await fsp.readFile(f)
    expect(live.length).toBe(sizeBytes)
    expect(live.every((b) => b === 24)).toBe(true)
  })
})

describe('reading a past version', () => {
  it('gives its bytes from any first offset and length, however its name spells the instant', async () => {
    const f = m.p('patterned.bin')
    const sizeBytes = 300 * 1024 + 123 // more than the 128 KiB an open at a past cut reads ahead
    const pattern = (version: number): Buffer => Buffer.from(Array.from({ length: sizeBytes }, (_, i) => (i * 7 + (i >> 8) + version) & 255))
    await fsp.writeFile(f, pattern(1))
    const atIso = await instantNow()
    await fsp.writeFile(f, pattern(2))
    await fsp.truncate(f, 0)
    const expected = pattern(1)
    // Distinct spellings of instants with no version between them: distinct names, so the kernel's cache of one never answers another.
    const at = (k: number): string => `${f}@${atIso.replace('Z', `${String(k).padStart(3, '0')}Z`)}` // + k µs
    expect((await fsp.readFile(at(0))).equals(expected)).toBe(true)
    const readAt = async (k: number, reads: Array<[offset: number, lengthBytes: number]>, flags = fsConstants.O_RDONLY): Promise<void> => {
      const fh = await fsp.open(at(k), flags)
      try {
        for (const [offset, lengthBytes] of reads) {
          const { bytesRead, buffer } = await fh.read(Buffer.alloc(lengthBytes), 0, lengthBytes, offset)
          expect(bytesRead).toBe(Math.max(0, Math.min(lengthBytes, sizeBytes - offset)))
          expect(buffer.subarray(0, bytesRead).equals(expected.subarray(offset, offset + bytesRead))).toBe(true)
        }
      } finally {
        await fh.close()
      }
    }
    await readAt(1, [[0, 1024 * 1024]])
    await readAt(2, [[200_000, 4096], [0, 4096]])
    await readAt(3, [[0, 1], [1, 200_000], [sizeBytes - 10, 4096]])
    await readAt(4, [[sizeBytes, 4096]])
    // O_DIRECT: every read reaches the mount, none is answered from the page cache.
    await readAt(5, [[0, 1024 * 1024]], fsConstants.O_RDONLY | fsConstants.O_DIRECT)
    await readAt(6, [[0, 64 * 1024], [64 * 1024, 1024 * 1024]], fsConstants.O_RDONLY | fsConstants.O_DIRECT)
    // The truncated (empty) version, at a later instant.
    expect((await fsp.readFile(`${f}@${await instantNow()}`)).length).toBe(0)
  })

  it('names above the instant resolve live: the same path at the same instant follows a replaced directory', async () => {
    await fsp.mkdir(m.p('cam'))
    await fsp.writeFile(m.p('cam/frame'), 'first camera')
    const t = await instantNow()
    expect(await fsp.readFile(m.p(`cam/frame@${t}`), 'utf8')).toBe('first camera')
    await fsp.rename(m.p('cam'), m.p('cam.old'))
    await fsp.mkdir(m.p('cam'))
    await fsp.writeFile(m.p('cam/frame'), 'second camera')
    // The new cam had no frame at t; the old one did, under its new name.
    expect(await errCode(fsp.readFile(m.p(`cam/frame@${t}`), 'utf8'))).toBe('ENOENT')
    expect(await fsp.readFile(m.p(`cam.old/frame@${t}`), 'utf8')).toBe('first camera')
    expect(await fsp.readFile(m.p(`cam@${t}/frame`), 'utf8')).toBe('first camera') // cam as it was at t: the old directory
  })
})

describe('named snapshots', () => {
  it('mkdir .snapshot/NAME and fffs snapshot create pin cuts; Python reads them', async () => {
    await fsp.mkdir(m.p('dataset'))
    for (let i = 0; i < 5; i++) await fsp.writeFile(m.p('dataset', `s${i}.csv`), `row,${i}\n`)
    await fsp.mkdir(m.p('.snapshot', 'epoch1'))
    const cli = runCli(['snapshot', 'create', 'epoch1b', '--mount', m.mountpoint])
    expect(cli.status, cli.stderr).toBe(0)
    await fsp.writeFile(m.p('dataset', 's0.csv'), 'changed\n')
    await fsp.writeFile(m.p('dataset', 's9.csv'), 'late\n')

    expect((await fsp.readdir(m.p('.snapshot'))).sort()).toEqual(['epoch1', 'epoch1b'])
    expect((await fsp.readdir(m.p('.snapshot', 'epoch1', 'dataset'))).sort()).toEqual(['s0.csv', 's1.csv', 's2.csv', 's3.csv', 's4.csv'])
    const script = `
import os, sys, hashlib
root = sys.argv[1]
h = hashlib.sha256()
for name in sorted(os.listdir(root)):
    with open(os.path.join(root, name), 'rb') as f:
        h.update(name.encode()); h.update(f.read())
print(h.hexdigest())
`
    const a = python(script, m.p('.snapshot', 'epoch1', 'dataset'))
    const b = python(script, m.p('.snapshot', 'epoch1b', 'dataset'))
    expect(a).toBe(b)
    expect(await fsp.readFile(m.p('.snapshot', 'epoch1', 'dataset', 's0.csv'), 'utf8')).toBe('row,0\n')
    expect((await fsp.readFile(m.p('.snapshot', 'epoch1', 'dataset', 's0.csv'))).toString()).not.toBe((await fsp.readFile(m.p('dataset', 's0.csv'))).toString())
    // snapshots are read-only; rmdir deletes one
    await expect(fsp.writeFile(m.p('.snapshot', 'epoch1', 'dataset', 'x'), 'y')).rejects.toMatchObject({ code: expect.stringMatching(/EROFS|EINVAL/) })
    await fsp.rmdir(m.p('.snapshot', 'epoch1b'))
    expect(await fsp.readdir(m.p('.snapshot'))).toEqual(['epoch1'])
    // cp -r of a frozen tree
    execFileSync('cp', ['-r', m.p('.snapshot', 'epoch1', 'dataset'), `${m.root}/copy`])
    expect((await fsp.readdir(`${m.root}/copy`)).length).toBe(5)
  })
})

describe('sensor time', () => {
  it('P@sensor:T writes stamp versions; reads at sensor T pick the latest version stamped at or before T', async () => {
    await fsp.writeFile(m.p('pmu.dat'), 'no sensor time') // exists in the structure of every cut below
    await new Promise((r) => setTimeout(r, 50))
    const t0 = Date.now()
    const at = (ms: number) => new Date(t0 + ms).toISOString()
    await fsp.writeFile(m.p(`pmu.dat@sensor:${at(0)}`), 'reading-0')
    await fsp.writeFile(m.p(`pmu.dat@sensor:${at(200)}`), 'reading-2')
    await fsp.writeFile(m.p(`pmu.dat@sensor:${at(100)}`), 'reading-1') // arrives late, out of order
    expect(await fsp.readFile(m.p(`pmu.dat@sensor:${at(50)}`), 'utf8')).toBe('reading-0')
    expect(await fsp.readFile(m.p(`pmu.dat@sensor:${at(150)}`), 'utf8')).toBe('reading-1')
    expect(await fsp.readFile(m.p(`pmu.dat@sensor:${at(250)}`), 'utf8')).toBe('reading-2')
    await expect(fsp.readFile(m.p(`pmu.dat@sensor:${at(-30)}`))).rejects.toMatchObject({ code: 'ENOENT' })
    // the xattrs expose version facts; setting user.fffs.sensor_time stamps the open version
    // (with a fresh time ahead of now: the reads above waited past t0 + Δ, so a stamp near t0 would be
    // a late write, and python may take a while to start on a loaded machine)
    const t1 = Date.now()
    const at1 = (ms: number) => new Date(t1 + ms).toISOString()
    const out = python(`
import os, sys
p = sys.argv[1]
with open(p, 'w') as f:
    os.setxattr(p, 'user.fffs.sensor_time', sys.argv[2].encode())
    f.write('via-xattr')
print(os.getxattr(p, 'user.fffs.version').decode(), os.getxattr(p, 'user.fffs.sensor_time').decode())
try:
    os.setxattr(p, 'user.fffs.version', b'7')
except OSError as e:
    print('errno', e.errno)
os.setxattr(p, 'user.note', b'hello')
print(os.getxattr(p, 'user.note').decode(), 'user.note' in os.listxattr(p))
`, m.p('pmu.dat'), at1(1500))
    const lines = out.trim().split('\n')
    expect(lines[0]).toBe(`6 ${new Date(t1 + 1500).toISOString().replace('Z', '000Z')}`)
    expect(lines[1]).toBe('errno 22')
    expect(lines[2]).toBe('hello True')
    expect(await fsp.readFile(m.p(`pmu.dat@sensor:${at1(1550)}`), 'utf8')).toBe('via-xattr')
  })
})

describe('frozen directory listing and CLI', () => {
  it('ls and fffs ls/log/cat agree on a past cut', async () => {
    await fsp.mkdir(m.p('logs'))
    await fsp.writeFile(m.p('logs', 'a'), 'first')
    const t = await instantNow()
    await fsp.writeFile(m.p('logs', 'a'), 'second')
    await fsp.writeFile(m.p('logs', 'b'), 'bee')
    expect(execFileSync('ls', [m.p(`logs@${t}`)], { encoding: 'utf8' }).trim().split('\n')).toEqual(['a'])
    const ls = runCli(['ls', '--json', m.p(`logs@${t}`)])
    expect(ls.status, ls.stderr).toBe(0)
    expect((JSON.parse(ls.stdout) as Array<{ name: string; sizeBytes: number }>).map((e) => [e.name, e.sizeBytes])).toEqual([['a', 5]])
    const cat = runCli(['cat', m.p('logs', `a@${t}`)])
    expect(cat.stdout).toBe('first')
    const log = runCli(['log', '--json', m.p('logs', 'a')])
    const versions = JSON.parse(log.stdout) as Array<{ version: number; sizeBytes: number }>
    expect(versions.map((v) => [v.version, v.sizeBytes])).toEqual([[1, 0], [2, 5], [3, 6]])
    expect(runCli(['log', m.p('logs', 'a')]).stdout).toMatch(/^VERSION\s+TIME\s+SENSOR_TIME\s+SIZE/)
  })

  it('bad input gives one line and a non-zero exit', async () => {
    const missing = runCli(['log', m.p('nope.txt')])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)
    expect(missing.stderr).toMatch(/^fffs: no such file/)
    const malformed = runCli(['cat', m.p('logs', 'a@2026-99-01T00:00:00Z')])
    expect(malformed.status).not.toBe(0)
    expect(malformed.stderr).toMatch(/malformed time spec/)
    const outside = runCli(['log', '/etc/hostname'])
    expect(outside.status).not.toBe(0)
    expect(outside.stderr).toMatch(/not inside an fffs mount/)
    const dup = runCli(['snapshot', 'create', 'dup', '--mount', m.mountpoint])
    expect(dup.status).toBe(0)
    const again = runCli(['snapshot', 'create', 'dup', '--mount', m.mountpoint])
    expect(again.status).not.toBe(0)
    expect(again.stderr).toMatch(/already exists/)
    const badNumber = runCli(['mount', m.p('never'), '--max-wait', 'soon'])
    expect(badNumber.status).toBe(2)
    expect(badNumber.stderr).toBe("fffs: not a non-negative integer: 'soon'\n")
  })
})
