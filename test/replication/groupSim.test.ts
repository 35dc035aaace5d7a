// The member runtime under deterministic simulation (src/testing/groupSim.ts): the production
// Member, its epoch machine, core, delivery, state transfer and store, over a simulated network,
// clock and disks, across epochs: random delays and slow packets, crashes of any minority (a
// process kill, or a power loss that keeps only what was synced and tears the rest) with
// restarts that rejoin through an ordered reconfigure and state transfer, long missing
// suffixes, slow disks, partitions, whole-group crashes and total restart from the logs.
// Invariants are checked after every step and at the end. Each scenario runs its own seed
// range; a failing schedule prints its seed and the command that replays it with every
// member's log:
//   FFFS_SIM_SCENARIO=<scenario> FFFS_SEED=<seed> FFFS_SIM_TRACE=1 npx vitest run test/replication/groupSim.test.ts
// 300 seeds per scenario by default (11 scenarios: 3300 schedules); FFFS_SEEDS=<count> sets it;
// bench/replication/soak.ts runs many more.

import { describe, expect, it } from 'vitest'
import { GroupSim, GROUP_SIM_SCENARIOS, replayCommand, runSchedule, type GroupSimScenario } from '../../src/testing/groupSim.js'

const SEEDS = Number(process.env['FFFS_SEEDS'] ?? '300')
const ONE_SEED = process.env['FFFS_SEED']
const ONE_SCENARIO = process.env['FFFS_SIM_SCENARIO']
const TRACE = process.env['FFFS_SIM_TRACE'] === '1'

async function sweep(scenario: GroupSimScenario): Promise<string[]> {
  const seeds = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: SEEDS }, (_, i) => scenario.firstSeed + i)
  const failures: string[] = []
  for (const seed of seeds) {
    const { violations } = await runSchedule(scenario, seed, TRACE ? (line) => process.stdout.write(`${line}\n`) : undefined)
    if (violations.length === 0) continue
    failures.push(`${violations.slice(0, 3).join('\n')}\n  replay: ${replayCommand(scenario, seed)}`)
    if (failures.length >= 5) break
  }
  return failures
}

describe('the member runtime (simulated)', () => {
  it('orders and delivers identically with no faults, answering every request once durable', async () => {
    const sim = new GroupSim({ seed: 7, memberCount: 3, virtualMs: 500, submitsPerMs: 0.5, crashes: 0, partition: false, largeChance: 0.2 })
    expect(await sim.run()).toEqual([])
    expect(sim.world.canonical.length).toBeGreaterThan(200)
    expect(sim.world.acked.size).toBe(sim.world.canonical.length)
    expect(sim.world.epochs).toHaveLength(1)
  })

  for (const scenario of GROUP_SIM_SCENARIOS) {
    const only = ONE_SCENARIO === undefined || ONE_SCENARIO === scenario.name
    it.skipIf(!only)(`random schedules: ${scenario.name} (${ONE_SEED !== undefined ? `seed ${ONE_SEED}` : `${SEEDS} seeds from ${scenario.firstSeed}`})`, async () => {
      const failures = await sweep(scenario)
      expect(failures, `failing schedules (replay each with the command shown):\n${failures.join('\n')}`).toEqual([])
    }, 600_000)
  }
})
