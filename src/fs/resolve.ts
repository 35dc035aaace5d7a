// Name resolution for the FUSE front end and the control socket, one step at a time: a name
// looked up in a place (a live directory, a directory at a cut, /.snapshot, /.at) gives the
// place it names. The kernel keeps each place as a node (nodeTable.ts) and sends every later
// request by node, so a time path is parsed once, at the lookup of its own component, and the
// nodes below it inherit its cut; a path (the control socket's) is the same steps from the
// root. This file also decides, in one place, which places a mutation may change
// (`nodeTarget`, `entryTarget`): live ones only, EROFS for every other, with the sensor-time
// write as the one exception.
//
// A name may end in `@SPEC` (src/temporal/spec.ts). Looked up in a live directory, it names
// that directory's entry as it was at the cut ("the thing called a/b now, as it was at T"),
// and every name below it resolves at that cut. A platform cut waits until it is stable; a
// sensor cut waits until T + Δ + 2δ is stable, and each file below is taken at its latest
// version with a sensor time at or before T (a record-format file: the prefix of it up to its
// last record at or before T). `P@vN` is row N of P's name history (history.ts), read as the
// cut at that row's stamp. A relative spec (`-5m`, `today`) is anchored at its own lookup.
//
// An existing entry whose name is exactly a name's text is that entry, whatever its suffix:
// `x@v2` created as a name stays a name (and `x`'s version 2 is then reached by its time).
// The check is the lookup every name takes anyway.

import { errors, FffsError } from '../errors.js'
import type { Client } from '../client/client.js'
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

/** How the nodes at and below a place are read. */
export type Cut =
  | { readonly kind: 'live' }
  | { readonly kind: 'platform'; readonly stamp: HlcStamp } // also versions and snapshots
  | { readonly kind: 'sensor'; readonly sensorUs: number; readonly structureStamp: HlcStamp }

/** What a name resolves to: what the kernel's node for it stands for. */
export type Place =
  /** A node of the live tree: its attributes are read anew each time. */
  | { readonly kind: 'live'; readonly ino: Ino }
  /**
   * A node at a stable cut: its attributes never change, and names below it resolve at the same
   * cut. `sensorWrite`: it was named `P@sensor:T` in the live directory `dir` (a write through it writes P).
   */
  | { readonly kind: 'frozen'; readonly attr: Attr; readonly cut: Cut; readonly sensorWrite?: { readonly dir: Ino; readonly name: string } }
  /**
   * `P@sensor:T` in the live directory `dir` while a write through it may come
   * (sensorWriteInProgress): the live P (`name`) until T (`sensorUs`) can no longer be written,
   * then P at the sensor cut.
   */
  | { readonly kind: 'sensorWrite'; readonly dir: Ino; readonly name: string; readonly sensorUs: number }
  | { readonly kind: 'snapshots' } // /.snapshot
  | { readonly kind: 'times' } // /.at

export const LIVE_ROOT: Place = { kind: 'live', ino: ROOT_INO }

/**
 * How long a name's binding to its place may be trusted: 'stable' as long as the place (a
 * frozen place for ever, a live one until the tree changes); 'relative' not at all (`f@-5m`
 * names another cut at the next call); 'rebindable' briefly (a snapshot name can be deleted
 * and pinned again by another process); 'provisional' not at all (`P@sensor:T` while T may
 * still be written).
 */
export type NameTrust = 'stable' | 'relative' | 'rebindable' | 'provisional'

/** One step of resolution: the place a name names, its attributes now (null for /.snapshot and /.at). */
export interface Step {
  readonly place: Place
  readonly attr: Attr | null
  readonly trust: NameTrust
  /** The name with its relative spec made absolute (`f@-5m` -> `f@2026-12-07T05:55:00.000000Z`), as resolved now; null when it has none. */
  readonly anchoredName: string | null
}

/** How a resolution waits for its cut: up to --max-wait, EAGAIN at once, or not at all (provisional: `fffs cut`). */
export type Waiting = 'block' | 'nonBlocking' | 'provisional'

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

/** An entry of a directory listing: its name and node, and the node's attributes when the listing read them already (a sensor cut's). */
export interface DirEntry {
  readonly name: string
  readonly ino: Ino
  readonly attr?: Attr
}

/** A path resolved for the control socket: the place, its attributes (null for /.snapshot and /.at), the path with its relative spec made absolute (null: none). */
export interface Resolved {
  readonly place: Place
  readonly attr: Attr | null
  readonly anchoredPath: string | null
}

