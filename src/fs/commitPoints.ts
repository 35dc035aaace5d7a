// Which close of an open file is a commit point. The kernel sends a flush at every close(2) of
// a descriptor of an open file description (dup'd and inherited copies included: a child's
// exit closes its copies) and a release, asynchronously, when the last reference goes. A
// version is what one open file description wrote between its own commit points: fsync, a
// close by a process that wrote through it, and its last close. So `{ a; sleep 1; b; } > f`
// is one version (sleep's exit closes a copy it wrote nothing through), while a writer's close
// still returns only once what it wrote is durable.
//
// The truncation an O_TRUNC open asks for belongs to the version that open writes: the shell's
// `echo bb > f` opens, dup2s the descriptor onto stdout and closes the original (a flush)
// before echo writes, and that close must not commit an empty version. It commits alone only
// at the opener's last close of the file (`: > f`, Python's `open(f, 'w').close()`), so an
// acknowledged close still leaves the file durably empty.

import type { ProcessOf } from './processes.js'

/** The processes that changed one open file description since its last commit point. */
export class Writers {
  private readonly processOfThread: ProcessOf
  private readonly pidOfThread = new Map<number, number | null>() // each thread's process is asked once
  private readonly writerPids = new Set<number>()
  /** A change from a sender that cannot be placed (outside the mount's pid namespace, or gone): every close commits, so none is acknowledged with its writes not durable. */
  private unplaced = false
  /** The process whose O_TRUNC open's truncation is pending alone, nothing written yet. */
  private truncatingOpenerPid: number | null = null

  constructor(processOfThread: ProcessOf) {
    this.processOfThread = processOfThread
  }

  /** Thread `tid` wrote or truncated through the handle. */
  changed(tid: number): void {
    const pid = this.pidOf(tid)
    if (pid === null) this.unplaced = true
    else this.writerPids.add(pid)
    this.truncatingOpenerPid = null
  }

  /** Thread `tid` opened the handle with O_TRUNC: the truncation is pending, nothing written yet. */
  openedTruncating(tid: number): void {
    const pid = this.pidOf(tid)
    if (pid === null) this.unplaced = true
    this.truncatingOpenerPid = pid
  }

  /** A commit took every pending change. */
  committed(): void {
    this.writerPids.clear()
    this.unplaced = false
    this.truncatingOpenerPid = null
  }

  /**
   * Whether the close of a descriptor by thread `tid` is a commit point for the pending
   * changes. `holdsAnother`: the closing process still holds the file through another
   * descriptor (asked only when that decides).
   */
  isCommitPoint(tid: number, holdsAnother: () => boolean): boolean {
    if (this.unplaced) return true
    const closerPid = this.pidOf(tid)
    if (closerPid === null) return true // cannot tell: commit, never leave a close acknowledged but not durable
    if (this.writerPids.has(closerPid)) return true
    return this.truncatingOpenerPid === closerPid && !holdsAnother()
  }

  private pidOf(tid: number): number | null {
    let pid = this.pidOfThread.get(tid)
    if (pid === undefined) {
      pid = this.processOfThread(tid)
      this.pidOfThread.set(tid, pid)
    }
    return pid
  }
}
