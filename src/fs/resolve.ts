// Path resolution for the FUSE front end: turns a path, which may carry one `@SPEC` or go
// through `/.snapshot/NAME/`, into the node it names and the cut it is read at.
//
// Components above the `@SPEC` component resolve live; the spec component and everything
// below it resolve at the cut ("the thing called a/b now, as it was at T"). A platform cut
// waits until it is stable; a sensor cut waits until T + Δ + 2δ is stable, and below a
// directory each file is taken at its latest version with a sensor time at or before T (a
// record-format file: the prefix of it up to its last record at or before T).

import { errors } from '../errors.js'
import type { Client } from '../replication/client.js'
import type { Attr } from '../store/records.js'
import { HLC_MAX, hlcCeilingOfUs, type HlcStamp } from '../temporal/hlc.js'
import { parseTimePath, type TimeSpec } from '../temporal/spec.js'

export const SNAPSHOT_DIR = '.snapshot'

export interface TimeOptions {
  readonly maxWaitMs: number // how long a read at an unstable cut waits before EAGAIN
  readonly sensorLagMaxUs: number // Δ: the most a sensor stamp may lag platform time
  readonly clockSkewMaxUs: number // δ: the bound on writer/platform clock skew
}

/** How the nodes below a resolved path are read. */
export type Cut =
  | { readonly kind: 'live' }
  | { readonly kind: 'platform'; readonly stamp: HlcStamp } // also versions and snapshots
  | { readonly kind: 'sensor'; readonly sensorUs: number; readonly structureStamp: HlcStamp }

export type Resolved =
  | { readonly kind: 'node'; readonly attr: Attr; readonly cut: Cut; readonly spec: TimeSpec | null }
  | { readonly kind: 'snapshotRoot' } // the virtual /.snapshot directory

export interface ParsedPath {
  readonly components: readonly string[]
  readonly specIndex: number // -1: no spec
  readonly spec: TimeSpec | null
  readonly snapshot: string | null // NAME of /.snapshot/NAME/...
}

export function parsePath(path: string): ParsedPath {
  const parsed = parseTimePath(path)
  const spec = parsed.specIndex >= 0 && 'spec' in parsed ? parsed.spec : null
  if (parsed.components[0] === SNAPSHOT_DIR) {
    if (spec !== null) throw errors.invalid(`a snapshot path already names a cut: ${path}`)
    return { components: parsed.components.slice(2), specIndex: -1, spec: null, snapshot: parsed.components[1] ?? '' }
  }
  return { components: parsed.components, specIndex: parsed.specIndex, spec, snapshot: null }
}

/** True when the path addresses the past (or a snapshot): such paths are read-only. */
export function isTimePath(parsed: ParsedPath): boolean {
  return parsed.spec !== null || parsed.snapshot !== null
}

/** How many steps at stable cuts a Resolver remembers (least recently used go first). */
const FROZEN_STEPS_MAX = 16384

export class Resolver {
  private readonly client: Client
  private readonly options: TimeOptions
  /**
   * Steps down at stable cuts (cut, directory, name -> node). What a stable cut holds never
   * changes, so the kernel's lookup, the open that follows it and every path through the same
   * directory at the same cut share the walk: a step can take an ordered-index seek (an async
   * LevelDB iterator here, when the name was rebound after the cut; a sensor cut's pick is
   * another) and, in a cluster, round trips to a member.
   */
  private readonly frozen = new Map<string, Attr>()

  constructor(client: Client, options: TimeOptions) {
    this.client = client
    this.options = options
  }

  /** Resolves a path. `nonBlocking`: an unstable cut fails with EAGAIN at once. */
  resolve(parsed: ParsedPath, nonBlocking = false): Promise<Resolved> {
    const maxWaitMs = nonBlocking ? 0 : this.options.maxWaitMs
    return this.resolveWith(parsed, (stamp) => this.client.waitStable(stamp, maxWaitMs), true)
  }

  /** What the path resolves to now, without waiting for its cut: provisional until the cut is stable (`fffs cut`). */
  resolveProvisional(parsed: ParsedPath): Promise<Resolved> {
    return this.resolveWith(parsed, async () => undefined, false)
  }

