// Open files on the embedded store, without FUSE: uncommitted writes read back through the
// handle whether their chunk is still in memory or already back in the pool (then from the
// log); a commit makes exactly those bytes the new version; with plain chunks (a client that
// hands out none, as a cluster client) the buffers are kept. Also: the security.* namespace and POSIX ACLs are answered at once and never stored.

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { OpenFiles } from '../../src/fs/openFiles.js'
import { MOUNT_PROCESS, Operations } from '../../src/fs/operations.js'
import { newSensorStats } from '../../src/fs/sensorRecords.js'
import { LIVE_ROOT, type Place } from '../../src/fs/resolve.js'
import type { Client } from '../../src/client/client.js'
import { EmbeddedClient } from '../../src/client/embedded.js'
import type { Attr, Ino } from '../../src/store/records.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'

const KiB = 1024
const MiB = 1024 * KiB
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/**
 * An embedded client in a temp dir whose log appends and reads back are recorded (so a test can
 * wait for the log writes). `logChunks` false: it hands out no chunks of its own, so the file
 * system's are plain memory handed to appendData, kept until the version commits.
 */
async function openClient(options: { logChunks: boolean }): Promise<{ client: Client; written: Promise<void>[]; readBack: { count: number } }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-openfiles-'))
  const { client: embedded } = await EmbeddedClient.open(dir)
  cleanups.push(async () => {
    await embedded.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const written: Promise<void>[] = []
  const client = Object.create(embedded) as EmbeddedClient // its chunks append and read back through these
  client.appendData = (ino: Ino, bytes: Uint8Array, crc?: number | Promise<number>) => {
    const result = embedded.appendData(ino, bytes, crc)
    written.push(result.written)
    return result
  }
  const readBack = { count: 0 }
  client.readData = (ref, into, intoOffset, lengthBytes) => {
    readBack.count++
    return embedded.readData(ref, into, intoOffset, lengthBytes)
  }
  if (!options.logChunks) (client as Client).newChunk = undefined
  return { client, written, readBack }
}

const policy = { sensorLagMaxUs: 1_000_000, nowUs: () => Date.now() * 1000, stats: newSensorStats(), log: () => undefined }

function pattern(sizeBytes: number, seed: number): Buffer {
  const out = Buffer.alloc(sizeBytes)
  for (let i = 0; i < sizeBytes; i++) out[i] = (Math.imul(i + 1, 2654435761) ^ seed) >>> 24
  return out
}

async function newFile(client: Client, name: string): Promise<Attr> {
  const root = await client.walk([], HLC_MAX)
  const { ino } = await client.submit({ type: 'mknod', parent: root.ino, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 })
  return (await client.attr(ino!, HLC_MAX))!
}

async function readAll(read: (into: Buffer, lengthBytes: number, offset: number) => Promise<number>, sizeBytes: number): Promise<Buffer> {
  const out = Buffer.alloc(sizeBytes)
  for (let at = 0; at < sizeBytes; at += 1 * MiB) await read(out.subarray(at), Math.min(1 * MiB, sizeBytes - at), at)
  return out
}

for (const logChunks of [true, false]) {
  describe(`uncommitted writes (${logChunks ? "the log's chunks, read back once written" : 'plain chunks, kept in memory'})`, () => {
    it('read back through the handle, before and after their chunks are written, and commit as one version', async () => {
      const { client, written, readBack } = await openClient({ logChunks })
      const attr = await newFile(client, 'big')
      const files = new OpenFiles(policy)
      const file = files.open(attr, { kind: 'live' }, true, '/big')
      const sizeBytes = 20 * MiB + 12_345
      const expected = pattern(sizeBytes, 1)
      for (let at = 0; at < sizeBytes; at += 128 * KiB) file.write(client, expected.subarray(at), Math.min(128 * KiB, sizeBytes - at), at)
      // Overwrites across chunk boundaries: later writes win in reads and in the version.
      const patch = pattern(3 * MiB, 2)
      file.write(client, patch, patch.length, 5 * MiB - 1000)
      patch.copy(expected, 5 * MiB - 1000)
      expect((await readAll((into, n, at) => file.read(client, into, n, at), sizeBytes)).equals(expected)).toBe(true) // some chunks in memory
      await Promise.all(written)
      await new Promise((resolve) => setImmediate(resolve)) // the pool takes chunks back after their writes settle
      expect((await readAll((into, n, at) => file.read(client, into, n, at), sizeBytes)).equals(expected)).toBe(true) // sealed chunks from the log
      expect(readBack.count > 0).toBe(logChunks)
      await file.commit(client)
      files.close(file.fd)
      const committed = (await client.attr(attr.ino, HLC_MAX))!
      expect(committed.sizeBytes).toBe(sizeBytes)
      expect(committed.version).toBe(attr.version + 1)
      expect((await readAll((into, n, at) => client.read(committed, at, into, n), sizeBytes)).equals(expected)).toBe(true)
    })
  })
}

describe('read-ahead at a past cut', () => {
  it('serves first reads of any length from offset 0 and any other read from the log', async () => {
    const { client } = await openClient({ logChunks: true })
    const attr = await newFile(client, 'past')
    const files = new OpenFiles(policy)
    const writer = files.open(attr, { kind: 'live' }, true, '/past')
    const sizeBytes = 300 * KiB + 7 // more than the 128 KiB read ahead
    const expected = pattern(sizeBytes, 3)
    writer.write(client, expected, sizeBytes, 0)
    await writer.commit(client)
    files.close(writer.fd)
    const version = (await client.attr(attr.ino, HLC_MAX))!
    const cut = { kind: 'platform', stamp: BigInt(version.stamp) } as const
    // [offset, length] of the first reads through a fresh handle; the kernel asks for at most 128 KiB, a client of this class for anything.
    const cases: Array<Array<[number, number]>> = [[[0, 4096]], [[0, 1 * MiB]], [[0, 200 * KiB], [200 * KiB, 200 * KiB]], [[100, 10], [0, 100]], [[sizeBytes, 10]]]
    for (const reads of cases) {
      const file = files.open(version, cut, false, '/past@T')
      file.startReadAhead(client)
      for (const [offset, lengthBytes] of reads) {
        const into = Buffer.alloc(lengthBytes)
        const n = await file.read(client, into, lengthBytes, offset)
        expect(n).toBe(Math.max(0, Math.min(lengthBytes, sizeBytes - offset)))
        expect(into.subarray(0, n).equals(expected.subarray(offset, offset + n))).toBe(true)
      }
      files.close(file.fd)
    }
  })
})

describe('security.* attributes and POSIX ACLs', () => {
  it('are never stored: set is refused, get says none at once, list leaves them out', async () => {
    const { client } = await openClient({ logChunks: true })
    const ops = new Operations(client, { maxWaitMs: 1000, sensorLagMaxUs: 1_000_000, clockSkewMaxUs: 100_000 }, os.tmpdir(), () => undefined)
    const { fd, found } = await ops.create(LIVE_ROOT, 'f', 0o644, MOUNT_PROCESS, 0, '/f')
    await ops.release(fd)
    const f = found.place
    const missing: Place = { kind: 'live', ino: 999_999 } // no such node
    await expect(ops.setxattr(f, 'security.capability', Buffer.from([1, 2]), 0, '/f')).rejects.toMatchObject({ code: 'ENOTSUP' })
    expect(() => ops.getxattr(missing, 'security.capability')).toThrow(expect.objectContaining({ code: 'ENODATA' }))
    await expect(ops.removexattr(f, 'security.selinux', '/f')).rejects.toMatchObject({ code: 'ENODATA' })
    for (const acl of ['system.posix_acl_access', 'system.posix_acl_default']) {
      await expect(ops.setxattr(f, acl, Buffer.from([2, 0, 0, 0]), 0, '/f')).rejects.toMatchObject({ code: 'ENOTSUP' })
      expect(() => ops.getxattr(missing, acl)).toThrow(expect.objectContaining({ code: 'ENODATA' }))
    }
    await expect(ops.getxattr(missing, 'system.other')).rejects.toMatchObject({ code: 'ENOENT' }) // other names look the node up
    await ops.setxattr(f, 'user.note', Buffer.from('kept'), 0, '/f')
    expect((await ops.getxattr(f, 'user.note')).toString()).toBe('kept')
    expect(await ops.listxattr(f)).toContain('user.note')
  })
})
