// Which place (resolve.ts) each node id the kernel holds stands for. Every request after a
// lookup names its node, so the place found once serves them all: no path is rebuilt or walked
// again. A live node's id is its store inode, so every name of a hard-linked file leads the
// kernel to one inode (one st_ino, one attribute cache, one link count), and its attributes are
// read by inode, whichever name is gone. A node reached through a time path (`f@T`,
// `.snapshot/s/f`) is an object of the past with an id of its own, per name and cut: never the
// live inode's, so `cp f@T f` does not see one file twice, and a name that names another cut
// at its next lookup (`f@-5m`, a snapshot pinned again) gets a new node.

import { errors } from '../errors.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { cutKey, structureStamp, type Place } from './resolve.js'

const ROOT_ID = 1 // the kernel's root node id, and the store's root inode

/**
 * Where the ids of time-path nodes start: above every store inode (inodes are numbered from 2
 * up, one per creation) and within a double's exact integers, as ids cross into JS as numbers.
 */
const FROZEN_ID_BASE = 2 ** 48

interface Name {
  readonly parent: number
  readonly name: string
}

export interface KernelNode {
  readonly place: Place
  /** The names the kernel reached it by; several for a hard-linked node, none once all are gone. */
  readonly names: Map<string, Name>
  /** The name it had last, for a node whose names are all gone (handles still open on it): log lines name it. */
  last: Name
  lookups: number
}

/** Which node id the kernel holds stands for which place; ids are never reused for another node. */
export class NodeTable {
  private readonly nodes = new Map<number, KernelNode>([[ROOT_ID, { place: { kind: 'live', ino: ROOT_ID }, names: new Map(), last: { parent: 0, name: '' }, lookups: 1 }]])
  private readonly byName = new Map<string, number>()
  private nextFrozenId = FROZEN_ID_BASE

  /** The node, or undefined once the kernel has forgotten it. */
  find(id: number): KernelNode | undefined {
    return this.nodes.get(id)
  }

  node(id: number): KernelNode {
    const node = this.nodes.get(id)
    if (node === undefined) throw errors.notFound(`node ${id}`) // forgotten: the kernel holds it no more
    return node
  }

  place(id: number): Place {
    return this.node(id).place
  }

  /** The node the kernel holds under `name` in `parent`, if any. */
  child(parent: number, name: string): number | undefined {
    return this.byName.get(nameKey(parent, name))
  }

  /** A path of the node for messages and log lines (one of its names; the last one once all are gone). */
  path(id: number): string {
    if (id === ROOT_ID) return '/'
    const names: string[] = []
    for (let node = this.nodes.get(id); node !== undefined && names.length < 4096; ) {
      const { parent, name } = node.names.values().next().value ?? node.last
      names.push(name)
      if (parent === ROOT_ID) break
      node = this.nodes.get(parent)
    }
    return '/' + names.reverse().join('/')
  }

  /**
   * The node a successful lookup (or create, mknod, link, readdirplus entry) gives the kernel,
   * one lookup more. A live place's id is its inode; another place keeps the id the name had
   * while it names the same node at the same cut, and gets a new one otherwise.
   */
  remember(parent: number, name: string, place: Place): number {
    const key = nameKey(parent, name)
    const known = this.byName.get(key)
    const id = this.keptId(known, place) ?? this.nextFrozenId++
    if (known !== undefined && known !== id) this.unname(known, key) // the name leads to another node now
    let node = this.nodes.get(id)
    if (node === undefined) {
      node = { place, names: new Map(), last: { parent, name }, lookups: 0 }
      this.nodes.set(id, node)
    }
    const entry = { parent, name }
    node.names.set(key, entry)
    node.last = entry
    this.byName.set(key, id)
    node.lookups++
    return id
  }

  /**
   * The ids `remember` would give each of several names in `parent`, in order, without
   * remembering them (a readdirplus reply: only the entries that fit are remembered, in the
   * same order, and get these ids). Null entries get none.
   */
  plan(parent: number, entries: ReadonlyArray<readonly [name: string, place: Place] | null>): Array<number | null> {
    let next = this.nextFrozenId
    return entries.map((entry) => (entry === null ? null : (this.keptId(this.byName.get(nameKey(parent, entry[0])), entry[1]) ?? next++)))
  }

  /** The id a name keeps for `place`: a live node's inode, or the id `known` it had when that is the same node at the same cut; undefined: a new one. */
  private keptId(known: number | undefined, place: Place): number | undefined {
    if (place.kind === 'live') return place.ino
    const node = known === undefined ? undefined : this.nodes.get(known)
    return node !== undefined && known! >= FROZEN_ID_BASE && samePlace(node.place, place) ? known : undefined
  }

  forget(id: number, lookups: number): void {
    const node = this.nodes.get(id)
    if (node === undefined || id === ROOT_ID) return
    node.lookups -= lookups
    if (node.lookups > 0) return
    this.nodes.delete(id)
    for (const key of node.names.keys()) if (this.byName.get(key) === id) this.byName.delete(key)
  }

  /** The name is gone (unlink, rmdir): a node left without names keeps its last one for log lines. */
  detach(parent: number, name: string): void {
    const key = nameKey(parent, name)
    const id = this.byName.get(key)
    if (id !== undefined) this.unname(id, key)
  }

  move(parent: number, name: string, newParent: number, newName: string): void {
    this.detach(newParent, newName)
    const key = nameKey(parent, name)
    const id = this.byName.get(key)
    if (id === undefined) return
    this.unname(id, key)
    const node = this.node(id)
    const newKey = nameKey(newParent, newName)
    node.names.set(newKey, { parent: newParent, name: newName })
    node.last = { parent: newParent, name: newName }
    this.byName.set(newKey, id)
  }

  /** Every (parent, name) the kernel may hold a live entry for, and every live node: what a change the mount did not see may have made stale. */
  *liveEntries(): Generator<{ id: number; names: readonly Name[] }> {
    for (const [id, node] of this.nodes) if (node.place.kind === 'live') yield { id, names: [...node.names.values()] }
  }

  /** The frozen nodes whose cut's structure is below `stamp` (compaction may have dropped what they show). */
  *frozenBelow(stamp: HlcStamp): Generator<{ id: number; names: readonly Name[] }> {
    for (const [id, node] of this.nodes) if (node.place.kind === 'frozen' && structureStamp(node.place.cut) < stamp) yield { id, names: [...node.names.values()] }
  }

  private unname(id: number, key: string): void {
    this.byName.delete(key)
    this.nodes.get(id)?.names.delete(key)
  }
}

function samePlace(a: Place, b: Place): boolean {
  switch (a.kind) {
    case 'live':
      return b.kind === 'live' && a.ino === b.ino
    case 'frozen':
      return b.kind === 'frozen' && a.attr.ino === b.attr.ino && cutKey(a.cut) === cutKey(b.cut)
    case 'sensorWrite':
      return b.kind === 'sensorWrite' && a.dir === b.dir && a.name === b.name && a.sensorUs === b.sensorUs
    case 'snapshots':
    case 'times':
      return b.kind === a.kind
  }
}

function nameKey(parent: number, name: string): string {
  return `${parent}/${name}`
}