function component(text: string, nowUs: number): PathComponent {
  try {
    return { text, suffix: splitNameSpec(text, nowUs) }
  } catch (err) {
    if (err instanceof FffsError) return { text, suffix: { malformed: err } }
    throw err
  }
}

/** `/.snapshot` and `/.at` are names in the mount root only. */
function virtualDirNamed(name: string): Place | null {
  if (name === SNAPSHOT_DIR) return { kind: 'snapshots' }
  if (name === AT_DIR) return { kind: 'times' }
  return null
}

/** Parses a path's syntax (relative specs resolve against `nowUs`); which components are specs is decided against the tree. */
export function parsePath(path: string, nowUs: number = wallClockUs()): ParsedPath {
  const parts = path.split('/').filter((part) => part !== '')
  const below = (from: number): PathComponent[] => parts.slice(from).map((text) => component(text, nowUs))
  const virtual = parts[0] === undefined ? null : virtualDirNamed(parts[0])
  if (virtual?.kind === 'snapshots') return { text: path, root: parts.length === 1 ? { kind: 'snapshots' } : { kind: 'snapshot', name: parts[1]! }, components: below(2) }
  if (virtual?.kind === 'times') return { text: path, root: parts.length === 1 ? { kind: 'times' } : { kind: 'at', spec: parseSpecArgument(parts[1]!, nowUs) }, components: below(2) }
  return { text: path, root: { kind: 'live' }, components: below(0) }
}

/** Whether a name may be a sensor-time write: T is still writable, or this mount writes P at T (Resolver's `writingAt`). */
export interface SensorWrites {
  readonly sensorLagMaxUs: number
  readonly nowUs: () => number
  readonly writingAt: (ino: Ino, sensorUs: number) => boolean
}

/** What the mount knows of live directories' entries (knownNodes.ts). */
export interface KnownChildren {
  /** The node named `name` in live directory `dir`: its attributes; null when the directory's entries are known and none has that name; undefined when not known. */
  child(dir: Ino, name: string): Attr | null | undefined
}

export class Resolver {
  private readonly client: Client
  private readonly options: TimeOptions
  private readonly sensorWrites: SensorWrites | null

  /**
   * `sensorWrites`: for the kernel's lookups, which answer `P@sensor:T` without waiting while it
   * may be written (sensorWrite); null: always resolve the cut. `known`: live entries the mount
   * knows, answered without asking the client (null: every step asks).
   */
  constructor(client: Client, options: TimeOptions, sensorWrites: SensorWrites | null = null, private readonly known: KnownChildren | null = null) {
    this.client = client
    this.options = options
    this.sensorWrites = sensorWrites
  }

  // ---------------------------------------------------------------- one step

  /**
   * The place `name` names in `parent`; null when nothing has that name. `parentAttr`: the
   * parent's attributes when known (a name in a live node that is not a directory is ENOTDIR).
   */
  async lookup(parent: Place, name: string, waiting: Waiting = 'block', parentAttr: Attr | null = null): Promise<Step | null> {
    const nowUs = wallClockUs()
    switch (parent.kind) {
      case 'snapshots':
        return this.snapshotRoot(name, waiting)
      case 'times':
        return this.atRoot(parseSpecArgument(name, nowUs), name, waiting)
      case 'sensorWrite':
        throw errors.notDir(name)
      case 'frozen':
        return this.frozenStep(parent, component(name, nowUs))
      case 'live': {
        if (parent.ino === ROOT_INO) {
          const virtual = virtualDirNamed(name)
          if (virtual !== null) return { place: virtual, attr: null, trust: 'stable', anchoredName: null }
        }
        return this.liveStep(parent.ino, parentAttr, component(name, nowUs), waiting)
      }
    }
  }

