// Path resolution for the FUSE front end and the control socket: turns a path, which may name
// a time (`NAME@SPEC`, src/temporal/spec.ts) or go through `/.snapshot/NAME/` or `/.at/SPEC/`,
// into the node it names and the cut it is read at; and decides, in one place, which paths a
// mutation may go through (`nodeTarget`, `entryTarget`): live paths only, EROFS for every
// other, with the sensor-time write as the one exception.
//
// Components above the spec component resolve live; the spec component and everything below
// it resolve at the cut ("the thing called a/b now, as it was at T"). A platform cut waits
// until it is stable; a sensor cut waits until T + Δ + 2δ is stable, and below a directory
// each file is taken at its latest version with a sensor time at or before T (a record-format
// file: the prefix of it up to its last record at or before T). `P@vN` is row N of P's name
// history (history.ts), read as the cut at that row's stamp.
//
// An existing entry whose name is exactly a component's text is that entry, whatever its
// suffix: `x@v2` created as a name stays a name (and `x`'s version 2 is then reached by its time).
// The check is one lookup, made only for components whose suffix is in a spec's form.

import { errors, FffsError } from '../errors.js'
import type { Client } from '../replication/client.js'
import type { Attr, Ino } from '../store/records.js'
import { ROOT_INO } from '../store/records.js'
import { HLC_MAX, hlcCeilingOfUs, wallClockUs, type HlcStamp } from '../temporal/hlc.js'
import { formatTimeSpec, parseSpecArgument, splitNameSpec, type NameSpec, type ParsedSpec, type TimeSpec } from '../temporal/spec.js'
import { NameHistory } from './history.js'

/** Named snapshots: `/.snapshot/NAME/...` (HDFS's convention); hidden from the root's listing, reachable. */
export const SNAPSHOT_DIR = '.snapshot'
/** The whole tree at a cut: `/.at/SPEC/...`, the mount root included, with no '@' in any name; hidden, reachable. */
export const AT_DIR = '.at'

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
  /** `anchoredPath`: the path with its relative spec (`f@-5m`) made absolute, as resolved now; null when it had none. */
  | { readonly kind: 'node'; readonly attr: Attr; readonly cut: Cut; readonly spec: TimeSpec | null; readonly anchoredPath: string | null }
  | { readonly kind: 'virtualDir'; readonly dir: typeof SNAPSHOT_DIR | typeof AT_DIR }

export interface PathComponent {
  readonly text: string
  /** When the text after its last '@' is in a spec's form: the split, or the error saying why it is malformed. */
  readonly suffix: NameSpec | { readonly malformed: FffsError } | null
}

export type PathRoot =
  | { readonly kind: 'live' }
  | { readonly kind: 'snapshots' } // /.snapshot
  | { readonly kind: 'snapshot'; readonly name: string } // /.snapshot/NAME/...
  | { readonly kind: 'times' } // /.at
  | { readonly kind: 'at'; readonly spec: ParsedSpec } // /.at/SPEC/...

export interface ParsedPath {
  readonly text: string
  readonly root: PathRoot
  readonly components: readonly PathComponent[] // below the root
}

function component(text: string, nowUs: number): PathComponent {
  try {
    return { text, suffix: splitNameSpec(text, nowUs) }
  } catch (err) {
    if (err instanceof FffsError) return { text, suffix: { malformed: err } }
    throw err
  }
}

/** Parses a path's syntax (relative specs resolve against `nowUs`); which components are specs is decided against the tree. */
export function parsePath(path: string, nowUs: number = wallClockUs()): ParsedPath {
  const parts = path.split('/').filter((part) => part !== '')
  const below = (from: number): PathComponent[] => parts.slice(from).map((text) => component(text, nowUs))
  if (parts[0] === SNAPSHOT_DIR) return { text: path, root: parts.length === 1 ? { kind: 'snapshots' } : { kind: 'snapshot', name: parts[1]! }, components: below(2) }
  if (parts[0] === AT_DIR) return { text: path, root: parts.length === 1 ? { kind: 'times' } : { kind: 'at', spec: parseSpecArgument(parts[1]!, nowUs) }, components: below(2) }
  return { text: path, root: { kind: 'live' }, components: below(0) }
}

