// Retention on the store: random histories of files and directories (writes, appends,
// truncations, renames, deletions, snapshots) are compacted by a `retain` record and the
// `compact` records after it, and then every read at a cut at or above the floor returns what it
// returned before, every read at a pinned cut below it (a snapshot, an instant a tier keeps)
// too, and every other read below it returns the same or fails ERANGE, never other bytes. The
// versions kept are exactly those the policy names, and what is dropped is gone from the index.

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { ROOT_INO, type Attr, type Mutation, type VersionOp } from '../../src/store/records.js'
import type { RetentionPolicy } from '../../src/store/retention/policy.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX, hlcCeilingOfUs, hlcOf, hlcPhysicalUs, type HlcStamp } from '../../src/temporal/hlc.js'
import { Prng } from '../../src/testing/prng.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const START_US = Date.UTC(2026, 0, 1) * 1000
const MINUTE_US = 60_000_000

/** A store fed records at stamps of a clock the test moves. */
class Recorder {
  timeUs = START_US
  logical = 0
  last: HlcStamp = 0n
  constructor(readonly store: Store) {}
  advance(us: number): void {
    this.timeUs += us
    this.logical = 0
  }
  async apply(mutation: Mutation): Promise<{ stamp: HlcStamp; ino?: number }> {
    const stamp = hlcOf(this.timeUs, this.logical++)
    this.last = stamp
    const result = await this.store.apply(stamp, mutation, this.store.appendRecord(stamp, mutation))
    if (!result.ok) throw new Error(`${mutation.type}: ${result.message}`)
    return { stamp, ...(result.ino !== undefined ? { ino: result.ino } : {}) }
  }
}

/** The whole tree at a cut: path -> content (files), 'dir' or the symlink target; ERANGE as a thrown FffsError. */
async function image(store: Store, cut: HlcStamp): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const visit = async (attr: Attr, at: string): Promise<void> => {
    if (attr.kind === 'dir') {
      out.set(at, `dir ${attr.mode.toString(8)}`)
      for (const { name, ino } of await store.readdir(attr.ino, cut)) {
        const child = await store.attr(ino, cut)
        if (child === null) throw new Error(`${at}/${name}: listed at ${cut} but has no version there`)
        await visit(child, `${at}/${name}`)
      }
      return
    }
    const into = Buffer.alloc(attr.sizeBytes)
    await store.read(attr, 0, into, attr.sizeBytes)
    out.set(at, `${attr.kind} v${attr.version} ${into.toString('latin1')}`)
  }
  const root = await store.attr(ROOT_INO, cut)
  if (root !== null) await visit(root, '')
  return out
}

/** One node at a cut, by inode (as an open handle or `P@vN` reaches it): its version and bytes. */
async function nodeImage(store: Store, ino: number, cut: HlcStamp): Promise<Map<string, string>> {
  const attr = await store.attr(ino, cut)
  const into = Buffer.alloc(attr?.sizeBytes ?? 0)
  if (attr !== null && attr.kind === 'file') await store.read(attr, 0, into, attr.sizeBytes)
  return new Map([[String(ino), attr === null ? 'none' : `${attr.kind} v${attr.version}${attr.nlink === 0 ? ' nlink0' : ''} ${into.toString('latin1')}`]])
}

async function orRange<T>(read: Promise<T>): Promise<T | 'ERANGE'> {
  try {
    return await read
  } catch (err) {
    if (err instanceof FffsError && err.code === 'ERANGE') return 'ERANGE'
    throw err
  }
}

