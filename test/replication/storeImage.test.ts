// A whole-store image (src/replication/storeImage.ts) of a store whose log segment GC collected,
// exported and imported in small batches on the real disk: installed, the copy answers every read
// at and above the floor as the donor does, ERANGE below it, with the same floor and log base;
// and each state a kill -9 can leave during the install opens as the old store or the whole
// image. (The group test, wholeStore.test.ts, runs it between real members.)

import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/replication/clock.js'
import { finishImageInstall, IMAGE_DIR, ImageExport, ImageImport, type ImageCursor } from '../../src/replication/storeImage.js'
import { ROOT_INO } from '../../src/store/records.js'
import type { RetentionPolicy } from '../../src/store/retention/policy.js'
import { nodeDisk } from '../../src/store/disk.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX, type HlcStamp } from '../../src/temporal/hlc.js'
import { contentSummary, StoreWriter } from '../helpers/storeWriter.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const tempDir = (): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-image-'))
  dirs.push(dir)
  return dir
}

const SEGMENT_BYTES = 256 * 1024
const MINUTE_US = 60_000_000
const policy: RetentionPolicy = { keepAllForMs: 10 * 60_000, tiers: [], minVersions: 0, forced: true }

/** A donor whose GC collected (its copies past the last applied record), and what each cut reads there. */
async function collectedDonor(): Promise<{ store: Store; writer: StoreWriter; answers: (store: Store) => Promise<string[]> }> {
  const store = new Store(tempDir(), { segmentSizeBytes: SEGMENT_BYTES })
  await store.open()
  const writer = new StoreWriter(store)
  const inos: number[] = []
  for (const name of ['a', 'b', 'c']) inos.push((await writer.apply({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!)
  const cuts: HlcStamp[] = []
  for (let minute = 0; minute < 40; minute++) {
    writer.timeUs += MINUTE_US
    for (const [i, ino] of inos.entries()) cuts.push(await writer.write(ino, (minute * 3 + i) % 251, 40 * 1024))
  }
  await writer.apply({ type: 'snapshot', name: 'early', at: cuts[6]!.toString(), spec: 'early' })
  await writer.apply({ type: 'retain', policy })
  await writer.apply({ type: 'compact', toIno: store.inodeEnd })
  await store.sync()
  expect((await store.gc()).victims.length).toBeGreaterThan(0)
  expect(store.logBase).toBeGreaterThan(0n)
  const answers = async (s: Store): Promise<string[]> => {
    const out = [`floor ${s.floor.stamp}`, `base ${s.logBase}`, `applied ${s.appliedStamp}`]
    for (const cut of [...cuts, HLC_MAX]) for (const ino of inos) out.push(await contentSummary(s, ino, cut).catch((err: Error & { code?: string }) => `error ${err.code ?? err.message}`))
    return out
  }
  return { store, writer, answers }
}

/** Every batch of the donor's image into `dataDir`'s image directory; stops after `batchesMax` (a kill) unless it is done. */
async function transfer(donor: Store, dataDir: string, batchesMax = Infinity): Promise<{ done: boolean; batches: number }> {
  const exporter = new ImageExport(donor, systemClock, 64 * 1024)
  const image = new ImageImport(nodeDisk, dataDir)
  await image.begin()
  let cursor: ImageCursor | null = null
  let batches = 0
  for (;;) {
    const { batch, body } = await exporter.next(cursor)
    await image.take(batch, body)
    batches++
    if (batch.done) break
    if (batches >= batchesMax) {
      await image.abandon()
      exporter.clear()
      return { done: false, batches }
    }
    cursor = batch.cursor
  }
  await image.finish()
  return { done: true, batches }
}

describe('whole-store image', () => {
  it('installed, answers every read as the donor does: the same bytes at and above the floor, ERANGE below, the same floor and log base', async () => {
    const { store: donor, answers } = await collectedDonor()
    const expected = await answers(donor)
    expect(expected.some((a) => a.startsWith('error ERANGE'))).toBe(true) // cuts below the floor
    const joinerDir = tempDir()
    const { batches } = await transfer(donor, joinerDir)
    expect(batches).toBeGreaterThan(3)
    expect(await finishImageInstall(nodeDisk, joinerDir)).toBe(donor.appliedStamp)
    expect(existsSync(path.join(joinerDir, IMAGE_DIR))).toBe(false)
    const joiner = new Store(joinerDir)
    await joiner.open()
    expect(await answers(joiner)).toEqual(expected)
    expect(joiner.snapshot('early')?.name).toBe('early')
    await joiner.close()
    await donor.close()
  })

  it('a kill -9 during the transfer leaves the old store; one during the install, the whole image', async () => {
    const { store: donor, answers } = await collectedDonor()
    const expected = await answers(donor)

    // The joiner holds a store of its own (one file, one version) and is killed mid-transfer.
    const joinerDir = tempDir()
    const old = new Store(joinerDir)
    await old.open()
    const writer = new StoreWriter(old)
    await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'mine', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    const oldAnswers = async (s: Store): Promise<string[]> => (await s.readdir(ROOT_INO, HLC_MAX)).map((e) => e.name)
    const oldExpected = await oldAnswers(old)
    await old.close()
    expect((await transfer(donor, joinerDir, 3)).done).toBe(false)
    expect(existsSync(path.join(joinerDir, IMAGE_DIR, 'segments'))).toBe(true)
    expect(await finishImageInstall(nodeDisk, joinerDir)).toBeNull() // no READY: the partial image goes
    expect(existsSync(path.join(joinerDir, IMAGE_DIR))).toBe(false)
    const reopened = new Store(joinerDir)
    await reopened.open()
    expect(await oldAnswers(reopened)).toEqual(oldExpected)
    await reopened.close()

    // Complete, and killed during the install after the index moved in, before the segments did.
    expect((await transfer(donor, joinerDir)).done).toBe(true)
    await fsp.rm(path.join(joinerDir, 'index'), { recursive: true })
    await fsp.rename(path.join(joinerDir, IMAGE_DIR, 'index'), path.join(joinerDir, 'index'))
    expect(await finishImageInstall(nodeDisk, joinerDir)).toBe(donor.appliedStamp) // the next start finishes it
    const joiner = new Store(joinerDir)
    await joiner.open()
    expect(await answers(joiner)).toEqual(expected)
    expect(await oldAnswers(joiner)).not.toContain('mine')
    await joiner.close()
    await donor.close()
  })

  it('a donor that applies a record during the transfer refuses the next batch, and GC waits while it serves', async () => {
    const { store: donor, writer } = await collectedDonor()
    const exporter = new ImageExport(donor, systemClock, 64 * 1024)
    const first = await exporter.next(null)
    expect(first.batch.done).toBe(false)
    expect((await donor.gc()).segments).toBe(0) // held: no run
    await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'late', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
    await expect(exporter.next(first.batch.cursor)).rejects.toThrow(/applied records .* during a whole-store transfer/)
    await expect(exporter.next(first.batch.cursor)).rejects.toThrow(/no longer serves that whole-store image/)
    await donor.close()
  })
})
