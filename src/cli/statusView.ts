// `fffs status`: what the mount's control socket answers (src/control/server.ts, op 'status'),
// summarised and laid out for a terminal. For a cluster mount that is every member's own
// report (`Member.status()`, bigints as decimal strings): the view, the shard layout, each
// member's core state, the shared state table as one member sees it (rows = members, like
// Derecho's SST), the persistence and stability frontiers and the replicas' lag. By default
// a summary within 100 columns (a row per member); --verbose adds the internals.
// Pure functions of the answer: no I/O here, so the layout is testable without a group.

import type { CoreStatus } from '../replication/core/group.js'
import { describeReadiness, groupReadiness, type GroupReadiness } from '../replication/readiness.js'
import type { TransferStatus } from '../replication/readiness.js'
import { hlcPhysicalUs, hlcLogical } from '../temporal/hlc.js'

// ---------------------------------------------------------------- the answer's shape

/** `CoreStatus` (src/replication/core/group.ts) as JSON: stamps (bigints) become decimal strings. */
export type CoreStatusJson = { readonly [K in keyof CoreStatus]: CoreStatus[K] extends bigint ? string : CoreStatus[K] }

type RowValue = string | boolean | string[] | boolean[]

/** `MemberStatus` (src/replication/member.ts) as JSON. */
export interface MemberStatusJson {
  readonly id: number
  readonly pid?: number // the member's process (fffs serve)
  readonly phase?: string // 'recovering' | 'starting' | 'running' | 'stopped'
  readonly core: CoreStatusJson | null // null: in no epoch yet (recovering, starting)
  readonly memberIds: readonly number[] // the epoch's rank -> member id
  readonly appliedStamp: string
  readonly rows: ReadonlyArray<Readonly<Record<string, RowValue>>>
  readonly lastView?: { readonly vid: number; readonly memberIds: readonly number[] }
  readonly starting?: { readonly vid: number; readonly ready: boolean } | null
  readonly transfer?: TransferStatus | null // a state transfer under way ("catching up")
  readonly history?: { readonly floor: string | null; readonly floorStamp: string; readonly policy: string | null; readonly compacting: boolean } // src/client/history.ts HistoryState
  readonly disk?: { readonly totalBytes: number; readonly freeBytes: number; readonly reserveBytes: number; readonly full: boolean } // src/store/diskSpace.ts DiskState
}

export interface MemberReportJson {
  readonly id: number
  readonly host: string
  readonly clientPort: number
  readonly connected: boolean
  readonly reachable: boolean
  readonly status?: MemberStatusJson
  readonly error?: { readonly code: string; readonly message: string }
  readonly elapsedMs: number
}

export interface ClusterStatusJson {
  readonly mode: 'cluster'
  readonly mountpoint: string
  readonly pid: number
  readonly at: string
  readonly stateDir: string
  readonly stableFrontier: string
  readonly connectedMember: number | null
  readonly group: {
    readonly name: string
    readonly configPath: string
    readonly shardRole?: 'meta' | 'data' // one shard's group of a sharded layout
    readonly layout: { readonly shards: number; readonly replicas: number }
    readonly shards: { readonly meta: readonly number[]; readonly data: ReadonlyArray<readonly number[]> }
    readonly members: ReadonlyArray<{ readonly id: number; readonly host: string; readonly transportPort: number; readonly clientPort: number }>
  }
  readonly members: readonly MemberReportJson[]
}

export interface LagRow {
  readonly member: number
  readonly deliveredBehindMessages: number // the most delivered in the view minus this row's
  readonly deliveredBehindMs: number // HLC time of the newest delivery in the view minus this row's
  readonly persistedBehindMs: number // HLC time of the newest delivery in the view minus this row's persisted stamp
}

