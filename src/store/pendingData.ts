// Data appended to the log and not yet named by a version: an open file's chunks (the embedded
// mount appends them as they fill and names them at the commit point), a member's delivered
// blobs, a transfer's data ahead of its record. Nothing in the index points at such bytes, yet
// someone holds their position, so segment GC leaves every segment holding one alone.
//
// Only this process's appends are tracked: after a restart nobody holds a position from before.
// An entry never named (a handle dropped without a commit, a blob whose mount went away) holds
// its segment until the process ends.

import type { LogPosition } from './segmentLog.js'

export class PendingData {
  /** Per segment, the pending entries' payload starts and ends (sorted by start: appends come in order). */
  private readonly bySegment = new Map<number, Array<{ readonly start: number; readonly end: number; failed: boolean }>>()

  add(position: LogPosition, sizeBytes: number): void {
    let list = this.bySegment.get(position.segment)
    if (list === undefined) this.bySegment.set(position.segment, (list = []))
    list.push({ start: position.offset, end: position.offset + sizeBytes, failed: false })
  }

  /** A version names bytes at `position`: the entry holding them is no longer pending. */
  named(position: LogPosition): void {
    const list = this.bySegment.get(position.segment)
    const i = this.indexOf(position)
    if (list === undefined || i === null) return
    list.splice(i, 1)
    if (list.length === 0) this.bySegment.delete(position.segment)
  }

  /** The entry holding `position` could not be written (a full disk): no version may name it. */
  failed(position: LogPosition): void {
    const i = this.indexOf(position)
    if (i !== null) this.bySegment.get(position.segment)![i]!.failed = true
  }

  hasFailed(position: LogPosition): boolean {
    const i = this.indexOf(position)
    return i !== null && this.bySegment.get(position.segment)![i]!.failed
  }

  /** The pending entry holding `position`, or null. */
  private indexOf(position: LogPosition): number | null {
    const list = this.bySegment.get(position.segment)
    if (list === undefined) return null
    let lo = 0
    let hi = list.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (list[mid]!.start <= position.offset) lo = mid
      else hi = mid - 1
    }
    const entry = list[lo]
    return entry === undefined || position.offset < entry.start || position.offset >= entry.end ? null : lo
  }

  /** Segments holding a pending entry (one that could not be written pins nothing: nobody can name it). */
  segments(): ReadonlySet<number> {
    return new Set([...this.bySegment].filter(([, list]) => list.some((e) => !e.failed)).map(([segment]) => segment))
  }

  clear(): void {
    this.bySegment.clear()
  }
}
