// A file or tree inside a mount as of a cut, for `fffs restore` and `fffs diff`: the argument
// PATH@SPEC pinned to an absolute instant (a relative SPEC means the moment of the call, not of
// each later read), and the tree listed through the mount's control socket.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { locate, request } from '../control/client.js'
import type { EntryInfo } from '../control/server.js'
import { isFffsError } from '../errors.js'
import { formatTimeSpec, splitNameSpec, type TimeSpec } from '../temporal/spec.js'
import { usageError } from './args.js'
import { Progress } from './progress.js'

export interface TimedTarget {
  /** As the user wrote it. */
  readonly arg: string
  readonly mountpoint: string
  /** The path inside the mount without the spec: what is there now ('/a/b'). */
  readonly live: string
  /** The path inside the mount with the spec pinned ('/a@2026-11-21T10:00:00.000000Z/b'); `live` without a spec. */
  readonly timed: string
  readonly spec: TimeSpec | null
  /** The pinned spec (canonical form), or null without one. */
  readonly specText: string | null
}

/**
 * Parses `PATH[@SPEC]` inside a mount; a malformed spec, or two, is a usage error. The reading is
 * the grammar's (src/temporal/spec.ts): a component whose text after its last '@' is a spec
 * names a cut. The mount lets an existing entry of that exact name win (`x@v2` when x has no
 * version 2); restore and diff always take the spec reading.
 */
export function timedTarget(arg: string): TimedTarget {
  const { mountpoint, inner } = locate(arg)
  const nowUs = Date.now() * 1000 // one instant for every relative spec of this argument
  const components = inner.split('/').filter((c) => c !== '')
  let specAt = -1
  let spec: TimeSpec | null = null
  const names: string[] = []
  try {
    components.forEach((component, i) => {
      const split = splitNameSpec(component, nowUs)
      if (split === null) return void names.push(component)
      if (spec !== null) throw usageError(`${arg}: more than one @SPEC in the path`)
      spec = split.spec
      specAt = i
      names.push(split.name)
    })
  } catch (err) {
    if (isFffsError(err)) throw usageError(`${arg}: ${err.message}`)
    throw err
  }
  const live = '/' + names.join('/')
  if (spec === null) return { arg, mountpoint, live, timed: live, spec: null, specText: null }
  const specText = formatTimeSpec(spec)
  const timed = '/' + names.map((c, i) => (i === specAt ? `${c}@${specText}` : c)).join('/')
  return { arg, mountpoint, live, timed, spec, specText }
}

/** The path of `inner` (a path inside the mount) in the file system, plus `relative` below it. */
export function fsPath(mountpoint: string, inner: string, relative = ''): string {
  return path.join(mountpoint, inner, relative)
}

/** Entries by path relative to the root ('' is the root itself); parents before children. */
export type Tree = Map<string, EntryInfo>

/** The node at `inner` (with or without a spec), or null when there is none. */
export async function statAt(mountpoint: string, inner: string): Promise<EntryInfo | null> {
  try {
    return await request<EntryInfo>(mountpoint, { op: 'stat', path: inner })
  } catch (err) {
    if (isFffsError(err) && err.code === 'ENOENT') return null
    throw err
  }
}

/** Every node at and below `inner`, or an empty tree when there is nothing there. One request per directory. */
export async function walkTree(mountpoint: string, inner: string, label: string): Promise<Tree> {
  const tree: Tree = new Map()
  const root = await statAt(mountpoint, inner)
  if (root === null) return tree
  tree.set('', root)
  if (root.kind !== 'dir') return tree
  const progress = new Progress(`listing ${label}`, null, { unit: 'entries' })
  const pending = ['']
  while (pending.length > 0) {
    const dir = pending.shift()!
    const { entries } = await request<{ entries: EntryInfo[] }>(mountpoint, { op: 'ls', path: dir === '' ? inner : `${inner}/${dir}` })
    for (const entry of entries) {
      const relative = dir === '' ? entry.name : `${dir}/${entry.name}`
      tree.set(relative, entry)
      if (entry.kind === 'dir') pending.push(relative)
    }
    progress.update(tree.size)
  }
  return tree
}

/** True when both are the same version of the same content (no bytes need reading to know). */
export function sameVersion(a: EntryInfo, b: EntryInfo): boolean {
  return a.kind === b.kind && a.stamp === b.stamp && a.contentStamp === b.contentStamp && a.sizeBytes === b.sizeBytes && a.target === b.target
}

const COMPARE_CHUNK_BYTES = 256 * 1024

/** True when two files hold the same bytes (read through the mount, stopping at the first difference). */
export async function sameBytes(aPath: string, bPath: string): Promise<boolean> {
  const [a, b] = await Promise.all([fsp.open(aPath, 'r'), fsp.open(bPath, 'r')])
  try {
    const [bufA, bufB] = [Buffer.alloc(COMPARE_CHUNK_BYTES), Buffer.alloc(COMPARE_CHUNK_BYTES)]
    for (let at = 0; ; at += COMPARE_CHUNK_BYTES) {
      const [readA, readB] = await Promise.all([a.read(bufA, 0, COMPARE_CHUNK_BYTES, at), b.read(bufB, 0, COMPARE_CHUNK_BYTES, at)])
      if (readA.bytesRead !== readB.bytesRead || !bufA.subarray(0, readA.bytesRead).equals(bufB.subarray(0, readB.bytesRead))) return false
      if (readA.bytesRead < COMPARE_CHUNK_BYTES) return true
    }
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

/**
 * True when two entries hold the same content: the same version, or two files (or symlinks) of
 * one size whose bytes compare equal (a file restored or rewritten with what it had). The
 * permission bits are not content: callers compare `mode` themselves.
 */
export async function sameContent(a: EntryInfo, aPath: string, b: EntryInfo, bPath: string): Promise<boolean> {
  if (a.kind !== b.kind) return false
  if (sameVersion(a, b) || a.kind === 'dir') return true
  if (a.kind === 'symlink') return a.target === b.target
  return a.sizeBytes === b.sizeBytes && sameBytes(aPath, bPath)
}