export interface ClusterSummary {
  /** The member whose table and frontiers are shown: the connected one, else the first reachable. */
  readonly referenceMember: number | null
  readonly view: { readonly vid: number; readonly members: readonly number[] } | null // member ids
  readonly leader: number | null
  /** Distinct views the reachable members report (more than one: a view change is under way). */
  readonly views: ReadonlyArray<{ readonly vid: number; readonly members: readonly number[]; readonly reportedBy: readonly number[] }>
  readonly unreachable: readonly number[]
  readonly persistenceFrontier: string | null // stamp: durable at every member of the view
  readonly stabilityFrontier: string | null // stamp: no record at or below can still arrive
  readonly lag: readonly LagRow[]
  /** Running yet? (majority running), and who is catching up how far (src/replication/readiness.ts). */
  readonly readiness: GroupReadiness
}

// ---------------------------------------------------------------- summary

const idsOf = (status: MemberStatusJson, ranks: readonly number[]): number[] => ranks.map((rank) => status.memberIds[rank] ?? rank)

type InEpoch = MemberReportJson & { readonly status: MemberStatusJson & { readonly core: CoreStatusJson } }

export function summarize(status: ClusterStatusJson): ClusterSummary {
  const reachable = status.members.filter((m): m is InEpoch => m.reachable && m.status !== undefined && m.status.core !== null)
  const reference = reachable.find((m) => m.connected) ?? reachable[0]
  const views = new Map<string, { vid: number; members: number[]; reportedBy: number[] }>()
  for (const m of reachable) {
    const s = m.status
    const members = idsOf(s, s.core.view.members)
    const key = `${s.core.view.vid}:${members.join(',')}`
    const entry = views.get(key) ?? { vid: s.core.view.vid, members, reportedBy: [] }
    entry.reportedBy.push(m.id)
    views.set(key, entry)
  }
  const unreachable = status.members.filter((m) => !m.reachable).map((m) => m.id) // members in no epoch yet are reachable, not in a view
  const readiness = groupReadiness(status.members)
  if (reference === undefined) return { referenceMember: null, view: null, leader: null, views: [], unreachable, persistenceFrontier: null, stabilityFrontier: null, lag: [], readiness }
  const s = reference.status
  const core = s.core
  return {
    referenceMember: reference.id,
    view: { vid: core.view.vid, members: idsOf(s, core.view.members) },
    leader: core.leaderRank === null ? null : (s.memberIds[core.leaderRank] ?? core.leaderRank),
    views: [...views.values()].sort((a, b) => b.vid - a.vid),
    unreachable,
    persistenceFrontier: core.globalPersistedStamp,
    stabilityFrontier: core.stableStamp,
    lag: lagOf(s),
    readiness,
  }
}

/** Lag of each view member, from one member's copy of the table (one consistent snapshot). */
export function lagOf(status: MemberStatusJson & { readonly core: CoreStatusJson }): LagRow[] {
  const { vid, members } = status.core.view
  const rows = members.map((rank) => ({ rank, row: status.rows[rank] })).filter((r) => r.row !== undefined && String(r.row.vid) === String(vid))
  if (rows.length === 0) return []
  const delivered = (row: Readonly<Record<string, RowValue>>): number => Number(row.delivered ?? 0)
  const stampUs = (value: RowValue | undefined): number => (typeof value === 'string' && value !== '0' ? hlcPhysicalUs(BigInt(value)) : 0)
  const mostDelivered = Math.max(...rows.map((r) => delivered(r.row!)))
  const newestUs = Math.max(...rows.map((r) => stampUs(r.row!.delivered_stamp)))
  return rows.map(({ rank, row }) => ({
    member: status.memberIds[rank] ?? rank,
    deliveredBehindMessages: mostDelivered - delivered(row!),
    deliveredBehindMs: newestUs === 0 ? 0 : (newestUs - stampUs(row!.delivered_stamp)) / 1000,
    persistedBehindMs: newestUs === 0 ? 0 : Math.max(0, newestUs - stampUs(row!.persisted_stamp)) / 1000,
  }))
}

