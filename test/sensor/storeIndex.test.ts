// The store's sensor index for record-format files: every replica indexes the records a
// version mutation lists, so a pick at sensor time T names the prefix up to the last record
// at or before T; a record older than the version's stamp − Δ refuses the whole version.

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ApplyResult, Mutation, VersionRecords } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { hlcOf, type HlcStamp } from '../../src/temporal/hlc.js'

const BASE_US = 1_795_255_200_000_000 // 2026-11-21T10:00:00Z
let dir: string
let store: Store
let ino: number

async function apply(atUs: number, mutation: Mutation): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
  const stamp = hlcOf(atUs, 0)
  const logged = store.appendRecord(stamp, mutation)
  await store.sync()
  return { stamp, result: await store.apply(stamp, mutation, logged) }
}

/** A version appending `sizeBytes` bytes at `offset` with the given records. */
async function append(atUs: number, offset: number, sizeBytes: number, records: VersionRecords, sensorLagMaxUs?: number) {
  const { position } = store.appendData(Buffer.alloc(sizeBytes, 0x61))
  return apply(atUs, { type: 'version', ino, ops: [{ op: 'write', offset, sizeBytes, data: position }], records, ...(sensorLagMaxUs !== undefined ? { sensorLagMaxUs } : {}) })
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-sensor-store-'))
  store = new Store(dir)
  await store.open()
  const created = await apply(BASE_US, { type: 'mknod', parent: 1, name: 'pmu.bin', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
  expect(created.result.ok).toBe(true)
  ino = (created.result as { ino: number }).ino
})
afterEach(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('sensor index of record-format files', () => {
  it('picks the prefix up to the last record at or before T, across versions', async () => {
    const v2 = await append(BASE_US + 10, 0, 50, { entries: [[16, 100], [32, 200], [48, 300]], baseMaxSensorUs: -1, endBytes: 48 })
    expect(v2.result.ok).toBe(true)
    const v3 = await append(BASE_US + 20, 50, 30, { entries: [[64, 400]], baseMaxSensorUs: 300, endBytes: 80 })
    expect(v3.result.ok).toBe(true)
    expect(await store.sensorPick(ino, 99)).toBeNull()
    expect(await store.sensorPick(ino, 100)).toEqual({ stamp: v2.stamp, sizeBytes: 16 })
    expect(await store.sensorPick(ino, 299)).toEqual({ stamp: v2.stamp, sizeBytes: 32 })
    expect(await store.sensorPick(ino, 399)).toEqual({ stamp: v2.stamp, sizeBytes: 48 })
    expect(await store.sensorPick(ino, 400)).toEqual({ stamp: v3.stamp, sizeBytes: 64 })
    expect(await store.stampAtSensorTime(ino, 400)).toBe(v3.stamp)
    const live = store.liveAttr(ino)!
    expect(live.records).toEqual({ endBytes: 80, maxSensorUs: 400 })
    expect(live.sensorUs).toBe(400)
    // a metadata change keeps the cursor and adds no whole-version entry (which would show the tail)
    expect((await apply(BASE_US + 30, { type: 'setattr', ino, mode: 0o600 })).result.ok).toBe(true)
    expect(await store.sensorPick(ino, 10_000)).toEqual({ stamp: v3.stamp, sizeBytes: 64 })
    expect(store.liveAttr(ino)!.records).toEqual({ endBytes: 80, maxSensorUs: 400 })
  })

  it('never shows a record stamped after T: out-of-order records wait for the running maximum', async () => {
    const v2 = await append(BASE_US + 10, 0, 48, { entries: [[16, 100], [32, 300], [48, 200]], baseMaxSensorUs: -1, endBytes: 48 })
    expect(v2.result.ok).toBe(true)
    expect(await store.sensorPick(ino, 250)).toEqual({ stamp: v2.stamp, sizeBytes: 16 }) // the 200 record sits after the 300 one
    expect(await store.sensorPick(ino, 300)).toEqual({ stamp: v2.stamp, sizeBytes: 48 })
    // a later version whose record does not raise the maximum extends the same key; the later stamp wins
    const v3 = await append(BASE_US + 20, 48, 16, { entries: [[64, 250]], baseMaxSensorUs: 300, endBytes: 64 })
    expect(await store.sensorPick(ino, 300)).toEqual({ stamp: v3.stamp, sizeBytes: 64 })
  })

  it('refuses the whole version when a record is older than its stamp − Δ', async () => {
    const lagUs = 5_000_000
    const late = await append(BASE_US + lagUs + 1000, 0, 32, { entries: [[16, BASE_US + 2000], [32, BASE_US + 999]], baseMaxSensorUs: -1, endBytes: 32 }, lagUs)
    expect(late.result).toEqual({ ok: false, code: 'EINVAL', reason: 'lateSensorWrite', message: expect.stringMatching(/^late sensor write: record of inode \d+ ending at byte 32 stamped 2026-11-21T10:00:00.000999Z is older than .* − Δ 5000 ms = 2026-11-21T10:00:00.001000Z/) })
    expect(store.liveAttr(ino)!.sizeBytes).toBe(0) // no effect
    expect(await store.sensorPick(ino, Number.MAX_SAFE_INTEGER)).toBeNull()
    const onTime = await append(BASE_US + lagUs + 2000, 0, 32, { entries: [[16, BASE_US + 2000], [32, BASE_US + 3000]], baseMaxSensorUs: -1, endBytes: 32 }, lagUs)
    expect(onTime.result.ok).toBe(true)
    // a path or xattr stamp is held to the same bound, and so is a create at sensor time
    const stale = await apply(BASE_US + 3 * lagUs, { type: 'version', ino, ops: [], sensorUs: BASE_US, sensorLagMaxUs: lagUs })
    expect(stale.result).toMatchObject({ ok: false, code: 'EINVAL', message: expect.stringMatching(/^late sensor write: version of inode/) })
    const created = await apply(BASE_US + 4 * lagUs, { type: 'mknod', parent: 1, name: 'old', kind: 'file', mode: 0o644, uid: 0, gid: 0, sensorUs: BASE_US, sensorLagMaxUs: lagUs })
    expect(created.result).toMatchObject({ ok: false, message: expect.stringMatching(/^late sensor write: creating 'old'/) })
  })

  it('a later chmod or xattr keeps a node\'s sensor time but is no new sensor-time entry: a read at that time still picks the stamped change', async () => {
    const sensed = await apply(BASE_US + 100, { type: 'mknod', parent: 1, name: 'sensed', kind: 'file', mode: 0o644, uid: 0, gid: 0, sensorUs: BASE_US })
    const sensedIno = (sensed.result as { ino: number }).ino
    await apply(BASE_US + 200, { type: 'setattr', ino: sensedIno, mode: 0o600 })
    await apply(BASE_US + 300, { type: 'setxattr', ino: sensedIno, name: 'user.note', valueBase64: Buffer.from('x').toString('base64') })
    expect(store.liveAttr(sensedIno)!.sensorUs).toBe(BASE_US)
    expect(await store.stampAtSensorTime(sensedIno, BASE_US)).toBe(sensed.stamp)
    const version = await apply(BASE_US + 400, { type: 'version', ino: sensedIno, ops: [], sensorUs: BASE_US + 50 })
    expect(await store.stampAtSensorTime(sensedIno, BASE_US + 50)).toBe(version.stamp)
    expect(await store.stampAtSensorTime(sensedIno, BASE_US + 49)).toBe(sensed.stamp)
  })

  it('drops the cursor when a version without records changes bytes below it, and refuses bad record lists', async () => {
    await append(BASE_US + 10, 0, 32, { entries: [[16, 100], [32, 200]], baseMaxSensorUs: -1, endBytes: 32 })
    const { position } = store.appendData(Buffer.from('zz'))
    await apply(BASE_US + 20, { type: 'version', ino, ops: [{ op: 'write', offset: 40, sizeBytes: 2, data: position }] })
    expect(store.liveAttr(ino)!.records).toEqual({ endBytes: 32, maxSensorUs: 200 }) // beyond the cursor: stands
    await apply(BASE_US + 30, { type: 'version', ino, ops: [{ op: 'truncate', sizeBytes: 20 }] })
    expect(store.liveAttr(ino)!.records).toBeUndefined()
    const unordered = await append(BASE_US + 40, 0, 32, { entries: [[32, 1], [16, 2]], baseMaxSensorUs: -1, endBytes: 32 })
    expect(unordered.result).toMatchObject({ ok: false, code: 'EINVAL' })
    const pastEnd = await append(BASE_US + 50, 0, 8, { entries: [[24, 1]], baseMaxSensorUs: -1, endBytes: 24 }) // the file is 20 bytes
    expect(pastEnd.result).toMatchObject({ ok: false, code: 'EINVAL' })
  })

  it('copies the xattrs a create names (the inherited record format)', async () => {
    const made = await apply(BASE_US + 10, { type: 'mknod', parent: 1, name: 'd', kind: 'dir', mode: 0o755, uid: 0, gid: 0, xattrs: { 'user.fffs.record_format': Buffer.from('ts64:16').toString('base64') } })
    expect(store.liveAttr((made.result as { ino: number }).ino)!.xattrs).toEqual({ 'user.fffs.record_format': Buffer.from('ts64:16').toString('base64') })
  })
})
