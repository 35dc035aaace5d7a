// The core publishes its HLC floor at most every 10 ms (group.ts FLOOR_PUBLISH_INTERVAL_US): the
// floor follows the clock, and publishing every rise made every row push at a peer publish
// again there (a push storm in an idle group). Virtual time: no timing in this test.

import { describe, expect, it } from 'vitest'
import { GroupCore, type CoreAction } from '../../src/replication/core/group.js'
import { COLUMN } from '../../src/replication/core/schema.js'
import type { SstView } from '../../src/replication/transport/types.js'

const quietTable: SstView = { rowCount: 1, u64: () => 0n, bool: () => false }

function floorWrites(actions: readonly CoreAction[]): bigint[] {
  return actions.flatMap((a) => (a.kind === 'setU64' && a.column === COLUMN.hlcFloor ? [a.value] : []))
}

describe('HLC floor publication', () => {
  it('rises at most once per 10 ms however many events come, and never goes down', () => {
    const startUs = 1_800_000_000_000_000
    const core = new GroupCore({ selfRank: 0, epochSize: 1, view: { vid: 1, members: [0] }, sst: quietTable, lastStamp: 0n, nowUs: startUs, smallMessageMaxBytes: 1000, acknowledge: 'synced' })
    const published = floorWrites(core.start())
    // 100 ms of events every 100 µs (a busy member's row events), then ticks only.
    for (let t = 1; t <= 1000; t++) published.push(...floorWrites(core.handle({ kind: t % 2 === 0 ? 'rows' : 'tick' }, startUs + t * 100)))
    expect(published.length).toBeGreaterThanOrEqual(10)
    expect(published.length).toBeLessThanOrEqual(11)
    for (let i = 1; i < published.length; i++) expect(published[i]! > published[i - 1]!).toBe(true)
    // Later events publish the floor again once 10 ms passed since the last.
    expect(floorWrites(core.handle({ kind: 'tick' }, startUs + 100_000 + 10_000)).length).toBe(1)
  })
})
