// How members that are not in a running group find each other and form one. Pure functions;
// the member runtime does the talking, and state travels by transfer.ts.
//
// Every member starts recovering and asks the others for a report. If one of them is running,
// it asks that one to join (the group orders a reconfigure). If none is, the lowest-id
// recovering member forms a group once the recovering members hold a majority of the latest
// view any of them installed or accepted (Derecho's restart rule, see planEpoch), from the log
// of a member of the latest view any of them installed. Every other member checks its log is a
// prefix of the donor's before catching up, and starts from an empty log if not (see
// transfer.ts `recordDigest` and member.ts `catchUp`).

import type { HlcStamp } from '../temporal/hlc.js'
import type { TransferStatus } from './readiness.js'
import type { View } from './core/group.js'

export interface MemberReport {
  readonly id: number
  readonly phase: 'recovering' | 'starting' | 'running' | 'stopped'
  readonly lastStamp: string // HlcStamp of the last record in its log
  readonly lastVid: number // the last view it installed, or prepared to start (view.json); 0: none
  readonly lastViewIds: readonly number[] // members of that view (every configured member when 0)
  /** The last view it ran in (ran.json): prepared plans that never ran are not in it. Absent: lastVid. */
  readonly lastRunVid?: number
  /** The last view-change value this member accepted (durable before it was published); absent: none. */
  readonly accepted?: AcceptedView
  /** Starting the epoch whose first view is `vid`: `ready` once it holds the plan's start (waitForPlanMembers). */
  readonly starting?: { readonly vid: number; readonly ready: boolean }
  /** A state transfer under way (catching up before a join, or for an epoch's start). */
  readonly transfer?: TransferStatus
}

/** A view a member accepted in the agreement on leaving view `vid` − 1: it may have been chosen. */
export interface AcceptedView {
  readonly vid: number
  readonly ballot: string // bigint; only ballots of one agreement (one vid) compare
  readonly memberIds: readonly number[]
}

export interface EpochPlan {
  readonly vid: number
  readonly memberIds: readonly number[] // ascending: transport rank = index
  readonly donorId: number // holds every record up to startStamp
  readonly startStamp: string // every member starts holding exactly the records stamped at or below this
  /** Who must fetch from the donor; absent: every member but the donor (each checks its log against the donor's). */
  readonly catchUpIds?: readonly number[]
}

/**
 * The plan the coordinator `selfId` forms from `reports` (its own included), or null: not yet, or not its turn.
 *
 * Quorum: a majority of the latest view any recovering member installed or accepted. An
 * acknowledged or stable record is durable at every member of its view, and every view that
 * follows one is accepted by a majority of it (in-epoch view change) or written by every member
 * before it runs (a new epoch), so such a majority always includes a member that reports the
 * view after it, up to the last one. Without the accepted views it could miss one: a view
 * installed only by members absent from the restart, its acceptors present but not yet
 * installed, and a group formed from the view before it could run beside one still running in
 * it (two groups taking writes). Among views accepted for one id, the highest ballot is the one
 * that may have been chosen (Paxos: every acceptance at or above the chosen ballot has its value).
 *
 * Donor: the longest log among the members whose last view run is the latest run. Their logs
 * are prefixes of one order and hold every record acknowledged or found stable (see above). A
 * member of an older view can hold a longer log that is not a prefix of it: records delivered
 * and persisted only by members absent from an earlier restart, which the group went on
 * without; the longest log overall would revive them, possibly over acknowledged records. Views
 * run, not views prepared: a member writes a plan's view before the plan runs (the quorum above
 * counts it, as it may run), and a plan that never ran says nothing about whose log holds what.
 * (Found by the simulation: a member that had prepared a plan alone, with an empty log, was made
 * the donor over a group that had run and taken writes since, long-suffix-3 seed 800031.)
 */
export function planEpoch(reports: readonly MemberReport[], selfId: number, graceOver: boolean): EpochPlan | null {
  if (reports.some((r) => r.phase === 'starting' || r.phase === 'running')) return null
  const recovering = reports.filter((r) => r.phase === 'recovering')
  if (recovering.length === 0 || Math.min(...recovering.map((r) => r.id)) !== selfId || !graceOver) return null
  const latest = latestView(recovering)
  const present = latest.memberIds.filter((id) => recovering.some((r) => r.id === id))
  if (present.length < Math.floor(latest.memberIds.length / 2) + 1) return null
  const donor = recovering.reduce((a, b) => (compareLogs(b, a) > 0 ? b : a))
  return {
    vid: vidAfter(latest.vid, latest.memberIds.length),
    memberIds: recovering.map((r) => r.id).sort((a, b) => a - b),
    donorId: donor.id,
    startStamp: donor.lastStamp,
  }
}

