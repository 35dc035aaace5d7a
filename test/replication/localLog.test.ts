// Reads of a member's log files by a mount on its host (localLog.ts) where the store says a
// version's bytes lie (Store.locate): byte for byte what the store itself reads, across
// segments, holes and unaligned ranges; nothing from a file that is not the one the store
// named (gone from its path, or another file there, even with the same bytes); and from a file
// kept open, the bytes it was named for after the file is deleted (segment GC deletes whole
// files only). Where the bytes lie is asked once per window of a version, and a part of a
// window's answer reads what a question for that part would. A real store on a temp dir, real files.

import { copyFileSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LocalLogReader, LocatedWindows } from '../../src/replication/localLog.js'
import { pageOffsetFinder } from '../../src/store/diskAddon.js'
import { ROOT_INO, type Attr } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'
import { StoreWriter } from '../helpers/storeWriter.js'

const KiB = 1024
const dirs: string[] = []
const readers: LocalLogReader[] = []
afterEach(async () => {
  for (const reader of readers.splice(0)) await reader.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** Bytes that differ at every offset (a read from the wrong place shows). */
function pattern(sizeBytes: number, seed: number): Buffer {
  const out = Buffer.alloc(sizeBytes + 4)
  for (let i = 0; i < sizeBytes; i += 4) out.writeUInt32LE((Math.imul(i, 2654435761) + seed) >>> 0, i)
  return out.subarray(0, sizeBytes)
}

/** A store with small segments and one file written in three appends, with a hole: its attributes and the file's expected bytes. */
async function storeWithFile(): Promise<{ store: Store; attr: Attr; expected: Buffer }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-locallog-'))
  dirs.push(dir)
  const store = new Store(dir, { segmentSizeBytes: 256 * KiB })
  await store.open()
  const writer = new StoreWriter(store)
  const ino = (await writer.apply({ type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0 })).ino!
  const expected = Buffer.alloc(900 * KiB)
  const ops = []
  for (const [offset, sizeBytes, seed] of [
    [0, 300 * KiB, 1],
    [300 * KiB, 250 * KiB + 7, 2],
    [700 * KiB, 200 * KiB, 3], // a hole of ~150 KiB before it
  ] as const) {
    const bytes = pattern(sizeBytes, seed)
    bytes.copy(expected, offset)
    const data = store.appendData(bytes)
    await data.written
    ops.push({ op: 'write' as const, offset, sizeBytes, data: data.position })
  }
  await writer.apply({ type: 'version', ino, ops })
  return { store, attr: (await store.attr(ino, HLC_MAX))!, expected }
}

function reader(): LocalLogReader {
  const made = new LocalLogReader(pageOffsetFinder() ?? undefined)
  readers.push(made)
  return made
}

describe('reading a store\'s log files where it says the bytes lie', () => {
  it('returns what the store reads, across segments, a hole and unaligned ranges', async () => {
    const { store, attr, expected } = await storeWithFile()
    const local = reader()
    expect((await store.locate(attr, 0, 900 * KiB))!.files.length).toBeGreaterThan(1) // the file spans segments
    for (const [offset, lengthBytes] of [
      [0, 900 * KiB],
      [4096, 512 * KiB],
      [123_457, 700_001],
      [650 * KiB, 64 * KiB], // within the hole and past it
      [850 * KiB, 100 * KiB], // past the end
    ] as const) {
      const located = (await store.locate(attr, offset, lengthBytes))!
      expect(located.files.length).toBeGreaterThan(0)
      const into = Buffer.alloc(lengthBytes, 0xee)
      const n = await local.read(located, into)
      const fromStore = Buffer.alloc(lengthBytes)
      expect(n).toBe(await store.read(attr, offset, fromStore, lengthBytes))
      expect(into.subarray(0, n!).equals(expected.subarray(offset, offset + n!))).toBe(true)
    }
  })

  it('asks where bytes lie once per window, and reads from a part of its answer what the store reads', async () => {
    const { store, attr, expected } = await storeWithFile()
    const local = reader()
    const windows = new LocatedWindows(256 * KiB)
    const asked: Array<[number, number]> = []
    const ask = (offset: number, lengthBytes: number) => {
      asked.push([offset, lengthBytes])
      return store.locate(attr, offset, lengthBytes)
    }
    const ranges: Array<readonly [number, number]> = []
    for (let offset = 0; offset < 900 * KiB; offset += 64 * KiB) ranges.push([offset, 64 * KiB]) // sequential, into the hole and past the end
    ranges.push([4096 + 7, 100_000], [300 * KiB - 5, 10]) // unaligned, and across a boundary of the appends
    for (const [offset, lengthBytes] of ranges) {
      const located = (await windows.locate(attr, offset, lengthBytes, ask))!
      const into = Buffer.alloc(lengthBytes, 0xee)
      const n = await local.read(located, into)
      expect(n).toBe(await store.read(attr, offset, Buffer.alloc(lengthBytes), lengthBytes))
      expect(into.subarray(0, n!).equals(expected.subarray(offset, offset + n!))).toBe(true)
    }
    expect(asked).toEqual([0, 1, 2, 3].map((w) => [w * 256 * KiB, Math.min(256 * KiB, 900 * KiB - w * 256 * KiB)]))
    await windows.locate(attr, 200 * KiB, 100 * KiB, ask) // across two windows: asked as it is
    expect(asked.at(-1)).toEqual([200 * KiB, 100 * KiB])
  })

  it('reads nothing from a file that is not the one named: gone from its path, or another file there with the same bytes', async () => {
    const { store, attr } = await storeWithFile()
    const located = (await store.locate(attr, 0, 900 * KiB))!
    const file = located.files[0]!.file
    renameSync(file, `${file}.away`)
    expect(await reader().read(located, Buffer.alloc(900 * KiB))).toBeNull()
    copyFileSync(`${file}.away`, file) // the same bytes, another file
    expect(await reader().read(located, Buffer.alloc(900 * KiB))).toBeNull()
  })

  it('reads, from a file it holds open, the bytes it was named for after the file is deleted', async () => {
    const { store, attr, expected } = await storeWithFile()
    const local = reader()
    const located = (await store.locate(attr, 0, 900 * KiB))!
    expect(await local.read(located, Buffer.alloc(900 * KiB))).toBe(900 * KiB)
    for (const { file } of located.files) unlinkSync(file)
    const into = Buffer.alloc(900 * KiB)
    expect(await local.read(located, into)).toBe(900 * KiB)
    expect(into.equals(expected)).toBe(true)
  })
})
