// Segment GC and a full disk on the simulated disk (src/testing/simDisk.ts), the store's own
// code: a power loss at a random point of a GC run (seeded) leaves a store that opens and reads
// at and above the floor exactly what it read before; a disk that fills refuses the appends
// that meet it with ENOSPC, keeps everything synced before, and takes appends again once it
// has room; the reserve file is allocated by size (no bytes kept), durably, and given back on a
// full disk.

import { describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { DiskGuard } from '../../src/store/diskSpace.js'
import { ROOT_INO } from '../../src/store/records.js'
import type { RetentionPolicy } from '../../src/store/retention/policy.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX, type HlcStamp } from '../../src/temporal/hlc.js'
import { Prng } from '../../src/testing/prng.js'
import { runUntilSettled, Scheduler, yieldToEventLoop } from '../../src/testing/scheduler.js'
import { SimDisk } from '../../src/testing/simDisk.js'
import { contentSummary, StoreWriter } from '../helpers/storeWriter.js'

const SEGMENT_BYTES = 32 * 1024
const MINUTE_US = 60_000_000
const policy: RetentionPolicy = { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true }

/** Applies mutations at a clock of its own, a millisecond apart, each record synced before it applies. */

describe('segment GC on the simulated disk', () => {
  it('a power loss at any point of a GC run leaves a store that reads at and above the floor as before', async () => {
    const stepsAtLoss = new Set<number>()
    for (let seed = 1; seed <= 20; seed++) {
      const prng = new Prng(seed)
      const scheduler = new Scheduler()
      const disk = new SimDisk({ scheduler, prng, writeMs: [0, 2], syncMs: [1, 4], indexMs: [0, 1] })
      const run = <T>(promise: Promise<T>): Promise<T> => runUntilSettled(scheduler, promise)
      const store = new Store('/m0', { disk: disk.forProcess(), segmentSizeBytes: SEGMENT_BYTES }) // dead after the power loss
      await run(store.open())
      const writer = new StoreWriter(store, { syncEachRecord: true })
      const inos: number[] = []
      const cuts: HlcStamp[] = []
      await run(
        (async () => {
          for (const name of ['a', 'b']) inos.push((await writer.apply({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!)
          // Half an hour of overwrites, one a minute per file, 6 KiB each: ~11 segments.
          for (let minute = 0; minute < 30; minute++) {
            writer.timeUs += MINUTE_US
            for (const [i, ino] of inos.entries()) cuts.push(await writer.write(ino, (minute * 5 + i) % 251, 6 * 1024))
          }
          await writer.apply({ type: 'retain', policy })
          await writer.apply({ type: 'compact', toIno: store.inodeEnd })
        })(),
      )
      const floor = store.floor.stamp
      expect(floor).toBeGreaterThan(cuts[0]!)
      const before = new Map<string, string>()
      await run(
        (async () => {
          for (const cut of cuts) if (cut >= floor) for (const ino of inos) before.set(`${ino}@${cut}`, await contentSummary(store, ino, cut))
          for (const ino of inos) before.set(`${ino}@live`, await contentSummary(store, ino, HLC_MAX))
        })(),
      )
      const segmentsBefore = (await disk.list('/m0/segments')).length

      // GC runs; the machine loses power after a random number of its steps (or once it is done).
      let settled = false
      void store.gc().then(
        () => (settled = true),
        () => (settled = true),
      )
      const lossAt = prng.int(0, 11) // a whole run here takes about 10 steps of the disk
      let steps = 0
      for (; steps < lossAt && !settled; steps++) {
        await yieldToEventLoop()
        if (!settled && !scheduler.step()) break
      }
      stepsAtLoss.add(settled ? -1 : steps)
      disk.powerLoss(prng)

      const again = new Store('/m0', { disk: disk.forProcess(), segmentSizeBytes: SEGMENT_BYTES })
      await run(again.open())
      expect(again.floor.stamp).toBe(floor)
      await run(
        (async () => {
          for (const cut of cuts) if (cut >= floor) for (const ino of inos) expect({ seed, cut, read: await contentSummary(again, ino, cut) }).toEqual({ seed, cut, read: before.get(`${ino}@${cut}`) })
          for (const ino of inos) expect(await contentSummary(again, ino, HLC_MAX)).toBe(before.get(`${ino}@live`))
          // A GC run to the end after the restart frees the space.
          const report = await again.gc()
          expect(report.victims.length + (segmentsBefore - (await disk.list('/m0/segments')).length)).toBeGreaterThan(0)
          for (const ino of inos) expect(await contentSummary(again, ino, HLC_MAX)).toBe(before.get(`${ino}@live`))
        })(),
      )
      expect((await disk.list('/m0/segments')).length).toBeLessThan(segmentsBefore)
    }
    expect(stepsAtLoss.size).toBeGreaterThan(3) // the seeds cut the run at several points
  })
})

describe('a full simulated disk', () => {
  it('refuses the appends that meet it with ENOSPC, keeps what was synced, and takes appends once there is room', async () => {
    const disk = new SimDisk()
    const store = new Store('/m0', { disk, segmentSizeBytes: SEGMENT_BYTES })
    await store.open()
    const writer = new StoreWriter(store, { syncEachRecord: true })
    const ino = (await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!
    disk.capacityBytes = (await disk.space('/m0')).totalBytes - (await disk.space('/m0')).availableBytes + 100 * 1024 // 100 KiB more
    const acknowledged: string[] = []
    let refusal: unknown = null
    for (let i = 0; i < 100 && refusal === null; i++) {
      try {
        const stamp = await writer.write(ino, i, 8 * 1024)
        acknowledged.push(await contentSummary(store, ino, stamp))
      } catch (err) {
        refusal = err
      }
    }
    expect(refusal).toBeInstanceOf(FffsError)
    expect((refusal as FffsError).code).toBe('ENOSPC')
    expect(acknowledged.length).toBeGreaterThan(5)
    const lastAcknowledged = acknowledged[acknowledged.length - 1]
    expect(await contentSummary(store, ino, HLC_MAX)).toBe(lastAcknowledged)
    // Room again: appends go on, in a new segment (no failed position is handed out again).
    disk.capacityBytes = 2 ** 40
    const stamp = await writer.write(ino, 200, 8 * 1024)
    expect(await contentSummary(store, ino, stamp)).toBe(`${acknowledged.length + 2}:8192:200:200`)
    await store.close()
    const again = new Store('/m0', { disk, segmentSizeBytes: SEGMENT_BYTES })
    await again.open()
    expect(await contentSummary(again, ino, HLC_MAX)).toBe(`${acknowledged.length + 2}:8192:200:200`)
    await again.close()
  })

  it('takes its reserve file by size, durably, and gives it back on a full disk', async () => {
    const disk = new SimDisk()
    disk.capacityBytes = 4 * 1024 ** 3 // a 4 GiB disk: a reserve of 2% (82 MiB), its file a quarter of it
    const guard = new DiskGuard('/m0', disk)
    const state = await guard.start()
    const reserveFileBytes = (await disk.sizeOf('/m0/reserve'))!
    expect(reserveFileBytes).toBe(Math.floor(state.reserveBytes / 4))
    expect(state.freeBytes).toBe(disk.capacityBytes - reserveFileBytes)
    const handle = await disk.open('/m0/reserve', 'r')
    const tail = Buffer.alloc(16, 1)
    expect((await handle.read(tail, 0, 16, reserveFileBytes - 8)).bytesRead).toBe(8)
    expect(tail.subarray(0, 8)).toEqual(Buffer.alloc(8)) // zeros
    disk.powerLoss(new Prng(1))
    expect(await disk.sizeOf('/m0/reserve')).toBe(reserveFileBytes) // durable on return
    // Another start with the rest of the disk taken by something else: the reserve file is given back.
    const other = await disk.open('/other', 'a+')
    await other.truncate(disk.capacityBytes - reserveFileBytes - 1024)
    const again = await new DiskGuard('/m0', disk).start()
    expect(await disk.sizeOf('/m0/reserve')).toBeNull()
    expect(again.freeBytes).toBe(reserveFileBytes + 1024)
  })
})