/** What `fffs status --json` prints: the mount's answer, plus the summary for a cluster (each shard's, when sharded). */
export function statusJson(status: Record<string, unknown>): Record<string, unknown> {
  if (isSharded(status)) return { ...status, shards: status.shards.map((shard) => ({ ...shard, summary: summarize(shard) })) }
  return isCluster(status) ? { ...status, summary: summarize(status) } : status
}

/** A sharded mount: one cluster status per shard group, meta first. */
export interface ShardedStatusJson {
  readonly mode: 'sharded'
  readonly mountpoint: string
  readonly pid: number
  readonly stableFrontier: string // the global frontier: the least of the shards'
  readonly at: string
  readonly group: ClusterStatusJson['group']
  readonly shards: ReadonlyArray<ClusterStatusJson & { readonly shard: string }>
  readonly historyFloor?: string | null // the group's floor: the greatest of the shards'
}

function isSharded(status: Record<string, unknown>): status is Record<string, unknown> & ShardedStatusJson {
  return status.mode === 'sharded' && Array.isArray(status.shards)
}

function isCluster(status: Record<string, unknown>): status is Record<string, unknown> & ClusterStatusJson {
  return status.mode === 'cluster' && Array.isArray(status.members)
}

// ---------------------------------------------------------------- text

/** Stamps as UTC time of day with µs (the date is in the header), `+logical` when non-zero; 0 as '-'. */
export function shortStamp(stamp: string | undefined): string {
  if (stamp === undefined || stamp === '0' || !/^\d+$/.test(stamp)) return '-'
  const value = BigInt(stamp)
  const us = hlcPhysicalUs(value)
  const time = new Date(Math.floor(us / 1000)).toISOString().slice(11, 23) + String(us % 1000).padStart(3, '0')
  const logical = hlcLogical(value)
  return logical > 0 ? `${time}+${logical}` : time
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')
}

const list = (values: readonly (number | string)[]): string => `[${values.join(',')}]`
const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(1))

export interface RenderOptions {
  /** Also each member's stamps, the shared state table (ballots, HLC logical counters) and the config path. */
  readonly verbose?: boolean
}

/**
 * The same layout for every kind of mount: a header line (the mount, its pid, what it serves),
 * then for a group the view and one row per member (pid, phase, how far behind), within 100
 * columns; --verbose adds the internals below.
 */
export function renderStatus(status: Record<string, unknown>, options: RenderOptions = {}): string {
  const { sensor, ...rest } = status
  return renderStatusOf(rest, options.verbose === true) + sensorLine(sensor)
}

/** The mount's sensor-time counters (src/fs/sensorRecords.ts SensorStats), one line. */
function sensorLine(sensor: unknown): string {
  if (typeof sensor !== 'object' || sensor === null) return ''
  return `sensor: ${Object.entries(sensor).map(([k, v]) => `${k}=${String(v)}`).join(' ')}\n`
}

/** `history floor 2026-… (policy keepAllFor 7d) · compacting` (src/client/history.ts HistoryState). */
export function historyLine(history: unknown): string | null {
  if (typeof history !== 'object' || history === null) return null
  const h = history as { floor?: string | null; policy?: string | null; compacting?: boolean }
  if (h.policy == null && h.floor == null) return 'history: every version kept (no retention policy)'
  return `history floor ${h.floor ?? 'none yet'} (policy ${h.policy ?? 'none'})${h.compacting === true ? ' · compacting' : ''}`
}

/** `disk: 812.3 MiB free of 1.0 GiB, 20.5 MiB kept in reserve` or `disk FULL: ...` (src/store/diskSpace.ts DiskState). */
export function diskLine(disk: unknown): string | null {
  if (typeof disk !== 'object' || disk === null) return null
  const d = disk as { totalBytes: number; freeBytes: number; reserveBytes: number; full: boolean }
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
  const state = `${mib(d.freeBytes)} free of ${mib(d.totalBytes)}, ${mib(d.reserveBytes)} kept in reserve`
  return d.full ? `disk FULL: ${state}; writes refused (ENOSPC) until space is freed (delete files, fffs gc)` : `disk: ${state}`
}

