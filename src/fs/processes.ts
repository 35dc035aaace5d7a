// The processes behind requests, as /proc shows them. The kernel names only the calling thread
// in a FUSE request (its id in the mount's pid namespace; 0 for a thread outside it), while a
// commit point is a matter of processes (commitPoints.ts): which process wrote, which one
// closes, and whether the closer still holds the file through another descriptor. Nothing
// read here calls back into the mount: /proc/PID/fd links and fdinfo come from the kernel's
// own tables.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** The process (thread group id) of thread `tid`; null when it cannot be told (0, or gone). */
export type ProcessOf = (tid: number) => number | null

/**
 * How long a thread's process is remembered. Linux hands out pids cyclically (a freed one comes
 * back only once the counter wrapped around pid_max, ≥ 32768), so within this long a thread id
 * names the same thread: wrapping in 100 ms would take over 300k new tasks a second. A writer
 * creating files then asks /proc once per 100 ms, not once per file.
 */
const PROCESS_OF_TTL_MS = 100
const CACHED_THREADS_MAX = 4096
const knownThreads = new Map<number, { readonly pid: number; readonly atMs: number }>()

export const processOfThread: ProcessOf = (tid) => {
  if (!Number.isInteger(tid) || tid <= 0) return null
  const nowMs = performance.now()
  const known = knownThreads.get(tid)
  if (known !== undefined && nowMs - known.atMs < PROCESS_OF_TTL_MS) return known.pid
  let pid: number | null
  try {
    const match = /\nTgid:\s*(\d+)/.exec(readFileSync(`/proc/${tid}/status`, 'latin1'))
    pid = match === null ? null : Number(match[1])
  } catch {
    pid = null // the thread is gone
  }
  if (pid === null) return null
  if (knownThreads.size >= CACHED_THREADS_MAX) knownThreads.clear()
  knownThreads.set(tid, { pid, atMs: nowMs })
  return pid
}

/**
 * Whether the process of thread `tid` holds a descriptor of node `nodeId` of the mount at
 * `mountpoint` (its real path, taken before mounting: a lookup of it afterwards would be a
 * request to this very mount). At a close the descriptor being closed is already out of the
 * table, so whatever is found is another one; an exiting process shows none (the kernel
 * detaches its table before closing what was in it).
 */
export function holdsNode(tid: number, mountpoint: string, nodeId: number): boolean {
  if (!Number.isInteger(tid) || tid <= 0) return false
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${tid}/fd`)
  } catch {
    return false
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${tid}/fd/${fd}`)
      if (target !== mountpoint && !target.startsWith(mountpoint + '/')) continue
      const ino = /(?:^|\n)ino:\s*(\d+)/.exec(readFileSync(`/proc/${tid}/fdinfo/${fd}`, 'latin1'))
      if (ino !== null && Number(ino[1]) === nodeId) return true
    } catch {
      // closed meanwhile
    }
  }
  return false
}
