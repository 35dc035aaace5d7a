// `fffs up` as `npm start` runs it, and the README's failure drill: one ready line once the group
// runs, member pids in `fffs status --json`, a second start refused at once, a member killed by
// its pid and started again by hand, and a Ctrl-C (SIGINT to the whole process group, as a
// terminal sends it) that stops everything without alarming lines.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { READY_PREFIX } from '../../src/cli/output.js'
import { fffsMounts } from '../../src/fs/mountTable.js'
import { spawnFffs, waitFor, type Proc } from '../helpers/cluster.js'
import { FFFS_BIN, fusermountLazy, runCli } from '../helpers/mount.js'

const READY_TIMEOUT_MS = 60_000
const EXIT_TIMEOUT_MS = 20_000

const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-up-'))
const mountpoint = path.join(root, 'mnt')
const groupDir = path.join(root, 'group')
const started: Array<{ pid: number; group: boolean }> = []

afterAll(async () => {
  for (const { pid, group } of started) {
    try {
      process.kill(group ? -pid : pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  fusermountLazy(mountpoint)
  rmSync(root, { recursive: true, force: true })
})

interface MemberJson {
  id: number
  status?: { pid?: number; phase?: string }
}

function memberPids(): Map<number, number | undefined> {
  const status = JSON.parse(runCli(['status', '--mount', mountpoint, '--json']).stdout) as { members: MemberJson[] }
  return new Map(status.members.map((m) => [m.id, m.status?.pid]))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('fffs up', () => {
  it('starts, reports, survives a killed member, and stops cleanly on Ctrl-C', async () => {
    // Its own process group: the test's SIGINT to the group is a terminal's Ctrl-C.
    const up = spawn(process.execPath, [FFFS_BIN, 'up', mountpoint, '--group-dir', groupDir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    started.push({ pid: up.pid!, group: true })
    let out = ''
    up.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    up.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    await waitFor('the ready line', READY_TIMEOUT_MS, () => {
      if (up.exitCode !== null) throw new Error(`fffs up exited: ${out}`)
      return out.includes(READY_PREFIX) ? true : undefined
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${out}`)
    })
    const readyLine = out.split('\n').find((line) => line.startsWith(READY_PREFIX))!
    expect(readyLine).toMatch(/^fffs: ready at \.\/mnt: 3 members, 3 replicas, view \d+; Ctrl-C to stop$/)
    // Every line before it is a timestamped log line (progress while the group forms).
    const before = out.slice(0, out.indexOf(READY_PREFIX)).trim().split('\n')
    expect(before.length).toBeGreaterThan(0)
    for (const line of before) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z fffs: /)
    expect(out).toMatch(/fffs: member \d: running in view \d+/)

    // Each member's pid, from the status.
    const pids = memberPids()
    expect([...pids.keys()]).toEqual([0, 1, 2])
    for (const pid of pids.values()) expect(pid !== undefined && alive(pid)).toBe(true)
    expect(runCli(['status', '--mount', mountpoint]).stdout).toMatch(new RegExp(`^1\\s+${pids.get(1)}\\s+running\\s+in view`, 'm'))

    // A second start over the live mount: refused at once, naming the running one.
    const second = runCli(['up', mountpoint, '--group-dir', groupDir])
    expect(second.status).toBe(1)
    expect(second.stderr).toBe(`fffs: ${mountpoint} is mounted already by fffs (pid ${up.pid}): stop it with Ctrl-C where it runs, \`fffs unmount ${mountpoint}\` or \`kill ${up.pid}\`\n`)

    // The drill: member 1 dies (by its pid), writes go on, it is started again by hand and rejoins.
    process.kill(pids.get(1)!, 'SIGKILL')
    await waitFor('fffs up to notice', EXIT_TIMEOUT_MS, () => (/fffs: member 1 \(pid \d+\) exited \(SIGKILL\)/.test(out) ? true : undefined))
    await waitFor('a write with member 1 gone', READY_TIMEOUT_MS, async () => {
      const { writeFile } = await import('node:fs/promises')
      await writeFile(path.join(mountpoint, 'still.txt'), 'still\n')
      return true
    })
    const byHand: Proc = spawnFffs(['serve', '--config', path.join(groupDir, 'config.json'), '--id', '1'])
    started.push({ pid: byHand.child.pid!, group: false })
    await waitFor('member 1 back in the view', READY_TIMEOUT_MS, () => {
      const status = JSON.parse(runCli(['status', '--mount', mountpoint, '--json']).stdout) as { summary: { view: { members: number[] } | null }; members: MemberJson[] }
      return status.summary.view?.members.length === 3 && status.members.every((m) => m.status?.phase === 'running') ? true : undefined
    })
    expect(memberPids().get(1)).toBe(byHand.child.pid)

    // Ctrl-C: the mount goes first, then the members it started; the one started by hand is reported, not killed.
    const ctrlC = out.length
    process.kill(-up.pid!, 'SIGINT')
    const code = await new Promise<number | null>((resolve) => (up.exitCode !== null ? resolve(up.exitCode) : up.once('exit', (c) => resolve(c))))
    const stopping = out.slice(ctrlC)
    expect(code, stopping).toBe(0)
    expect(stopping).not.toMatch(/lost member|failing over|error|Error/)
    expect(stopping).toMatch(new RegExp(`fffs: member 1 \\(pid ${byHand.child.pid}\\) was not started by this fffs up and is still running: kill ${byHand.child.pid} stops it`))
    expect(stopping).toMatch(/fffs: stopped; unmounted \.\/mnt/)
    expect(fffsMounts()).not.toContain(mountpoint)
    for (const id of [0, 2]) expect(alive(pids.get(id)!)).toBe(false)
    expect(byHand.exited()).toBe(false) // SIGINT reached only the group of fffs up
    byHand.child.kill('SIGTERM')
    expect(await byHand.waitExit(EXIT_TIMEOUT_MS)).toBe(true)
  })
})