  /** A name in a live directory: the live entry of that exact name, else the name's spec resolved at its cut. */
  private async liveStep(dir: Ino, dirAttr: Attr | null, name: PathComponent, waiting: Waiting): Promise<Step | null> {
    if (dirAttr !== null && dirAttr.kind !== 'dir') throw errors.notDir(name.text)
    const known = this.known?.child(dir, name.text)
    const live = known !== undefined ? known : await this.client.child(dir, name.text, HLC_MAX)
    if (live !== null) return { place: { kind: 'live', ino: live.ino }, attr: live, trust: 'stable', anchoredName: null }
    const suffix = name.suffix
    if (suffix === null) return null
    if ('malformed' in suffix) throw suffix.malformed
    if (suffix.spec.kind === 'sensor' && this.sensorWrites !== null) {
      const writing = await this.sensorWriteInProgress(dir, suffix.name, suffix.spec.timeUs)
      if (writing === 'absent') return null // a write creates it; nothing waits for a cut
      if (writing !== null) return { place: { kind: 'sensorWrite', dir, name: suffix.name, sensorUs: suffix.spec.timeUs }, attr: writing, trust: 'provisional', anchoredName: null }
    }
    return this.specStep(dir, name.text, suffix, waiting)
  }

  /** `name@SPEC` in the live directory `dir`, resolved at the spec's cut (waited for). */
  async specStep(dir: Ino, text: string, split: NameSpec, waiting: Waiting): Promise<Step | null> {
    // `f@v2@v1` with no entry named `f@v2`: two specs in one name.
    const twoSpecs = (): FffsError | null => (component(split.name, wallClockUs()).suffix !== null ? errors.malformedSpec(text, 'more than one @SPEC (a path names one cut)') : null)
    let cut: Cut
    let attr: Attr | null
    try {
      cut = await this.cutOf(split.spec, dir, split.name, waiting, text)
      attr = await this.child(dir, split.name, cut)
    } catch (err) {
      throw (isNotFound(err) ? twoSpecs() : null) ?? err
    }
    if (attr === null) {
      const err = twoSpecs()
      if (err !== null) throw err
      return null
    }
    // Opened for writing, `P@sensor:T` writes P at sensor time T (nodeTarget), also once T is past (then refused as late).
    const sensorWrite = split.spec.kind === 'sensor' ? { sensorWrite: { dir, name: split.name } } : {}
    return { place: { kind: 'frozen', attr, cut, ...sensorWrite }, attr, trust: split.relative ? 'relative' : 'stable', anchoredName: split.relative ? `${split.name}@${formatTimeSpec(split.spec)}` : null }
  }

  /** A name below a cut: an entry at the cut; a spec-shaped name that is none is a second @SPEC (EINVAL). */
  private async frozenStep(parent: Extract<Place, { kind: 'frozen' }>, name: PathComponent): Promise<Step | null> {
    if (parent.attr.kind !== 'dir') throw errors.notDir(name.text)
    const attr = await this.child(parent.attr.ino, name.text, parent.cut)
    if (attr === null) {
      if (name.suffix === null) return null
      if ('malformed' in name.suffix) throw name.suffix.malformed
      throw errors.malformedSpec(name.text, `more than one @SPEC: '${name.text}' below a cut (a path names one cut)`)
    }
    return { place: { kind: 'frozen', attr, cut: parent.cut }, attr, trust: 'stable', anchoredName: null }
  }

  /** `/.snapshot/NAME`: the mount root at the snapshot's cut. */
  private async snapshotRoot(name: string, waiting: Waiting): Promise<Step | null> {
    const snapshot = await this.client.snapshot(name)
    if (snapshot === null) return null
    const stamp = BigInt(snapshot.at)
    await this.waitStable(stamp, waiting)
    const cut: Cut = { kind: 'platform', stamp }
    const attr = await this.rootAt(cut)
    return { place: { kind: 'frozen', attr, cut }, attr, trust: 'rebindable', anchoredName: null }
  }

  /** `/.at/SPEC`: the mount root at the cut (its own history for `vN`). */
  private async atRoot(parsed: ParsedSpec, text: string, waiting: Waiting): Promise<Step> {
    const cut = await this.cutOf(parsed.spec, null, '', waiting, text)
    const attr = await this.rootAt(cut)
    return { place: { kind: 'frozen', attr, cut }, attr, trust: parsed.relative ? 'relative' : 'stable', anchoredName: parsed.relative ? formatTimeSpec(parsed.spec) : null }
  }

  /** A place's attributes now: a live node's as they are, a frozen node's at its cut; null for /.snapshot and /.at. */
  async attrOf(place: Place): Promise<Attr | null> {
    switch (place.kind) {
      case 'live': {
        const attr = await this.client.attr(place.ino, HLC_MAX)
        if (attr === null) throw errors.notFound(`inode ${place.ino}`)
        return attr
      }
      case 'frozen':
        return place.attr
      case 'sensorWrite':
        return (await this.sensorWriteStep(place)).attr
      case 'snapshots':
      case 'times':
        return null
    }
  }

