// `fffs restore PATH@SPEC [--to DEST]`: a file or tree brought back as it was at SPEC, read
// through the mount at the pinned cut. In place, each file whose bytes differ is written again
// (one new version per file: a tree's restore is not one atomic step), permission bits are set
// back, entries made since are removed (their history stays readable at earlier cuts) and
// files with the same bytes are left alone.
// With --to, a copy at a new path, inside the mount or anywhere.

import { createReadStream, createWriteStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { EntryInfo } from '../control/server.js'
import { errors, FffsError } from '../errors.js'
import { usageError } from './args.js'
import { displayPath, formatBytes, print } from './output.js'
import { Progress } from './progress.js'
import { fsPath, sameContent, timedTarget, walkTree, type Tree } from './tree.js'

const COPY_CHUNK_BYTES = 1024 * 1024

export interface RestoreOptions {
  to?: string
  json?: boolean
}

interface Plan {
  readonly dirs: string[] // to make, parents first
  readonly files: string[] // to write
  readonly links: string[] // symlinks to make
  readonly modes: string[] // existing entries whose permission bits differ
  readonly removals: string[] // live entries absent at the cut, deepest first
  unchanged: number
}

export interface RestoreReport {
  readonly source: string // PATH@SPEC, pinned
  readonly target: string // where it was restored
  readonly inPlace: boolean
  readonly filesWritten: number
  readonly bytesWritten: number
  readonly dirsMade: number
  readonly linksMade: number
  readonly modesSet: number // permission bits set back
  readonly removed: number
  readonly unchanged: number
}

/** What makes `live` (may be empty) equal to `old`; `old` holds at least the root. `same` compares one entry's content in both. */
async function planRestore(old: Tree, live: Tree, same: (relative: string) => Promise<boolean>): Promise<Plan> {
  const plan: Plan = { dirs: [], files: [], links: [], modes: [], removals: [], unchanged: 0 }
  for (const [relative, entry] of old) {
    const now = live.get(relative)
    if (now === undefined || now.kind !== entry.kind) {
      if (now !== undefined) plan.removals.push(relative) // a file where a directory was, or the reverse
      if (entry.kind === 'dir') plan.dirs.push(relative)
      else if (entry.kind === 'symlink') plan.links.push(relative)
      else plan.files.push(relative)
    } else if (!(await same(relative))) {
      if (entry.kind === 'symlink') plan.links.push(relative)
      else plan.files.push(relative)
    } else if (now.mode !== entry.mode && entry.kind !== 'symlink') {
      plan.modes.push(relative)
    } else {
      plan.unchanged++
    }
  }
  for (const relative of live.keys()) if (!old.has(relative)) plan.removals.push(relative)
  // Deepest first, and nothing below a directory that goes anyway.
  const removals = plan.removals.sort((a, b) => b.split('/').length - a.split('/').length)
  const whole = new Set(removals)
  plan.removals.splice(0, plan.removals.length, ...removals.filter((r) => !ancestors(r).some((a) => whole.has(a))))
  return plan
}

function ancestors(relative: string): string[] {
  const parts = relative.split('/')
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))
}

/** Copies one file's bytes (a new version when `to` is in a mount), counting them into `onBytes`. */
async function copyBytes(from: string, to: string, mode: number, onBytes: (n: number) => void): Promise<void> {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length)
      done(null, chunk)
    },
  })
  await pipeline(createReadStream(from, { highWaterMark: COPY_CHUNK_BYTES }), counter, createWriteStream(to, { mode, highWaterMark: COPY_CHUNK_BYTES }))
}

