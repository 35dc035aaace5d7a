// Open directories: the listing taken at opendir (and again at a rewind), served in pieces by
// readdir and readdirplus. Entry i (`.` and `..` first) sits at offset i + 1, where the next
// readdir after it starts. Readdirplus also hands the kernel each entry's node and attributes,
// read for a window of entries at a time (one round trip per window in a group), so `ls -l`
// costs no lookup per entry.

import { errors } from '../errors.js'
import type { Found } from './operations.js'
import type { DirEntry } from './resolve.js'

/** How many entries' attributes one read fetches ahead for readdirplus: a 4 KiB reply holds ~25. */
const WINDOW_ENTRIES = 512

const DOTS: readonly DirEntry[] = [
  { name: '.', ino: 0 },
  { name: '..', ino: 0 },
]

interface OpenDir {
  readonly nodeId: number
  entries: readonly DirEntry[]
  names: readonly string[] // the entries' names, for readdir
  served: boolean
  /** Entries [from, from + found.length) with what the kernel keeps of each (null: a name only). */
  window: { from: number; found: ReadonlyArray<Found | null> } | null
}

export class OpenDirs {
  private readonly dirs = new Map<number, OpenDir>()
  private nextHandle = 1

  /** A handle for a directory node's listing (without `.` and `..`). */
  open(nodeId: number, entries: readonly DirEntry[]): number {
    const handle = this.nextHandle++
    const all = [...DOTS, ...entries]
    this.dirs.set(handle, { nodeId, entries: all, names: all.map((e) => e.name), served: false, window: null })
    return handle
  }

  close(handle: number): void {
    this.dirs.delete(handle)
  }

  /** The names of the listing (a readdir serves them from `offset`). */
  async read(handle: number, offset: number, relist: (nodeId: number) => Promise<readonly DirEntry[]>): Promise<readonly string[]> {
    return (await this.current(handle, offset, relist)).names
  }

  /** The open directory; a read from offset 0 after the first (a rewind) lists the directory again (`relist`). */
  private async current(handle: number, offset: number, relist: (nodeId: number) => Promise<readonly DirEntry[]>): Promise<OpenDir> {
    const dir = this.dirs.get(handle)
    if (dir === undefined) throw errors.badHandle(handle)
    if (offset === 0 && dir.served) {
      dir.entries = [...DOTS, ...(await relist(dir.nodeId))]
      dir.names = dir.entries.map((e) => e.name)
      dir.window = null
    }
    dir.served = true
    return dir
  }

  /**
   * Entries from `offset` on with what the kernel keeps of each, up to the end of the current
   * window (fetched with `find` when `offset` is outside it). `.` and `..` carry no node.
   */
  async readPlus(
    handle: number,
    offset: number,
    relist: (nodeId: number) => Promise<readonly DirEntry[]>,
    find: (nodeId: number, entries: readonly DirEntry[]) => Promise<ReadonlyArray<Found | null>>,
  ): Promise<{ nodeId: number; entries: ReadonlyArray<{ entry: DirEntry; offset: number; found: Found | null }> }> {
    const dir = await this.current(handle, offset, relist)
    const nodeId = dir.nodeId
    const from = Math.max(offset, DOTS.length) // the first entry with a node
    if (dir.window === null || from < dir.window.from || from >= dir.window.from + dir.window.found.length) {
      const entries = dir.entries.slice(from, from + WINDOW_ENTRIES)
      dir.window = { from, found: entries.length === 0 ? [] : await find(nodeId, entries) }
    }
    const window = dir.window
    const out: Array<{ entry: DirEntry; offset: number; found: Found | null }> = []
    for (let i = offset; i < DOTS.length; i++) out.push({ entry: dir.entries[i]!, offset: i + 1, found: null })
    for (let i = from; i < window.from + window.found.length; i++) out.push({ entry: dir.entries[i]!, offset: i + 1, found: window.found[i - window.from]! })
    return { nodeId, entries: out }
  }
}