  // ---------------------------------------------------------------- sensor-time writes

  /**
   * `P@sensor:T` in a live directory while a write through it may come, answered without
   * waiting for the sensor cut: while this mount writes P at T, or while T is still open for
   * writes (not older than now − Δ, so the cut cannot be stable yet): the live file P, or
   * 'absent' when there is none (the kernel then creates it). The kernel looks a name up before
   * it opens or creates it, and a lookup that waited for T + Δ + 2δ would make every write at T
   * late. A reader of an existing P gets the frozen version from open, which waits; only this
   * provisional answer is early. Null: resolve the cut as usual (P is a directory, or T is past).
   */
  private async sensorWriteInProgress(dir: Ino, name: string, sensorUs: number): Promise<Attr | 'absent' | null> {
    const writes = this.sensorWrites
    if (writes === null) return null
    const live = await this.client.child(dir, name, HLC_MAX)
    if (live !== null && live.kind !== 'file') return null
    const writable = sensorUs >= writes.nowUs() - writes.sensorLagMaxUs
    if (!writable && (live === null || !writes.writingAt(live.ino, sensorUs))) return null
    return live ?? 'absent'
  }

  /** What a `P@sensor:T` node stands for now: the live P while it may be written (this place), else P at the sensor cut. */
  async sensorWriteStep(place: Extract<Place, { kind: 'sensorWrite' }>): Promise<Step> {
    const writing = await this.sensorWriteInProgress(place.dir, place.name, place.sensorUs)
    if (writing === 'absent') throw errors.notFound(place.name)
    return writing !== null ? { place, attr: writing, trust: 'provisional', anchoredName: null } : this.sensorRead(place, 'block')
  }

  /** The frozen file `P@sensor:T` names once it is read (an open for reading waits for the sensor cut). */
  async sensorRead(place: Extract<Place, { kind: 'sensorWrite' }>, waiting: Waiting): Promise<Step> {
    const spec = { kind: 'sensor' as const, timeUs: place.sensorUs }
    const step = await this.specStep(place.dir, `${place.name}@${formatTimeSpec(spec)}`, { name: place.name, spec, relative: false }, waiting)
    if (step === null) throw errors.notFound(place.name)
    return step
  }

  // ---------------------------------------------------------------- what mutations may change (EROFS decided here)

  /**
   * The live node an operation changes (attributes, xattrs, bytes). Any place that is not live
   * is read-only (EROFS). `writing`: opened for writing, where `P@sensor:T` writes the live P
   * stamped with sensor time T.
   */
  async nodeTarget(place: Place, writing: boolean, what: string): Promise<{ attr: Attr; sensorUs?: number }> {
    if (place.kind === 'live' || !writing) return { attr: (await this.attrOf({ kind: 'live', ino: liveIno(place, what) }))! }
    const sensorWrite = !writing ? null : place.kind === 'sensorWrite' ? place : place.kind === 'frozen' && place.sensorWrite !== undefined && place.cut.kind === 'sensor' ? { ...place.sensorWrite, sensorUs: place.cut.sensorUs } : null
    if (sensorWrite === null) throw errors.readOnlyTimePath(what)
    const live = await this.client.child(sensorWrite.dir, sensorWrite.name, HLC_MAX)
    if (live === null) throw errors.notFound(sensorWrite.name)
    return { attr: live, sensorUs: sensorWrite.sensorUs }
  }

  /**
   * The live directory and name an operation binds or unbinds (create, mkdir, symlink, link's
   * new name, unlink, rmdir, either end of a rename). Any other place is read-only (EROFS).
   * `creating`: the name may be new; a name ending in `@v<N>` may then be created (the
   * kernel's lookup found no version N), and a create of `P@sensor:T` creates P (`sensorUs`).
   */
  async entryTarget(parent: Place, name: string, creating: boolean): Promise<{ dir: Ino; name: string; sensorUs?: number }> {
    if (parent.kind !== 'live') throw errors.readOnlyTimePath(name)
    if (parent.ino === ROOT_INO && virtualDirNamed(name) !== null) throw errors.readOnlyTimePath(name)
    const { suffix } = component(name, wallClockUs())
    if (suffix === null || (await this.client.lookup(parent.ino, name, HLC_MAX)) !== null) return { dir: parent.ino, name }
    if ('malformed' in suffix) throw suffix.malformed
    if (creating && suffix.spec.kind === 'version') return { dir: parent.ino, name }
    if (creating && suffix.spec.kind === 'sensor') return { dir: parent.ino, name: suffix.name, sensorUs: suffix.spec.timeUs }
    throw errors.readOnlyTimePath(name)
  }

