// `fffs diff A B` (each PATH@SPEC or a live PATH): for two trees, the entries added, removed and
// changed between them (a file is unchanged when both cuts show the same version of it, or the
// same bytes and permission bits); for
// two files, a unified diff of their bytes by the system `diff` (`Binary files ... differ` for
// binary ones), read through the mount at the pinned cuts.

import { spawn } from 'node:child_process'
import type { EntryInfo } from '../control/server.js'
import { errors, FffsError } from '../errors.js'
import { print, table, writeOut } from './output.js'
import { fsPath, sameContent, timedTarget, walkTree, type TimedTarget, type Tree } from './tree.js'

export interface DiffOptions {
  json?: boolean
  nameOnly?: boolean
}

interface Side {
  readonly version: number
  readonly kind: string
  readonly sizeBytes: number
  readonly mode: string // permission bits, octal
  readonly time: string
}

export interface TreeDiff {
  readonly a: string
  readonly b: string
  readonly added: Array<{ path: string } & Side>
  readonly removed: Array<{ path: string } & Side>
  readonly changed: Array<{ path: string; from: Side; to: Side }>
}

const side = (e: EntryInfo): Side => ({ version: e.version, kind: e.kind, sizeBytes: e.sizeBytes, mode: e.mode.toString(8), time: e.time })
const shown = (relative: string, e: EntryInfo): string => (relative === '' ? '.' : relative) + (e.kind === 'dir' ? '/' : '')

/** Added, removed and changed entries from tree `a` (files at `aPath(relative)`) to tree `b`; a change is of content or permission bits. */
export async function diffTrees(aLabel: string, a: Tree, aPath: (relative: string) => string, bLabel: string, b: Tree, bPath: (relative: string) => string): Promise<TreeDiff> {
  const diff: TreeDiff = { a: aLabel, b: bLabel, added: [], removed: [], changed: [] }
  for (const [relative, before] of a) {
    const after = b.get(relative)
    if (after === undefined) diff.removed.push({ path: shown(relative, before), ...side(before) })
    else if (after.mode !== before.mode || !(await sameContent(before, aPath(relative), after, bPath(relative)))) diff.changed.push({ path: shown(relative, after), from: side(before), to: side(after) })
  }
  for (const [relative, after] of b) if (!a.has(relative)) diff.added.push({ path: shown(relative, after), ...side(after) })
  return diff
}

function change(from: Side, to: Side): string {
  if (from.kind !== to.kind) return `${from.kind} -> ${to.kind}`
  const what = [`v${from.version} -> v${to.version}`]
  if (from.sizeBytes !== to.sizeBytes) what.push(`${from.sizeBytes} -> ${to.sizeBytes} bytes`)
  if (from.mode !== to.mode) what.push(`mode ${from.mode} -> ${to.mode}`)
  return what.join(', ')
}

function renderTreeDiff(d: TreeDiff): string {
  const rows: Array<[string, string, string]> = [
    ...d.added.map((e): [string, string, string] => [e.path, 'A', `${e.kind}, ${e.sizeBytes} bytes`]),
    ...d.removed.map((e): [string, string, string] => [e.path, 'D', `${e.kind}, ${e.sizeBytes} bytes`]),
    ...d.changed.map((e): [string, string, string] => [e.path, 'M', change(e.from, e.to)]),
  ].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  const head = `${d.a} -> ${d.b}: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed\n`
  return rows.length === 0 ? head : head + table(rows.map(([p, letter, what]) => [letter, p, what]))
}

const labelOf = (t: TimedTarget): string => (t.specText === null ? t.live : `${t.live}@${t.specText}`)

/** Runs the system diff on two files; resolves with its exit code (0 same, 1 different). */
function systemDiff(aPath: string, aLabel: string, bPath: string, bLabel: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('diff', ['-u', '--label', aLabel, '--label', bLabel, aPath, bPath], { stdio: ['ignore', 'inherit', 'inherit'] })
    child.once('error', (err) => reject(new FffsError('EIO', `cannot run diff: ${err.message}`)))
    child.once('exit', (code, signal) => resolve(code ?? (signal !== null ? 2 : 0)))
  })
}

export async function runDiff(aArg: string, bArg: string, opts: DiffOptions): Promise<void> {
  const a = timedTarget(aArg)
  const b = timedTarget(bArg)
  const [aLabel, bLabel] = [labelOf(a), labelOf(b)]
  const [aTree, bTree] = [await walkTree(a.mountpoint, a.timed, aLabel), await walkTree(b.mountpoint, b.timed, bLabel)]
  if (!aTree.has('')) throw errors.notFound(`${aArg}: nothing there${a.specText === null ? '' : ' at this cut'}`)
  if (!bTree.has('')) throw errors.notFound(`${bArg}: nothing there${b.specText === null ? '' : ' at this cut'}`)
  const [aRoot, bRoot] = [aTree.get('')!, bTree.get('')!]
  if (aRoot.kind === 'dir' && bRoot.kind === 'dir') {
    const diff = await diffTrees(aLabel, aTree, (r) => fsPath(a.mountpoint, a.timed, r), bLabel, bTree, (r) => fsPath(b.mountpoint, b.timed, r))
    print(opts.json === true, diff, () => renderTreeDiff(diff))
    return
  }
  if (aRoot.kind === 'dir' || bRoot.kind === 'dir') throw errors.invalid(`${aArg} is a ${aRoot.kind} and ${bArg} a ${bRoot.kind}: diff compares two files or two directories`)
  const [aFile, bFile] = [fsPath(a.mountpoint, a.timed), fsPath(b.mountpoint, b.timed)]
  const same = await sameContent(aRoot, aFile, bRoot, bFile)
  if (opts.json === true || opts.nameOnly === true) {
    const result = { a: aLabel, b: bLabel, same, from: side(aRoot), to: side(bRoot) }
    print(opts.json === true, result, () => (same ? '' : `${aLabel} and ${bLabel} differ (v${aRoot.version}, ${aRoot.sizeBytes} bytes -> v${bRoot.version}, ${bRoot.sizeBytes} bytes)\n`))
    return
  }
  if (same) return
  if (aRoot.kind === 'symlink' || bRoot.kind === 'symlink') {
    await writeOut(`${aLabel} -> ${aRoot.target ?? '?'}\n${bLabel} -> ${bRoot.target ?? '?'}\n`)
    return
  }
  const code = await systemDiff(aFile, aLabel, bFile, bLabel)
  if (code > 1) throw new FffsError('EIO', `diff failed (exit code ${code})`)
}
