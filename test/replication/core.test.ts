// The replication protocol core under deterministic simulation: random delays, crashes of any
// minority, partitions, slow packets; the invariants of src/testing/groupSim.ts are checked
// after every step and at the end. A failing schedule prints its seed; replay it with
//   FFFS_SEED=<seed> npx vitest run test/replication/core.test.ts
// FFFS_SEEDS=<count> runs more schedules per scenario (bench/replication/soak runs thousands).

import { describe, expect, it } from 'vitest'
import { GroupSim, type GroupSimOptions } from '../../src/testing/groupSim.js'

const SEEDS = Number(process.env['FFFS_SEEDS'] ?? '60')
const ONE_SEED = process.env['FFFS_SEED']

async function runSeeds(base: Omit<GroupSimOptions, 'seed'>, firstSeed: number): Promise<string[]> {
  const seeds = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: SEEDS }, (_, i) => firstSeed + i)
  const failures: string[] = []
  for (const seed of seeds) {
    const violations = await new GroupSim({ ...base, seed }).run()
    if (violations.length > 0) failures.push(...violations.slice(0, 3))
    if (failures.length >= 9) break
  }
  return failures
}

describe('replication core (simulated)', () => {
  it('orders and delivers identically with no faults, answering every request once durable', async () => {
    const sim = new GroupSim({ seed: 7, memberCount: 3, virtualMs: 500, submitsPerMs: 0.5, crashes: 0, partition: false, largeChance: 0.2 })
    expect(await sim.run()).toEqual([])
    const [a, b, c] = sim.members
    expect(a!.delivered.length).toBeGreaterThan(200)
    expect(b!.delivered).toEqual(a!.delivered)
    expect(c!.delivered).toEqual(a!.delivered)
    const acked = sim.members.reduce((sum, m) => sum + m.acked.size, 0)
    expect(acked).toBe(a!.delivered.length)
  })

  it('survives a crash: the survivors install a view without it and answer everything', async () => {
    const sim = new GroupSim({ seed: 11, memberCount: 3, virtualMs: 600, submitsPerMs: 0.3, crashes: 1, partition: false, largeChance: 0.1 })
    expect(await sim.run()).toEqual([])
    const survivors = sim.members.filter((m) => m.alive)
    expect(survivors).toHaveLength(2)
    for (const m of survivors) expect(m.core.currentView.members).toHaveLength(2)
  })

  it('a minority partition is excluded, never installs a view of its own', async () => {
    const sim = new GroupSim({ seed: 5, memberCount: 3, virtualMs: 600, submitsPerMs: 0.3, crashes: 0, partition: true, largeChance: 0 })
    expect(await sim.run()).toEqual([])
  })

  for (const memberCount of [3, 5]) {
    it(`random schedules, ${memberCount} members: delays, crashes of a minority`, async () => {
      const failures = await runSeeds({ memberCount, virtualMs: 400, submitsPerMs: 0.2, crashes: memberCount === 5 ? 2 : 1, partition: false, largeChance: 0.1, slowPacketChance: 0.01 }, 1000 * memberCount)
      expect(failures).toEqual([])
    })
    it(`random schedules, ${memberCount} members: partitions plus crashes`, async () => {
      const failures = await runSeeds({ memberCount, virtualMs: 400, submitsPerMs: 0.2, crashes: 1, partition: true, largeChance: 0.1 }, 2000 * memberCount)
      expect(failures).toEqual([])
    })
  }
})
