// The inspection commands: each asks the mount holding a path over its control socket
// (src/control) and prints a table, the bytes, or JSON with --json. What only one command
// needs (the SPEC grammar, the status layout) is loaded by that command.

import path from 'node:path'
import { defaultMount, locate, request } from '../control/client.js'
import type { CutReport, StableChange } from '../control/inspect.js'
import type { EntryInfo, LogReport, VersionInfo } from '../control/server.js'
import { isFffsError } from '../errors.js'
import type { TimeSpec } from '../temporal/spec.js'
import { nonNegativeInt, usageError } from './args.js'
import { formatDuration, print, table, writeOut } from './output.js'

const STATUS_WATCH_MS_DEFAULT = 1_000

/**
 * A SPEC given as an argument or option, in the shared grammar (src/temporal/spec.ts); a
 * malformed one is a usage error. A relative one (`-5m`, `today`) is resolved now, and the CLI
 * says to what: `absolute` is the text sent to the mount.
 */
async function timeSpecArg(text: string, what: string): Promise<{ spec: TimeSpec; absolute: string }> {
  const { formatTimeSpec, parseSpecArgument } = await import('../temporal/spec.js')
  try {
    const { spec, relative } = parseSpecArgument(text)
    const absolute = formatTimeSpec(spec)
    if (relative) process.stderr.write(`fffs: ${what} ${text} is ${absolute}\n`)
    return { spec, absolute }
  } catch (err) {
    if (isFffsError(err)) throw usageError(err.message) // it names the spec and why
    throw err
  }
}

/** Says what a path with a relative spec resolved to (the mount resolves it: an entry of that exact name wins). */
function noteAnchored(target: string, inner: string, anchoredPath: string | null): void {
  if (anchoredPath !== null && anchoredPath !== inner) process.stderr.write(`fffs: ${target} is ${path.join(locate(target).mountpoint, anchoredPath)}\n`)
}

export interface LogOptions {
  gc?: boolean
  mount?: string
  object?: boolean
  since?: string
  until?: string
  limit?: number
  reverse?: boolean
  json?: boolean
}

function logRow(v: VersionInfo): string[] {
  return [String(v.version), v.time, v.sensorTime ?? '-', v.sizeBytes === null ? '-' : String(v.sizeBytes), v.links === null ? '-' : String(v.links), String(v.ino), v.change]
}

export async function runLog(target: string | undefined, opts: LogOptions): Promise<void> {
  if (opts.gc === true) return runGcLog(target, opts)
  if (target === undefined) throw usageError("missing argument 'path' (or --gc)")
  const { mountpoint, inner } = locate(target)
  const report = await request<LogReport>(mountpoint, {
    op: 'log',
    path: inner,
    ...(opts.object === true ? { object: true } : {}),
    ...(opts.since !== undefined ? { since: (await timeSpecArg(opts.since, '--since')).absolute } : {}),
    ...(opts.until !== undefined ? { until: (await timeSpecArg(opts.until, '--until')).absolute } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.reverse === true ? { reverse: true } : {}),
  })
  noteAnchored(target, inner, report.anchoredPath)
  print(opts.json === true, report.rows, () => table([['VERSION', 'TIME', 'SENSOR_TIME', 'SIZE', 'LINKS', 'INODE', 'CHANGE'], ...report.rows.map(logRow)]))
}

interface AuditRow {
  readonly shard?: string
  readonly member?: number
  readonly time: string
  readonly kind: string
  readonly line: string
}

/** `fffs log --gc`: every retention and GC run the mount's stores recorded, oldest first. */
async function runGcLog(target: string | undefined, opts: LogOptions): Promise<void> {
  if (opts.object === true || opts.since !== undefined || opts.until !== undefined || opts.reverse === true) throw usageError('--gc lists the retention audit: it takes --limit, --mount and --json only')
  const mountpoint = target !== undefined ? locate(target).mountpoint : defaultMount(opts.mount)
  const rows = await request<AuditRow[]>(mountpoint, { op: 'gc.log', ...(opts.limit !== undefined ? { limit: opts.limit } : {}) })
  const where = (r: AuditRow): string => [r.shard, r.member === undefined ? undefined : `member ${r.member}`].filter((x) => x !== undefined).join(' ') || '-'
  print(opts.json === true, rows, () => (rows.length === 0 ? 'no retention or GC run yet\n' : table([['TIME', 'WHERE', 'RUN'], ...rows.map((r) => [r.time, where(r), r.line])])))
}

