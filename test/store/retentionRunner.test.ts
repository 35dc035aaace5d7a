// The background retention runner on a real store: the floor moves on its own, while a
// collection (throttled by its I/O budget) is still copying; a floor pass comes early once a log
// segment has filled, not only every keepAllFor/10; a background collection leaves a segment
// whose live bytes may still fall and copies it later; and segment GC takes the segments with
// the fewest live bytes first when a run may copy only so much. Timers are the test's own (virtual
// time moved by hand), so no assertion depends on how fast the machine is.

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT_INO } from '../../src/store/records.js'
import type { RetentionPolicy } from '../../src/store/retention/policy.js'
import { RetentionRunner, type RetentionRunReport } from '../../src/store/retention/runner.js'
import type { GcVictim } from '../../src/store/segmentGc.js'
import { Store } from '../../src/store/store.js'
import { StoreWriter } from '../helpers/storeWriter.js'

const dirs: string[] = []
const runners: RetentionRunner[] = []
const stores: Store[] = []
afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop()
  for (const store of stores.splice(0)) await store.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const SEGMENT_BYTES = 256 * 1024
const MINUTE_US = 60_000_000
const WAIT_MS = 20_000

/** Timers in virtual time: `advance` moves it and fires what falls due, in order, each once the runner has set its next. */
class ManualTimers {
  private nowMs = 0
  private readonly pending = new Set<{ dueMs: number; run: () => void }>()

  readonly setTimer = (delayMs: number, run: () => void): { cancel(): void } => {
    const timer = { dueMs: this.nowMs + delayMs, run }
    this.pending.add(timer)
    return { cancel: () => void this.pending.delete(timer) }
  }

