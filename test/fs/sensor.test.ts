// Sensor time through a real mount: record formats set on a directory (user.fffs.record_format),
// each record visible at its own sensor time, records torn across writes and commits,
// malformed records refused with their offset while the rest is kept, late writes refused and
// counted.

import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeC37Cfg2, encodeC37Data } from '../../src/sensor/c37118.js'
import { errCode, runCli, startMount, type TestMount } from '../helpers/mount.js'

const SENSOR_LAG_MAX_MS = 2000 // Δ: sensor-time reads wait about this long to be stable; writes must come within it
let m: TestMount
beforeAll(async () => {
  m = await startMount(['--sensor-lag-max', String(SENSOR_LAG_MAX_MS), '--clock-skew-max', '10', '--max-wait', '5000'])
})
afterAll(async () => {
  await m?.cleanup()
})

function setxattr(path: string, name: string, value: string): string {
  const script = `
import os, sys
try:
    os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())
    print('ok')
except OSError as e:
    print('errno', e.errno)
`
  return execFileSync('python3', ['-c', script, path, name, value], { encoding: 'utf8', timeout: 30_000 }).trim()
}

function getxattr(path: string, name: string): string {
  return execFileSync('python3', ['-c', 'import os, sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode())', path, name], { encoding: 'utf8', timeout: 30_000 }).trim()
}

const iso = (us: number): string => new Date(Math.floor(us / 1000)).toISOString().replace('Z', `${String(us % 1000).padStart(3, '0')}Z`)
const sensorPath = (path: string, us: number): string => `${path}@sensor:${us}us`

/** Reads each sensor time of `timesUs` (in parallel: each waits about Δ to be stable). */
async function readAt(path: string, timesUs: readonly number[]): Promise<Array<Buffer | string>> {
  return Promise.all(timesUs.map((us) => fsp.readFile(sensorPath(path, us)).catch((err: NodeJS.ErrnoException) => err.code ?? 'error')))
}

function ts64Record(sensorUs: number, fill: number): Buffer {
  const record = Buffer.alloc(16, fill)
  record.writeBigUInt64LE(BigInt(sensorUs), 0)
  return record
}

