// The history of a name: every version `dir/name@T` can return, over all T, as one numbered
// list. `fffs log P` prints it and `P@vN` is its row N. A name's history is its bindings in the
// directory (the store's directory history: created, replaced by a rename, removed, created
// again) and, within each binding, the versions of the node it named. So a save-by-rename
// (`printf new > .doc.tmp && mv .doc.tmp doc.txt`) is one row of doc.txt's history, the temp
// file's own earlier versions are not (doc.txt@T never returned them), and a deleted file keeps
// its history, ending in a row that says so.
//
// Each binding records the row it starts at and the node's version then (bindings written before
// that was kept are counted from the node's versions where the binding begins and ends), so the
// numbering stands when retention drops old bindings and versions: rows of dropped versions are
// simply not listed, and P@vN of one is ERANGE.
//
// Cost: one range of the directory history for the name, an attribute lookup for the current
// binding (two per binding for bindings without rows), and for a page of rows one ordered range
// of each listed node's versions, bounded by the page.

import { FffsError } from '../errors.js'
import type { Client } from '../client/client.js'
import { ROOT_INO, type Attr, type Ino, type NameBinding } from '../store/records.js'
import { HLC_MAX, type HlcStamp } from '../temporal/hlc.js'

export interface HistoryRow {
  readonly row: number // 1-based: P@v<row>
  readonly stamp: HlcStamp // from this stamp on (until the next row's), P@T returns this row
  readonly ino: Ino // the object this row is a version of; for a removal, the object removed
  readonly attr: Attr | null // what P@T returns; null: nothing (ENOENT), the name was removed
  /** create, version, setattr, ...; 'replaced by rename', 'renamed here', 'renamed away', 'removed' for changes of the binding. */
  readonly change: string
}

export interface HistoryQuery {
  readonly since?: HlcStamp // rows from this stamp on
  readonly until?: HlcStamp // rows up to this stamp
  readonly limit?: number
  readonly reverse?: boolean // newest first
}

/** One binding of the name: [start, end], naming `ino` (null: nothing), its rows numbered from `firstRow`. */
interface Segment {
  readonly start: HlcStamp
  readonly end: HlcStamp
  readonly ino: Ino | null
  readonly previous: Ino | null // the node the name named before this binding, if any
  readonly firstVersion: number // the node's version where the binding begins (0 for a removal)
  first: Attr | null | undefined // that version's attributes; undefined: not read yet; null: none (a removal, or dropped)
  readonly firstRow: number
  readonly rows: number
}

export class NameHistory {
  private readonly client: Client
  private readonly segments: readonly Segment[]

  private constructor(client: Client, segments: readonly Segment[]) {
    this.client = client
    this.segments = segments
  }

  /** The history of `name` in directory `dir`; `dir` null: the mount root, whose history is its own versions. */
  static async of(client: Client, dir: Ino | null, name: string): Promise<NameHistory> {
    const bindings: NameBinding[] = dir === null ? [{ stamp: 0n, ino: ROOT_INO, firstRow: 1, version: 1 }] : await client.nameHistory(dir, name)
    if (bindings.every((b) => b.firstRow !== undefined && (b.ino === null || b.version !== undefined))) return NameHistory.numbered(client, bindings)
    const segments: Segment[] = []
    let nextRow = 1
    for (let i = 0; i < bindings.length; i++) {
      const { stamp: start, ino } = bindings[i]!
      const end = i + 1 < bindings.length ? bindings[i + 1]!.stamp - 1n : HLC_MAX
      const previous = i > 0 ? bindings[i - 1]!.ino : null
      if (ino === null) {
        // A removal is a row when it ends a binding (a name never bound before has nothing to remove).
        const rows = previous !== null ? 1 : 0
        segments.push({ start, end, ino, previous, firstVersion: 0, first: null, firstRow: nextRow, rows })
        nextRow += rows
        continue
      }
      const [first, last] = await Promise.all([client.attr(ino, start), client.attr(ino, end)])
      const rows = first === null || last === null ? 0 : last.version - first.version + 1
      segments.push({ start, end, ino, previous, firstVersion: first?.version ?? 0, first, firstRow: nextRow, rows })
      nextRow += rows
    }
    return new NameHistory(client, segments)
  }

  /** The history of bindings that carry their rows: no version is read but the current binding's node's newest. */
  private static async numbered(client: Client, bindings: readonly NameBinding[]): Promise<NameHistory> {
    const segments: Segment[] = []
    for (let i = 0; i < bindings.length; i++) {
      const { stamp: start, ino, firstRow, version } = bindings[i]!
      const next = bindings[i + 1]
      const end = next !== undefined ? next.stamp - 1n : HLC_MAX
      const previous = i > 0 ? bindings[i - 1]!.ino : null
      let rows: number
      if (ino === null) rows = 1
      else if (next !== undefined) rows = next.firstRow! - firstRow!
      else rows = ((await client.attr(ino, HLC_MAX))?.version ?? version!) - version! + 1
      segments.push({ start, end, ino, previous, firstVersion: ino === null ? 0 : version!, first: ino === null ? null : undefined, firstRow: firstRow!, rows })
    }
    return new NameHistory(client, segments)
  }