  async advance(ms: number): Promise<void> {
    const untilMs = this.nowMs + ms
    for (;;) {
      await until('the runner to set its next timer', () => this.pending.size > 0) // it does once a pass is done
      const next = [...this.pending].sort((a, b) => a.dueMs - b.dueMs)[0]!
      if (next.dueMs > untilMs) break
      this.pending.delete(next)
      this.nowMs = next.dueMs
      next.run()
    }
    this.nowMs = untilMs
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A store holding 100 KiB written once and never overwritten, then an hour of overwrites of three files (40 KiB each a minute). */
async function storeWithHistory(): Promise<{ store: Store; writer: StoreWriter; inos: number[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-runner-'))
  dirs.push(dir)
  const store = new Store(dir, { segmentSizeBytes: SEGMENT_BYTES })
  await store.open()
  stores.push(store)
  const writer = new StoreWriter(store)
  const { ino: kept } = await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'kept', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
  await writer.write(kept!, 1, 100 * 1024) // live for ever: its segment is the one GC finds most live
  const inos: number[] = []
  for (const name of ['a', 'b', 'c']) inos.push((await writer.apply({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!)
  for (let minute = 0; minute < 60; minute++) {
    writer.timeUs += MINUTE_US
    for (const [i, ino] of inos.entries()) await writer.write(ino, (minute * 3 + i) % 251, 40 * 1024)
  }
  await store.sync()
  return { store, writer, inos }
}

function runnerOf(store: Store, writer: StoreWriter, policy: RetentionPolicy, timers: ManualTimers, extra: { copyBytesPerSecond?: number; onRun?: (report: RetentionRunReport) => void; onCollect?: (victims: readonly GcVictim[]) => void } = {}): RetentionRunner {
  const errors: Error[] = []
  const runner = new RetentionRunner({
    store,
    policy,
    submit: async (mutation) => void (await writer.apply(mutation)),
    proposes: () => true,
    onRun: extra.onRun ?? (() => undefined),
    ...(extra.onCollect !== undefined ? { onCollect: extra.onCollect } : {}),
    onError: (err) => errors.push(err),
    ...(extra.copyBytesPerSecond !== undefined ? { copyBytesPerSecond: extra.copyBytesPerSecond } : {}),
    setTimer: timers.setTimer,
  })
  runners.push(runner)
  return runner
}

/** Counts the store's GC runs that have chosen their victims (begun copying, or done with none), and remembers the floor of the last one done. */
function watchRuns(store: Store): { chosen: number; doneAtFloor: bigint | null } {
  const runs: { chosen: number; doneAtFloor: bigint | null } = { chosen: 0, doneAtFloor: null }
  const gc = store.gc.bind(store)
  store.gc = async (options) => {
    const report = await gc({ ...options, onCollect: (victims) => void (runs.chosen++, options?.onCollect?.(victims)) })
    if (report.victims.length === 0) runs.chosen++
    runs.doneAtFloor = report.floor
    return report
  }
  return runs
}

describe('the retention runner', () => {
  it('moves the floor while a collection is still copying within its budget', async () => {
    const { store, writer } = await storeWithHistory()
    const timers = new ManualTimers()
    let copying = false
    let copied = false
    // 10 min kept: floor passes every minute. A budget of 64 KiB/s: copying the kept file's 100 KiB takes seconds.
    const runner = runnerOf(store, writer, { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true }, timers, {
      copyBytesPerSecond: 64 * 1024,
      onCollect: (victims) => void (victims.some((v) => v.liveBytes >= 100 * 1024) && (copying = true)),
      onRun: (report) => void (copying && report.gc !== null && (copied = true)),
    })
    const runs = watchRuns(store)
    runner.start()
    // Floor passes a minute apart (the writer's clock too) until a collection copies the kept file (a segment whose live bytes stay is copied once they stopped falling).
    for (let pass = 0; pass < 5 && !copying; pass++) {
      const chosen = runs.chosen
      await timers.advance(60_000)
      writer.timeUs += MINUTE_US
      await until('the collection after the floor pass', () => runs.chosen > chosen)
    }
    await until('a collection to copy the kept file', () => copying)
    const floorBefore = store.floor.stamp
    await timers.advance(60_000) // the next floor pass, the collection still copying
    await until('the floor to move', () => store.floor.stamp > floorBefore || copied)
    expect(copied).toBe(false) // the floor moved first
    expect(store.floor.stamp).toBeGreaterThan(floorBefore)
    await until('the collection to end', () => copied)
  })

  it('moves the floor once a log segment has filled, before keepAllFor/10 has gone by', async () => {
    const { store, writer, inos } = await storeWithHistory()
    const timers = new ManualTimers()
    // 2 h kept (the floor below every record: nothing to collect): floor passes every 12 min, and every 6 min while the log grows.
    const runner = runnerOf(store, writer, { keepAllForMs: 120 * 60_000, tiers: [], minVersions: 0, forced: true }, timers)
    const ruleStamp = (): bigint => store.floor.rule?.stamp ?? 0n
    runner.start()
    await timers.advance(12 * 60_000) // the first floor pass, by the interval
    const first = ruleStamp()
    expect(first).toBeGreaterThan(0n)
    const segment = store.tailSegment
    while (store.tailSegment === segment) await writer.write(inos[0]!, 9, 40 * 1024) // a segment fills
    await timers.advance(6 * 60_000)
    const grown = ruleStamp()
    expect(grown).toBeGreaterThan(first) // half an interval after the first
    await timers.advance(6 * 60_000) // the log has not grown since: no floor pass
    expect(ruleStamp()).toBe(grown)
  })

  it('leaves a segment whose live bytes may still fall, and copies it once they stop falling', async () => {
    const { store, writer, inos } = await storeWithHistory()
    const timers = new ManualTimers()
    const collected: number[] = []
    const runner = runnerOf(store, writer, { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true }, timers, { onCollect: (victims) => void collected.push(...victims.map((v) => v.segment)) })
    const runs = watchRuns(store)
    // A file rewritten every minute from now on: its versions in the newest segment below the floor go one by one as the floor passes them.
    const floorPass = async (): Promise<void> => {
      writer.timeUs += MINUTE_US
      await writer.write(inos[0]!, 5, 40 * 1024)
      await timers.advance(60_000)
      await until('the collection at the new floor to end', () => runs.doneAtFloor === store.floor.stamp)
    }
    runner.start()
    await floorPass()
    const dry = await store.gc({ dryRun: true })
    const waiting = dry.victims.filter((v) => v.liveBytes > 0.1 * v.sizeBytes) // left: first seen, or falling
    expect(waiting.length).toBeGreaterThan(0)
    for (let pass = 0; pass < 20 && waiting.some((v) => !collected.includes(v.segment)); pass++) await floorPass()
    for (const v of waiting) expect(collected).toContain(v.segment) // each copied once its live bytes stopped falling (or were few)
    expect(collected.filter((s) => waiting.some((v) => v.segment === s))).toHaveLength(waiting.length) // once each
  })
})

describe('segment GC with a copy limit', () => {
  it('collects the segments with the fewest live bytes per byte first', async () => {
    const { store, writer } = await storeWithHistory()
    await writer.apply({ type: 'retain', policy: { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true } })
    await writer.apply({ type: 'compact', toIno: store.inodeEnd })
    const dry = await store.gc({ dryRun: true, liveRatioMax: 1 })
    const free = dry.victims.filter((v) => v.liveBytes === 0)
    expect(free.length).toBeGreaterThan(0)
    expect(free.length).toBeLessThan(dry.victims.length) // the kept file's segment has live bytes
    const report = await store.gc({ liveRatioMax: 1, copyBytesMax: 1 }) // room for segments with nothing to copy only
    expect(report.victims).toEqual(free)
    expect(report.bytesCopied).toBe(0)
  })
})
