// kill -9 of a group member during its segment GC (real `fffs serve` processes). Member 1's data
// directory is on a small tmpfs (4 MiB segments), so once retention drops the overwritten
// versions of a churned file its segments are mostly dead and its GC copies the kept files'
// bytes forward, slowly (a small copy budget). It is killed at a random moment of that copy and
// restarted: it rejoins, applies the same floor as the others, and every replica holds the same
// files and versions (the churned file's last version only).

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchMemberStatus } from '../../src/replication/remoteClient.js'
import { Prng } from '../../src/testing/prng.js'
import { replicaContents, sha256, startGroupWithSmallDisk, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { instantNow } from '../helpers/mount.js'

const VIEW_TIMEOUT_MS = 30_000
const COLLECTING = /member 1: retention: collecting/g
const KILLED = 1

describe('kill -9 of a member during segment GC', () => {
  let group: TestGroup
  let mount: ClusterMount
  let stop: (() => Promise<void>) | null = null
  const kept = new Map<string, string>() // file -> sha256 of its closed contents

  beforeAll(async () => {
    ;({ group, mount, stop } = await startGroupWithSmallDisk(KILLED, '256m', { retention: { keepAllFor: '1s', force: true }, gcBudgetMiBs: 2 }))
  }, 90_000)
  afterAll(async () => {
    await stop?.()
  })

  const floorOf = async (id: number): Promise<{ floor: string | null; floorStamp: string; compacting: boolean }> => {
    const status = (await fetchMemberStatus(group.config, group.config.members.find((m) => m.id === id)!, 2_000)) as { history: { floor: string | null; floorStamp: string; compacting: boolean } }
    return status.history
  }

  it('restarts, rejoins, and agrees with the others: the same floor, files and versions', async () => {
    const prng = new Prng(Number(process.env['FFFS_SEED'] ?? 20_260_102))
    // Kept files and overwrites of one churned file, interleaved in the log.
    for (let i = 0; i < 24; i++) {
      const bytes = Buffer.alloc(96 * 1024, i + 1)
      bytes.writeUInt32LE(i, 0)
      await fsp.writeFile(mount.p(`keep-${i}`), bytes)
      kept.set(`keep-${i}`, sha256(bytes))
      await fsp.writeFile(mount.p('churn'), Buffer.alloc(1024 * 1024, i))
    }
    const afterWrites = await instantNow()
    const member = (): NonNullable<ReturnType<typeof group.members.get>> => group.members.get(KILLED)!
    const before = (member().output().match(COLLECTING) ?? []).length
    await waitFor(`member ${KILLED} to start copying a GC run's live bytes`, 60_000, () => ((member().output().match(COLLECTING) ?? []).length > before ? true : undefined), 20)
    await new Promise((resolve) => setTimeout(resolve, prng.int(0, 900))) // somewhere in the copy (2 MiB/s)
    member().child.kill('SIGKILL')
    expect(await member().waitExit(10_000)).toBe(true)
    await group.waitView([0, 2], VIEW_TIMEOUT_MS)
    group.startMember(KILLED)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    expect(member().output()).not.toMatch(/EIO|internal error|corruption/)

    // The same floor everywhere, past every churned version but the last (the floor goes on
    // moving: retry until a moment they agree).
    await waitFor('every member at the same floor past the writes, none compacting', 60_000, async () => {
      const floors = await Promise.all([0, 1, 2].map(floorOf))
      return floors.every((f) => !f.compacting && f.floor !== null && f.floor > afterWrites && f.floorStamp === floors[0]!.floorStamp) ? true : undefined
    }, 200)

    // Through the restarted member: every kept file whole.
    const viaKilled = await group.mount('via-killed', await group.writeClientConfig('via-killed.json', KILLED))
    for (const [name, digest] of kept) expect({ name, digest: sha256(await fsp.readFile(viaKilled.p(name))) }).toEqual({ name, digest })
    await viaKilled.stop()

    // Each replica's store, read directly once the group stopped: the same files and versions
    // (the floor may have moved at some before they stopped, past nothing more to drop).
    await mount.stop()
    for (const proc of group.members.values()) {
      proc.child.kill('SIGTERM')
      expect(await proc.waitExit(10_000)).toBe(true)
    }
    const dataDirs = group.config.members.map((m) => path.resolve(path.dirname(group.config.path), m.dataDir))
    const replicas = await Promise.all(dataDirs.map(replicaContents))
    expect(replicas[0]!.size).toBe(kept.size + 1)
    for (const [name, digest] of kept) expect(sha256(replicas[0]!.get(name)!.content)).toBe(digest)
    expect(replicas[0]!.get('churn')!.versions).toHaveLength(1) // retention dropped the overwritten versions
    for (const replica of replicas.slice(1)) expect(replica).toEqual(replicas[0])
  }, 240_000)
})

