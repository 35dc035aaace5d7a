// What this mount last learned of live nodes (their attributes, and directories' listings), kept
// as long as nothing could have changed it unseen: the mount's counterpart of the kernel's
// caches, under the same rule (kernel.ts, liveTimeoutS). A change this mount makes forgets the
// attributes of the nodes its record may change (everything, when it may change a node it does
// not name: client/changes.ts), keeps what its reply says of the node it made or changed, and
// adds a name it made to its directory's listing; any change another client tells of, and any
// gap in the telling, forget everything; a fetch of a node that a change overtook is not kept.
// An open for reading takes the version it reads from here, a getattr its answer, readdirplus
// its entries' attributes, opendir its listing and a lookup its node (or that there is none), so
// none of them costs a round trip to the store or the group when the mount knows the answer.

import { NAME_MAX_BYTES, type Attr, type Ino } from '../store/records.js'
import type { DirEntry } from './resolve.js'

/** Past this many nodes (attributes, or entries of listings) the table starts over (a bound on memory, not a cache policy that matters). */
const KNOWN_NODES_MAX = 200_000

/** A name a change made in a directory (a create, mkdir, symlink, mknod or link), from its reply. */
export interface MadeEntry {
  readonly dir: Ino
  readonly name: string
  readonly ino: Ino
}

export class KnownNodes {
  private readonly byIno = new Map<Ino, Attr>()
  /** Directories' entries in the store's order (by the bytes of their names). */
  private readonly listings = new Map<Ino, DirEntry[]>()
  private listedEntries = 0
  /** Moves at every forget: a fetch begun before a forget of its node may carry what the change replaced. */
  private epoch = 0
  /** The epoch of the last forget of every node. */
  private allForgottenAt = 0
  /** The epoch each node was last forgotten at, since allForgottenAt. */
  private readonly forgottenAt = new Map<Ino, number>()
  /** Whether every change this mount does not make itself is told to it (an embedded store: all of them are its own). */
  private trusted = true

  /** Where a fetch begins: pass it to `learned` or `listed` with what the fetch brought. */
  get since(): number {
    return this.epoch
  }

  /** Keeps `attr` unless its node changed since the fetch that brought it began. */
  learned(attr: Attr, since: number): void {
    if (!this.trusted || !this.unchangedSince(attr.ino, since)) return
    if (this.byIno.size >= KNOWN_NODES_MAX && !this.byIno.has(attr.ino)) this.byIno.clear()
    this.byIno.set(attr.ino, attr)
  }

  get(ino: Ino): Attr | undefined {
    return this.byIno.get(ino)
  }

  /** Keeps the entries of directory `dir` (a copy) unless it changed since the fetch that brought them began. */
  listed(dir: Ino, entries: readonly DirEntry[], since: number): void {
    if (!this.trusted || !this.unchangedSince(dir, since) || entries.length > KNOWN_NODES_MAX) return
    this.dropListing(dir)
    if (this.listedEntries + entries.length > KNOWN_NODES_MAX) this.dropListings()
    this.listings.set(dir, entries.map(({ name, ino }) => ({ name, ino })))
    this.listedEntries += entries.length
  }

  /** The node named `name` in directory `dir`: its attributes; null when the listing is known and has no such name; undefined when either is not known. */
  child(dir: Ino, name: string): Attr | null | undefined {
    const entries = this.listings.get(dir)
    if (entries === undefined || Buffer.byteLength(name) > NAME_MAX_BYTES) return undefined // no entry has such a name: the store says ENAMETOOLONG
    const at = place(entries, name)
    return entries[at]?.name === name ? this.byIno.get(entries[at]!.ino) : null
  }

  /** The entries of directory `dir` (a copy), when known. */
  listing(dir: Ino): DirEntry[] | undefined {
    return this.listings.get(dir)?.slice()
  }

  /** Something may have changed: everything known goes. */
  forget(): void {
    this.epoch++
    this.allForgottenAt = this.epoch
    this.byIno.clear()
    this.forgottenAt.clear()
    this.dropListings()
  }

  /**
   * This mount is about to change `nodes` (null: it may change nodes it does not name): what is
   * known of their attributes goes. A listing stays (a name a change adds is added at `changed`;
   * until then, a listing without it is one taken before the change). Returns where the change
   * began, for `changed`.
   */
  changing(nodes: readonly Ino[] | null): number {
    this.forgetNodes(nodes)
    return this.epoch
  }

  /**
   * The change begun at `began` is over (`done`: what its reply told; undefined: it failed, or
   * its outcome is not known). What it may have changed goes again (a fetch that overlapped it
   * may have kept a node as it was before); `attr`, its node as the change left it, is kept
   * unless that node changed otherwise since, and the name it `made` joins its directory's listing
   * (a directory it made is known to be empty).
   */
  changed(nodes: readonly Ino[] | null, began: number, done?: { readonly attr?: Attr | undefined; readonly made?: MadeEntry | undefined }): void {
    const attr = done?.attr
    const keep = attr !== undefined && this.unchangedSince(attr.ino, began)
    this.forgetNodes(nodes)
    if (done === undefined) for (const ino of nodes ?? []) this.dropListing(ino) // a name it may have made or not
    if (done?.made !== undefined) this.add(done.made)
    if (!keep) return
    this.learned(attr, this.epoch)
    if (attr.kind === 'dir' && attr.ino === done?.made?.ino) this.listed(attr.ino, [], this.epoch) // a directory it made: empty
  }

  /** Whether the changes of other clients reach this mount (a group's change feed runs); while not, nothing is kept. */
  trust(told: boolean): void {
    this.trusted = told
    this.forget()
  }

  private unchangedSince(ino: Ino, since: number): boolean {
    return since >= this.allForgottenAt && since >= (this.forgottenAt.get(ino) ?? 0)
  }

  private forgetNodes(nodes: readonly Ino[] | null): void {
    if (nodes === null || this.forgottenAt.size >= KNOWN_NODES_MAX) return this.forget()
    this.epoch++
    for (const ino of nodes) {
      this.byIno.delete(ino)
      this.forgottenAt.set(ino, this.epoch)
    }
  }

  /** A name made in a directory whose listing is known: in its place by the bytes of the names, as the store lists them. */
  private add({ dir, name, ino }: MadeEntry): void {
    const entries = this.listings.get(dir)
    if (entries === undefined) return
    const low = place(entries, name)
    if (entries[low]?.name === name) entries[low] = { name, ino }
    else {
      entries.splice(low, 0, { name, ino })
      this.listedEntries++
    }
  }

  private dropListing(dir: Ino): void {
    this.listedEntries -= this.listings.get(dir)?.length ?? 0
    this.listings.delete(dir)
  }

  private dropListings(): void {
    this.listings.clear()
    this.listedEntries = 0
  }
}

/** Where `name` is or would go among `entries`, ordered by the bytes of their names as the store lists them. */
function place(entries: readonly DirEntry[], name: string): number {
  const key = Buffer.from(name)
  let low = 0
  let high = entries.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (Buffer.compare(Buffer.from(entries[middle]!.name), key) < 0) low = middle + 1
    else high = middle
  }
  return low
}
