// Block maps as skip deltas (src/store/blockHistory.ts): every version of a file reads back
// exactly the bytes it had, whatever mix of writes, overwrites, appends and truncations made
// it (checked byte for byte against a model, live and at every past version, before and after
// a reopen); and a file grown by many small appends costs index space in proportion to the
// appends (a whole map per version cost the square of their number).

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterEach, describe, expect, it } from 'vitest'
import { BLOCK_SIZE_BYTES } from '../../src/store/blockMap.js'
import { keys, prefixEnd } from '../../src/store/keys.js'
import { ROOT_INO, type Attr, type VersionOp } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'
import { Prng } from '../../src/testing/prng.js'
import { StoreWriter } from '../helpers/storeWriter.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-blockhistory-'))
  dirs.push(dir)
  return dir
}

async function readAll(store: Store, attr: Attr): Promise<Buffer> {
  const into = Buffer.alloc(attr.sizeBytes)
  await store.read(attr, 0, into, attr.sizeBytes)
  return into
}

describe('block maps as skip deltas', () => {
  it('every version reads back its own bytes, live and at every past version, also after a reopen', async () => {
    const dir = tempDir()
    let store = new Store(dir)
    await store.open()
    const w = new StoreWriter(store)
    await w.apply({ type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o600, uid: 0, gid: 0 })
    const ino = store.liveLookup(ROOT_INO, 'f')!
    await w.apply({ type: 'mknod', parent: ROOT_INO, name: 'g', kind: 'file', mode: 0o600, uid: 0, gid: 0 }) // interleaved: no two appends adjacent in the log
    const other = store.liveLookup(ROOT_INO, 'g')!
    const prng = new Prng(20_261_121)
    const pick = (below: number): number => prng.int(0, Math.max(0, below - 1)) // 0 .. below - 1
    let content = Buffer.alloc(0)
    const expected: Array<{ stamp: bigint; content: Buffer }> = []
    for (let version = 0; version < 600; version++) {
      const ops: VersionOp[] = []
      for (let k = 0, n = 1 + pick(3); k < n; k++) {
        const kind = pick(10)
        if (kind < 6) {
          // Append: the common case for logs and sensor streams.
          const bytes = Buffer.alloc(1 + pick(3000), version % 251)
          ops.push(w.writeOp(content.length, bytes))
          content = Buffer.concat([content, bytes])
        } else if (kind < 9) {
          // Overwrite (maybe past the end: a hole in between reads as zeros).
          const offset = pick(Math.min(content.length + 5000, 3 * BLOCK_SIZE_BYTES))
          const bytes = Buffer.alloc(1 + pick(kind === 8 ? BLOCK_SIZE_BYTES : 5000), (version * 7) % 251)
          ops.push(w.writeOp(offset, bytes))
          const grown = Buffer.alloc(Math.max(content.length, offset + bytes.length))
          content.copy(grown)
          bytes.copy(grown, offset)
          content = grown
        } else {
          const sizeBytes = pick(content.length + 2000)
          ops.push({ op: 'truncate', sizeBytes })
          const cut = Buffer.alloc(sizeBytes)
          content.copy(cut, 0, 0, Math.min(sizeBytes, content.length))
          content = cut
        }
      }
      const { stamp } = await w.apply({ type: 'version', ino, ops })
      expected.push({ stamp, content })
      await w.apply({ type: 'version', ino: other, ops: [w.writeOp(version, Buffer.of(1))] })
    }
    const check = async (): Promise<void> => {
      expect((await readAll(store, (await store.attr(ino, HLC_MAX))!)).equals(content)).toBe(true)
      for (const { stamp, content: want } of expected) {
        const attr = (await store.attr(ino, stamp))!
        expect(attr.sizeBytes).toBe(want.length)
        const got = await readAll(store, attr)
        if (!got.equals(want)) expect.fail(`version at ${stamp} reads other bytes`)
      }
    }
    await check()
    await store.close()
    store = new Store(dir)
    await store.open()
    await check()
    await store.close()
  })

  it('a store written with a whole map per entry reads as before and goes on in skip deltas', async () => {
    const dir = tempDir()
    let store = new Store(dir)
    await store.open()
    const w = new StoreWriter(store)
    await w.apply({ type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o600, uid: 0, gid: 0 })
    const ino = store.liveLookup(ROOT_INO, 'f')!
    const first = Buffer.alloc(3000, 1)
    const { stamp: firstStamp } = await w.apply({ type: 'version', ino, ops: [w.writeOp(0, first)] })
    await store.sync()
    await store.close()
    // Rewrite block 0's entries as the store format before skip deltas had them: the whole map.
    const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    const entry = await db.get(keys.block(ino, 0, firstStamp))
    const wholeMap = entry!.subarray(17) // header of a skip-delta entry, then the map's extents
    await db.batch([
      { type: 'put', key: keys.block(ino, 0, firstStamp), value: wholeMap },
      { type: 'put', key: keys.liveBlock(ino, 0), value: wholeMap },
    ])
    await db.close()
    store = new Store(dir)
    await store.open()
    w.store = store
    expect((await readAll(store, (await store.attr(ino, HLC_MAX))!)).equals(first)).toBe(true)
    const second = Buffer.alloc(100, 2)
    await w.apply({ type: 'version', ino, ops: [w.writeOp(1000, second)] })
    const want = Buffer.from(first)
    second.copy(want, 1000)
    expect((await readAll(store, (await store.attr(ino, HLC_MAX))!)).equals(want)).toBe(true)
    expect((await readAll(store, (await store.attr(ino, firstStamp))!)).equals(first)).toBe(true)
    await store.close()
  })

  it('a file grown by thousands of small appends costs index space in proportion to them', async () => {
    const dir = tempDir()
    const store = new Store(dir)
    await store.open()
    const w = new StoreWriter(store)
    for (const name of ['a', 'b']) await w.apply({ type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o600, uid: 0, gid: 0 })
    const inos = ['a', 'b'].map((name) => store.liveLookup(ROOT_INO, name)!)
    const appends = 3000
    const appendBytes = 100
    for (let i = 0; i < appends; i++) {
      for (const ino of inos) await w.apply({ type: 'version', ino, ops: [w.writeOp(i * appendBytes, Buffer.alloc(appendBytes, i % 251))] })
    }
    await store.close()
    const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    let blockBytes = 0
    for await (const [, value] of db.iterator({ gte: Buffer.of(0x42), lt: prefixEnd(Buffer.of(0x42)) })) blockBytes += value.length
    const liveValue = await db.get(keys.liveBlock(inos[0]!, 0))
    await db.close()
    // A whole map per append would be 16 bytes × (1 + 2 + ... + 3000) per file: 72 MB.
    // Skip deltas: about 16 bytes × log2(3000) / 2 per append and file, plus headers.
    expect(blockBytes).toBeLessThan(2 * appends * 250)
    expect(liveValue?.length).toBe(12)
  })
})