/**
 * A group's history floor (every member applies the same `retain` records, so they agree once
 * each has applied them: a member behind shows its older floor) and the disks short of space.
 */
function groupHistoryLines(status: ClusterStatusJson): string[] {
  const reporting = status.members.filter((m) => m.status?.history !== undefined)
  const out: string[] = []
  const newest = reporting.reduce<MemberReportJson | null>((best, m) => (best === null || BigInt(m.status!.history!.floorStamp) > BigInt(best.status!.history!.floorStamp) ? m : best), null)
  if (newest !== null) {
    const line = historyLine(newest.status!.history)!
    const behind = reporting.filter((m) => m.status!.history!.floorStamp !== newest.status!.history!.floorStamp)
    out.push(behind.length === 0 ? line : `${line} · not yet applied at ${behind.map((m) => `member ${m.id} (floor ${m.status!.history!.floor ?? 'none'})`).join(', ')}`)
  }
  for (const m of status.members) if (m.status?.disk?.full === true) out.push(`member ${m.id} ${diskLine(m.status.disk)!}`)
  return out
}

function layoutText(group: ClusterStatusJson['group']): string {
  const { shards, replicas } = group.layout
  return `${group.members.length} members, ` + (shards > 1 ? `a meta shard and ${shards} data shards of ${replicas} replicas` : `${replicas} replicas`)
}

function renderStatusOf(status: Record<string, unknown>, verbose: boolean): string {
  if (isSharded(status)) {
    const { group } = status
    const out = [`mount ${status.mountpoint} (pid ${status.pid}) · group ${group.name}: ${layoutText(group)}`, `stable cut ${status.stableFrontier} (the least of the shards')`]
    if (typeof status.historyFloor === 'string') out.push(`history floor ${status.historyFloor} (the greatest of the shards': cuts across shards below it are ERANGE)`)
    if (verbose) out.push(`config ${group.configPath} · at ${status.at}`)
    return out.join('\n') + '\n' + status.shards.map((shard) => `\n=== shard ${shard.shard} (members ${list(shard.group.members.map((m) => m.id))}) ===\n${renderCluster(shard, verbose, false)}`).join('')
  }
  if (isCluster(status)) return renderCluster(status, verbose, true)
  // Embedded: the store is in the mount process itself.
  const out = [`mount ${String(status.mountpoint)} (pid ${String(status.pid)}) · embedded store ${String(status.dataDir)}`, `stable cut ${String(status.stableFrontier)}`]
  const history = historyLine(status.history)
  if (history !== null) out.push(history)
  const disk = diskLine(status.disk)
  if (disk !== null) out.push(disk)
  for (const [key, value] of Object.entries(status)) if (verbose && !['mountpoint', 'pid', 'dataDir', 'stableFrontier', 'history', 'disk'].includes(key)) out.push(`${key}: ${String(value)}`)
  return out.join('\n') + '\n'
}

