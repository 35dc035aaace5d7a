// Test helper: a local replication group of real `fffs serve` processes and real cluster
// mounts, in a temp dir, always cleaned up (children killed, mounts cleared).

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { writeLocalGroup } from '../../src/replication/config.js'
import { FFFS_BIN, fusermountLazy } from './mount.js'

const READY_TIMEOUT_MS = 30_000
const EXIT_TIMEOUT_MS = 10_000

export interface TestGroup {
  readonly root: string
  readonly configPath: string
  readonly mountpoint: string
  /** Everything member `id` printed (across restarts). */
  output(id: number): string
  /** Starts member `id` (again); resolves once it runs in a view (bounded). */
  start(id: number): Promise<void>
  /** Waits (bounded) until member `id` has printed `text` at least `count` times. */
  waitFor(id: number, text: string, count?: number): Promise<void>
  kill9(id: number): Promise<void>
  stop(id: number): Promise<void>
  /** Mounts the group (fffs mount --cluster) at `mountpoint`. */
  mount(): Promise<void>
  unmount(): Promise<void>
  cleanup(): Promise<void>
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve()
    }, timeoutMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

function occurrences(text: string, needle: string): number {
  let count = 0
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) count++
  return count
}

export async function startGroup(replicas: number): Promise<TestGroup> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-group-'))
  const basePort = 20_000 + Math.floor(Math.random() * 20_000)
  const configPath = await writeLocalGroup(path.join(root, 'group'), { replicas, shards: 1, basePort })
  const mountpoint = path.join(root, 'mnt')
  const members = new Map<number, ChildProcess>()
  const logs = new Map<number, string>()
  let mountProcess: ChildProcess | null = null
  let mountLog = ''

  const waitFor = async (id: number, text: string, count = 1): Promise<void> => {
    const deadlineMs = Date.now() + READY_TIMEOUT_MS
    while (occurrences(logs.get(id) ?? '', text) < count) {
      if (Date.now() > deadlineMs) throw new Error(`member ${id} did not print '${text}' ×${count} in ${READY_TIMEOUT_MS} ms:\n${logs.get(id) ?? ''}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  const group: TestGroup = {
    root,
    configPath,
    mountpoint,
    output: (id) => logs.get(id) ?? '',
    async start(id) {
      const before = occurrences(logs.get(id) ?? '', 'running in view')
      const child = spawn(process.execPath, [FFFS_BIN, 'serve', '--config', configPath, '--id', String(id)], { stdio: ['ignore', 'pipe', 'pipe'] })
      members.set(id, child)
      const append = (chunk: Buffer): void => void logs.set(id, (logs.get(id) ?? '') + chunk.toString())
      child.stdout!.on('data', append)
      child.stderr!.on('data', append)
      await waitFor(id, 'running in view', before + 1)
    },
    waitFor,
    async kill9(id) {
      const child = members.get(id)
      child?.kill('SIGKILL')
      if (child) await waitExit(child, EXIT_TIMEOUT_MS)
    },
    async stop(id) {
      const child = members.get(id)
      child?.kill('SIGTERM')
      if (child) await waitExit(child, EXIT_TIMEOUT_MS)
    },
    async mount() {
      const proc = spawn(process.execPath, [FFFS_BIN, 'mount', mountpoint, '--cluster', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
      mountProcess = proc
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`cluster mount not ready in ${READY_TIMEOUT_MS} ms:\n${mountLog}`)), READY_TIMEOUT_MS)
        proc.stdout!.on('data', (chunk: Buffer) => {
          mountLog += chunk.toString()
          if (mountLog.includes('fffs: mounted')) {
            clearTimeout(timer)
            resolve()
          }
        })
        proc.stderr!.on('data', (chunk: Buffer) => (mountLog += chunk.toString()))
        proc.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`cluster mount exited with ${code}:\n${mountLog}`))
        })
      })
    },
    async unmount() {
      const proc = mountProcess
      mountProcess = null
      if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        await waitExit(proc, EXIT_TIMEOUT_MS)
      }
      fusermountLazy(mountpoint)
    },
    async cleanup() {
      await group.unmount()
      await Promise.all([...members.values()].map((child) => {
        child.kill('SIGKILL')
        return waitExit(child, EXIT_TIMEOUT_MS)
      }))
      rmSync(root, { recursive: true, force: true })
    },
  }
  return group
}
