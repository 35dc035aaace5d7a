// Mount processes for the bench: fffs (`bin/fffs mount`) and the null FS, each in its own
// process, with bounded waits. Every mount is recorded so cleanup can unmount it (`-uz`) and
// kill its process on success, on failure and on a timed-out workload.

import { Worker } from 'node:worker_threads'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { READY_PREFIX } from '../../src/cli/output.js'
import { unmountLazy } from '../../src/fs/mountTable.js'

const run = promisify(execFile)

export interface Mount {
  readonly name: string
  readonly mountpoint: string
  readonly child: ChildProcess
  readonly log: string[]
  stop(): Promise<void>
}

const live = new Set<Mount>()

function isMounted(mountpoint: string): boolean {
  try {
    return fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === mountpoint)
  } catch {
    return false
  }
}

async function lazyUnmount(mountpoint: string): Promise<void> {
  if (isMounted(mountpoint)) await unmountLazy(mountpoint)
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/** Starts a mount process and waits (bounded) for its ready line. */
export async function startMount(name: string, command: string[], mountpoint: string, readyText: string, readyMs = 30_000): Promise<Mount> {
  const child = spawn(process.execPath, command, { stdio: ['ignore', 'pipe', 'pipe'] })
  const log: string[] = []
  let stopping: Promise<void> | null = null
  const mount: Mount = {
    name,
    mountpoint,
    child,
    log,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM') // the mount commits open files and unmounts
          if (!(await exited(child, 60_000))) {
            child.kill('SIGKILL')
            await exited(child, 5_000)
          }
        }
        await lazyUnmount(mountpoint)
        live.delete(mount)
      })()),
  }
  live.add(mount)
  const keep = (chunk: Buffer) => {
    log.push(chunk.toString())
    if (log.length > 200) log.splice(0, log.length - 200)
  }
  child.stderr!.on('data', keep)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not mounted after ${readyMs} ms: ${log.join('')}`)), readyMs)
    let seen = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      keep(chunk)
      if (seen.includes(readyText)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name}: exited (${code ?? signal}) before mounting: ${log.join('')}`))
    })
  }).catch(async (err: unknown) => {
    await mount.stop()
    throw err
  })
  return mount
}

export function startFffs(repoRoot: string, mountpoint: string, dataDir: string): Promise<Mount> {
  return startMount('fffs', [path.join(repoRoot, 'bin', 'fffs'), 'mount', mountpoint, '--data-dir', dataDir], mountpoint, READY_PREFIX)
}

export function startNullFs(repoRoot: string, mountpoint: string): Promise<Mount> {
  return startMount('nullfs', [path.join(repoRoot, 'dist', 'bench', 'fs', 'nullfs.js'), mountpoint], mountpoint, 'nullfs: mounted')
}

/** Hard stop after a hung workload: SIGKILL makes pending FUSE requests fail (ENOTCONN). */
export async function killAll(): Promise<void> {
  for (const m of live) m.child.kill('SIGKILL')
  await Promise.all([...live].map((m) => lazyUnmount(m.mountpoint)))
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((m) => m.stop()))
}

/** Drops a file's pages from the page cache: fsync (DONTNEED skips dirty pages), then posix_fadvise DONTNEED through dd. */
export async function dropFileCache(file: string): Promise<boolean> {
  try {
    await run('sync', [file], { timeout: 120_000 })
    await run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { timeout: 30_000 })
    return true
  } catch {
    return false
  }
}

/** Runs one task in a worker thread (`workerFile`); past the deadline every mount is killed so the worker unblocks. */
export async function inWorker<T>(workerFile: string, task: { readonly kind: string }, deadlineMs: number): Promise<T> {
  const worker = new Worker(workerFile, { workerData: task })
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<T>((resolve, reject) => {
      worker.once('message', (msg: { ok: boolean; value?: unknown; error?: string }) => (msg.ok ? resolve(msg.value as T) : reject(new Error(`${task.kind}: ${msg.error}`))))
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`${task.kind}: worker exited (${code})`)))
      timer = setTimeout(() => {
        process.stderr.write(`bench: ${task.kind} still running after ${deadlineMs} ms: killing the mounts\n`)
        void killAll().then(() => setTimeout(() => void worker.terminate(), 15_000).unref())
        reject(new Error(`${task.kind}: timed out after ${deadlineMs} ms`))
      }, deadlineMs)
    })
  } finally {
    clearTimeout(timer)
    void worker.terminate()
  }
}
