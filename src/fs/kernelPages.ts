// What the kernel may hold of each node's pages, and of which version. A live file's pages are
// shared by every open of it on the mount; an open for reading lets the kernel keep them
// (FOPEN_KEEP_CACHE) only when every page it may hold is of the version that open reads, so a
// file read again, unchanged, costs no read request. The bytes of versions this mount just
// committed (small files written whole: openFiles.ts, CommittedVersion) are kept a while, and
// handed to the kernel as the file's pages at its next open for reading, so the first read of a
// file after it was written costs none either (one that overtakes them is answered from them).
// They are handed over at the open, not at the commit: the kernel drops a file's pages when it
// learns a new mtime (auto_inval_data), which it learns after the commit; by the open it has.

import type { Ino } from '../store/records.js'

/** Bytes of recently committed versions kept for the kernel, at most (the oldest go first). */
const RECENT_BYTES_MAX = 32 * 1024 * 1024

/** The live version the kernel's pages of a node hold (its stamp), or null when not known. */
interface HeldPages {
  readonly stamp: string | null
}

interface RecentVersion {
  readonly stamp: string
  readonly bytes: Buffer
}

export class KernelPages {
  /** Nodes the kernel may hold pages of: a read was answered, a write went through their cache, or pages were stored, since they were last dropped. */
  private readonly held = new Map<number, HeldPages>()
  private readonly recent = new Map<number, RecentVersion>() // in the order kept: the first is evicted first
  private recentBytes = 0

  /** The kernel may hold pages of `nodeId` from the live version `stamp`, or from what is not known (null). */
  mayHold(nodeId: number, stamp: string | null): void {
    const held = this.held.get(nodeId)
    if (held === undefined) this.held.set(nodeId, { stamp })
    else if (held.stamp !== stamp) this.held.set(nodeId, { stamp: null })
  }

  /** The kernel is about to drop the node's pages (or has let go of the node); whether it may have held any. */
  dropped(nodeId: number): boolean {
    return this.held.delete(nodeId)
  }

  /** A new version of the node's contents (`bytes`: all of them, when known): bytes kept of an older one go. */
  changed(ino: Ino, version?: { readonly stamp: string; readonly bytes: Buffer }): void {
    const old = this.recent.get(ino)
    if (old !== undefined) {
      this.recentBytes -= old.bytes.length
      this.recent.delete(ino)
    }
    if (version === undefined || version.bytes.length > RECENT_BYTES_MAX) return
    this.recent.set(ino, version)
    this.recentBytes += version.bytes.length
    for (const [oldest, kept] of this.recent) {
      if (this.recentBytes <= RECENT_BYTES_MAX) break
      this.recent.delete(oldest)
      this.recentBytes -= kept.bytes.length
    }
  }

  /**
   * An open for reading of live node `nodeId` at the version `stamp`: whether the kernel may
   * keep the pages it holds. When it holds none and the bytes of that version are kept, they
   * are stored (`store`: on the session's notifier, after any drop queued before it, and behind
   * the open's reply), so the reads that follow find them; a read that overtakes the store is
   * answered from the same bytes (`bytesOf`).
   */
  opening(nodeId: number, stamp: string, store: (bytes: Buffer) => Promise<void>): boolean {
    const recent = this.recent.get(nodeId)
    if (!this.held.has(nodeId) && recent?.stamp === stamp) {
      this.held.set(nodeId, { stamp }) // a read meanwhile through another handle records its version: unless the same, nothing is kept
      void store(recent.bytes).catch(() => undefined) // unmounted meanwhile: nothing to hold
    }
    return this.held.get(nodeId)?.stamp === stamp
  }

  /** All the bytes of live version `stamp` of node `nodeId`, when they are kept (a read of that version needs nothing else). */
  bytesOf(nodeId: number, stamp: string | null): Buffer | undefined {
    const recent = this.recent.get(nodeId)
    return stamp !== null && recent?.stamp === stamp ? recent.bytes : undefined
  }
}