/** A random history over a few directories and files; returns the stamps worth reading at. */
async function randomHistory(rec: Recorder, prng: Prng, steps: number): Promise<{ cuts: HlcStamp[]; snapshots: HlcStamp[] }> {
  const cuts: HlcStamp[] = []
  const snapshots: HlcStamp[] = []
  const dirsLive: number[] = [ROOT_INO]
  const files = new Map<number, { parent: number; name: string; size: number }>()
  let names = 0
  const data = (n: number, fill: number): VersionOp => ({ op: 'write', offset: 0, sizeBytes: n, data: rec.store.appendData(Buffer.alloc(n, 97 + (fill % 26))).position })
  for (let step = 0; step < steps; step++) {
    rec.advance(prng.int(1, 4 * MINUTE_US))
    const kind = prng.int(0, 99)
    const fileInos = [...files.keys()]
    if (kind < 15 || fileInos.length === 0) {
      const parent = prng.pick(dirsLive)
      const name = `f${names++}`
      const { ino } = await rec.apply({ type: 'mknod', parent, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })
      files.set(ino!, { parent, name, size: 0 })
    } else if (kind < 20 && dirsLive.length < 4) {
      const { ino } = await rec.apply({ type: 'mknod', parent: ROOT_INO, name: `d${names++}`, kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
      dirsLive.push(ino!)
    } else if (kind < 55) {
      const ino = prng.pick(fileInos)
      const file = files.get(ino)!
      const n = prng.int(1, 3000)
      const op = data(n, step)
      const append = prng.chance(0.5)
      const ops: VersionOp[] = append ? [{ ...op, offset: file.size } as VersionOp] : [op, { op: 'truncate', sizeBytes: n }]
      await rec.apply({ type: 'version', ino, ops })
      file.size = append ? file.size + n : n
    } else if (kind < 62) {
      const ino = prng.pick(fileInos)
      const sizeBytes = prng.int(0, files.get(ino)!.size)
      await rec.apply({ type: 'version', ino, ops: [{ op: 'truncate', sizeBytes }] })
      files.get(ino)!.size = sizeBytes
    } else if (kind < 70) {
      await rec.apply({ type: 'setattr', ino: prng.pick(fileInos), mode: prng.int(0o600, 0o777) })
    } else if (kind < 80) {
      const ino = prng.pick(fileInos)
      const file = files.get(ino)!
      const toParent = prng.pick(dirsLive)
      const toName = prng.chance(0.3) && fileInos.length > 1 ? files.get(prng.pick(fileInos))!.name : `f${names++}`
      const replaced = [...files].find(([other, f]) => other !== ino && f.parent === toParent && f.name === toName)
      await rec.apply({ type: 'rename', fromParent: file.parent, fromName: file.name, toParent, toName })
      if (replaced !== undefined) files.delete(replaced[0])
      files.set(ino, { ...file, parent: toParent, name: toName })
    } else if (kind < 90) {
      const ino = prng.pick(fileInos)
      const file = files.get(ino)!
      await rec.apply({ type: 'unlink', parent: file.parent, name: file.name })
      files.delete(ino)
    } else if (kind < 95) {
      const at = prng.chance(0.5) ? rec.last : hlcCeilingOfUs(rec.timeUs - prng.int(0, MINUTE_US))
      await rec.apply({ type: 'snapshot', name: `s${step}`, at: at.toString(), spec: 'test' })
      snapshots.push(at)
    } else {
      rec.advance(prng.int(10, 60) * MINUTE_US) // a quiet hour
    }
    cuts.push(rec.last, rec.last - 1n, hlcCeilingOfUs(hlcPhysicalUs(rec.last) + 1))
  }
  return { cuts, snapshots }
}

/** Applies a `retain` and the `compact` records after it; returns the `retain`'s stamp. */
async function compactAll(rec: Recorder, policy: RetentionPolicy): Promise<HlcStamp> {
  rec.advance(1000)
  const { stamp } = await rec.apply({ type: 'retain', policy })
  // In chunks, as a proposer does: every inode range once.
  for (let to = ROOT_INO + 3; rec.store.compactionCursor() !== null; to += 3) await rec.apply({ type: 'compact', toIno: to })
  return stamp
}

async function countTable(store: Store, tag: number): Promise<number> {
  let n = 0
  for await (const _ of (store as unknown as { db: { keys(o: object): AsyncIterable<Buffer> } }).db.keys({ gte: Buffer.of(tag), lt: Buffer.of(tag + 1) })) n++
  return n
}

describe('retention on the store', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`reads at and above the floor and at pinned cuts are unchanged by compaction, others the same or ERANGE (seed ${seed})`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-retention-'))
      dirs.push(dir)
      const store = new Store(dir)
      await store.open()
      const rec = new Recorder(store)
      const prng = new Prng(seed)
      const { cuts, snapshots } = await randomHistory(rec, prng, 160)
      const keepAllForMs = Math.round((hlcPhysicalUs(rec.last) - START_US) / 2000)
      const tiers = seed % 2 === 0 ? [{ afterMs: keepAllForMs, everyMs: 30 * 60_000 }] : [] // one instant per half hour below the floor
      const policy: RetentionPolicy = { keepAllForMs, tiers, minVersions: prng.int(0, 3), forced: true }
      // Every half hour of the history as a cut too: the instants a tier keeps are among them.
      for (let us = Math.ceil(START_US / 1_800_000_000) * 1_800_000_000; us < rec.timeUs; us += 1_800_000_000) cuts.push(hlcCeilingOfUs(us))
      const before = new Map<HlcStamp, Map<string, string>>()
      const nodesBefore = new Map<string, Map<string, string>>()
      for (const cut of cuts) {
        before.set(cut, await image(store, cut))
        for (let ino = ROOT_INO; ino < store.inodeEnd; ino++) nodesBefore.set(`${ino}@${cut}`, await nodeImage(store, ino, cut))
      }
      const blocksBefore = await countTable(store, 0x42)
      const attrsBefore = await countTable(store, 0x41)

      const retained = await compactAll(rec, policy)
      const floor = store.floor.stamp
      expect(floor).toBe(hlcCeilingOfUs(hlcPhysicalUs(retained) - policy.keepAllForMs * 1000))
      const pinned = new Set(await store.floor.pinsBelowFloor())
      for (const s of snapshots) if (s < floor) expect(pinned.has(s)).toBe(true)

      let exactBelow = 0
      let rangeBelow = 0
      let pinnedBelow = 0
      for (const cut of cuts) {
        const after = await orRange(image(store, cut))
        if (cut >= floor || pinned.has(cut)) {
          expect({ cut, after }).toEqual({ cut, after: before.get(cut) })
          if (cut < floor) pinnedBelow++
        } else if (after === 'ERANGE') {
          rangeBelow++
        } else {
          expect({ cut, after }).toEqual({ cut, after: before.get(cut) })
          exactBelow++
        }
      }
      // Nodes one by one: unchanged at and above the floor; below it the same or ERANGE.
      let nodesAnswered = 0
      let nodesRange = 0
      // A node no name reaches at the floor or at a pin is dropped: read by inode there (an open handle) it is ERANGE.
      const reachedInos = new Set<number>()
      for (let ino = ROOT_INO; ino < store.inodeEnd; ino++) if (((await store.attr(ino, HLC_MAX))?.nlink ?? 0) > 0) reachedInos.add(ino)
      for (const cut of cuts) {
        for (let ino = ROOT_INO; ino < store.inodeEnd; ino++) {
          const after = await orRange(nodeImage(store, ino, cut))
          const unnamed = nodesBefore.get(`${ino}@${cut}`)!.get(String(ino))!.includes(' nlink0') || !reachedInos.has(ino)
          if (after === 'ERANGE' && ((cut < floor && !pinned.has(cut)) || unnamed)) nodesRange++
          else expect({ ino, cut, after }).toEqual({ ino, cut, after: nodesBefore.get(`${ino}@${cut}`) })
          if (after !== 'ERANGE' && cut < floor) nodesAnswered++
        }
      }
      expect(nodesAnswered).toBeGreaterThan(0)
      expect(rangeBelow).toBeGreaterThan(0)
      if (policy.tiers.length > 0 || snapshots.some((s) => s < floor)) expect(pinnedBelow).toBeGreaterThan(0)
      console.log(`seed ${seed}: ${cuts.length} cuts, below the floor ${pinnedBelow} pinned, ${exactBelow} answered, ${rangeBelow} ERANGE; nodes below it: ${nodesAnswered} answered, ${nodesRange} ERANGE; A ${attrsBefore} -> ${await countTable(store, 0x41)}, B ${blocksBefore} -> ${await countTable(store, 0x42)}`)
      expect(await countTable(store, 0x41)).toBeLessThan(attrsBefore)
      expect(await countTable(store, 0x42)).toBeLessThan(blocksBefore)
      await store.close()
    })
  }

  it('keeps exactly the versions the policy names: after the floor, seen at the floor or a pin, and files\' newest minVersions', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-retention-'))
    dirs.push(dir)
    const store = new Store(dir)
    await store.open()
    const rec = new Recorder(store)
    const { ino } = await rec.apply({ type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    const stamps: HlcStamp[] = []
    for (let i = 0; i < 30; i++) {
      rec.advance(MINUTE_US)
      stamps.push((await rec.apply({ type: 'version', ino: ino!, ops: [{ op: 'write', offset: 0, sizeBytes: 10, data: store.appendData(Buffer.alloc(10, 65 + i)).position }] })).stamp)
      if (i === 5) await rec.apply({ type: 'snapshot', name: 'pin', at: rec.last.toString(), spec: 'test' })
    }
    // Floor 10 minutes back from the last version: versions 22.. (version numbers 23..31) are seen at or after it.
    rec.advance(60_000_000 - 1000)
    const policy: RetentionPolicy = { keepAllForMs: 10 * 60_000 + 1, tiers: [], minVersions: 3, forced: true }
    await compactAll(rec, policy)
    const kept = (await store.versions(ino!)).map((a) => a.version)
    const floor = store.floor.stamp
    const atFloor = stamps.filter((s) => s <= floor).length // versions 2.. are the writes: version k+2 = write k
    const expected = new Set<number>()
    for (let i = 0; i < stamps.length; i++) if (stamps[i]! > floor) expected.add(i + 2)
    expected.add(atFloor + 1) // the version a read at the floor sees
    expected.add(atFloor).add(atFloor - 1) // minVersions 3: the two before it
    expected.add(5 + 2) // seen by the snapshot
    expect(kept).toEqual([...expected].sort((a, b) => a - b))
    // Reads: by version number (the exact stamp) of a kept version below the floor, and ERANGE between.
    expect((await store.attr(ino!, stamps[atFloor - 3]!))?.version).toBe(atFloor - 1)
    await expect(store.attr(ino!, stamps[atFloor - 3]! + 1n)).rejects.toMatchObject({ code: 'ERANGE' })
    await expect(store.attr(ino!, stamps[2]!)).rejects.toMatchObject({ code: 'ERANGE', message: expect.stringContaining('history before') })
    expect((await store.attr(ino!, stamps[5]!))?.version).toBe(7)
    expect(await store.attr(ino!, HLC_MAX)).not.toBeNull()
    await store.close()
  })
})
