// How members that are not in a running group find each other and form one, and how state
// travels to a member that catches up. Pure functions; the member runtime does the talking.
//
// Every member starts recovering and asks the others for a report. If one of them is running,
// it asks that one to join (the group orders a reconfigure). If none is, the lowest-id
// recovering member forms a group once the recovering members hold a majority of the last
// view any of them installed (Derecho's restart rule: the last view's majority has every
// acknowledged write, since an acknowledgement needs every member of a view to have persisted
// it), choosing the longest log: logs are prefixes of one delivery order.

import type { ExportedRecord } from '../store/store.js'
import type { Mutation } from '../store/records.js'
import type { HlcStamp } from '../temporal/hlc.js'
import type { View } from './core/group.js'

export interface MemberReport {
  readonly id: number
  readonly phase: 'recovering' | 'starting' | 'running' | 'stopped'
  readonly lastStamp: string // HlcStamp of the last record in its log
  readonly lastVid: number // 0: never ran
  readonly lastViewIds: readonly number[] // members of that view (every configured member when 0)
}

export interface EpochPlan {
  readonly vid: number
  readonly memberIds: readonly number[] // ascending: transport rank = index
  readonly donorId: number // holds every record up to startStamp
  readonly startStamp: string // every member starts holding exactly the records stamped at or below this
  /** Who must fetch from the donor; absent: every member whose log ends before startStamp. */
  readonly catchUpIds?: readonly number[]
}

/** The plan the coordinator `selfId` forms from `reports` (its own included), or null: not yet, or not its turn. */
export function planEpoch(reports: readonly MemberReport[], selfId: number, graceOver: boolean): EpochPlan | null {
  if (reports.some((r) => r.phase === 'starting' || r.phase === 'running')) return null
  const recovering = reports.filter((r) => r.phase === 'recovering')
  if (recovering.length === 0 || Math.min(...recovering.map((r) => r.id)) !== selfId || !graceOver) return null
  const latest = recovering.reduce((a, b) => (b.lastVid > a.lastVid ? b : a))
  const present = latest.lastViewIds.filter((id) => recovering.some((r) => r.id === id))
  if (present.length < Math.floor(latest.lastViewIds.length / 2) + 1) return null
  const donor = recovering.reduce((a, b) => (BigInt(b.lastStamp) > BigInt(a.lastStamp) || (b.lastStamp === a.lastStamp && b.id < a.id) ? b : a))
  return {
    vid: vidAfter(latest.lastVid, latest.lastViewIds.length),
    memberIds: recovering.map((r) => r.id).sort((a, b) => a - b),
    donorId: donor.id,
    startStamp: donor.lastStamp,
  }
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

// ---- state transfer on the wire: a JSON header and the file bytes as one body ----

interface TransferHeader {
  readonly records: Array<{ stamp: string; mutation: Mutation; dataSizes: number[] }>
  readonly blobs: Array<{ id: string; sizeBytes: number }>
}

/** Data delivered but not yet named by a version: a joiner needs it for versions still to come. */
export interface PendingBlob {
  readonly id: string
  readonly bytes: Buffer
}

export function encodeTransfer(records: readonly ExportedRecord[], blobs: readonly PendingBlob[]): { header: TransferHeader; body: Buffer } {
  const parts: Buffer[] = []
  const header: TransferHeader = {
    records: records.map((r) => {
      parts.push(...r.data)
      return { stamp: r.stamp.toString(), mutation: r.mutation, dataSizes: r.data.map((d) => d.length) }
    }),
    blobs: blobs.map((b) => {
      parts.push(b.bytes)
      return { id: b.id, sizeBytes: b.bytes.length }
    }),
  }
  return { header, body: Buffer.concat(parts) }
}

export function decodeTransfer(headerValue: unknown, body: Buffer): { records: ExportedRecord[]; blobs: PendingBlob[] } {
  const header = headerValue as TransferHeader
  let offset = 0
  const take = (sizeBytes: number): Buffer => {
    if (offset + sizeBytes > body.length) throw new Error(`state transfer body ends at ${body.length} bytes, header names ${offset + sizeBytes}`)
    const part = body.subarray(offset, offset + sizeBytes)
    offset += sizeBytes
    return part
  }
  const records = header.records.map((r) => ({ stamp: BigInt(r.stamp), mutation: r.mutation, data: r.dataSizes.map(take) }))
  const blobs = header.blobs.map((b) => ({ id: b.id, bytes: take(b.sizeBytes) }))
  return { records, blobs }
}