  /** `stable`: `waitStable` returns only once the cut is stable, so what is found below it may be remembered. */
  private async resolveWith(parsed: ParsedPath, waitStable: (stamp: HlcStamp) => Promise<void>, stable: boolean): Promise<Resolved> {
    if (parsed.snapshot !== null) {
      if (parsed.snapshot === '') return { kind: 'snapshotRoot' }
      const snapshot = await this.client.snapshot(parsed.snapshot)
      if (snapshot === null) throw errors.notFound(`${SNAPSHOT_DIR}/${parsed.snapshot}`)
      const stamp = BigInt(snapshot.at)
      await waitStable(stamp)
      return this.below(await this.client.walk([], stamp), parsed.components, { kind: 'platform', stamp }, null, stable)
    }
    if (parsed.spec === null) return { kind: 'node', attr: await this.client.walk(parsed.components, HLC_MAX), cut: { kind: 'live' }, spec: null }

    const parent = await this.client.walk(parsed.components.slice(0, parsed.specIndex), HLC_MAX)
    const name = parsed.components[parsed.specIndex]!
    const rest = parsed.components.slice(parsed.specIndex + 1)
    if (parent.kind !== 'dir') throw errors.notDir(name)
    const spec = parsed.spec
    switch (spec.kind) {
      case 'platform': {
        const stamp = hlcCeilingOfUs(spec.timeUs)
        await waitStable(stamp)
        return this.below(parent, [name, ...rest], { kind: 'platform', stamp }, spec, stable)
      }
      case 'version': {
        const ino = (await this.client.walk(parsed.components.slice(0, parsed.specIndex + 1), HLC_MAX)).ino
        const stamp = await this.client.stampOfVersion(ino, spec.version)
        if (stamp === null) throw errors.notFound(`version ${spec.version} of ${name}`)
        const attr = await this.client.attr(ino, stamp)
        if (attr === null) throw errors.notFound(`version ${spec.version} of ${name}`)
        // Not waited for: a version's stamp is not a stable cut, so nothing below it is remembered.
        return this.below(attr, rest, { kind: 'platform', stamp }, spec, false)
      }
      case 'sensor': {
        const structureStamp = hlcCeilingOfUs(spec.timeUs + this.options.sensorLagMaxUs + 2 * this.options.clockSkewMaxUs)
        await waitStable(structureStamp)
        const cut: Cut = { kind: 'sensor', sensorUs: spec.timeUs, structureStamp }
        return this.below(parent, [name, ...rest], cut, spec, stable)
      }
    }
  }

  /** Walks `components` below `start` at the cut; `stable`: the cut is stable (each step is remembered). */
  private async below(start: Attr, components: readonly string[], cut: Cut, spec: TimeSpec | null, stable: boolean): Promise<Resolved> {
    let attr = start
    for (const name of components) {
      if (attr.kind !== 'dir') throw errors.notDir(name)
      attr = stable ? await this.frozenChild(attr, name, cut) : await this.child(attr, name, cut)
    }
    return { kind: 'node', attr, cut, spec }
  }

  /** `child` at a stable cut, remembered: `ls -l dir@T/` walks to dir once, not once per entry. */
  private async frozenChild(dir: Attr, name: string, cut: Cut): Promise<Attr> {
    const key = `${cutKey(cut)}|${dir.ino}|${name}`
    const known = this.frozen.get(key)
    if (known !== undefined) {
      this.frozen.delete(key) // re-inserted: most recently used last
      this.frozen.set(key, known)
      return known
    }
    const attr = await this.child(dir, name, cut)
    this.frozen.set(key, attr)
    if (this.frozen.size > FROZEN_STEPS_MAX) this.frozen.delete(this.frozen.keys().next().value!)
    return attr
  }

  /** One step down at the cut. */
  async child(dir: Attr, name: string, cut: Cut): Promise<Attr> {
    const stamp = cut.kind === 'live' ? HLC_MAX : cut.kind === 'platform' ? cut.stamp : cut.structureStamp
    const ino = await this.client.lookup(dir.ino, name, stamp)
    if (ino === null) throw errors.notFound(name)
    const attr = await this.atCut(ino, cut)
    if (attr === null) throw errors.notFound(name)
    return attr
  }

  /** The version of a node a cut selects; null when it has none there. */
  async atCut(ino: number, cut: Cut): Promise<Attr | null> {
    switch (cut.kind) {
      case 'live':
        return this.client.attr(ino, HLC_MAX)
      case 'platform':
        return this.client.attr(ino, cut.stamp)
      case 'sensor': {
        const structure = await this.client.attr(ino, cut.structureStamp)
        if (structure === null || structure.kind === 'dir') return structure
        const pick = await this.client.sensorPick(ino, cut.sensorUs)
        if (pick === null) return null
        const attr = await this.client.attr(ino, pick.stamp)
        // A record-format file: the prefix up to the last record at or before T (Store.sensorPick).
        return attr === null || pick.sizeBytes === null ? attr : { ...attr, sizeBytes: Math.min(attr.sizeBytes, pick.sizeBytes) }
      }
    }
  }

  /** Directory listing at the cut (names whose node exists there). */
  async list(dir: Attr, cut: Cut): Promise<string[]> {
    const stamp = cut.kind === 'live' ? HLC_MAX : cut.kind === 'platform' ? cut.stamp : cut.structureStamp
    const entries = await this.client.readdir(dir.ino, stamp)
    if (cut.kind !== 'sensor') return entries.map((e) => e.name)
    const present = await Promise.all(entries.map(async (e) => ((await this.atCut(e.ino, cut)) === null ? null : e.name)))
    return present.filter((name): name is string => name !== null)
  }
}

function cutKey(cut: Cut): string {
  switch (cut.kind) {
    case 'live':
      return 'live'
    case 'platform':
      return `p${cut.stamp}`
    case 'sensor':
      return `s${cut.sensorUs}/${cut.structureStamp}`
  }
}
