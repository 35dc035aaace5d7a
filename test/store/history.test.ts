// Reads at a past cut on the embedded store: the attributes a cut sees are those of the node's
// latest version stamped at or before it, whether found in the live tables (nothing changed
// since) or by a binary search of the version index; checked against the versions as written,
// at and around every stamp, across bursts and pauses of writes, and again after the store is
// reopened on another history (nothing the search remembered may outlive the index it read).

import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EmbeddedClient } from '../../src/client/embedded.js'
import { ROOT_INO, type Mutation } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('attributes at a past cut', () => {
  it('are the latest version at or before the cut, for cuts at, between and around every version', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-history-'))
    const { client } = await EmbeddedClient.open(dir)
    cleanups.push(async () => {
      await client.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const root = await client.walk([], HLC_MAX)
    const { ino, stamp: created } = await client.submit({ type: 'mknod', parent: root.ino, name: 'f', kind: 'file', mode: 0o600, uid: 0, gid: 0 })
    const stamps = [created] // stamps[v - 1]: version v
    const change = async (): Promise<void> => {
      stamps.push((await client.submit({ type: 'setattr', ino: ino!, mode: stamps.length % 0o777 })).stamp)
    }
    // Uneven spacing: bursts and pauses.
    for (let i = 0; i < 400; i++) await change()
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 15))
      await change()
    }
    for (let i = 0; i < 300; i++) await change()
    await new Promise((r) => setTimeout(r, 30))
    await change()

    const expectAt = async (cut: bigint): Promise<void> => {
      let version = 0
      while (version < stamps.length && stamps[version]! <= cut) version++
      const attr = await client.attr(ino!, cut)
      if (version === 0) expect(attr).toBeNull()
      else expect({ cut, version: attr?.version, stamp: attr?.stamp }).toEqual({ cut, version, stamp: stamps[version - 1]!.toString() })
    }
    await expectAt(created - 1n)
    for (const stamp of stamps) {
      await expectAt(stamp)
      await expectAt(stamp - 1n)
      await expectAt(stamp + 1n)
    }
    await expectAt(stamps[stamps.length - 1]! + 1_000_000n)
  })

  it('follow the store when it is closed and reopened on another history (a member discarding its log)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-history-'))
    const store = new Store(dir)
    cleanups.push(async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const applyRecord = (stamp: bigint, mutation: Mutation) => store.apply(stamp, mutation, store.appendRecord(stamp, mutation))
    // A file with versions 1..4: created at 100, changed at each of `stamps`.
    const writeHistory = async (stamps: bigint[]): Promise<number> => {
      await applyRecord(100n, { type: 'mknod', parent: ROOT_INO, name: 'f', kind: 'file', mode: 0o600, uid: 0, gid: 0 })
      const ino = store.liveLookup(ROOT_INO, 'f')!
      for (const stamp of stamps) await applyRecord(stamp, { type: 'setattr', ino, mode: Number(stamp % 0o777n) })
      return ino
    }
    await store.open()
    const ino = await writeHistory([1000n, 2000n, 3000n])
    expect((await store.attr(ino, 2500n))?.stamp).toBe('2000') // the search remembers the stamps it read
    await store.close()
    // What a member does when its log ends in records the group went on without (member.ts, discardStore).
    const trash = path.join(dir, 'discarded')
    mkdirSync(trash)
    for (const name of ['index', 'segments']) renameSync(path.join(dir, name), path.join(trash, name))
    await store.open()
    expect(await writeHistory([1500n, 2500n, 3500n])).toBe(ino)
    expect((await store.attr(ino, 2600n))?.stamp).toBe('2500')
    expect((await store.attr(ino, 1400n))?.stamp).toBe('100')
  })
})
