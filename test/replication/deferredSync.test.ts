// The member's group commit (member/delivery.ts) in "write-on-close": records delivered while
// nothing waits on their sync are reported written at once and synced only once the delay has
// passed (a stream of small commits shares syncs); when a sync is waited on (a client's fsync,
// anywhere in the view) it starts at once. A real store on a temp dir; the delay's timer is a
// hand-driven clock, so no timing is asserted.

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Clock } from '../../src/replication/clock.js'
import { Delivery } from '../../src/replication/member/delivery.js'
import { Replica } from '../../src/replication/member/replica.js'
import { encodeRecordPayload } from '../../src/replication/payload.js'
import { nodeDisk } from '../../src/store/disk.js'
import { ROOT_INO } from '../../src/store/records.js'
import type { HlcStamp } from '../../src/temporal/hlc.js'

/** Timers run only when the test says so. */
function handClock(): Clock & { fire(): void; pending(): number } {
  let timers: Array<{ run: () => void; cancelled: boolean }> = []
  return {
    nowMs: () => 0,
    wallClockUs: () => 1_800_000_000_000_000,
    setTimer: (_delayMs, run) => {
      const timer = { run, cancelled: false }
      timers.push(timer)
      return { cancel: () => void (timer.cancelled = true) }
    },
    defer: (run) => void setImmediate(run),
    fire() {
      const due = timers.filter((t) => !t.cancelled)
      timers = []
      for (const t of due) t.run()
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  expect(condition()).toBe(true)
}

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('deferred group commit', () => {
  it('syncs what nothing waits on once the delay passed, and at once while a sync is waited on', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-deferred-sync-'))
    dirs.push(dir)
    const clock = handClock()
    const replica = await Replica.open({ memberId: 0, disk: nodeDisk, dataDir: dir, clock, log: () => undefined })
    const written: HlcStamp[] = []
    const persisted: HlcStamp[] = []
    let urgent = false
    const delivery = new Delivery(replica, {
      written: (stamp) => void written.push(stamp),
      persisted: (stamp) => void persisted.push(stamp),
      failed: (err) => {
        throw err
      },
      applied: () => undefined,
      deferSync: { urgent: () => urgent, delayMs: 10, clock },
    })
    const mknod = (name: string): Uint8Array => encodeRecordPayload({ mutation: { type: 'mknod', parent: ROOT_INO, name, kind: 'file', mode: 0o644, uid: 0, gid: 0 } }, [])
    try {
      delivery.deliver(1n, 1, mknod('a'))
      delivery.syncIfNeeded()
      await until(() => written.includes(1n))
      delivery.deliver(2n, 1, mknod('b'))
      delivery.syncIfNeeded()
      await until(() => written.includes(2n))
      expect(persisted).toEqual([]) // written, not synced: the sync waits for more
      expect(clock.pending()).toBe(1) // one timer for both
      clock.fire()
      await until(() => persisted.includes(2n)) // one sync for both records
      expect(persisted).toEqual([2n])

      delivery.deliver(3n, 1, mknod('c'))
      urgent = true // a client's fsync somewhere in the view
      delivery.syncIfNeeded()
      await until(() => persisted.includes(3n))
      expect(clock.pending()).toBe(0)
    } finally {
      await delivery.stop()
      await replica.store.close()
    }
  })
})
