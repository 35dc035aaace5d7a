// The processes behind requests, as /proc shows them. The kernel names only the calling thread
// in a FUSE request (its id in the mount's pid namespace; 0 for a thread outside it), while a
// commit point is a matter of processes (commitPoints.ts): which process wrote, which one
// closes, and whether the closer still holds the file through another descriptor. Nothing
// read here calls back into the mount: /proc/PID/fd links and fdinfo come from the kernel's
// own tables.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** The process (thread group id) of thread `tid`; null when it cannot be told (0, or gone). */
export type ProcessOf = (tid: number) => number | null

export const processOfThread: ProcessOf = (tid) => {
  if (!Number.isInteger(tid) || tid <= 0) return null
  try {
    const match = /\nTgid:\s*(\d+)/.exec(readFileSync(`/proc/${tid}/status`, 'latin1'))
    return match === null ? null : Number(match[1])
  } catch {
    return null // the thread is gone
  }
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