describe('record formats', () => {
  it('ts64:SIZE: set on a directory, inherited by files; each record visible at its own sensor time, torn ones once complete', async () => {
    await fsp.mkdir(m.p('pmu'))
    expect(setxattr(m.p('pmu'), 'user.fffs.record_format', 'ts64:16')).toBe('ok')
    await fsp.mkdir(m.p('pmu', 'site1'))
    expect(getxattr(m.p('pmu', 'site1'), 'user.fffs.record_format')).toBe('ts64:16') // subdirectories inherit too
    const f = m.p('pmu', 'site1', 'stream.bin')
    const t0 = Date.now() * 1000
    const records = [0, 1, 2, 3, 4, 5].map((i) => ts64Record(t0 + i * 100_000, 0x30 + i))
    const all = Buffer.concat(records)
    const fh = await fsp.open(f, 'w')
    await fh.write(all, 0, 16 + 5) // r0 and 5 bytes of r1 (torn inside its timestamp)
    await fh.sync() // a commit with an incomplete tail: only r0 counts
    await fh.write(all, 21, 7) // more of r1, still torn
    await fh.write(all, 28, 30) // the rest of r1, r2, part of r3
    await fh.write(all, 58, all.length - 58)
    await fh.close()
    expect(getxattr(f, 'user.fffs.record_format')).toBe('ts64:16')
    expect(await fsp.readFile(f)).toEqual(all)
    const [before, atR0, between, atR1, mid, afterAll] = await readAt(f, [t0 - 1, t0, t0 + 50_000, t0 + 100_000, t0 + 350_000, t0 + 1_000_000])
    expect(before).toBe('ENOENT') // no record at or before: the file is absent at that sensor time
    expect(atR0).toEqual(all.subarray(0, 16))
    expect(between).toEqual(all.subarray(0, 16))
    expect(atR1).toEqual(all.subarray(0, 32))
    expect(mid).toEqual(all.subarray(0, 64))
    expect(afterAll).toEqual(all)
    expect((await fsp.stat(sensorPath(f, t0 + 50_000))).size).toBe(16)
  })

  it('a rewrite or a truncate re-finds the records; earlier sensor times keep the earlier bytes', async () => {
    await fsp.mkdir(m.p('rw'))
    expect(setxattr(m.p('rw'), 'user.fffs.record_format', 'ts64:16')).toBe('ok')
    const f = m.p('rw', 'rewrite.bin')
    const t0 = Date.now() * 1000
    const first = Buffer.concat([0, 1, 2].map((i) => ts64Record(t0 + i * 100_000, 0x41 + i)))
    await fsp.writeFile(f, first)
    const second = Buffer.concat([3, 4].map((i) => ts64Record(t0 + i * 100_000, 0x61 + i)))
    await fsp.writeFile(f, second) // O_TRUNC: one version replacing the stream
    await fsp.truncate(f, 20) // mid-record: the stream now ends after its first record
    const third = ts64Record(t0 + 500_000, 0x7a)
    await fsp.appendFile(f, third.subarray(4)) // bytes 20..32 complete a record started at 16
    const now = Buffer.concat([second.subarray(0, 20), third.subarray(4)])
    expect(await fsp.readFile(f)).toEqual(now)
    const [early, rewritten, last] = await readAt(f, [t0 + 250_000, t0 + 350_000, t0 + 500_000])
    expect(early).toEqual(first) // the first stream, as it was at that sensor time
    expect(rewritten).toEqual(second.subarray(0, 16))
    expect(last).toEqual(now) // the record completed across the truncate and the append, stamped by its first 8 bytes
  })

  it('jsonl:FIELD: lines torn across commits count once complete; a malformed line fails the close with its offset, the lines after it are kept', async () => {
    await fsp.mkdir(m.p('json'))
    expect(setxattr(m.p('json'), 'user.fffs.record_format', 'jsonl:ts')).toBe('ok')
    const f = m.p('json', 'events.jsonl')
    const t0 = Date.now() * 1000
    const lines = [`{"ts":${t0},"v":0}\n`, `{"ts":"${iso(t0 + 100_000)}","v":1}\n`, `{"v":"no time"}\n`, `{"ts":${t0 + 200_000},"v":3}\n`]
    await fsp.writeFile(f, lines[0]! + lines[1]!.slice(0, 10)) // a commit ending mid-line
    await fsp.appendFile(f, lines[1]!.slice(10))
    const badOffset = Buffer.byteLength(lines[0]! + lines[1]!)
    expect(await errCode(fsp.appendFile(f, lines[2]! + lines[3]!))).toBe('EINVAL')
    const logged = `malformed record in /json/events.jsonl at byte ${badOffset} (jsonl:ts, ${Buffer.byteLength(lines[2]!)} bytes): no field 'ts'`
    expect(await m.outputMatching(logged)).toContain(logged)
    expect(await fsp.readFile(f, 'utf8')).toBe(lines.join('')) // nothing lost: the version was committed
    const [first, second, last] = await readAt(f, [t0 + 50_000, t0 + 150_000, t0 + 250_000])
    expect(first!.toString()).toBe(lines[0])
    expect(second!.toString()).toBe(lines[0]! + lines[1]!)
    expect(last!.toString()).toBe(lines.join('')) // the malformed line goes with the next record
  })

  it('csv:COLUMN: the header names the column; malformed rows are refused with their offset', async () => {
    await fsp.mkdir(m.p('csv'))
    expect(setxattr(m.p('csv'), 'user.fffs.record_format', 'csv:time')).toBe('ok')
    const f = m.p('csv', 'readings.csv')
    const t0 = Date.now() * 1000
    const rows = ['sensor,time,value\n', `a,${t0},1.5\n`, `b,${iso(t0 + 100_000)},2.5\n`, 'c,not-a-time,3\n', `d,${t0 + 200_000},4\n`]
    const fh = await fsp.open(f, 'a')
    await fh.write(rows[0]! + rows[1]!.slice(0, 3)) // header and a torn row
    await fh.write(rows[1]!.slice(3) + rows[2])
    await fh.write(rows[3]! + rows[4])
    expect(await errCode(fh.close())).toBe('EINVAL')
    const logged = `malformed record in /csv/readings.csv at byte ${Buffer.byteLength(rows.slice(0, 3).join(''))} (csv:time`
    expect(await m.outputMatching(logged)).toContain(logged)
    const [none, one, two, all] = await readAt(f, [t0 - 1, t0 + 50_000, t0 + 100_000, t0 + 200_000])
    expect(none).toBe('ENOENT')
    expect(one!.toString()).toBe(rows[0]! + rows[1]!)
    expect(two!.toString()).toBe(rows.slice(0, 3).join(''))
    expect(all!.toString()).toBe(rows.join(''))
  })

  it('c37.118: TIME_BASE from a CFG-2 frame in the stream or configured; a frame with a bad CRC is refused, the frames after it kept', async () => {
    await fsp.mkdir(m.p('pdc'))
    expect(setxattr(m.p('pdc'), 'user.fffs.record_format', 'c37.118')).toBe('ok')
    const soc = Math.floor(Date.now() / 1000) + 1 // whole seconds: start just ahead of now
    const frames = [encodeC37Cfg2(7, soc, 1_000_000), encodeC37Data(7, soc, 0), encodeC37Data(7, soc, 100_000), encodeC37Data(7, soc, 200_000), encodeC37Data(7, soc, 300_000)]
    const stream = Buffer.concat(frames)
    const corruptAt = frames[0]!.length + frames[1]!.length // the frame at soc + 0.1 s
    stream[corruptAt + 12]! ^= 0xff
    const f = m.p('pdc', 'pmu7.c37')
    const fh = await fsp.open(f, 'w')
    for (let at = 0; at < stream.length; at += 7) await fh.write(stream, at, Math.min(7, stream.length - at)) // frames torn everywhere
    expect(await errCode(fh.close())).toBe('EINVAL')
    const logged = new RegExp(`malformed record in /pdc/pmu7\\.c37 at byte ${corruptAt} \\(c37\\.118, ${frames[2]!.length} bytes\\): CRC-CCITT`)
    expect(await m.outputMatching(logged)).toMatch(logged)
    const socUs = soc * 1_000_000
    const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, b) => n + b.length, 0))
    const [atFirst, beforeThird, atThird] = await readAt(f, [socUs + 150_000, socUs + 199_999, socUs + 200_000])
    expect(atFirst).toEqual(stream.subarray(0, ends[1])) // the corrupt frame at +0.1 s never stamps anything
    expect(beforeThird).toEqual(stream.subarray(0, ends[1]))
    expect(atThird).toEqual(stream.subarray(0, ends[3]))

    // A configured time base, for a stream without configuration frames.
    await fsp.mkdir(m.p('pdc2'))
    expect(setxattr(m.p('pdc2'), 'user.fffs.record_format', 'c37.118:1000')).toBe('ok')
    const g = m.p('pdc2', 'pmu8.c37')
    const soc2 = Math.floor(Date.now() / 1000) + 1 // the reads above waited past soc + Δ
    const data = [encodeC37Data(8, soc2, 0), encodeC37Data(8, soc2, 500)] // ms fractions
    await fsp.writeFile(g, Buffer.concat(data))
    const [half, whole] = await readAt(g, [soc2 * 1_000_000 + 499_999, soc2 * 1_000_000 + 500_000])
    expect(half).toEqual(data[0])
    expect(whole).toEqual(Buffer.concat(data))
  })

  it('a format set on an empty file a writer already holds open applies to that writer\'s first commit', async () => {
    const f = m.p('held.jsonl')
    const t0 = Date.now() * 1000
    const lines = [`{"ts":${t0}}\n`, `{"ts":${t0 + 100_000}}\n`]
    const script = `
import os, sys
path, first, second = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.setxattr(path, 'user.fffs.record_format', b'jsonl:ts')
os.write(fd, first.encode())
os.fsync(fd)
os.write(fd, second.encode())
os.close(fd)
print('ok')
`
    expect(execFileSync('python3', ['-c', script, f, lines[0]!, lines[1]!], { encoding: 'utf8', timeout: 30_000 }).trim()).toBe('ok')
    const [first, both] = await readAt(f, [t0 + 50_000, t0 + 150_000])
    expect(first!.toString()).toBe(lines[0])
    expect(both!.toString()).toBe(lines.join(''))
  })

  it('a format goes on a directory or an empty file, and must name a format', async () => {
    await fsp.writeFile(m.p('plain.bin'), 'bytes')
    expect(setxattr(m.p('plain.bin'), 'user.fffs.record_format', 'ts64:16')).toBe('errno 22')
    await fsp.writeFile(m.p('empty.jsonl'), '')
    expect(setxattr(m.p('empty.jsonl'), 'user.fffs.record_format', ' jsonl:t ')).toBe('ok')
    expect(getxattr(m.p('empty.jsonl'), 'user.fffs.record_format')).toBe('jsonl:t') // stored canonical
    expect(setxattr(m.p('plain.bin'), 'user.fffs.record_format', 'ts64')).toBe('errno 22')
    await fsp.mkdir(m.p('nofmt'))
    expect(setxattr(m.p('nofmt'), 'user.fffs.record_format', 'parquet')).toBe('errno 22')
  })
})