function renderCluster(status: ClusterStatusJson, verbose: boolean, header: boolean): string {
  const summary = summarize(status)
  const { group } = status
  const out: string[] = []
  if (header) {
    out.push(`mount ${status.mountpoint} (pid ${status.pid}) · group ${group.name}: ${layoutText(group)} · connected to member ${status.connectedMember ?? 'none'}`)
    if (verbose) out.push(`config ${group.configPath} · at ${status.at}`)
  }
  out.push(describeReadiness(summary.readiness))
  if (summary.view === null) {
    out.push(`no member in a running group: ${status.members.map((m) => `member ${m.id}${pidText(m)}: ${m.status !== undefined ? (m.status.phase ?? 'no view') : (m.error?.message ?? 'no answer')}`).join('; ')}`)
    return out.join('\n') + '\n'
  }
  out.push(`view ${summary.view.vid}: members ${list(summary.view.members)}, leader ${summary.leader ?? '-'} · stable cut ${status.stableFrontier}`)
  if (summary.views.length > 1) out.push(`  views differ: ${summary.views.map((v) => `view ${v.vid} ${list(v.members)} at ${list(v.reportedBy)}`).join('; ')} (a view change is under way or a member was excluded)`)
  out.push(...groupHistoryLines(status))
  out.push('')
  out.push(table(verbose ? verboseMemberRows(status) : memberRows(status, summary)))
  for (const m of status.members) if (!m.reachable) out.push(`member ${m.id} unreachable: ${m.error?.code ?? 'EIO'} ${m.error?.message ?? ''}`.trimEnd())
  if (!verbose) return out.join('\n') + '\n'
  out.push('')
  out.push(`frontiers (member ${summary.referenceMember}): persistence ${shortStamp(summary.persistenceFrontier ?? undefined)} · stability ${shortStamp(summary.stabilityFrontier ?? undefined)}`)
  // The shared state table, one member's copy.
  const reference = status.members.find((m) => m.id === summary.referenceMember)!.status as MemberStatusJson & { readonly core: CoreStatusJson }
  out.push(`shared state table as member ${reference.id} sees it (rows = members; per-sender and per-member columns in member order ${list(reference.memberIds)}):`)
  out.push(table(sstRows(reference)))
  out.push('')
  out.push(`replica lag (member ${reference.id}'s table, view ${summary.view.vid}; behind = the newest delivery in the view minus this member's):`)
  out.push(
    table([
      ['MEMBER', 'DELIVERED_BEHIND (msgs)', 'DELIVERED_BEHIND (ms)', 'PERSISTED_BEHIND (ms)'],
      ...summary.lag.map((l) => [String(l.member), String(l.deliveredBehindMessages), ms(l.deliveredBehindMs), ms(l.persistedBehindMs)]),
    ]),
  )
  return out.join('\n') + '\n'
}

const pidText = (m: MemberReportJson): string => (m.status?.pid !== undefined ? ` (pid ${m.status.pid})` : '')
const memberName = (m: MemberReportJson): string => `${m.id}${m.connected ? '*' : ''}`

function memberState(core: CoreStatusJson): string {
  return core.excluded ? 'excluded' : core.wedged ? 'wedged' : core.view.members.includes(core.rank) ? 'in view' : 'outside'
}

/** One row per member, as it reports itself, with its lag from the reference member's table (* = this mount's member). */
function memberRows(status: ClusterStatusJson, summary: ClusterSummary): string[][] {
  const rows: string[][] = [['MEMBER', 'PID', 'PHASE', 'STATE', 'VIEW', 'DELIVERED', 'BEHIND (msgs)', 'BEHIND (ms)', 'UNPERSISTED (ms)']]
  for (const m of status.members) {
    const pid = m.status?.pid !== undefined ? String(m.status.pid) : '-'
    if (!m.reachable || m.status === undefined) {
      rows.push([memberName(m), pid, '-', 'unreachable'])
      continue
    }
    const c = m.status.core
    if (c === null) {
      rows.push([memberName(m), pid, m.status.phase ?? '-', 'no epoch'])
      continue
    }
    const lag = summary.lag.find((l) => l.member === m.id)
    rows.push([memberName(m), pid, m.status.phase ?? '-', memberState(c), String(c.view.vid), String(c.delivered), lag === undefined ? '-' : String(lag.deliveredBehindMessages), lag === undefined ? '-' : ms(lag.deliveredBehindMs), lag === undefined ? '-' : ms(lag.persistedBehindMs)])
  }
  return rows
}