/** The latest view in `reports`, installed or accepted: highest id; for one id, an installed view
 * (it is the chosen one), else the acceptance with the highest ballot. */
function latestView(reports: readonly MemberReport[]): { vid: number; memberIds: readonly number[] } {
  let best = { vid: -1, installed: false, ballot: 0n, memberIds: [] as readonly number[] }
  const consider = (vid: number, installed: boolean, ballot: bigint, memberIds: readonly number[]): void => {
    const later =
      vid > best.vid || (vid === best.vid && ((installed && !best.installed) || (!installed && !best.installed && ballot > best.ballot)))
    if (later) best = { vid, installed, ballot, memberIds }
  }
  for (const r of reports) {
    consider(r.lastVid, true, 0n, r.lastViewIds)
    if (r.accepted !== undefined) consider(r.accepted.vid, false, BigInt(r.accepted.ballot), r.accepted.memberIds)
  }
  return best
}

/** Donor order: the later view run, then the longer log, then the lower id. */
function compareLogs(a: MemberReport, b: MemberReport): number {
  const aRan = a.lastRunVid ?? a.lastVid
  const bRan = b.lastRunVid ?? b.lastVid
  if (aRan !== bRan) return aRan - bRan
  const aStamp = BigInt(a.lastStamp)
  const bStamp = BigInt(b.lastStamp)
  if (aStamp !== bStamp) return aStamp > bStamp ? 1 : -1
  return b.id - a.id
}

/** The id of a new epoch's first view when the last view known is `vid` with `memberCount` members.
 * Not vid + 1: that epoch's cores may install later views without the planners knowing (a core
 * runs on after delivering a reconfigure until every member left; members absent from a total
 * restart may have gone on), and two views with one id must never exist (planEpoch trusts the
 * highest id as the last view). Within an epoch every view change removes at least one member, so
 * at most memberCount − 1 views follow `vid` there. (Found by the simulation: a reconfigure
 * delivered by a ragged-edge cleanup planned view vid + 1 while the same cleanup installed it,
 * e.g. total-restart-5 seed 600182.) */
export function vidAfter(vid: number, memberCount: number): number {
  if (vid === 0) return 1 // never ran: no view to skip
  return vid + Math.max(1, memberCount)
}

/** The epoch that follows a reconfigure delivered at `reconfigureStamp` in `view` (ranks of the
 * epoch whose member ids are `epochMemberIds`). Pass the view the reconfigure was delivered in
 * (the core's deliver action says it), which is the same at every member, so they all compute the
 * same plan without another round: the view's members plus the joiners, the lowest member that is
 * not a joiner as donor (it delivered every record up to the stamp), and every joiner catches up.
 *
 * A joiner may still be a member of `view`: a member that crashed and restarted asks to join
 * before the view change that removes its old rank, and then the reconfigure is delivered only by
 * that view change's ragged-edge cleanup, still in `view` (its old rank never received it). It
 * asked to join, so it does not run in this epoch and its log may be behind: it catches up, and
 * it is not the donor. (Found by the simulation: with joiners in the view left out of catchUpIds
 * nobody told them the plan and every such join ended in a total restart.) */
export function nextEpochPlan(view: View, epochMemberIds: readonly number[], addIds: readonly number[], reconfigureStamp: HlcStamp): EpochPlan {
  const currentIds = view.members.map((rank) => {
    const id = epochMemberIds[rank]
    if (id === undefined) throw new Error(`invariant: view ${view.vid} names rank ${rank}, the epoch has ${epochMemberIds.length} members`)
    return id
  })
  const memberIds = [...new Set([...currentIds, ...addIds])].sort((a, b) => a - b)
  const catchUpIds = [...new Set(addIds)].sort((a, b) => a - b)
  const donors = currentIds.filter((id) => !catchUpIds.includes(id))
  if (donors.length === 0) throw new Error(`invariant: reconfigure in view ${view.vid} adds every member of it`)
  return { vid: vidAfter(view.vid, view.members.length), memberIds, donorId: Math.min(...donors), startStamp: reconfigureStamp.toString(), catchUpIds }
}
