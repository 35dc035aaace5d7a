// The shared state table of a replication group, one row per member of the transport epoch
// (rank = index in the epoch's member list). Each member writes only its own row and pushes
// it; every column is read by the others. Columns follow Derecho's SST, with the view-change
// agreement written as single-decree Paxos over the table (see group.ts).

import type { SstSchema } from '../transport/types.js'

export const COLUMN = {
  vid: 'vid', // the view this row's per-view counters belong to
  received: 'received', // per sender rank: messages of this view received contiguously
  delivered: 'delivered', // messages of this view delivered (global round-robin index + 1)
  persistedStamp: 'persisted_stamp', // HLC stamp of the last record durable (synced) in the local log
  writtenStamp: 'written_stamp', // HLC stamp of the last record written to the local log (in the page cache, maybe not synced)
  deliveredStamp: 'delivered_stamp', // HLC stamp of the last record delivered
  hlcFloor: 'hlc_floor', // no record this member sends or still has to deliver will get a stamp <= this
  syncWanted: 'sync_wanted', // a client of this member waits until every record up to this stamp is synced everywhere (fsync)
  suspected: 'suspected', // per rank, never withdrawn
  wedged: 'wedged', // this member stopped counting messages of its view: a view change is under way
  // Agreement on the next view, meaningful when cvid equals the reader's vid.
  cvid: 'cvid',
  ballot: 'ballot', // prepare: this member is trying to lead with this ballot
  promised: 'promised', // highest ballot this member promised
  acceptedBallot: 'accepted_ballot', // ballot of the value below (0: none)
  acceptedMembers: 'accepted_members', // next view's members (ranks)
  acceptedTrim: 'accepted_trim', // per sender rank: messages of this view the next view delivers
  committedBallot: 'committed_ballot', // leader: the value accepted with this ballot is chosen
  // The last decision this member learned, kept for members that missed the commit.
  decidedVid: 'decided_vid',
  decidedMembers: 'decided_members',
  decidedTrim: 'decided_trim',
} as const

export function groupSchema(memberCount: number): SstSchema {
  const n = memberCount
  return {
    columns: [
      { name: COLUMN.vid, kind: 'u64' },
      { name: COLUMN.received, kind: 'u64[]', length: n },
      { name: COLUMN.delivered, kind: 'u64' },
      { name: COLUMN.persistedStamp, kind: 'u64' },
      { name: COLUMN.writtenStamp, kind: 'u64' },
      { name: COLUMN.deliveredStamp, kind: 'u64' },
      { name: COLUMN.hlcFloor, kind: 'u64' },
      { name: COLUMN.syncWanted, kind: 'u64' },
      { name: COLUMN.suspected, kind: 'bool[]', length: n },
      { name: COLUMN.wedged, kind: 'bool' },
      { name: COLUMN.cvid, kind: 'u64' },
      { name: COLUMN.ballot, kind: 'u64' },
      { name: COLUMN.promised, kind: 'u64' },
      { name: COLUMN.acceptedBallot, kind: 'u64' },
      { name: COLUMN.acceptedMembers, kind: 'bool[]', length: n },
      { name: COLUMN.acceptedTrim, kind: 'u64[]', length: n },
      { name: COLUMN.committedBallot, kind: 'u64' },
      { name: COLUMN.decidedVid, kind: 'u64' },
      { name: COLUMN.decidedMembers, kind: 'bool[]', length: n },
      { name: COLUMN.decidedTrim, kind: 'u64[]', length: n },
    ],
  }
}
