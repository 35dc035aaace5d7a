// Which node each id the kernel holds stands for. A live node's id is its store inode, so every
// name of a hard-linked file leads the kernel to one inode (one st_ino, one attribute cache, one
// link count), and its attributes are read by inode, whichever name is gone. A node reached
// through a time path (`f@T`, `.snapshot/s/f`) is an object of the past with an id of its own,
// per path: never the live inode's, so `cp f@T f` does not see one file twice.

import { errors } from '../errors.js'
import type { Ino } from '../store/records.js'

const ROOT_ID = 1 // the kernel's root node id, and the store's root inode

/**
 * Where the ids of time-path nodes start: above every store inode (inodes are numbered from 2
 * up, one per creation) and within a double's exact integers, as ids cross into JS as numbers.
 */
const FROZEN_ID_BASE = 2 ** 48

interface Name {
  readonly parent: number
  readonly name: string
  /** The name as its last lookup resolved it, when that differs (a relative spec made absolute): what paths through it use. */
  readonly anchored?: string
}

interface KernelNode {
  /** The store inode (the node id itself): a live node. Null: a node of a time path, known by its one name. */
  readonly ino: Ino | null
  /** The names the kernel reached it by; several for a hard-linked node, none once all are gone. */
  readonly names: Map<string, Name>
  /** The name it had last, for a node whose names are all gone (handles still open on it). */
  last: Name
  lookups: number
  /** mtime:size at the last read-only open of a frozen path: unchanged means the kernel's pages are still right. */
  cachedAs: string | null
  /** Handles open on this node: a time-path node whose name is gone answers getattr (fstat) from one of them. */
  readonly handles: Set<number>
}

/** Which node id the kernel holds stands for which names; ids are never reused for another node. */
export class NodeTable {
  private readonly nodes = new Map<number, KernelNode>([[ROOT_ID, newNode(ROOT_ID, { parent: 0, name: '' }, 1)]])
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

  /** True when every name of the node is gone (unlinked, renamed over, removed). */
  detached(id: number): boolean {
    return this.node(id).names.size === 0
  }

  path(id: number): string {
    if (id === ROOT_ID) return '/'
    const names: string[] = []
    for (let node = this.node(id); ; ) {
      const { parent, name, anchored } = node.names.values().next().value ?? node.last
      names.push(anchored ?? name)
      if (parent === ROOT_ID) break
      node = this.node(parent)
    }
    return '/' + names.reverse().join('/')
  }

  childPath(parent: number, name: string): string {
    const base = this.path(parent)
    return base === '/' ? '/' + name : `${base}/${name}`
  }

  /**
   * The node a successful lookup (or create, mknod, link) gives the kernel, one lookup more.
   * `ino`: the store inode of a live node, its id; null for a time-path node (an id per name).
   * `anchored`: the name with its relative spec made absolute, as this lookup resolved it.
   */
  remember(parent: number, name: string, ino: Ino | null, anchored: string | null = null): number {
    const key = nameKey(parent, name)
    const known = this.byName.get(key)
    const id = ino ?? (known !== undefined && known >= FROZEN_ID_BASE ? known : this.nextFrozenId++)
    if (known !== undefined && known !== id) this.unname(known, key) // the name leads to another node now
    let node = this.nodes.get(id)
    if (node === undefined) {
      node = newNode(ino, { parent, name }, 0)
      this.nodes.set(id, node)
    }
    const entry = anchored === null ? { parent, name } : { parent, name, anchored }
    node.names.set(key, entry)
    node.last = entry
    this.byName.set(key, id)
    node.lookups++
    return id
  }

  forget(id: number, lookups: number): void {
    const node = this.nodes.get(id)
    if (node === undefined || id === ROOT_ID) return
    node.lookups -= lookups
    if (node.lookups > 0) return
    this.nodes.delete(id)
    for (const key of node.names.keys()) if (this.byName.get(key) === id) this.byName.delete(key)
  }

  /** The name is gone (unlink, rmdir): a node left without names keeps its last one for handles still open. */
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

  private unname(id: number, key: string): void {
    this.byName.delete(key)
    this.nodes.get(id)?.names.delete(key)
  }
}

function newNode(ino: Ino | null, name: Name, lookups: number): KernelNode {
  return { ino, names: new Map(), last: name, lookups, cachedAs: null, handles: new Set() }
}

function nameKey(parent: number, name: string): string {
  return `${parent}/${name}`
}
