// fffs status rendering: pure functions of the mount's answer, checked on a fixed answer
// (three members, one unreachable after a view change; one member still recovering).

import { describe, expect, it } from 'vitest'
import { renderStatus, shortStamp, statusJson, summarize, type ClusterStatusJson, type MemberStatusJson } from '../../src/cli/statusView.js'
import { hlcOf } from '../../src/temporal/hlc.js'

const T0_US = Date.UTC(2026, 10, 21, 15, 0, 0) * 1000
const stamp = (offsetMs: number, logical = 0): string => hlcOf(T0_US + offsetMs * 1000, logical).toString()

function row(vid: number, delivered: number, deliveredMs: number, persistedMs: number, suspected: boolean[]): Record<string, string | boolean | string[] | boolean[]> {
  return {
    vid: String(vid),
    received: ['10', '0', '9'],
    delivered: String(delivered),
    persisted_stamp: stamp(persistedMs),
    delivered_stamp: stamp(deliveredMs),
    hlc_floor: stamp(deliveredMs + 5, 4095),
    suspected,
    wedged: false,
    cvid: '1',
    ballot: '1',
    promised: '1',
    accepted_ballot: '1',
    accepted_members: [true, false, true],
    accepted_trim: ['20', '19', '19'],
    committed_ballot: '1',
    decided_vid: '2',
    decided_members: [true, false, true],
    decided_trim: ['20', '19', '19'],
  }
}

function member(id: number, rank: number, deliveredMs: number): MemberStatusJson {
  return {
    id,
    pid: 1000 + id,
    phase: 'running',
    core: {
      view: { vid: 2, members: [0, 2] },
      rank,
      leaderRank: 0,
      wedged: false,
      excluded: false,
      suspected: [1],
      sent: 10,
      received: [10, 0, 9],
      delivered: 19,
      deliveredStamp: stamp(deliveredMs),
      persistedStamp: stamp(deliveredMs),
      globalWrittenStamp: stamp(90),
      globalPersistedStamp: stamp(90),
      stableStamp: stamp(95),
      pendingRequests: 0,
    },
    memberIds: [0, 1, 2],
    appliedStamp: stamp(deliveredMs),
    rows: [row(2, 19, 100, 100, [false, true, false]), row(1, 50, 40, 40, [false, false, false]), row(2, 17, 90, 80, [false, true, false])],
  }
}

const answer: ClusterStatusJson = {
  mode: 'cluster',
  mountpoint: '/tmp/m',
  pid: 42,
  at: '2026-11-21T15:00:01.000Z',
  stateDir: '/tmp/g',
  stableFrontier: '2026-11-21T15:00:00.095000Z',
  connectedMember: 0,
  group: {
    name: 'g',
    configPath: '/tmp/g/config.json',
    layout: { shards: 1, replicas: 3 },
    shards: { meta: [0, 1, 2], data: [[0, 1, 2]] },
    members: [0, 1, 2].map((id) => ({ id, host: '127.0.0.1', transportPort: 30000 + 2 * id, clientPort: 30001 + 2 * id })),
  },
  members: [
    { id: 0, host: '127.0.0.1', clientPort: 30001, connected: true, reachable: true, status: member(0, 0, 100), elapsedMs: 1 },
    { id: 1, host: '127.0.0.1', clientPort: 30003, connected: false, reachable: false, error: { code: 'EIO', message: 'connect to 127.0.0.1:30003: ECONNREFUSED' }, elapsedMs: 1 },
    { id: 2, host: '127.0.0.1', clientPort: 30005, connected: false, reachable: true, status: member(2, 2, 90), elapsedMs: 2 },
  ],
}

