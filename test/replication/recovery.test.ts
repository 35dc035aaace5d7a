// The pure recovery decisions (src/replication/recovery.ts): who may form a group after a total
// restart, from whose log, and when two replicas hold the same record.

import { describe, expect, it } from 'vitest'
import { planEpoch, type MemberReport } from '../../src/replication/recovery.js'
import { recordDigest } from '../../src/replication/transfer.js'

function recovering(id: number, lastStamp: number, lastVid: number, lastViewIds: number[], accepted?: MemberReport['accepted']): MemberReport {
  return { id, phase: 'recovering', lastStamp: String(lastStamp), lastVid, lastViewIds, ...(accepted !== undefined ? { accepted } : {}) }
}

describe('planEpoch', () => {
  it('a majority of the last installed view forms a group, from the longest log of that view', () => {
    const plan = planEpoch([recovering(1, 50, 3, [1, 2, 3]), recovering(2, 70, 3, [1, 2, 3])], 1, true)
    expect(plan).toEqual({ vid: 6, memberIds: [1, 2], donorId: 2, startStamp: '70' })
  })

  // View 7 = [0, 1, 2] was chosen in view 6 = [0..4] (accepted by 0, 1, 2) and installed by 0
  // and 1 only, which run on (and may take writes in a later view of [0, 1]). Members 2, 3, 4
  // hold a majority of view 6; only member 2's acceptance says view 6 is over.
  it('a view a member only accepted counts: a majority of view 6 is not enough once view 7 may exist', () => {
    const view6 = [0, 1, 2, 3, 4]
    const reports = [recovering(2, 90, 6, view6, { vid: 7, ballot: '257', memberIds: [0, 1, 2] }), recovering(3, 80, 6, view6), recovering(4, 80, 6, view6)]
    expect(planEpoch(reports, 2, true)).toBeNull()
    const withoutAcceptance = reports.map(({ accepted: _accepted, ...rest }) => rest)
    expect(planEpoch(withoutAcceptance, 2, true)).not.toBeNull() // what the restart did before: a second group
    // With a majority of view 7 the group forms, its ids after view 7's.
    const plan = planEpoch([recovering(1, 85, 6, view6, { vid: 7, ballot: '257', memberIds: [0, 1, 2] }), ...reports], 1, true)
    expect(plan).toMatchObject({ vid: 10, memberIds: [1, 2, 3, 4] })
  })

  it('for one view id, an installed view wins over acceptances, and a higher ballot over a lower', () => {
    const view6 = [0, 1, 2, 3, 4]
    const low = { vid: 7, ballot: '1', memberIds: [2, 3, 4] }
    const high = { vid: 7, ballot: '257', memberIds: [0, 1, 2] }
    // The higher ballot names [0, 1, 2]: 2 alone is not a majority of it.
    expect(planEpoch([recovering(2, 9, 6, view6, high), recovering(3, 9, 6, view6, low), recovering(4, 9, 6, view6, low)], 2, true)).toBeNull()
    // Installed view 7 = [2, 3, 4] (the chosen value) beats any acceptance for view 7.
    const plan = planEpoch([recovering(2, 9, 7, [2, 3, 4], high), recovering(3, 9, 6, view6, low)], 2, true)
    expect(plan).toMatchObject({ vid: 10, memberIds: [2, 3] })
  })

  // Member 0 persisted a record the others never did, then a group of 1 and 2 (view 9) went on
  // without it and ordered other records, with lower stamps. The longest log overall is 0's.
  it('the donor is a member of the latest installed view, even with a shorter log than an older member', () => {
    const plan = planEpoch([recovering(0, 500, 4, [0, 1, 2]), recovering(1, 450, 9, [1, 2]), recovering(2, 400, 9, [1, 2])], 0, true)
    expect(plan).toEqual({ vid: 11, memberIds: [0, 1, 2], donorId: 1, startStamp: '450' })
  })

  // Member 0 prepared a plan of view 4 alone (it wrote view 4, then the plan failed) with an
  // empty log; members 1 and 2 had run view 1 = [1, 2] and taken writes, then prepared view 3,
  // which never ran either. The latest view prepared is 0's; the latest view run is 1 and 2's.
  it('the donor is a member of the latest view that ran, not of a later one only prepared', () => {
    const reports: MemberReport[] = [
      { ...recovering(0, 0, 4, [0, 1, 2]), lastRunVid: 0 },
      { ...recovering(1, 900, 3, [0, 1, 2]), lastRunVid: 1 },
      { ...recovering(2, 900, 3, [0, 1, 2]), lastRunVid: 1 },
    ]
    expect(planEpoch(reports, 0, true)).toEqual({ vid: 7, memberIds: [0, 1, 2], donorId: 1, startStamp: '900' })
  })
})

describe('recordDigest', () => {
  const write = (segment: number, offset: number, keysReversed: boolean) =>
    keysReversed
      ? { data: { offset, segment }, sizeBytes: 3, offset: 0, op: 'write' as const }
      : { op: 'write' as const, offset: 0, sizeBytes: 3, data: { segment, offset } }

  it('is the same at two replicas that hold the bytes at different log positions, with keys in another order', () => {
    const a = recordDigest({ stamp: 10n, mutation: { type: 'version', ino: 5, ops: [write(0, 100, false)] }, data: [Buffer.from('abc')] })
    const b = recordDigest({ stamp: 10n, mutation: { ops: [write(3, 7, true)], ino: 5, type: 'version' }, data: [Buffer.from('abc')] })
    expect(b).toBe(a)
  })

  it('differs for other bytes, another mutation or another stamp', () => {
    const base = { stamp: 10n, mutation: { type: 'version' as const, ino: 5, ops: [write(0, 100, false)] }, data: [Buffer.from('abc')] }
    const digest = recordDigest(base)
    expect(recordDigest({ ...base, data: [Buffer.from('abd')] })).not.toBe(digest)
    expect(recordDigest({ ...base, mutation: { ...base.mutation, ino: 6 } })).not.toBe(digest)
    expect(recordDigest({ ...base, stamp: 11n })).not.toBe(digest)
  })
})
