// Whether a group is running yet, from its members' status reports (RemoteClient.groupStatus),
// in the words a mount or `fffs status` prints while it waits: "waiting for the group: 1 of 3
// members running; member 1 catching up: 41% of 2.1 GB, about 7 s left", then "group running:
// 3 of 3 members". Pure (the CLI loads it without the replication code): the caller asks the members.

import { formatBytes } from '../bytes.js'

/** What a catching-up member shows of its transfer (`fffs status`, its log). */
export interface TransferStatus {
  readonly donorId: number
  readonly records: number
  readonly doneBytes: number
  readonly totalBytes: number // an estimate (transferSizeEstimate), at least doneBytes
  readonly rateBytesPerS: number
  readonly etaMs: number | null
  readonly elapsedMs: number
}

/** The part of a member's report (`MemberStatusReport` with `Member.status()` in it) this reads. */
export interface MemberReadinessInput {
  readonly id: number
  readonly reachable: boolean
  readonly status?: { readonly phase?: string; readonly transfer?: TransferStatus | null } | unknown
}

export interface GroupReadiness {
  /** A majority of the members runs: reads and writes are served. */
  readonly ready: boolean
  readonly members: number
  readonly running: readonly number[]
  readonly starting: readonly number[] // holding what an epoch's start needs, or fetching it
  readonly recovering: readonly number[]
  readonly unreachable: readonly number[]
  readonly catchingUp: ReadonlyArray<{ readonly id: number; readonly transfer: TransferStatus }>
}

export function groupReadiness(reports: readonly MemberReadinessInput[]): GroupReadiness {
  const running: number[] = []
  const starting: number[] = []
  const recovering: number[] = []
  const unreachable: number[] = []
  const catchingUp: Array<{ id: number; transfer: TransferStatus }> = []
  for (const report of reports) {
    const status = report.status as { phase?: string; transfer?: TransferStatus | null } | undefined
    if (!report.reachable || status === undefined) {
      unreachable.push(report.id)
      continue
    }
    if (status.phase === 'running') running.push(report.id)
    else if (status.phase === 'starting') starting.push(report.id)
    else recovering.push(report.id)
    if (status.transfer != null) catchingUp.push({ id: report.id, transfer: status.transfer })
  }
  return { ready: running.length > reports.length / 2, members: reports.length, running, starting, recovering, unreachable, catchingUp }
}

/** One line: "group running: 3 of 3 members" or "waiting for the group: 1 of 3 members running; …". */
export function describeReadiness(r: GroupReadiness): string {
  const parts = [r.ready ? `group running: ${r.running.length} of ${r.members} members` : `waiting for the group: ${r.running.length} of ${r.members} members running`]
  for (const { id, transfer } of r.catchingUp) parts.push(`member ${id} ${describeTransfer(transfer)}`)
  const starting = r.starting.filter((id) => !r.catchingUp.some((c) => c.id === id))
  if (starting.length > 0) parts.push(`starting: ${starting.join(', ')}`)
  const recovering = r.recovering.filter((id) => !r.catchingUp.some((c) => c.id === id))
  if (recovering.length > 0) parts.push(`recovering: ${recovering.join(', ')}`)
  if (r.unreachable.length > 0) parts.push(`unreachable: ${r.unreachable.join(', ')}`)
  return parts.join('; ')
}

/** "catching up from member 0: 41% of 2.1 GB, 8123 records, 180 MB/s, about 7 s left". */
export function describeTransfer(t: TransferStatus): string {
  const percent = t.totalBytes > 0 ? Math.min(99, Math.floor((t.doneBytes * 100) / t.totalBytes)) : 0
  const head = `catching up from member ${t.donorId}: ${percent}% of ${formatBytes(t.totalBytes)}`
  if (t.doneBytes === 0) return head
  const eta = t.etaMs === null ? '' : `, about ${Math.ceil(t.etaMs / 1000)} s left`
  return `${head}, ${t.records} records, ${formatBytes(t.rateBytesPerS)}/s${eta}`
}
