// The segment log: entries appended with a CRC the caller computed are intact on reopen; a
// wrong one ends the log there (as a torn entry would); background syncs let synced pages be
// dropped during a long run of appends; large page-aligned payloads go to disk with O_DIRECT.

import { mkdtempSync, rmSync } from 'node:fs'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { crc32c } from '../../src/store/crc32c.js'
import { CrcWorker } from '../../src/store/crcWorker.js'
import { pageOffsetFinder } from '../../src/store/diskAddon.js'
import { EntryKind, SegmentLog, type LogEntry } from '../../src/store/segmentLog.js'

const MiB = 1024 * 1024

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-seglog-'))
  dirs.push(dir)
  return dir
}

async function reopen(dir: string): Promise<{ entries: LogEntry[]; truncatedBytes: number; log: SegmentLog }> {
  const log = new SegmentLog(dir)
  const entries: LogEntry[] = []
  const { truncatedBytes } = await log.open({ segment: 0, offset: 0 }, async (entry) => {
    entries.push(entry)
  })
  return { entries, truncatedBytes, log }
}

describe('SegmentLog', () => {
  it('keeps entries appended with a precomputed payload CRC', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    const a = Buffer.alloc(300_000, 7)
    const b = Buffer.from('second')
    let pieceCrc = 0
    for (let at = 0; at < a.length; at += 128 * 1024) pieceCrc = crc32c(a.subarray(at, Math.min(a.length, at + 128 * 1024)), pieceCrc)
    log.append(EntryKind.Data, a, pieceCrc)
    let deliver: (crc: number) => void = () => undefined
    log.append(EntryKind.Data, a, new Promise<number>((resolve) => (deliver = resolve))) // computed elsewhere, later
    log.append(EntryKind.Record, b) // computed by the log; written after the entry before it
    setTimeout(() => deliver(crc32c(a)), 20)
    await log.sync()
    await log.close()
    const { entries, truncatedBytes, log: again } = await reopen(dir)
    expect(truncatedBytes).toBe(0)
    expect(entries.map((e) => (e.payload.equals(a) ? 'a' : e.payload.equals(b) ? 'b' : '?'))).toEqual(['a', 'a', 'b'])
    await again.close()
  })

  it('writes large page-aligned payloads with O_DIRECT between ordinary entries, across segments, and a torn one is dropped', async () => {
    const pageOffsetOf = pageOffsetFinder()
    expect(pageOffsetOf).not.toBeNull() // the native addon is built with the project
    const dir = tempDir()
    const log = new SegmentLog(dir, 8 * MiB)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    log.writeLargePayloadsDirect(pageOffsetOf!)
    const aligned = (sizeBytes: number, seed: number): Buffer => {
      const out = CrcWorker.allocShared(sizeBytes, pageOffsetOf!)
      for (let i = 0; i < sizeBytes; i++) out[i] = (i * 31 + seed) & 255
      return out
    }
    const payloads = [
      Buffer.from('a record'),
      aligned(1 * MiB + 123, 1), // a partial last page
      Buffer.from('x'.repeat(5000)),
      aligned(2 * MiB, 2), // whole pages only
      Buffer.alloc(1 * MiB + 5, 3), // not page-aligned in memory: through the page cache
      aligned(3 * MiB, 4), // does not fit the first segment
      aligned(1 * MiB, 5),
      Buffer.from('last'),
    ]
    const appended = payloads.map((payload) => log.append(EntryKind.Data, payload, crc32c(payload)))
    for (const [i, { position }] of appended.entries()) {
      if (i === 1 || i === 3 || i === 5 || i === 6) expect(position.offset % 4096).toBe(0)
      const into = Buffer.alloc(payloads[i]!.length)
      await log.read(position, into, 0, into.length)
      expect(into.equals(payloads[i]!)).toBe(true)
    }
    await log.sync()
    await log.close()
    const { entries, truncatedBytes, log: again } = await reopen(dir)
    expect(truncatedBytes).toBe(0)
    expect(entries.length).toBe(payloads.length) // pads are not entries
    entries.forEach((entry, i) => {
      expect(entry.payload.equals(payloads[i]!)).toBe(true)
      expect(entry.position).toEqual(appended[i]!.position)
    })
    await again.close()
    // Tear the last large payload: it and what follows go, everything before stays.
    const torn = appended[6]!.position
    await fsp.truncate(path.join(dir, `seg-${String(torn.segment).padStart(8, '0')}.log`), torn.offset + 100_000)
    const after = await reopen(dir)
    expect(after.truncatedBytes).toBeGreaterThan(0)
    expect(after.entries.map((e) => e.payload.length)).toEqual(payloads.slice(0, 6).map((p) => p.length))
    await after.log.close()
  })

  it('falls back to the page cache when O_DIRECT refuses a write, for that payload and those queued after it', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    log.writeLargePayloadsDirect(() => 0) // claims every buffer is page-aligned: O_DIRECT answers EINVAL
    const payloads = [Buffer.alloc(1 * MiB + 1, 1).subarray(1), Buffer.alloc(2 * MiB + 3, 2).subarray(3), Buffer.from('small'), Buffer.alloc(1 * MiB + 5, 3).subarray(5)]
    const appended = payloads.map((payload) => log.append(EntryKind.Data, payload, crc32c(payload)))
    await log.sync()
    for (const [i, { position }] of appended.entries()) {
      const into = Buffer.alloc(payloads[i]!.length)
      await log.read(position, into, 0, into.length)
      expect(into.equals(payloads[i]!)).toBe(true)
    }
    await log.close()
    const { entries, truncatedBytes, log: again } = await reopen(dir)
    expect(truncatedBytes).toBe(0)
    expect(entries.map((e, i) => e.payload.equals(payloads[i]!))).toEqual([true, true, true, true])
    await again.close()
  })

  it('reads an entry as soon as it is appended, before its queued write reached the file', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    let deliver: (crc: number) => void = () => undefined
    const held = Buffer.alloc(4096, 1)
    log.append(EntryKind.Data, held, new Promise<number>((resolve) => (deliver = resolve))) // holds the queue
    const fresh = Buffer.from('just appended')
    const { position } = log.append(EntryKind.Data, fresh)
    setTimeout(() => deliver(crc32c(held)), 20)
    const into = Buffer.alloc(fresh.length)
    await log.read(position, into, 0, fresh.length)
    expect(into).toEqual(fresh)
    await log.close()
  })

  it('opens a segment once for reading, however many reads of it start together', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    const payloads = Array.from({ length: 200 }, (_, i) => Buffer.from(`entry ${i}`))
    const positions = payloads.map((p) => log.append(EntryKind.Data, p).position)
    await log.sync()
    await log.close()
    const { log: reopened } = await reopen(dir)
    const opens = vi.spyOn(fsp, 'open') // counts, and calls through
    try {
      const read = await Promise.all(
        positions.map(async (position, i) => {
          const into = Buffer.alloc(payloads[i]!.length)
          await reopened.read(position, into, 0, into.length)
          return into
        }),
      )
      expect(read).toEqual(payloads)
      expect(opens.mock.calls.filter(([file]) => String(file).includes('seg-'))).toHaveLength(1)
    } finally {
      opens.mockRestore()
      await reopened.close()
    }
  })

  it('ends the log at an entry whose CRC does not match its bytes', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    log.append(EntryKind.Record, Buffer.from('kept'))
    const bad = Buffer.alloc(1000, 1)
    log.append(EntryKind.Data, bad, crc32c(Buffer.alloc(1000, 2)))
    log.append(EntryKind.Record, Buffer.from('after the bad entry'))
    await log.sync()
    await log.close()
    const { entries, truncatedBytes, log: again } = await reopen(dir)
    expect(entries.map((e) => e.payload.toString())).toEqual(['kept'])
    expect(truncatedBytes).toBe(16 + 1000 + 16 + 'after the bad entry'.length)
    await again.close()
  })

  it('syncs in the background every syncEveryBytes and drops synced pages but the kept window', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir)
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    const drops: Array<[number, number]> = []
    const MiB = 1024 * 1024
    log.dropSyncedPages((_fd, offset, length) => drops.push([offset, length]), 1 * MiB, 2 * MiB)
    const chunk = Buffer.alloc(MiB, 3)
    const written: Promise<void>[] = []
    for (let i = 0; i < 8; i++) written.push(log.append(EntryKind.Data, chunk).written)
    await Promise.all(written)
    await log.sync() // waits for any background sync in flight, then covers the rest
    expect(drops.length).toBeGreaterThanOrEqual(2) // at least one background sync before the last
    let end = 0
    for (const [offset, length] of drops) {
      expect(offset).toBe(end) // contiguous, from the start
      expect(offset % 4096).toBe(0)
      end = offset + length
    }
    expect(end).toBeLessThanOrEqual(8 * (MiB + 16) - MiB) // the newest keepBytes stay cached
    expect((await fsp.stat(path.join(dir, 'seg-00000000.log'))).size).toBe(8 * (MiB + 16))
    await log.close()
  })

  it('writes a burst of small entries appended behind a write in few writevs, in order, across a segment end', async () => {
    const dir = tempDir()
    const log = new SegmentLog(dir, 64 * 1024) // small segments: the burst crosses several
    await log.open({ segment: 0, offset: 0 }, async () => undefined)
    const payloads = Array.from({ length: 2000 }, (_, i) => Buffer.from(`entry ${i} `.repeat(1 + (i % 7))))
    let deliver: (crc: number) => void = () => undefined
    const written: Promise<void>[] = []
    payloads.forEach((payload, i) => {
      // One entry in the middle waits for a CRC computed elsewhere: the entries after it wait too.
      const crc = i === 700 ? new Promise<number>((resolve) => (deliver = resolve)) : undefined
      written.push(log.append(EntryKind.Record, payload, crc).written)
    })
    const probe = await fsp.open(path.join(dir, 'seg-00000000.log'), 'r')
    const fileHandle = Object.getPrototypeOf(probe) as { writev: (...args: unknown[]) => unknown }
    await probe.close()
    const writes = vi.spyOn(fileHandle, 'writev')
    setTimeout(() => deliver(crc32c(payloads[700]!)), 20)
    await Promise.all(written)
    expect(writes.mock.calls.length).toBeLessThan(payloads.length / 10)
    writes.mockRestore()
    await log.sync()
    await log.close()
    const { entries, truncatedBytes, log: again } = await reopen(dir)
    expect(truncatedBytes).toBe(0)
    expect(entries.map((e) => e.payload.toString())).toEqual(payloads.map(String))
    await again.close()
  })
})
