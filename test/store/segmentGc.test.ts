// Segment GC on the store: after compaction, segments whose bytes are mostly unnamed are
// collected (their live bytes copied forward), the log's files shrink, and every read at or
// above the floor and at pinned cuts returns the same bytes, also after a reopen; what GC may
// not take it leaves: segments with data not yet named by a version, records above the floor.

import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT_INO } from '../../src/store/records.js'
import type { RetentionPolicy } from '../../src/store/retention/policy.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX, type HlcStamp } from '../../src/temporal/hlc.js'
import { contentSummary, StoreWriter } from '../helpers/storeWriter.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const SEGMENT_BYTES = 256 * 1024
const MINUTE_US = 60_000_000
const policy: RetentionPolicy = { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true }

function logBytes(dir: string): number {
  return readdirSync(path.join(dir, 'segments')).reduce((sum, f) => sum + statSync(path.join(dir, 'segments', f)).size, 0)
}

describe('segment GC', () => {
  it('frees the segments compaction emptied and keeps every read at and above the floor, also after a reopen', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-gc-'))
    dirs.push(dir)
    let store = new Store(dir, { segmentSizeBytes: SEGMENT_BYTES })
    await store.open()
    const writer = new StoreWriter(store)
    const inos: number[] = []
    for (const name of ['a', 'b', 'c']) inos.push((await writer.apply({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!)
    // An hour of overwrites, one a minute per file: 60 versions of 40 KiB each, ~7 MiB of log.
    const cuts: HlcStamp[] = []
    for (let minute = 0; minute < 60; minute++) {
      writer.timeUs += MINUTE_US
      for (const [i, ino] of inos.entries()) cuts.push(await writer.write(ino, (minute * 3 + i) % 251, 40 * 1024))
    }
    await store.sync()
    const before = new Map<string, string>()
    for (const cut of cuts) for (const ino of inos) before.set(`${ino}@${cut}`, await contentSummary(store, ino, cut))
    const { stamp: retained } = await writer.apply({ type: 'retain', policy })
    await writer.apply({ type: 'compact', toIno: store.inodeEnd })
    await store.sync()
    const bytesBefore = logBytes(dir)
    expect(store.compactionCursor()).toBeNull()
    const floor = store.floor.stamp
    expect(floor).toBeLessThan(retained)
    const dry = await store.gc({ dryRun: true })
    expect(dry.victims.length).toBeGreaterThan(0)
    expect(logBytes(dir)).toBe(bytesBefore) // a dry run changes nothing
    const report = await store.gc()
    expect(report.victims.map((v) => v.segment)).toEqual(dry.victims.map((v) => v.segment))
    const bytesAfter = logBytes(dir)
    // Ten minutes of versions are kept (about a sixth), plus what the floor sees: the rest is freed.
    expect(bytesAfter).toBeLessThan(bytesBefore * 0.4)
    expect(report.bytesFreed).toBeGreaterThan(0)
    expect(store.logBase).toBeGreaterThan(0n)
    expect(store.logBase).toBeLessThanOrEqual(floor)

    const check = async (): Promise<void> => {
      for (const cut of cuts) {
        if (cut < floor) continue
        for (const ino of inos) expect(await contentSummary(store, ino, cut)).toBe(before.get(`${ino}@${cut}`))
      }
      for (const ino of inos) expect(await contentSummary(store, ino, HLC_MAX)).toBe(before.get(`${ino}@${cuts[cuts.length - 1]}`))
    }
    await check()
    // The record index keeps only what a transfer may still ask for: above the log base.
    expect(store.records.at(cuts[0]!)).toBeNull()
    expect(store.records.at(cuts[cuts.length - 1]!)).not.toBeNull()
    await store.close()
    store = new Store(dir, { segmentSizeBytes: SEGMENT_BYTES })
    await store.open()
    writer.store = store
    await check()
    // Writes go on: a new version after GC reads back.
    writer.timeUs += MINUTE_US
    const last = await writer.write(inos[0]!, 7, 1000)
    expect(await contentSummary(store, inos[0]!, last)).toBe(`${62}:1000:7:7`)
    await store.close()
  })

  it('leaves segments holding data not yet named by a version', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-gc-'))
    dirs.push(dir)
    const store = new Store(dir, { segmentSizeBytes: SEGMENT_BYTES })
    await store.open()
    const writer = new StoreWriter(store)
    const { ino } = await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'slow', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    const { ino: other } = await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'busy', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    // A chunk of an open file, appended an hour before its version names it.
    const held = store.appendData(Buffer.alloc(1000, 42))
    const heldSegment = held.position.segment
    for (let minute = 0; minute < 60; minute++) {
      writer.timeUs += MINUTE_US
      await writer.write(other!, minute, 40 * 1024)
    }
    await writer.apply({ type: 'retain', policy })
    await writer.apply({ type: 'compact', toIno: store.inodeEnd })
    const report = await store.gc({ liveRatioMax: 1 })
    expect(report.victims.length).toBeGreaterThan(0)
    expect(report.victims.map((v) => v.segment)).not.toContain(heldSegment)
    await writer.apply({ type: 'version', ino: ino!, ops: [{ op: 'write', offset: 0, sizeBytes: 1000, data: held.position }] })
    expect(await contentSummary(store, ino!, HLC_MAX)).toBe('2:1000:42:42')
    await store.close()
  })
})