export async function runGc(opts: { dryRun?: boolean; mount?: string; json?: boolean }): Promise<void> {
  const runs = await request<Array<{ shard?: string; member?: number; line: string }>>(defaultMount(opts.mount), { op: 'gc', ...(opts.dryRun === true ? { dryRun: true } : {}) }, 30 * 60_000)
  print(opts.json === true, runs, () => runs.map((r) => `${[r.shard, r.member === undefined ? undefined : `member ${r.member}`].filter((x) => x !== undefined).map((x) => `${x}: `).join('')}${opts.dryRun === true ? 'dry run: ' : ''}${r.line}\n`).join(''))
}

export async function runSnapshotHold(verb: 'hold' | 'release', name: string, tag: string, opts: { mount?: string }): Promise<void> {
  await request(defaultMount(opts.mount), { op: verb === 'hold' ? 'snapshot.hold' : 'snapshot.release', name, tag })
  process.stdout.write(verb === 'hold' ? `snapshot ${name} held (${tag})\n` : `snapshot ${name} released (${tag})\n`)
}

export async function runCat(target: string): Promise<void> {
  const { mountpoint, inner } = locate(target)
  let at = inner // after the first chunk, the path as the mount resolved it: every chunk from one version
  for (let offset = 0; ; ) {
    const chunk = await request<{ sizeBytes: number; anchoredPath: string | null; dataBase64: string }>(mountpoint, { op: 'cat', path: at, offset })
    if (offset === 0 && chunk.anchoredPath !== null) {
      noteAnchored(target, inner, chunk.anchoredPath)
      at = chunk.anchoredPath
    }
    const bytes = Buffer.from(chunk.dataBase64, 'base64')
    if (bytes.length > 0) await writeOut(bytes)
    offset += bytes.length
    if (bytes.length === 0 || offset >= chunk.sizeBytes) break
  }
}

export async function runLs(target: string, opts: { json?: boolean }): Promise<void> {
  const { mountpoint, inner } = locate(target)
  const { anchoredPath, entries } = await request<{ anchoredPath: string | null; entries: EntryInfo[] }>(mountpoint, { op: 'ls', path: inner })
  noteAnchored(target, inner, anchoredPath)
  print(opts.json === true, entries, () => table([['NAME', 'KIND', 'SIZE', 'VERSION', 'TIME'], ...entries.map((e) => [e.name, e.kind, String(e.sizeBytes), String(e.version), e.time])]))
}

export async function runSnapshotCreate(name: string, opts: { at?: string; mount?: string; json?: boolean }): Promise<void> {
  const at = opts.at !== undefined ? (await timeSpecArg(opts.at, '--at')).absolute : undefined
  const created = await request<{ name: string; at: string }>(defaultMount(opts.mount), { op: 'snapshot.create', name, ...(at !== undefined ? { at } : {}) })
  print(opts.json === true, created, () => `snapshot ${created.name} at ${created.at}\n`)
}

export async function runSnapshotList(opts: { mount?: string; json?: boolean }): Promise<void> {
  const list = await request<Array<{ name: string; at: string; spec: string }>>(defaultMount(opts.mount), { op: 'snapshot.list' })
  print(opts.json === true, list, () => table([['NAME', 'AT', 'SPEC'], ...list.map((s) => [s.name, s.at, s.spec])]))
}

export async function runSnapshotDelete(name: string, opts: { mount?: string }): Promise<void> {
  await request(defaultMount(opts.mount), { op: 'snapshot.delete', name })
  process.stdout.write(`deleted snapshot ${name}\n`)
}

