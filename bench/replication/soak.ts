// Soak run of the replication protocol under deterministic simulation, outside CI: many more
// seeded schedules than the test suite (test/replication/core.test.ts) runs, per scenario of
// src/testing/groupSim.ts. Every failing seed is printed with the command that replays it.
//
//   npx tsc -p tsconfig.json && node dist/bench/replication/soak.js [--seeds 20000] [--from SEED] [--scenario NAME]...
//
// --from shifts every scenario's first seed (a later soak covers new schedules).

import { GROUP_SIM_SCENARIOS, replayCommand, runSchedule, scenarioNamed, type GroupSimScenario } from '../../src/testing/groupSim.js'

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const value = (flag: string): string | undefined => {
    const at = args.indexOf(flag)
    return at >= 0 ? args[at + 1] : undefined
  }
  const seeds = Number(value('--seeds') ?? '5000')
  const shift = Number(value('--from') ?? '0')
  const named = args.flatMap((a, i) => (a === '--scenario' ? [args[i + 1]!] : []))
  const scenarios: readonly GroupSimScenario[] = named.length > 0 ? named.map(scenarioNamed) : GROUP_SIM_SCENARIOS
  let failed = 0
  const startedMs = Date.now()
  for (const scenario of scenarios) {
    const scenarioStartedMs = Date.now()
    let steps = 0
    let epochs = 0
    for (let i = 0; i < seeds; i++) {
      const seed = scenario.firstSeed + shift + i
      const result = await runSchedule(scenario, seed)
      steps += result.steps
      epochs += result.epochs
      if (result.violations.length > 0) {
        failed++
        process.stdout.write(`FAIL ${scenario.name} seed ${seed}:\n  ${result.violations.slice(0, 3).join('\n  ')}\n  replay: ${replayCommand(scenario, seed)}\n`)
      }
    }
    const ms = Date.now() - scenarioStartedMs
    process.stdout.write(`${scenario.name}: ${seeds} schedules in ${(ms / 1000).toFixed(1)} s (${(ms / seeds).toFixed(1)} ms each, ${Math.round(steps / seeds)} steps, ${(epochs / seeds).toFixed(1)} epochs on average)\n`)
  }
  process.stdout.write(`${failed} failing schedules; ${((Date.now() - startedMs) / 1000).toFixed(0)} s\n`)
  if (failed > 0) process.exitCode = 1
}

void main()
