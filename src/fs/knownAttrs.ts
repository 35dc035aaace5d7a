// The live attributes this mount last learned of each node, kept as long as nothing could have
// changed them unseen: the mount's counterpart of the kernel's attribute cache, under the same
// rule (kernel.ts, liveTimeoutS). A change this mount makes forgets the nodes it may touch (all
// of them when it may touch one it does not name: client/changes.ts) and keeps what its reply
// says of the node it made or changed; any change another client tells of, and any gap in the
// telling, forget them all; a fetch of a node that a change overtook is not kept. An open for
// reading takes the version it reads from here and a getattr its answer, so opening or
// stat-ing a file the mount knows costs no round trip to the store or the group.

import type { Attr, Ino } from '../store/records.js'

/** Past this many nodes the table starts over (a bound on memory, not a cache policy that matters). */
const KNOWN_NODES_MAX = 200_000

export class KnownAttrs {
  private readonly byIno = new Map<Ino, Attr>()
  /** Moves at every forget: a fetch begun before a forget of its node may carry what the change replaced. */
  private epoch = 0
  /** The epoch of the last forget of every node. */
  private allForgottenAt = 0
  /** The epoch each node was last forgotten at, since allForgottenAt. */
  private readonly forgottenAt = new Map<Ino, number>()
  /** Whether every change this mount does not make itself is told to it (an embedded store: all of them are its own). */
  private trusted = true

  /** Where a fetch begins: pass it to `learned` with what the fetch brought. */
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

  /** Something may have changed: everything known goes. */
  forget(): void {
    this.epoch++
    this.allForgottenAt = this.epoch
    this.byIno.clear()
    this.forgottenAt.clear()
  }

  /**
   * This mount is about to change `nodes` (null: it may change nodes it does not name): what is
   * known of them goes. Returns where the change began, for `changed`.
   */
  changing(nodes: readonly Ino[] | null): number {
    this.forgetNodes(nodes)
    return this.epoch
  }

  /**
   * The change begun at `began` is over: what it may have changed goes again (a fetch that
   * overlapped it may have kept a node as it was before), and `attr`, its node as the change
   * left it (from the change's reply), is kept unless that node changed otherwise since.
   */
  changed(nodes: readonly Ino[] | null, began: number, attr?: Attr): void {
    const keep = attr !== undefined && this.unchangedSince(attr.ino, began)
    this.forgetNodes(nodes)
    if (keep) this.learned(attr, this.epoch)
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
}