describe('fffs status view', () => {
  it('summarises the view as member ids, the unreachable members, and lag from one table', () => {
    const s = summarize(answer)
    expect(s.referenceMember).toBe(0)
    expect(s.view).toEqual({ vid: 2, members: [0, 2] })
    expect(s.leader).toBe(0)
    expect(s.views).toEqual([{ vid: 2, members: [0, 2], reportedBy: [0, 2] }])
    expect(s.unreachable).toEqual([1])
    expect(s.lag).toEqual([
      { member: 0, deliveredBehindMessages: 0, deliveredBehindMs: 0, persistedBehindMs: 0 },
      { member: 2, deliveredBehindMessages: 2, deliveredBehindMs: 10, persistedBehindMs: 20 },
    ])
    expect(statusJson(answer as unknown as Record<string, unknown>).summary).toEqual(s)
  })

  it('fits 100 columns by default: a row per member with its pid and lag, no internals', () => {
    const text = renderStatus(answer as unknown as Record<string, unknown>)
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100)
    expect(text).toMatch(/^mount \/tmp\/m \(pid 42\) · group g: 3 members, 3 replicas · connected to member 0$/m)
    expect(text).toMatch(/^view 2: members \[0,2\], leader 0 · stable cut 2026-11-21T15:00:00.095000Z$/m)
    expect(text).toMatch(/^MEMBER\s+PID\s+PHASE\s+STATE\s+VIEW\s+DELIVERED\s+BEHIND \(msgs\)\s+BEHIND \(ms\)\s+UNPERSISTED \(ms\)$/m)
    expect(text).toMatch(/^0\*\s+1000\s+running\s+in view\s+2\s+19\s+0\s+0\.0\s+0\.0$/m)
    expect(text).toMatch(/^2\s+1002\s+running\s+in view\s+2\s+19\s+2\s+10\.0\s+20\.0$/m)
    expect(text).toMatch(/^1\s+-\s+-\s+unreachable$/m)
    expect(text).not.toMatch(/BALLOT|HLC_FLOOR|\+4095/)
  })

  it('with --verbose lays out the members, the shared state table (rows = members) and the lag', () => {
    const text = renderStatus(answer as unknown as Record<string, unknown>, { verbose: true })
    expect(text).toMatch(/^view 2: members \[0,2\], leader 0/m)
    expect(text).toMatch(/^1\s+-\s+-\s+unreachable/m)
    expect(text).toContain('member 1 unreachable: EIO connect to 127.0.0.1:30003: ECONNREFUSED')
    expect(text).toMatch(/^ROW\s+VID\s+RECEIVED\s+DELIVERED\s+DELIVERED_STAMP\s+PERSISTED_STAMP\s+HLC_FLOOR\s+SUSPECTED\s+WEDGED/m)
    expect(text).toMatch(/^0 \(self\)\s+2\s+\[10,0,9\]\s+19\s+15:00:00\.100000\s+15:00:00\.100000\s+15:00:00\.105000\+4095\s+\[1\]\s+no/m)
    expect(text).toMatch(/^2\s+2\s+10\.0\s+20\.0$/m)
  })

  it('shows members in no epoch yet, and an embedded mount with the same header', () => {
    const recovering: ClusterStatusJson = {
      ...answer,
      members: answer.members.map((m) => (m.status === undefined ? m : { ...m, status: { ...m.status, phase: 'recovering', core: null, memberIds: [], rows: [] } })),
    }
    expect(summarize(recovering).view).toBeNull()
    expect(renderStatus(recovering as unknown as Record<string, unknown>)).toContain('no member in a running group: member 0 (pid 1000): recovering')
    expect(renderStatus({ mode: 'embedded', mountpoint: '/m', pid: 7, dataDir: '/d', stableFrontier: '2026-11-21T15:00:00.095000Z' })).toBe('mount /m (pid 7) · embedded store /d\nstable cut 2026-11-21T15:00:00.095000Z\n')
    expect(shortStamp('0')).toBe('-')
  })

  it('says whether the group runs yet, and how far a member catching up is', () => {
    expect(summarize(answer).readiness).toMatchObject({ ready: true, members: 3, running: [0, 2], unreachable: [1], catchingUp: [] })
    expect(renderStatus(answer as unknown as Record<string, unknown>)).toMatch(/^group running: 2 of 3 members; unreachable: 1$/m)
    const transfer = { donorId: 0, records: 812, doneBytes: 861_000_000, totalBytes: 2_100_000_000, rateBytesPerS: 180_000_000, etaMs: 6_900, elapsedMs: 4_800 }
    const waiting: ClusterStatusJson = {
      ...answer,
      members: answer.members.map((m) =>
        m.status === undefined ? { ...m, reachable: true, error: undefined, status: { ...member(1, 1, 0), phase: 'starting', core: null, transfer } } : { ...m, status: { ...m.status, phase: m.id === 0 ? 'starting' : 'recovering', core: null } },
      ),
    }
    const readiness = summarize(waiting).readiness
    expect(readiness).toMatchObject({ ready: false, running: [], starting: [0, 1], recovering: [2], catchingUp: [{ id: 1, transfer }] })
    expect(renderStatus(waiting as unknown as Record<string, unknown>)).toContain(
      'waiting for the group: 0 of 3 members running; member 1 catching up from member 0: 41% of 2.1 GB, 812 records, 180 MB/s, about 7 s left; starting: 0; recovering: 2',
    )
  })
})