  /** How many rows the history has. */
  get total(): number {
    const last = this.segments[this.segments.length - 1]
    return last === undefined ? 0 : last.firstRow + last.rows - 1
  }

  /** Row `n` (1-based), or null when there is none. */
  async row(n: number): Promise<HistoryRow | null> {
    const segment = this.segments.find((s) => s.rows > 0 && n >= s.firstRow && n < s.firstRow + s.rows)
    if (segment === undefined) return null
    if (segment.ino === null) return this.removal(segment)
    const version = segment.firstVersion + (n - segment.firstRow)
    if (version === segment.firstVersion) {
      const head = await this.head(segment)
      if (head !== null) return head
    }
    // A dropped version (retention): the client says so (ERANGE) when its stamp is asked for or read.
    const stamp = await this.client.stampOfVersion(segment.ino, version)
    const attr = stamp === null ? null : await this.client.attr(segment.ino, stamp)
    if (stamp === null || attr === null) throw new Error(`history: inode ${segment.ino} has no version ${version} though its binding spans it`)
    return { row: n, stamp, ino: segment.ino, attr, change: attr.change }
  }

  /** The rows a query selects, in its order. */
  async rows(query: HistoryQuery = {}): Promise<HistoryRow[]> {
    const since = query.since ?? 0n
    const until = query.until ?? HLC_MAX
    const limit = query.limit ?? Number.MAX_SAFE_INTEGER
    const reverse = query.reverse === true
    const out: HistoryRow[] = []
    for (const segment of reverse ? [...this.segments].reverse() : this.segments) {
      if (out.length >= limit) break
      if (segment.rows === 0 || segment.end < since || segment.start > until) continue
      const headIn = segment.start >= since && segment.start <= until
      if (segment.ino === null) {
        if (headIn) out.push(await this.removal(segment))
        continue
      }
      // Newest first, the binding's first row comes after its later versions, only if the page has room.
      const head = headIn ? await this.head(segment) : null // null: dropped by retention, not listed
      if (head !== null && !reverse) out.push(head)
      out.push(...(await this.tail(segment, since, until, limit - out.length, reverse)))
      if (head !== null && reverse && out.length < limit) out.push(head)
    }
    return out.slice(0, limit)
  }

  /** The versions of the segment's node after its binding began, within [since, until]. */
  private async tail(segment: Segment, since: HlcStamp, until: HlcStamp, limit: number, reverse: boolean): Promise<HistoryRow[]> {
    if (limit <= 0 || segment.rows <= 1) return []
    const after = since > segment.start ? since - 1n : segment.start
    const upto = until < segment.end ? until : segment.end
    if (upto <= after) return []
    const versions = await this.client.versions(segment.ino!, { after, upto, limit, reverse })
    return versions.map((attr) => ({ row: segment.firstRow + (attr.version - segment.firstVersion), stamp: BigInt(attr.stamp), ino: attr.ino, attr, change: attr.change }))
  }

  /** The first row of a binding: the node as the name found it; null when retention dropped that version. */
  private async head(segment: Segment): Promise<HistoryRow | null> {
    if (segment.first === undefined) segment.first = await this.versionAttr(segment.ino!, segment.firstVersion)
    const first = segment.first
    if (first === null) return null
    let change: string = first.change
    if (BigInt(first.stamp) !== segment.start) change = 'bound' // the binding made no version of the node
    else if (first.change === 'rename') change = segment.previous !== null ? 'replaced by rename' : 'renamed here'
    return { row: segment.firstRow, stamp: segment.start, ino: segment.ino!, attr: first, change }
  }

  /** A node's version by number: null when retention dropped it. */
  private async versionAttr(ino: Ino, version: number): Promise<Attr | null> {
    const stamp = await this.client.stampOfVersion(ino, version).catch((err: unknown) => {
      if (err instanceof FffsError && err.code === 'ERANGE') return null
      throw err
    })
    if (stamp === null) return null
    const [attr] = await this.client.versions(ino, { ...(stamp > 0n ? { after: stamp - 1n } : {}), upto: stamp, limit: 1 })
    return attr !== undefined && attr.version === version ? attr : null
  }

  /** The row of a removal: the node was unlinked, or renamed to another name. */
  private async removal(segment: Segment): Promise<HistoryRow> {
    const removed = segment.previous!
    const after = await this.client.attr(removed, segment.start)
    const renamed = after !== null && BigInt(after.stamp) === segment.start && after.change === 'rename'
    return { row: segment.firstRow, stamp: segment.start, ino: removed, attr: null, change: renamed ? 'renamed away' : 'removed' }
  }
}
