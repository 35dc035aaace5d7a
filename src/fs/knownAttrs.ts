// The live attributes this mount last learned of each node, kept as long as nothing could have
// changed them unseen: the mount's counterpart of the kernel's attribute cache, under the same
// rule (kernel.ts, liveTimeoutS). Any change this mount makes, any change another client tells
// of, and any gap in the telling forget them all; a fetch that a change overtook is not kept.
// An open for reading takes the version it reads from here, so opening a file the kernel
// already holds costs no round trip to the store or the group.

import type { Attr, Ino } from '../store/records.js'

/** Past this many nodes the table starts over (a bound on memory, not a cache policy that matters). */
const KNOWN_NODES_MAX = 200_000

export class KnownAttrs {
  private readonly byIno = new Map<Ino, Attr>()
  /** Moves at every forget: a fetch begun before it may carry what the change replaced. */
  private epoch = 0
  /** Whether every change this mount does not make itself is told to it (an embedded store: all of them are its own). */
  private trusted = true

  /** Where a fetch begins: pass it to `learned` with what the fetch brought. */
  get since(): number {
    return this.epoch
  }

  /** Keeps `attr` unless something changed since the fetch that brought it began. */
  learned(attr: Attr, since: number): void {
    if (since !== this.epoch || !this.trusted) return
    if (this.byIno.size >= KNOWN_NODES_MAX && !this.byIno.has(attr.ino)) this.byIno.clear()
    this.byIno.set(attr.ino, attr)
  }

  get(ino: Ino): Attr | undefined {
    return this.byIno.get(ino)
  }

  /** Something may have changed: everything known goes. */
  forget(): void {
    this.epoch++
    this.byIno.clear()
  }

  /** Whether the changes of other clients reach this mount (a group's change feed runs); while not, nothing is kept. */
  trust(told: boolean): void {
    this.trusted = told
    this.forget()
  }
}
