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
    vid: Math.max(...recovering.map((r) => r.lastVid)) + 1,
    memberIds: recovering.map((r) => r.id).sort((a, b) => a - b),
    donorId: donor.id,
    startStamp: donor.lastStamp,
  }
}

/** The epoch that follows a reconfigure delivered at `reconfigureStamp` in `view` (ranks of the
 * epoch whose member ids are `epochMemberIds`). Every member that delivered the reconfigure
 * computes it from the same inputs (the view a message is delivered in is the view it was sent
 * in, at every replica), so they all agree without another round: the view's members plus the
 * joiners, the lowest current member as donor (it holds every record up to the stamp), and only
 * the joiners catch up (the others delivered exactly up to the reconfigure). */
export function nextEpochPlan(view: View, epochMemberIds: readonly number[], addIds: readonly number[], reconfigureStamp: HlcStamp): EpochPlan {
  const currentIds = view.members.map((rank) => {
    const id = epochMemberIds[rank]
    if (id === undefined) throw new Error(`invariant: view ${view.vid} names rank ${rank}, the epoch has ${epochMemberIds.length} members`)
    return id
  })
  const memberIds = [...new Set([...currentIds, ...addIds])].sort((a, b) => a - b)
  const catchUpIds = addIds.filter((id) => !currentIds.includes(id))
  return { vid: view.vid + 1, memberIds, donorId: Math.min(...currentIds), startStamp: reconfigureStamp.toString(), catchUpIds }
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