const texts = (components: readonly PathComponent[]): string[] => components.map((c) => c.text)

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

  // ---------------------------------------------------------------- what mutations may change (EROFS decided here)

  /**
   * The live node an operation changes (attributes, xattrs, bytes). Any path that is not live
   * is read-only (EROFS). `writing`: opened for writing, where `P@sensor:T` writes the live P
   * stamped with sensor time T.
   */
  async nodeTarget(parsed: ParsedPath, writing: boolean): Promise<{ attr: Attr; sensorUs?: number }> {
    if (parsed.root.kind !== 'live') throw errors.readOnlyTimePath(parsed.text)
    const { attr, index } = await this.liveWalk(parsed.components)
    if (index === parsed.components.length) return { attr }
    const sensor = writing ? this.sensorWriteOf(parsed, index) : null
    if (sensor === null) throw errors.readOnlyTimePath(parsed.text)
    if (attr.kind !== 'dir') throw errors.notDir(parsed.text)
    const ino = await this.client.lookup(attr.ino, sensor.name, HLC_MAX)
    const node = ino === null ? null : await this.client.attr(ino, HLC_MAX)
    if (node === null) throw errors.notFound(sensor.name)
    return { attr: node, sensorUs: sensor.spec.timeUs }
  }

  /**
   * The live directory and name an operation binds or unbinds (create, mkdir, symlink,
   * unlink, rmdir, either end of a rename). Any path that is not live is read-only (EROFS).
   * `creating`: the name may be new; a name ending in `@v<N>` may then be created (the
   * kernel's lookup found no version N), and a create of `P@sensor:T` creates P (`sensorUs`).
   */
  async entryTarget(parsed: ParsedPath, creating: boolean): Promise<{ parent: Attr; name: string; sensorUs?: number }> {
    const n = parsed.components.length
    if (parsed.root.kind !== 'live') throw errors.readOnlyTimePath(parsed.text)
    if (n === 0) throw errors.invalid('the mount root has no name to create, remove or rename')
    const { attr: parent, index } = await this.liveWalk(parsed.components.slice(0, n - 1))
    if (index < n - 1) throw errors.readOnlyTimePath(parsed.text)
    if (parent.kind !== 'dir') throw errors.notDir(parsed.text)
    const last = parsed.components[n - 1]!
    if (last.suffix === null || (await this.isEntry(parent.ino, last.text, HLC_MAX))) return { parent, name: last.text }
    if ('malformed' in last.suffix) throw last.suffix.malformed
    if (creating && last.suffix.spec.kind === 'version') return { parent, name: last.text }
    const sensor = creating ? this.sensorWriteOf(parsed, n - 1) : null
    if (sensor !== null) return { parent, name: sensor.name, sensorUs: sensor.spec.timeUs }
    throw errors.readOnlyTimePath(parsed.text)
  }

  /**
   * `P@sensor:T` as the last component of a live path: the live directory, the name P and T;
   * null for any other path. What a write through it writes, found without waiting for any cut.
   */
  async sensorWriteTarget(parsed: ParsedPath): Promise<{ parent: Attr; name: string; sensorUs: number } | null> {
    if (parsed.root.kind !== 'live' || this.sensorWriteOf(parsed, parsed.components.length - 1) === null) return null
    const { attr, index } = await this.liveWalk(parsed.components) // an entry of that exact name is no sensor write
    const sensor = this.sensorWriteOf(parsed, index)
    return sensor === null || attr.kind !== 'dir' ? null : { parent: attr, name: sensor.name, sensorUs: sensor.spec.timeUs }
  }

  private sensorWriteOf(parsed: ParsedPath, specIndex: number): { name: string; spec: { kind: 'sensor'; timeUs: number } } | null {
    const suffix = parsed.components[specIndex]?.suffix
    if (specIndex !== parsed.components.length - 1 || suffix === null || suffix === undefined || 'malformed' in suffix || suffix.spec.kind !== 'sensor') return null
    return { name: suffix.name, spec: suffix.spec }
  }

  /** The directory (null: the mount root has no name) and name whose history `fffs log PATH` lists; `PATH@SPEC` is PATH's. */
  async historyTarget(parsed: ParsedPath): Promise<{ dir: Ino | null; name: string }> {
    const n = parsed.components.length
    if (n === 0) {
      if (parsed.root.kind === 'live' || parsed.root.kind === 'snapshot' || parsed.root.kind === 'at') return { dir: null, name: '' }
      throw errors.invalid(`${parsed.text} is a virtual directory: it has no history`)
    }
    const parent = await this.resolve({ ...parsed, components: parsed.components.slice(0, n - 1) })
    if (parent.kind !== 'node') throw errors.notFound(parsed.text)
    if (parent.attr.kind !== 'dir') throw errors.notDir(parsed.text)
    const last = parsed.components[n - 1]!
    if (last.suffix === null || (await this.isEntry(parent.attr.ino, last.text, HLC_MAX))) return { dir: parent.attr.ino, name: last.text }
    if ('malformed' in last.suffix) throw last.suffix.malformed
    return { dir: parent.attr.ino, name: last.suffix.name }
  }

  // ---------------------------------------------------------------- reads

  /** `stable`: `waitStable` returns only once the cut is stable, so what is found below it may be remembered. */
  private async resolveWith(parsed: ParsedPath, waitStable: (stamp: HlcStamp) => Promise<void>, stable: boolean): Promise<Resolved> {
    const root = parsed.root
    switch (root.kind) {
      case 'snapshots':
        return { kind: 'virtualDir', dir: SNAPSHOT_DIR }
      case 'times':
        return { kind: 'virtualDir', dir: AT_DIR }
      case 'snapshot': {
        const snapshot = await this.client.snapshot(root.name)
        if (snapshot === null) throw errors.notFound(`${SNAPSHOT_DIR}/${root.name}`)
        const stamp = BigInt(snapshot.at)
        await waitStable(stamp)
        const cut: Cut = { kind: 'platform', stamp }
        return this.node(await this.below(await this.rootAt(cut), parsed, 0, cut, stable), cut, null, null)
      }
      case 'at': {
        const cut = await this.cutOf(root.spec.spec, null, '', waitStable, parsed)
        const anchored = root.spec.relative ? '/' + [AT_DIR, formatTimeSpec(root.spec.spec), ...texts(parsed.components)].join('/') : null
        return this.node(await this.below(await this.rootAt(cut), parsed, 0, cut, stable), cut, root.spec.spec, anchored)
      }
      case 'live':
        break
    }
    const { attr, index } = await this.liveWalk(parsed.components)
    if (index === parsed.components.length) return this.node(attr, { kind: 'live' }, null, null)
    const split = parsed.components[index]!.suffix as NameSpec // liveWalk stops at a spec only
    if (attr.kind !== 'dir') throw errors.notDir(split.name)
    const { cut, first } = await (async () => {
      const cut = await this.cutOf(split.spec, attr.ino, split.name, waitStable, parsed)
      return { cut, first: await this.step(attr, split.name, cut, stable) }
    })().catch((err: unknown) => {
      // `f@v2@v1` with no entry named `f@v2`: two specs in one name.
      if (isNotFound(err) && component(split.name, wallClockUs()).suffix !== null) throw errors.malformedSpec(parsed.components[index]!.text, 'more than one @SPEC (a path names one cut)')
      throw err
    })
    const anchored = split.relative ? '/' + texts(parsed.components).map((text, i) => (i === index ? `${split.name}@${formatTimeSpec(split.spec)}` : text)).join('/') : null
    return this.node(await this.below(first, parsed, index + 1, cut, stable), cut, split.spec, anchored)
  }

  private node(attr: Attr, cut: Cut, spec: TimeSpec | null, anchoredPath: string | null): Resolved {
    return { kind: 'node', attr, cut, spec, anchoredPath }
  }

  /**
   * The cut a spec names, waited for. `dir`/`name`: whose history `v<N>` counts in (dir null:
   * the mount root's own). A version's cut is its row's stamp, waited for like any other.
   */
  private async cutOf(spec: TimeSpec, dir: Ino | null, name: string, waitStable: (stamp: HlcStamp) => Promise<void>, parsed: ParsedPath): Promise<Cut> {
    switch (spec.kind) {
      case 'platform': {
        const stamp = hlcCeilingOfUs(spec.timeUs)
        await waitStable(stamp)
        return { kind: 'platform', stamp }
      }
      case 'sensor': {
        const structureStamp = hlcCeilingOfUs(spec.timeUs + this.options.sensorLagMaxUs + 2 * this.options.clockSkewMaxUs)
        await waitStable(structureStamp)
        return { kind: 'sensor', sensorUs: spec.timeUs, structureStamp }
      }
      case 'version': {
        const history = await NameHistory.of(this.client, dir, name)
        const row = await history.row(spec.version)
        const what = dir === null ? 'the mount root' : name
        if (row === null) throw errors.notFound(`${parsed.text}: ${what} has ${history.total} version${history.total === 1 ? '' : 's'} (fffs log lists them)`)
        if (row.attr === null) throw errors.notFound(`${parsed.text}: version ${spec.version} of ${what} is its ${row.change === 'renamed away' ? 'rename to another name' : 'removal'}`)
        await waitStable(row.stamp)
        return { kind: 'platform', stamp: row.stamp }
      }
    }
  }

  /** The mount root at a cut. */
  private async rootAt(cut: Cut): Promise<Attr> {
    const root = await this.atCut(ROOT_INO, cut)
    if (root === null) throw errors.notFound('/')
    return root
  }

  /**
   * Walks the live part of a path: up to the first component whose suffix is a spec (or
   * malformed) and that no entry of that exact name shadows. `index`: that component, or the
   * number of components (all live); `attr`: the live node above it (or the node itself).
   */
  private async liveWalk(components: readonly PathComponent[]): Promise<{ attr: Attr; index: number }> {
    for (let i = 0; i < components.length; i++) {
      const suffix = components[i]!.suffix
      if (suffix === null) continue
      const above = await this.client.walk(texts(components.slice(0, i)), HLC_MAX)
      if (above.kind === 'dir' && (await this.isEntry(above.ino, components[i]!.text, HLC_MAX))) continue
      if ('malformed' in suffix) throw suffix.malformed
      return { attr: above, index: i }
    }
    return { attr: await this.client.walk(texts(components), HLC_MAX), index: components.length }
  }

  private async isEntry(dir: Ino, name: string, stamp: HlcStamp): Promise<boolean> {
    return (await this.client.lookup(dir, name, stamp)) !== null
  }

  /** Walks components[from..] below `start` at the cut; below a spec, a spec-shaped name must be an entry of that exact name. */
  private async below(start: Attr, parsed: ParsedPath, from: number, cut: Cut, stable: boolean): Promise<Attr> {
    let attr = start
    for (const { text, suffix } of parsed.components.slice(from)) {
      attr = await this.step(attr, text, cut, stable).catch((err: unknown) => {
        if (!isNotFound(err) || suffix === null) throw err
        if ('malformed' in suffix) throw suffix.malformed
        throw errors.malformedSpec(parsed.text, `more than one @SPEC: '${text}' below a cut (a path names one cut)`)
      })
    }
    return attr
  }

  private async step(dir: Attr, name: string, cut: Cut, stable: boolean): Promise<Attr> {
    if (dir.kind !== 'dir') throw errors.notDir(name)
    return stable && cut.kind !== 'live' ? this.frozenChild(dir, name, cut) : this.child(dir, name, cut)
  }

  /**
   * `child` at a stable cut, remembered: `ls -l dir@T/` walks to dir once, not once per entry.
   * Below the history floor a step is taken afresh: compaction may have dropped what it found.
   */
  private async frozenChild(dir: Attr, name: string, cut: Cut): Promise<Attr> {
    if (structureStamp(cut) < (this.client.history?.knownFloor() ?? 0n)) return this.child(dir, name, cut)
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
    const ino = await this.client.lookup(dir.ino, name, structureStamp(cut))
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
    const entries = await this.client.readdir(dir.ino, structureStamp(cut))
    if (cut.kind !== 'sensor') return entries.map((e) => e.name)
    const present = await Promise.all(entries.map(async (e) => ((await this.atCut(e.ino, cut)) === null ? null : e.name)))
    return present.filter((name): name is string => name !== null)
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'ENOENT'
}

/** The stamp the directory structure is read at. */
function structureStamp(cut: Cut): HlcStamp {
  return cut.kind === 'live' ? HLC_MAX : cut.kind === 'platform' ? cut.stamp : cut.structureStamp
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