  // ---------------------------------------------------------------- directories

  /** The entries of a directory place (`.` and `..` left out); /.snapshot lists the snapshots (no node: ino 0), /.at nothing. */
  async entries(place: Place): Promise<DirEntry[]> {
    switch (place.kind) {
      case 'snapshots':
        return (await this.client.snapshots()).map((s) => ({ name: s.name, ino: 0 }))
      case 'times':
        return []
      case 'sensorWrite':
        throw errors.notDir(place.name)
      case 'live':
        return this.client.readdir(place.ino, HLC_MAX)
      case 'frozen': {
        const { attr, cut } = place
        if (attr.kind !== 'dir') throw errors.notDir(`inode ${attr.ino}`)
        const entries = await this.client.readdir(attr.ino, structureStamp(cut))
        if (cut.kind !== 'sensor') return entries
        // At a sensor cut, a file with no version at or before T is absent.
        const present = await Promise.all(entries.map(async (e) => ({ ...e, attr: await this.atCut(e.ino, cut) })))
        return present.filter((e): e is DirEntry & { attr: Attr } => e.attr !== null)
      }
    }
  }

  /**
   * The steps to listed entries of a directory place, their attributes read together (one
   * round trip in a group); null for an entry that names no node to hand the kernel (a
   * snapshot, whose cut a listing does not wait for; one gone since it was listed).
   */
  async entrySteps(place: Place, entries: readonly DirEntry[]): Promise<Array<Step | null>> {
    if (place.kind !== 'live' && place.kind !== 'frozen') return entries.map(() => null)
    const cut = place.kind === 'frozen' ? place.cut : ({ kind: 'live' } as const)
    const missing = entries.filter((e) => e.attr === undefined)
    const fetched = cut.kind === 'sensor' || missing.length === 0 ? [] : await this.client.attrs(missing.map((e) => e.ino), cut.kind === 'live' ? HLC_MAX : cut.stamp)
    const attrOf = new Map(missing.map((e, i) => [e, fetched[i] ?? null]))
    return entries.map((e) => {
      const attr = e.attr ?? attrOf.get(e) ?? null
      if (attr === null) return null
      return { place: cut.kind === 'live' ? { kind: 'live', ino: attr.ino } : { kind: 'frozen', attr, cut }, attr, trust: 'stable', anchoredName: null }
    })
  }

  // ---------------------------------------------------------------- paths (the control socket)

  /** Resolves a path from the mount root, step by step, as the kernel does. ENOENT when a name is missing. */
  async resolve(parsed: ParsedPath, waiting: Waiting = 'block'): Promise<Resolved> {
    let place: Place
    let attr: Attr | null
    const anchored: string[] = []
    let relative = false
    const root = parsed.root
    switch (root.kind) {
      case 'snapshots':
      case 'times':
        place = { kind: root.kind }
        attr = null
        anchored.push(root.kind === 'snapshots' ? SNAPSHOT_DIR : AT_DIR)
        break
      case 'snapshot': {
        const step = await this.snapshotRoot(root.name, waiting)
        if (step === null) throw errors.notFound(`${SNAPSHOT_DIR}/${root.name}`)
        ;({ place, attr } = step)
        anchored.push(SNAPSHOT_DIR, root.name)
        break
      }
      case 'at': {
        const step = await this.atRoot(root.spec, parsed.text, waiting)
        ;({ place, attr } = step)
        relative = step.anchoredName !== null
        anchored.push(AT_DIR, step.anchoredName ?? formatTimeSpec(root.spec.spec))
        break
      }
      case 'live':
        place = LIVE_ROOT
        attr = await this.attrOf(place)
        break
    }
    for (const c of parsed.components) {
      const step = place.kind === 'live' ? await this.liveStep(place.ino, attr, c, waiting) : place.kind === 'frozen' ? await this.frozenStep(place, c) : null
      if (step === null) throw errors.notFound(parsed.text)
      ;({ place, attr } = step)
      relative ||= step.anchoredName !== null
      anchored.push(step.anchoredName ?? c.text)
    }
    return { place, attr, anchoredPath: relative ? '/' + anchored.join('/') : null }
  }