function renderCut(report: CutReport): string {
  const what = report.kind === 'sensor' ? `sensor cut ${report.spec}: structure at platform ${report.time} (T + Δ + 2δ)` : `cut ${report.spec}: platform ${report.time}`
  const lines = [`${what} · ${report.stable ? 'stable' : `not stable yet (stable in about ${formatDuration(Math.max(...report.shards.map((s) => s.untilStableMs)))})`}`]
  lines.push(table([['SHARD', 'FRONTIER', 'STABLE'], ...report.shards.map((s) => [s.shard, s.frontier, s.stable ? 'yes' : `in ${formatDuration(s.untilStableMs)}`])]).trimEnd())
  if (report.path !== undefined) {
    const p = report.path
    lines.push(p.version === null ? `${p.path}: absent at this cut` : `${p.path}: version ${p.version} (${p.time}, ${p.sizeBytes} bytes)${p.provisional ? ' — provisional: the cut is not stable yet' : ''}`)
  }
  return lines.join('\n') + '\n'
}

export async function runCut(spec: string, target: string | undefined, opts: { mount?: string; json?: boolean }): Promise<void> {
  // Unknown options reach here as arguments (allowUnknownOption lets `fffs cut -5m` through).
  for (const arg of [spec, target]) if (arg !== undefined && /^-[^\d]/.test(arg)) throw usageError(`unknown option '${arg}'`)
  const { absolute } = await timeSpecArg(spec, 'cut')
  const where = target === undefined ? { mountpoint: defaultMount(opts.mount), inner: undefined } : locate(target)
  const report = await request<CutReport>(where.mountpoint, { op: 'cut', spec: absolute, ...(where.inner !== undefined ? { path: where.inner } : {}) })
  print(opts.json === true, report, () => renderCut(report))
}

export async function runWatch(pattern: string, opts: { since?: string; period: number; count?: number; json?: boolean }): Promise<void> {
  const { mountpoint, inner } = locate(pattern)
  let after: string | undefined
  if (opts.since !== undefined) {
    const { spec: since } = await timeSpecArg(opts.since, '--since')
    if (since.kind !== 'platform') throw usageError(`--since ${opts.since}: give a platform time`)
    const { hlcCeilingOfUs } = await import('../temporal/hlc.js')
    after = hlcCeilingOfUs(since.timeUs).toString()
  }
  let printed = 0
  for (;;) {
    const { frontier, changes } = await request<{ frontier: string; changes: StableChange[] }>(mountpoint, { op: 'changes', pattern: inner, ...(after !== undefined ? { after } : {}) })
    for (const change of changes) {
      // The same mount-relative path in both forms.
      const line = opts.json === true ? JSON.stringify(change) : `${change.time}  ${change.path}  v${change.version}  ${change.sizeBytes}  ${change.change}${change.sensorTime !== null ? `  sensor ${change.sensorTime}` : ''}`
      await writeOut(line + '\n')
      if (opts.count !== undefined && ++printed >= opts.count) return
    }
    after = frontier
    await new Promise((resolve) => setTimeout(resolve, opts.period))
  }
}

export async function runStatus(opts: { mount?: string; json?: boolean; watch?: string | boolean; verbose?: boolean }): Promise<void> {
  const mountpoint = defaultMount(opts.mount)
  const { renderStatus, statusJson } = await import('./statusView.js')
  const json = opts.json === true
  const verbose = opts.verbose === true
  const fetch = async (): Promise<Record<string, unknown>> => statusJson(await request<Record<string, unknown>>(mountpoint, { op: 'status' }))
  if (opts.watch === undefined || opts.watch === false) {
    const status = await fetch()
    print(json, status, () => renderStatus(status, { verbose }))
    return
  }
  const periodMs = opts.watch === true ? STATUS_WATCH_MS_DEFAULT : nonNegativeInt(opts.watch)
  const clear = process.stdout.isTTY && !json ? '\x1b[H\x1b[2J' : ''
  for (;;) {
    const status = await fetch()
    await writeOut(json ? JSON.stringify(status) + '\n' : `${clear}${renderStatus(status, { verbose })}${clear === '' ? '\n' : ''}`)
    await new Promise((resolve) => setTimeout(resolve, Math.max(50, periodMs)))
  }
}