/** Each member's core state with its stamps (time of day, µs, +HLC logical counter). */
function verboseMemberRows(status: ClusterStatusJson): string[][] {
  const rows: string[][] = [['MEMBER', 'PID', 'PHASE', 'STATE', 'VIEW', 'MEMBERS', 'SENT', 'DELIVERED', 'DELIVERED_AT', 'APPLIED_AT', 'PERSISTED_AT', 'GLOBAL_PERSISTED', 'STABLE', 'PENDING', 'SUSPECTS']]
  for (const m of status.members) {
    const pid = m.status?.pid !== undefined ? String(m.status.pid) : '-'
    if (!m.reachable || m.status === undefined) {
      rows.push([memberName(m), pid, '-', 'unreachable'])
      continue
    }
    const s = m.status
    const c = s.core
    if (c === null) {
      rows.push([memberName(m), pid, s.phase ?? '-', 'no epoch', '-', '-', '-', '-', '-', shortStamp(s.appliedStamp)])
      continue
    }
    rows.push([
      memberName(m),
      pid,
      s.phase ?? '-',
      memberState(c),
      String(c.view.vid),
      list(idsOf(s, c.view.members)),
      String(c.sent),
      String(c.delivered),
      shortStamp(c.deliveredStamp),
      shortStamp(s.appliedStamp),
      shortStamp(c.persistedStamp),
      shortStamp(c.globalPersistedStamp),
      shortStamp(c.stableStamp),
      String(c.pendingRequests),
      c.suspected.length === 0 ? '-' : list(idsOf(s, c.suspected)),
    ])
  }
  return rows
}

/** The table's columns (src/replication/core/schema.ts), one row per member. */
function sstRows(status: MemberStatusJson & { readonly core: CoreStatusJson }): string[][] {
  const u64 = (row: Readonly<Record<string, RowValue>>, name: string): string => (typeof row[name] === 'string' ? (row[name] as string) : '-')
  const nums = (row: Readonly<Record<string, RowValue>>, name: string): string => (Array.isArray(row[name]) ? list((row[name] as Array<string | boolean>).map(String)) : '-')
  const bools = (row: Readonly<Record<string, RowValue>>, name: string): string => {
    const value = row[name]
    if (!Array.isArray(value)) return '-'
    const ids = (value as boolean[]).flatMap((b, rank) => (b ? [status.memberIds[rank] ?? rank] : []))
    return list(ids)
  }
  const header = ['ROW', 'VID', 'RECEIVED', 'DELIVERED', 'DELIVERED_STAMP', 'PERSISTED_STAMP', 'HLC_FLOOR', 'SUSPECTED', 'WEDGED', 'CVID', 'BALLOT', 'PROMISED', 'ACCEPTED (ballot members trim)', 'COMMITTED', 'DECIDED (vid members trim)']
  const rows = status.rows.map((row, rank) => [
    `${status.memberIds[rank] ?? rank}${rank === status.core.rank ? ' (self)' : ''}`,
    u64(row, 'vid'),
    nums(row, 'received'),
    u64(row, 'delivered'),
    shortStamp(u64(row, 'delivered_stamp')),
    shortStamp(u64(row, 'persisted_stamp')),
    shortStamp(u64(row, 'hlc_floor')),
    bools(row, 'suspected'),
    row.wedged === true ? 'yes' : 'no',
    u64(row, 'cvid'),
    u64(row, 'ballot'),
    u64(row, 'promised'),
    u64(row, 'accepted_ballot') === '0' ? '-' : `${u64(row, 'accepted_ballot')} ${bools(row, 'accepted_members')} ${nums(row, 'accepted_trim')}`,
    u64(row, 'committed_ballot'),
    u64(row, 'decided_vid') === '0' ? '-' : `${u64(row, 'decided_vid')} ${bools(row, 'decided_members')} ${nums(row, 'decided_trim')}`,
  ])
  return [header, ...rows]
}
