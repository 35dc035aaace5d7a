// History retention as a client sees it: the floor, the policy, what the last runs dropped and
// freed, and on-demand runs (`fffs gc`), for an embedded store or each shard (and member) of a
// group. The stores do the work (src/store/retention/, src/store/segmentGc.ts); this is the
// face the mount's control socket and `fffs status` use.

import type { GcVictim } from '../store/segmentGc.js'
import type { Audit } from '../store/store.js'
import { describePolicy } from '../store/retention/policy.js'
import type { RetentionRunReport } from '../store/retention/runner.js'
import { hlcToIso, type HlcStamp } from '../temporal/hlc.js'
import { formatBytes } from '../bytes.js'

/** One store's retention state (one shard's, as one member holds it). */
export interface HistoryState {
  readonly shard?: string // a sharded group's shard
  readonly member?: number // the member whose store this is
  readonly floor: string | null // ISO; null: nothing compacted
  readonly floorStamp: string // decimal HlcStamp (0: none)
  readonly policy: string | null // null: keep everything
  readonly logBase: string // decimal: records at or below it are gone from the log
  readonly compacting: boolean // a compaction is under way
}

export interface HistoryRun {
  readonly shard?: string
  readonly member?: number
  readonly report: RetentionRunReport
}

export interface HistoryAudit {
  readonly shard?: string
  readonly member?: number
  readonly audit: Audit
}

/** What a client offers of retention (Client.history). */
export interface HistoryControl {
  /** Each store's state (a group: the shards as the connected members hold them). */
  state(): Promise<HistoryState[]>
  /** The floor cuts are read against: a group's is the greatest of its shards'. */
  floor(): Promise<HlcStamp>
  /** The floor as last learnt, without asking (a path walk's remembered steps below it are taken again). */
  knownFloor(): HlcStamp
  /** A run now (or, dry, what it would do). */
  collect(options: { readonly dryRun?: boolean }): Promise<HistoryRun[]>
  /** The audit of retention and GC runs, newest last. */
  audits(limit: number): Promise<HistoryAudit[]>
}

/** `floor 2026-…; 120 versions and 3 deleted nodes dropped (2.1 GB named); 3 of 10 log segments (768 MB) freed, 12 MB copied forward`. */
export function describeRun(report: RetentionRunReport): string {
  const { compaction, gc } = report
  const parts: string[] = [`floor ${report.floor ?? 'none'}`]
  if (compaction !== null) parts.push(`${compaction.versionsDropped} versions and ${compaction.nodesRemoved} deleted nodes ${gc?.dryRun === true ? 'would be ' : ''}dropped (${formatBytes(compaction.extentBytesDropped)} named)`)
  if (gc === null) return parts.join('; ') // a background floor pass
  const verb = gc.dryRun ? 'could be freed' : 'freed'
  parts.push(`${gc.victims.length} of ${gc.segments} log segments (${formatBytes(gc.victims.reduce((s, v) => s + v.sizeBytes, 0))}) ${verb}, ${formatBytes(gc.bytesCopied)} of live data ${gc.dryRun ? 'to copy' : 'copied'} forward`)
  return parts.join('; ')
}

/** `3 log segments (12 MB), copying 2.1 MB of live data forward`. */
export function describeCollect(victims: readonly GcVictim[]): string {
  const sizeBytes = victims.reduce((sum, v) => sum + v.sizeBytes, 0)
  const liveBytes = victims.reduce((sum, v) => sum + v.liveBytes, 0)
  return `${victims.length} log segments (${formatBytes(sizeBytes)}), copying ${formatBytes(liveBytes)} of live data forward`
}

/** One audit entry as `fffs log --gc` prints it. */
export function describeAudit(audit: Audit): string {
  switch (audit.kind) {
    case 'retention': {
      const tiers = audit.pinsAdded + audit.pinsRemoved > 0 ? `, ${audit.pinsAdded} tier instants kept and ${audit.pinsRemoved} let go` : ''
      return `retention (${describePolicy(audit.policy)}): floor ${hlcToIso(BigInt(audit.floor))}; ${audit.versionsDropped} versions and ${audit.nodesRemoved} deleted nodes dropped (${formatBytes(audit.extentBytesDropped)} named), ${audit.bindingsDropped} name bindings${tiers}${audit.done ? '' : ' (compaction under way)'}`
    }
    case 'gc':
      return `gc: ${audit.segmentsFreed} log segments freed, ${formatBytes(audit.bytesFreed)} back, ${formatBytes(audit.bytesCopied)} copied forward`
  }
}