  /** The directory (null: the mount root has no name) and name whose history `fffs log PATH` lists; `PATH@SPEC` is PATH's. */
  async historyTarget(parsed: ParsedPath): Promise<{ dir: Ino | null; name: string }> {
    const n = parsed.components.length
    if (n === 0) {
      if (parsed.root.kind === 'live' || parsed.root.kind === 'snapshot' || parsed.root.kind === 'at') return { dir: null, name: '' }
      throw errors.invalid(`${parsed.text} is a virtual directory: it has no history`)
    }
    const parent = await this.resolve({ ...parsed, components: parsed.components.slice(0, n - 1) })
    if (parent.attr === null) throw errors.notFound(parsed.text)
    if (parent.attr.kind !== 'dir') throw errors.notDir(parsed.text)
    const last = parsed.components[n - 1]!
    if (last.suffix === null || (await this.client.lookup(parent.attr.ino, last.text, HLC_MAX)) !== null) return { dir: parent.attr.ino, name: last.text }
    if ('malformed' in last.suffix) throw last.suffix.malformed
    return { dir: parent.attr.ino, name: last.suffix.name }
  }

  // ---------------------------------------------------------------- cuts

  private async waitStable(stamp: HlcStamp, waiting: Waiting): Promise<void> {
    if (waiting === 'provisional') return
    await this.client.waitStable(stamp, waiting === 'nonBlocking' ? 0 : this.options.maxWaitMs)
  }

  /**
   * The cut a spec names, waited for. `dir`/`name`: whose history `v<N>` counts in (dir null:
   * the mount root's own). A version's cut is its row's stamp, waited for like any other.
   */
  private async cutOf(spec: TimeSpec, dir: Ino | null, name: string, waiting: Waiting, text: string): Promise<Cut> {
    switch (spec.kind) {
      case 'platform': {
        const stamp = hlcCeilingOfUs(spec.timeUs)
        await this.waitStable(stamp, waiting)
        return { kind: 'platform', stamp }
      }
      case 'sensor': {
        const structureStamp = hlcCeilingOfUs(spec.timeUs + this.options.sensorLagMaxUs + 2 * this.options.clockSkewMaxUs)
        await this.waitStable(structureStamp, waiting)
        return { kind: 'sensor', sensorUs: spec.timeUs, structureStamp }
      }
      case 'version': {
        const history = await NameHistory.of(this.client, dir, name)
        const row = await history.row(spec.version)
        const what = dir === null ? 'the mount root' : name
        if (row === null) throw errors.notFound(`${text}: ${what} has ${history.total} version${history.total === 1 ? '' : 's'} (fffs log lists them)`)
        if (row.attr === null) throw errors.notFound(`${text}: version ${spec.version} of ${what} is its ${row.change === 'renamed away' ? 'rename to another name' : 'removal'}`)
        await this.waitStable(row.stamp, waiting)
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

  /** The node called `name` in directory `dir` at the cut, or null. */
  private async child(dir: Ino, name: string, cut: Cut): Promise<Attr | null> {
    if (cut.kind !== 'sensor') return this.client.child(dir, name, cut.kind === 'live' ? HLC_MAX : cut.stamp)
    const ino = await this.client.lookup(dir, name, cut.structureStamp)
    return ino === null ? null : this.atCut(ino, cut)
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
}

function isNotFound(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'ENOENT'
}

/**
 * The inode of a live place, for a change addressed to it (setattr, a link's source, xattrs):
 * a place of a time path is read-only (EROFS); a past version is not an inode.
 */
export function liveIno(place: Place, what: string): Ino {
  if (place.kind !== 'live') throw errors.readOnlyTimePath(what)
  return place.ino
}

/** The stamp the directory structure is read at. */
export function structureStamp(cut: Cut): HlcStamp {
  return cut.kind === 'live' ? HLC_MAX : cut.kind === 'platform' ? cut.stamp : cut.structureStamp
}

/** Names a cut: two places are the same node when they name the same node at the same cut. */
export function cutKey(cut: Cut): string {
  switch (cut.kind) {
    case 'live':
      return 'live'
    case 'platform':
      return `p${cut.stamp}`
    case 'sensor':
      return `s${cut.sensorUs}/${cut.structureStamp}`
  }
}
