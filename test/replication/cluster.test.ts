// A replicated group as processes: three real `fffs serve` members, real FUSE mounts
// (`fffs mount --cluster`), ordinary file I/O. A writer streams files while a replica that the
// mount is not connected to is killed with SIGKILL: writes continue, the view shrinks to the
// two survivors (seen through `fffs status --json`), and every file whose close returned reads
// back byte-identical through the mount and through a second mount served by another member.
// A client and a member holding the wrong cluster key are refused, and the group goes on.
// No assertion is about timing; every wait is bounded.

import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, startGroup, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { fffsMounts } from '../../src/control/client.js'

interface Written {
  readonly name: string
  readonly sha256: string
  readonly sizeBytes: number
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Writes files one after another until stopped; a file is acknowledged when its close returned. */
class Writer {
  readonly acknowledged: Written[] = []
  readonly failures: string[] = []
  private stopped = false
  private loop: Promise<void> | null = null

  constructor(private readonly dir: string) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        // Mostly small files (one ordered record carries them), every 8th 1-2 MiB (the bulk path).
        const sizeBytes = i % 8 === 7 ? 1024 * 1024 + ((i * 7919) % (1024 * 1024)) : 1 + ((i * 104729) % (16 * 1024))
        const bytes = randomBytes(sizeBytes)
        const name = `w-${String(i).padStart(5, '0')}.bin`
        try {
          await fsp.writeFile(path.join(this.dir, name), bytes) // open, write, close
          this.acknowledged.push({ name, sha256: sha256(bytes), sizeBytes })
        } catch (err) {
          this.failures.push(`${name}: ${(err as Error).message}`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}

interface StatusJson {
  connectedMember: number | null
  members: Array<{ id: number; reachable: boolean }>
  summary: { view: { vid: number; members: number[] } | null; unreachable: number[] }
}

async function statusOf(mount: ClusterMount): Promise<StatusJson> {
  const { status, stdout, stderr } = await cli(['status', '--json', '--mount', mount.mountpoint])
  if (status !== 0) throw new Error(`fffs status exited ${status}: ${stderr}`)
  return JSON.parse(stdout) as StatusJson
}

describe('a 3-replica group of processes behind a FUSE mount', () => {
  let group: TestGroup
  let mountA: ClusterMount // connected to member 0 (first in the config)
  const writer = { current: null as Writer | null }

  beforeAll(async () => {
    group = await startGroup(3)
    for (const m of group.config.members) group.startMember(m.id)
    await group.waitView([0, 1, 2], 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${[...group.members].map(([id, p]) => `[member ${id}]\n${p.output()}`).join('\n')}`)
    })
    mountA = await group.mount('mnt-a')
  })

  afterAll(async () => {
    await writer.current?.stop()
    await group?.cleanup()
  })

  it('fffs status --json shows the view of all three members and the member the mount is on', async () => {
    const status = await statusOf(mountA)
    expect(status.connectedMember).toBe(0)
    expect(status.summary.view?.members).toEqual([0, 1, 2])
    expect(status.members.map((m) => m.reachable)).toEqual([true, true, true])
    const text = await cli(['status', '--mount', mountA.mountpoint])
    expect(text.status).toBe(0)
    expect(text.stdout).toMatch(/^view \d+: members \[0,1,2\]/m)
    expect(text.stdout).toContain('shared state table as member 0 sees it')
  })

  it('kill -9 of a replica the mount is not connected to: writes continue and the view shrinks to the survivors', async () => {
    const w = (writer.current = new Writer(mountA.mountpoint))
    w.start()
    await waitFor('20 files written before the kill', 20_000, () => (w.acknowledged.length >= 20 ? true : undefined))
    await group.kill9(1)
    const killedAt = w.acknowledged.length
    const vid = await group.waitView([0, 2], 20_000)
    // The mount's status agrees: view of [0, 2], member 1 unreachable.
    const status = await waitFor('fffs status to show the view [0, 2]', 10_000, async () => {
      const s = await statusOf(mountA)
      return s.summary.view?.members.join(',') === '0,2' ? s : undefined
    })
    expect(status.summary.view?.vid).toBe(vid)
    expect(status.summary.unreachable).toEqual([1])
    const afterView = w.acknowledged.length
    await waitFor('20 more files written in the new view', 20_000, () => (w.acknowledged.length >= afterView + 20 ? true : undefined))
    await w.stop()
    expect(w.failures).toEqual([])
    expect(w.acknowledged.length).toBeGreaterThan(killedAt)
  })

  it('every acknowledged file reads back byte-identical through the mount and through a mount served by member 2', async () => {
    const acknowledged = writer.current!.acknowledged
    expect(acknowledged.length).toBeGreaterThanOrEqual(40)
    const mountB = await group.mount('mnt-b', await group.writeClientConfig('client-from-2.json', 2))
    expect((await statusOf(mountB)).connectedMember).toBe(2)
    for (const mount of [mountA, mountB]) {
      const names = new Set((await fsp.readdir(mount.mountpoint)).filter((n) => n.startsWith('w-')))
      for (const file of acknowledged) {
        expect(names.has(file.name), `${file.name} listed in ${mount.mountpoint}`).toBe(true)
        const bytes = await fsp.readFile(mount.p(file.name))
        expect(bytes.length, `${file.name} size via ${path.basename(mount.mountpoint)}`).toBe(file.sizeBytes)
        expect(sha256(bytes), `${file.name} content via ${path.basename(mount.mountpoint)}`).toBe(file.sha256)
      }
    }
  })

  it('a mount holding the wrong cluster key is refused with a one-line error and a non-zero exit', async () => {
    const badKey = path.join(group.root, 'wrong.key')
    await fsp.writeFile(badKey, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
    const badConfig = await group.writeClientConfig('wrong-key.json', 0, badKey)
    const mountpoint = path.join(group.root, 'mnt-wrong-key')
    const result = await cli(['mount', mountpoint, '--cluster', badConfig], 20_000)
    expect(result.status).not.toBe(0)
    const lines = result.stderr.trim().split('\n')
    // Each refusal is logged as it happens; the error the command ends with is one line.
    expect(lines[lines.length - 1]).toMatch(/^fffs: .*bad cluster key/)
    expect(fffsMounts()).not.toContain(mountpoint)
    // The members logged the refusal.
    await waitFor('a member to log the refused client', 5_000, () => (group.members.get(0)!.output().includes('bad cluster key') ? true : undefined))
  })

  it('a member holding the wrong cluster key cannot join, and the group is unaffected', async () => {
    const vidBefore = (await group.viewOf(0)).vid
    const badKey = path.join(group.root, 'wrong-member.key')
    await fsp.writeFile(badKey, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
    const badConfig = await group.writeClientConfig('wrong-member-key.json', 0, badKey) // same member order, other key
    const intruder = group.startMember(1, badConfig)
    // Bounded: it exits or it is refused, within 15 s.
    await waitFor('the wrong-key member to fail or be refused', 15_000, () => (intruder.exited() || /bad cluster key|refused/.test(intruder.output()) ? true : undefined))
    if (intruder.exited()) expect(intruder.child.exitCode).not.toBe(0)
    // Give it a moment to try harder, then the group must still be the two survivors, same view.
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    expect(await group.viewOf(0)).toEqual({ vid: vidBefore, members: [0, 2] })
    expect(await group.viewOf(2)).toEqual({ vid: vidBefore, members: [0, 2] })
    intruder.child.kill('SIGKILL')
    await intruder.waitExit(10_000)
    // Writes still go through.
    const bytes = randomBytes(4096)
    await fsp.writeFile(mountA.p('after-intruder.bin'), bytes)
    expect(sha256(await fsp.readFile(mountA.p('after-intruder.bin')))).toBe(sha256(bytes))
  })
})
