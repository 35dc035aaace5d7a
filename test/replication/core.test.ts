// The replication protocol core under deterministic simulation (src/testing/groupSim.ts), across
// epochs: random delays, slow packets, crashes of any minority with restarts (rejoin through an
// ordered reconfigure and state transfer), partitions, whole-group crashes and total restart from
// the durable logs. Invariants are checked after every step and at the end. Each scenario runs
// its own seed range; a failing schedule prints its seed and the command that replays it:
//   FFFS_SIM_SCENARIO=<scenario> FFFS_SEED=<seed> npx vitest run test/replication/core.test.ts
// FFFS_SEEDS=<count> sets the schedules per scenario (default 200: 1400 per run, 7 scenarios);
// bench/replication/soak.ts runs many more outside CI.

import { describe, expect, it } from 'vitest'
import { GroupSim, GROUP_SIM_SCENARIOS, replayCommand, runSchedule, scenarioNamed, type GroupSimScenario } from '../../src/testing/groupSim.js'

const SEEDS = Number(process.env['FFFS_SEEDS'] ?? '200')
const ONE_SEED = process.env['FFFS_SEED']
const ONE_SCENARIO = process.env['FFFS_SIM_SCENARIO']

function sweep(scenario: GroupSimScenario): string[] {
  const seeds = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: SEEDS }, (_, i) => scenario.firstSeed + i)
  const failures: string[] = []
  for (const seed of seeds) {
    const { violations } = runSchedule(scenario, seed)
    if (violations.length === 0) continue
    failures.push(`${violations.slice(0, 3).join('\n')}\n  replay: ${replayCommand(scenario, seed)}`)
    if (failures.length >= 5) break
  }
  return failures
}

describe('replication core (simulated)', () => {
  it('orders and delivers identically with no faults, answering every request once durable', () => {
    const sim = new GroupSim({ seed: 7, memberCount: 3, virtualMs: 500, submitsPerMs: 0.5, crashes: 0, partition: false, largeChance: 0.2 })
    expect(sim.run()).toEqual([])
    const [a, b, c] = sim.nodes
    expect(a!.log.length).toBeGreaterThan(200)
    expect(b!.log).toEqual(a!.log)
    expect(c!.log).toEqual(a!.log)
    expect(sim.acked.size).toBe(a!.log.length)
    expect(sim.epochs).toHaveLength(1)
  })

  it('a crashed member restarts, rejoins through a reconfigure and catches up by state transfer', () => {
    const sim = new GroupSim({ seed: 11, memberCount: 3, virtualMs: 600, submitsPerMs: 0.3, crashes: 1, restartMsMin: 50, restartMsMax: 100, partition: false, largeChance: 0.1 })
    expect(sim.run()).toEqual([])
    expect(sim.epochs.length).toBeGreaterThanOrEqual(2)
    expect(sim.epochs.slice(1).some((e) => (e.plan.catchUpIds ?? []).length > 0)).toBe(true) // a reconfigure, not a total restart
    const [a, b, c] = sim.nodes
    expect(b!.log).toEqual(a!.log)
    expect(c!.log).toEqual(a!.log)
    for (const node of sim.nodes) expect(node.core?.currentView.members).toHaveLength(3)
  })

  it('every member crashes at once: the group restarts from the longest log with every acknowledged write', () => {
    const sim = new GroupSim({ seed: 23, memberCount: 3, virtualMs: 600, submitsPerMs: 0.3, crashes: 0, totalCrashes: 1, restartMsMin: 0, restartMsMax: 100, partition: false, largeChance: 0.1 })
    expect(sim.run()).toEqual([])
    expect(sim.epochs.slice(1).some((e) => e.plan.catchUpIds === undefined)).toBe(true) // formed by planEpoch
    expect(sim.acked.size).toBeGreaterThan(50)
  })

  it('a minority partition never installs a view of its own and rejoins after the heal', () => {
    const sim = new GroupSim({ seed: 5, memberCount: 3, virtualMs: 600, submitsPerMs: 0.3, crashes: 0, partition: true, largeChance: 0 })
    expect(sim.run()).toEqual([])
  })

  for (const scenario of GROUP_SIM_SCENARIOS) {
    const only = ONE_SCENARIO === undefined || ONE_SCENARIO === scenario.name
    it.skipIf(!only)(`random schedules: ${scenario.name} (${ONE_SEED !== undefined ? `seed ${ONE_SEED}` : `${SEEDS} seeds from ${scenario.firstSeed}`})`, () => {
      const failures = sweep(scenario)
      expect(failures, `failing schedules (replay each with the command shown):\n${failures.join('\n')}`).toEqual([])
    }, 120_000)
  }

  // Regression, once a known bug of the member runtime (first found at seed 100122, whose
  // schedule changed when the core began publishing its HLC floor at most every 10 ms): members
  // 0 and 1 crash and restart; member 2 is cut off holding 1.0.1 and the record after it durably
  // (never acknowledged: that needs every member's persistence), which member 1's log lacks.
  // Member 0 forms a group from member 1's log, and the group orders other records at their
  // positions. Member 2 used to rejoin keeping them, since state transfer fetched only records
  // after its own last stamp. Now its catch-up finds the donor does not hold its last record,
  // discards its log and fetches everything; the order drops 1.0.1 and what followed it
  // (allowed: never acknowledged, inside no stable cut), and every replica ends with the same log.
  it('a rejoining member discards records the restarted group went on without (crash-restart-3 seed 100322)', () => {
    const trace: string[] = []
    const sim = new GroupSim({ ...scenarioNamed('crash-restart-3').options, seed: 100_322, trace: (line) => trace.push(line) })
    expect(sim.run()).toEqual([])
    expect(trace.some((line) => /order changes at #1: 1\.0\.1@\d+ and \d+ after it dropped/.test(line))).toBe(true)
    expect(trace.some((line) => /^\d+ ms: 2 discards its log \(\d+ records\): its last is not in donor \d's$/.test(line))).toBe(true)
    const [a, b, c] = sim.nodes
    expect(b!.log).toEqual(a!.log)
    expect(c!.log).toEqual(a!.log)
    expect(a!.log.some((r) => r.id === '1.0.1')).toBe(false)
  })
})
