// The inspection commands: each asks the mount holding a path over its control socket
// (src/control) and prints a table, the bytes, or JSON with --json. What only one command
// needs (the SPEC grammar, the status layout) is loaded by that command.

import { defaultMount, locate, request } from '../control/client.js'
import type { CutReport, StableChange } from '../control/inspect.js'
import type { EntryInfo, VersionInfo } from '../control/server.js'
import { isFffsError } from '../errors.js'
import type { TimeSpec } from '../temporal/spec.js'
import { nonNegativeInt, usageError } from './args.js'
import { formatDuration, print, table, writeOut } from './output.js'

const STATUS_WATCH_MS_DEFAULT = 1_000

/** A SPEC given as an argument or option; a malformed one is a usage error. */
async function timeSpecArg(text: string, what: string): Promise<TimeSpec> {
  const { parseTimeSpec } = await import('../temporal/spec.js')
  try {
    return parseTimeSpec(text)
  } catch (err) {
    if (isFffsError(err)) throw usageError(`${what}: ${err.message}`)
    throw err
  }
}

export async function runLog(target: string, opts: { json?: boolean }): Promise<void> {
  const { mountpoint, inner } = locate(target)
  const versions = await request<VersionInfo[]>(mountpoint, { op: 'log', path: inner })
  print(opts.json === true, versions, () =>
    table([['VERSION', 'TIME', 'SENSOR_TIME', 'SIZE', 'LINKS', 'CHANGE'], ...versions.map((v) => [String(v.version), v.time, v.sensorTime ?? '-', String(v.sizeBytes), String(v.links), v.change])]),
  )
}

export async function runCat(target: string): Promise<void> {
  const { mountpoint, inner } = locate(target)
  for (let offset = 0; ; ) {
    const chunk = await request<{ sizeBytes: number; dataBase64: string }>(mountpoint, { op: 'cat', path: inner, offset })
    const bytes = Buffer.from(chunk.dataBase64, 'base64')
    if (bytes.length > 0) await writeOut(bytes)
    offset += bytes.length
    if (bytes.length === 0 || offset >= chunk.sizeBytes) break
  }
}

export async function runLs(target: string, opts: { json?: boolean }): Promise<void> {
  const { mountpoint, inner } = locate(target)
  const entries = await request<EntryInfo[]>(mountpoint, { op: 'ls', path: inner })
  print(opts.json === true, entries, () => table([['NAME', 'KIND', 'SIZE', 'VERSION', 'TIME'], ...entries.map((e) => [e.name, e.kind, String(e.sizeBytes), String(e.version), e.time])]))
}

export async function runSnapshotCreate(name: string, opts: { at?: string; mount?: string; json?: boolean }): Promise<void> {
  const created = await request<{ name: string; at: string }>(defaultMount(opts.mount), { op: 'snapshot.create', name, ...(opts.at !== undefined ? { at: opts.at } : {}) })
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
  await timeSpecArg(spec, 'SPEC')
  const where = target === undefined ? { mountpoint: defaultMount(opts.mount), inner: undefined } : locate(target)
  const report = await request<CutReport>(where.mountpoint, { op: 'cut', spec, ...(where.inner !== undefined ? { path: where.inner } : {}) })
  print(opts.json === true, report, () => renderCut(report))
}

export async function runWatch(pattern: string, opts: { since?: string; period: number; count?: number; json?: boolean }): Promise<void> {
  const { mountpoint, inner } = locate(pattern)
  let after: string | undefined
  if (opts.since !== undefined) {
    const since = await timeSpecArg(opts.since, '--since')
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