export async function runRestore(arg: string, opts: RestoreOptions): Promise<void> {
  const source = timedTarget(arg)
  if (source.spec === null) throw usageError(`${arg}: name the cut to restore from (PATH@SPEC, e.g. notes.txt@v2 or dir@2026-11-21T10:00:00Z)`)
  if (opts.to === undefined && source.live === '/') throw usageError('restoring the whole mount in place is not supported: restore its directories, or use --to')
  const label = `${source.live}@${source.specText}`
  const old = await walkTree(source.mountpoint, source.timed, label)
  if (!old.has('')) throw errors.notFound(`${label}: nothing there at this cut (the path above the @ is read as it is now)`)
  const from = (relative: string): string => fsPath(source.mountpoint, source.timed, relative)

  let targetRoot: string
  let live: Tree
  if (opts.to !== undefined) {
    targetRoot = path.resolve(opts.to)
    if (await fsp.lstat(targetRoot).then(() => true, () => false)) throw errors.exists(`${opts.to}: --to makes a new path and never overwrites one`)
    live = new Map()
  } else {
    targetRoot = fsPath(source.mountpoint, source.live)
    live = await walkTree(source.mountpoint, source.live, source.live)
    if (old.get('')!.kind !== 'dir' && live.get('')?.kind === 'dir') throw new FffsError('EISDIR', `${displayPath(targetRoot)} is a directory now; restore the file elsewhere with --to`)
  }
  const to = (relative: string): string => (relative === '' ? targetRoot : path.join(targetRoot, relative))
  const entry = (relative: string): EntryInfo => old.get(relative)!
  const plan = await planRestore(old, live, (relative) => sameContent(entry(relative), from(relative), live.get(relative)!, to(relative)))

  for (const relative of plan.removals) await fsp.rm(to(relative), { recursive: true, force: true })
  if (!live.has('')) await fsp.mkdir(path.dirname(targetRoot), { recursive: true }) // a tree deleted since, or DEST's parents
  for (const relative of plan.dirs) await fsp.mkdir(to(relative))
  const totalBytes = plan.files.reduce((sum, relative) => sum + entry(relative).sizeBytes, 0)
  const progress = new Progress(`restoring ${label}`, totalBytes)
  let bytesWritten = 0
  for (const [index, relative] of plan.files.entries()) {
    const { mode } = entry(relative)
    await copyBytes(from(relative), to(relative), mode, (n) => progress.update((bytesWritten += n), `${index}/${plan.files.length} files`))
    // An existing file keeps its mode through the write, a new one loses the umask's bits.
    if (((await fsp.lstat(to(relative))).mode & 0o7777) !== mode) await fsp.chmod(to(relative), mode)
  }
  for (const relative of plan.links) {
    await fsp.rm(to(relative), { force: true })
    await fsp.symlink(entry(relative).target ?? (await fsp.readlink(from(relative))), to(relative))
  }
  // Permission bits last, deepest first: a directory made read-only takes no more entries.
  for (const relative of [...plan.modes, ...plan.dirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    if (((await fsp.lstat(to(relative))).mode & 0o7777) !== entry(relative).mode) await fsp.chmod(to(relative), entry(relative).mode)
  }
  progress.finish(`${plan.files.length} files`, { onlyIfShown: true })

  const report: RestoreReport = {
    source: label,
    target: displayPath(targetRoot),
    inPlace: opts.to === undefined,
    filesWritten: plan.files.length,
    bytesWritten,
    dirsMade: plan.dirs.length,
    linksMade: plan.links.length,
    modesSet: plan.modes.length,
    removed: plan.removals.length,
    unchanged: plan.unchanged,
  }
  print(opts.json === true, report, () => renderRestore(report))
}

function renderRestore(r: RestoreReport): string {
  const done = [`${r.filesWritten} file${r.filesWritten === 1 ? '' : 's'} written (${formatBytes(r.bytesWritten)})`]
  if (r.dirsMade > 0) done.push(`${r.dirsMade} director${r.dirsMade === 1 ? 'y' : 'ies'} made`)
  if (r.linksMade > 0) done.push(`${r.linksMade} symlink${r.linksMade === 1 ? '' : 's'} made`)
  if (r.modesSet > 0) done.push(`${r.modesSet} permission${r.modesSet === 1 ? '' : 's'} set back`)
  if (r.removed > 0) done.push(`${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} made since removed`)
  if (r.unchanged > 0) done.push(`${r.unchanged} unchanged`)
  return `${r.inPlace ? 'restored' : 'copied'} ${r.source} ${r.inPlace ? 'in place at' : 'to'} ${r.target}: ${done.join(', ')}\n`
}
