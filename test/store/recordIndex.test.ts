// The record index (stamp -> log position): every applied record is found by its stamp and
// the records after a stamp in order; a store written before the index gets one by one scan
// at its next open; an index that got ahead of its log (a machine crash: the log is written
// behind apply) is rebuilt from the log at open instead of naming bytes that are not there.

import { mkdtempSync, rmSync, truncateSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterEach, describe, expect, it } from 'vitest'
import { keys, prefixEnd } from '../../src/store/keys.js'
import { ROOT_INO, type Mutation } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A store holding a file and `changes` chmods of it (stamps 1000, 2000, ...); closed. */
async function storeWithRecords(changes: number): Promise<{ dir: string; stamps: bigint[]; ends: Array<{ segment: number; offset: number }> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-recindex-'))
  dirs.push(dir)
  const store = new Store(dir)
  await store.open()
  const stamps: bigint[] = []
  const ends: Array<{ segment: number; offset: number }> = []
  const apply = async (stamp: bigint, mutation: Mutation): Promise<void> => {
    const logged = store.appendRecord(stamp, mutation)
    await store.apply(stamp, mutation, logged)
    stamps.push(stamp)
    ends.push(logged.next)
  }
  await apply(1000n, { type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o600, uid: 0, gid: 0 })
  const ino = store.liveLookup(ROOT_INO, 'f')!
  for (let i = 1; i <= changes; i++) await apply(BigInt(1000 * (i + 1)), { type: 'setattr', ino, mode: 0o600 + i })
  await store.sync()
  await store.close()
  return { dir, stamps, ends }
}

describe('record index', () => {
  it('finds every record by stamp, and the records after a stamp in order', async () => {
    const { dir, stamps } = await storeWithRecords(300)
    const store = new Store(dir)
    await store.open()
    try {
      for (const stamp of [stamps[0]!, stamps[150]!, stamps[300]!]) expect((await store.readRecord(store.records.at(stamp)!)).stamp).toBe(stamp)
      expect(store.records.at(stamps[10]! + 1n)).toBeNull()
      expect((await store.records.after(stamps[100]!, stamps[110]!, 1000)).map((r) => r.stamp)).toEqual(stamps.slice(101, 111))
      expect((await store.records.after(stamps[299]!, HLC_MAX, 1000)).map((r) => r.stamp)).toEqual([stamps[300]])
      expect((await store.records.atOrBefore(stamps[42]! + 500n))?.stamp).toBe(stamps[42])
    } finally {
      await store.close()
    }
  })

  it('a store written before the record index is indexed once, at its next open', async () => {
    const { dir, stamps } = await storeWithRecords(5)
    const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    await db.clear({ gte: keys.recordPrefix(), lt: prefixEnd(keys.recordPrefix()) }) // as a store from before the index looks
    await db.del(keys.meta('recordIndex'))
    await db.close()
    const reopened = new Store(dir)
    expect((await reopened.open()).indexedRecords).toBe(6)
    expect((await reopened.records.after(0n, HLC_MAX, 100)).map((r) => r.stamp)).toEqual(stamps)
    await reopened.close()
    const again = new Store(dir)
    expect((await again.open()).indexedRecords).toBe(0)
    await again.close()
  })

  it('an index ahead of its log (the last records never reached the file) is rebuilt from the log', async () => {
    const { dir, stamps, ends } = await storeWithRecords(10)
    truncateSync(path.join(dir, 'segments', 'seg-00000000.log'), ends[7]!.offset) // the file ends after the 8th record
    const store = new Store(dir)
    try {
      const opened = await store.open()
      expect(opened.rebuiltIndex).toBe(true)
      expect(opened.replayedRecords).toBe(8)
      expect(store.appliedStamp).toBe(stamps[7])
      expect(store.records.at(stamps[8]!)).toBeNull()
      expect(store.liveAttr(store.liveLookup(ROOT_INO, 'f')!)?.mode).toBe(0o600 + 7)
    } finally {
      await store.close()
    }
  })
})