describe('late sensor writes', () => {
  it('are refused with EINVAL, logged with the file, the stamp and the bound, counted, and never committed', async () => {
    await fsp.mkdir(m.p('late'))
    expect(setxattr(m.p('late'), 'user.fffs.record_format', 'jsonl:ts')).toBe('ok')
    const f = m.p('late', 'events.jsonl')
    const nowUs = Date.now() * 1000
    await fsp.writeFile(f, `{"ts":${nowUs}}\n`)
    const staleUs = nowUs - 3 * SENSOR_LAG_MAX_MS * 1000
    // by a record of a record format
    expect(await errCode(fsp.appendFile(f, `{"ts":${nowUs + 1000}}\n{"ts":${staleUs}}\n`))).toBe('EINVAL')
    expect(await fsp.readFile(f, 'utf8')).toBe(`{"ts":${nowUs}}\n`) // the whole version refused
    const logged = new RegExp(`refused, not committed: late sensor write: /late/events\\.jsonl: record ending at byte \\d+ stamped ${iso(staleUs).replace(/\./g, '\\.')} is older than now .* − Δ ${SENSOR_LAG_MAX_MS} ms = `)
    expect(await m.outputMatching(logged)).toMatch(logged)
    // by path
    await fsp.writeFile(m.p('plain.dat'), 'x')
    expect(await errCode(fsp.writeFile(m.p(`plain.dat@sensor:${staleUs}us`), 'old reading'))).toBe('EINVAL')
    expect(await fsp.readFile(m.p('plain.dat'), 'utf8')).toBe('x')
    // by xattr
    const out = execFileSync('python3', ['-c', `
import os, sys
with open(sys.argv[1], 'w') as f:
    try:
        os.setxattr(sys.argv[1], 'user.fffs.sensor_time', sys.argv[2].encode())
        print('ok')
    except OSError as e:
        print('errno', e.errno)
`, m.p('plain.dat'), `${staleUs}us`], { encoding: 'utf8', timeout: 30_000 })
    expect(out.trim()).toBe('errno 22')
    const status = runCli(['status', '--json', '--mount', m.mountpoint])
    expect(status.status, status.stderr).toBe(0)
    const sensor = (JSON.parse(status.stdout) as { sensor: Record<string, number> }).sensor
    expect(sensor.versionsRefusedLate).toBeGreaterThanOrEqual(3)
    expect(sensor.recordsMalformed).toBeGreaterThanOrEqual(3) // from the format tests above (same mount)
    expect(sensor.recordsIndexed).toBeGreaterThan(0)
  })
})
