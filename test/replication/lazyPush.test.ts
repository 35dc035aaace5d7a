// Which row changes the core pushes at once and which it lets wait (group.ts LAZY_COLUMNS): a
// push costs a write to every peer and wakes each of them, so changes nobody waits on (delivered
// counts, the floor, the persisted stamp in "write-on-close") ride on the next urgent push. A
// member with a client waiting on a sync says so in its row (sync_wanted); the others then push
// their persisted stamps at once. Virtual time, a table written by hand: no timing in this test.

import { describe, expect, it } from 'vitest'
import { GroupCore, type CoreAction } from '../../src/replication/core/group.js'
import { COLUMN } from '../../src/replication/core/schema.js'
import type { SstView } from '../../src/replication/transport/types.js'

const START_US = 1_800_000_000_000_000

/** A 2-member table: rank 1's cells are set by the test, rank 0's (the core's own) stay unread. */
function table(): { sst: SstView; set(column: string, value: bigint): void } {
  const cells = new Map<string, bigint>([[COLUMN.vid, 1n]])
  return {
    sst: { rowCount: 2, u64: (rank, column) => (rank === 1 ? (cells.get(column) ?? 0n) : 0n), bool: () => false },
    set: (column, value) => void cells.set(column, value),
  }
}

function pushOf(actions: readonly CoreAction[]): 'urgent' | 'lazy' | 'none' {
  const push = actions.find((a) => a.kind === 'push')
  if (push === undefined) return 'none'
  return push.kind === 'push' && push.lazy === true ? 'lazy' : 'urgent'
}

function coreOn(sst: SstView, acknowledge: 'written' | 'synced'): GroupCore {
  return new GroupCore({ selfRank: 0, epochSize: 2, view: { vid: 1, members: [0, 1] }, sst, lastStamp: 0n, nowUs: START_US, smallMessageMaxBytes: 1000, acknowledge })
}

describe('row pushes: urgent and lazy changes', () => {
  it('pushes a written stamp at once and a persisted stamp lazily, unless a sync is wanted somewhere', () => {
    const { sst, set } = table()
    const core = coreOn(sst, 'written')
    expect(pushOf(core.start())).toBe('urgent')
    let nowUs = START_US
    const step = (event: Parameters<GroupCore['handle']>[0]): CoreAction[] => core.handle(event, (nowUs += 1))
    expect(pushOf(step({ kind: 'written', stamp: 5n }))).toBe('urgent') // answers wait on it
    expect(pushOf(step({ kind: 'persisted', stamp: 5n }))).toBe('lazy') // nothing waits on it
    expect(pushOf(step({ kind: 'rows' }))).toBe('none')
    // The peer's client waits for stamp 9 synced: what this row holds unpushed goes now...
    set(COLUMN.syncWanted, 9n)
    expect(pushOf(step({ kind: 'rows' }))).toBe('urgent')
    // ...and so does each persisted stamp after it while the wish is above what was pushed.
    step({ kind: 'written', stamp: 9n })
    expect(pushOf(step({ kind: 'persisted', stamp: 9n }))).toBe('urgent')
    step({ kind: 'written', stamp: 12n })
    expect(pushOf(step({ kind: 'persisted', stamp: 12n }))).toBe('lazy') // 9 is covered: lazy again
  })

  it("pushes its own wish for a sync at once, and every persisted stamp when answers wait on syncs", () => {
    const { sst } = table()
    const written = coreOn(sst, 'written')
    written.start()
    const wish = written.handle({ kind: 'syncWanted', stamp: 3n }, START_US + 1)
    expect(pushOf(wish)).toBe('urgent')
    expect(wish).toContainEqual({ kind: 'setU64', column: COLUMN.syncWanted, value: 3n })
    expect(written.syncWantedStamp()).toBe(3n)

    const synced = coreOn(table().sst, 'synced')
    synced.start()
    synced.handle({ kind: 'written', stamp: 5n }, START_US + 1)
    expect(pushOf(synced.handle({ kind: 'persisted', stamp: 5n }, START_US + 2))).toBe('urgent')
  })
})
