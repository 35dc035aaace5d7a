// Test helper: runs a real `fffs mount` process on a temp dir and always cleans it up.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { READY_PREFIX } from '../../src/cli/output.js'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const FFFS_BIN = path.join(REPO, 'bin', 'fffs')
const MOUNT_TIMEOUT_MS = 20_000
const EXIT_TIMEOUT_MS = 10_000

export interface TestMount {
  readonly root: string // temp dir holding both
  readonly mountpoint: string
  readonly dataDir: string
  readonly output: () => string
  /**
   * The output once it matches (polled, bounded): a line the mount logs before it answers a
   * request can still be in the pipe when the request's result reaches the test.
   */
  outputMatching(pattern: string | RegExp, timeoutMs?: number): Promise<string>
  /** Path inside the mount. */
  p(...parts: string[]): string
  /** CPU time the mount process has used so far (user + system, from /proc), in ms. */
  cpuMs(): number
  /** SIGKILL the mount process (a crash), clearing the dead mount. */
  kill9(): Promise<void>
  /** Start a fresh mount process on the same data dir. */
  restart(): Promise<void>
  /** Unmount (SIGTERM), remove temp files. Safe to call twice. */
  cleanup(): Promise<void>
}

/** Lazily unmounts a FUSE mount (quiet when nothing is mounted): libfuse 3's helper, or libfuse 2's where only that one is installed. */
export function fusermountLazy(mountpoint: string): void {
  for (const helper of ['fusermount3', 'fusermount']) {
    try {
      execFileSync(helper, ['-uz', mountpoint], { stdio: 'ignore' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return // not mounted
    }
  }
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

/** `env`: added to the mount process's environment (an LD_PRELOAD shim). */
export async function startMount(extraArgs: string[] = [], options: { readonly env?: NodeJS.ProcessEnv } = {}): Promise<TestMount> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-test-'))
  const mountpoint = path.join(root, 'mnt')
  const dataDir = path.join(root, 'data')
  let child: ChildProcess | null = null
  let log = ''

  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, [FFFS_BIN, 'mount', mountpoint, '--data-dir', dataDir, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env !== undefined ? { env: { ...process.env, ...options.env } } : {}) })
    child = proc
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mount not ready in ${MOUNT_TIMEOUT_MS} ms:\n${log}`)), MOUNT_TIMEOUT_MS)
      const onData = (chunk: Buffer): void => {
        log += chunk.toString()
        if (log.includes(READY_PREFIX)) {
          clearTimeout(timer)
          resolve()
        }
      }
      proc.stdout!.on('data', onData)
      proc.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`mount exited with ${code}:\n${log}`))
      })
    })
  }

  await launch()
  let cleaned = false
  return {
    root,
    mountpoint,
    dataDir,
    output: () => log,
    outputMatching: async (pattern, timeoutMs = 5000) => {
      const matches = (): boolean => (typeof pattern === 'string' ? log.includes(pattern) : pattern.test(log))
      for (const deadline = Date.now() + timeoutMs; !matches() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10))
      return log
    },
    p: (...parts) => path.join(mountpoint, ...parts),
    cpuMs: () => {
      const pid = (child as ChildProcess | null)?.pid
      if (pid === undefined) throw new Error('the mount process is not running')
      // Fields 14 and 15 of /proc/PID/stat (utime, stime) are in clock ticks: 100 per second on Linux.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
    },
    async kill9() {
      child?.kill('SIGKILL')
      if (child) await waitExit(child, EXIT_TIMEOUT_MS)
      fusermountLazy(mountpoint)
    },
    async restart() {
      await launch()
    },
    async cleanup() {
      if (cleaned) return
      cleaned = true
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await waitExit(child, EXIT_TIMEOUT_MS)
      }
      fusermountLazy(mountpoint)
      rmSync(root, { recursive: true, force: true })
    },
  }
}

/** An ISO-8601 instant (µs) between two moments, after making sure the clock moved on. */
export async function instantNow(): Promise<string> {
  await new Promise((r) => setTimeout(r, 5))
  const iso = new Date().toISOString()
  await new Promise((r) => setTimeout(r, 5))
  return iso
}

/** Runs a Python script with arguments (bounded); its stdout. */
export function python(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8', timeout: 30_000 })
}

/** Runs the CLI; never throws: returns status and output (stderr too when it succeeds: relative specs are reported there). */
export function runCli(args: string[], cwd = REPO): { status: number; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [FFFS_BIN, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  return { status: run.status ?? 1, stdout: run.stdout ?? '', stderr: run.stderr ?? '' }
}

/** The errno code a file system call failed with ('no error' if it did not). */
export async function errCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'no code'
  }
  return 'no error'
}
