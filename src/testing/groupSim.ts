// Seeded random schedules of a replication group running the production member runtime in the
// simulated world (simWorld.ts, which also checks the invariants after every step): a
// workload of new files and writes of every size through each member's client, crashes of any
// minority (a process kill, or a power loss that keeps only what was synced and tears the
// rest) with restarts after a drawn delay (a long one: a long missing suffix), whole-group
// crashes, partitions, slow packets and a slow disk. After `virtualMs` the faults stop: every
// member restarts, links heal, and the group must converge (one epoch, one view, identical
// logs); then every machine loses power, and every store must hold the whole order with every
// acknowledged write that must survive (simWorld.ts: with 'write-on-close', those fsynced and
// those some machine still held written). A failing schedule is replayed by its seed alone
// (`replayCommand`).

import type { Durability } from '../replication/config.js'
import { SimWorld, type WriteKind } from './simWorld.js'
import { Prng } from './prng.js'

export interface GroupSimOptions {
  readonly seed: number
  readonly memberCount: number
  /** The group's durability (default 'write-on-close', where half the acknowledged writes are then fsynced). */
  readonly durability?: Durability
  readonly virtualMs: number // how long the workload and faults run; then faults stop and the group must converge
  readonly submitsPerMs: number // offered load, spread over the members
  readonly crashes: number // crash events at random instants; each crashes a random member while fewer than a majority are down
  /** Crashed members restart after a delay drawn in [restartMsMin, restartMsMax]; absent: they stay down until the faults stop. */
  readonly restartMsMin?: number
  readonly restartMsMax?: number
  /** Whole-group crashes: every member crashes within a few ms of a random instant, then restarts. */
  readonly totalCrashes?: number
  readonly partition: boolean // one random minority/majority split, healed later
  /** Random minority/majority splits (overrides `partition`); a later one replaces an earlier one still in force. */
  readonly partitions?: number
  readonly largeChance: number // fraction of writes whose bytes go as a large message (RDMC)
  readonly slowPacketChance?: number
  /** Fraction of crashes that are power losses (unsynced writes lost, the rest torn); the others kill the process only. */
  readonly powerLossChance?: number
  /** One member (drawn) has a slow disk: syncs take up to this long (virtual ms). */
  readonly slowDiskSyncMsMax?: number
  /** Every member's disk is that slow, not one. */
  readonly allDisksSlow?: boolean
  /** Bytes of file data per state-transfer batch (small: a transfer takes many batches). */
  readonly transferBatchBytes?: number
  /** Bound on the convergence phase after the faults stop (virtual ms). */
  readonly settleMsMax?: number
  /** Receives one line per world event and every line the members log: for replaying a seed. */
  readonly trace?: (line: string) => void
}

const WORKLOAD_SEED_SALT = 0x5eed_f00d

export class GroupSim {
  readonly world: SimWorld
  private readonly options: GroupSimOptions
  private readonly prng: Prng // workload and faults
  private faultsOver = false

  constructor(options: GroupSimOptions) {
    this.options = options
    this.prng = new Prng(options.seed ^ WORKLOAD_SEED_SALT) // independent of the world's own draws from the seed
    this.world = new SimWorld({
      seed: options.seed,
      memberCount: options.memberCount,
      ...(options.durability !== undefined ? { durability: options.durability } : {}),
      ...(options.slowPacketChance !== undefined ? { slowPacketChance: options.slowPacketChance } : {}),
      ...(options.slowDiskSyncMsMax !== undefined ? { slowDiskSyncMsMax: options.slowDiskSyncMsMax } : {}),
      ...(options.allDisksSlow !== undefined ? { allDisksSlow: options.allDisksSlow } : {}),
      ...(options.transferBatchBytes !== undefined ? { transferBatchBytes: options.transferBatchBytes } : {}),
      ...(options.trace !== undefined ? { trace: options.trace } : {}),
    })
  }

  /** Runs the workload and the faults, then lets the group converge; returns the violations found. */
  async run(): Promise<string[]> {
    const world = this.world
    for (const machine of world.machines) world.start(machine.id)
    this.scheduleWorkload()
    this.scheduleFaults()
    world.scheduler.at(this.options.virtualMs, () => this.endFaults())
    const deadlineMs = this.options.virtualMs + (this.options.settleMsMax ?? 3000)
    await world.runUntil(() => this.faultsOver && world.converged(), deadlineMs)
    const converged = world.violations.length === 0 && world.converged()
    if (world.violations.length === 0 && !converged) {
      const states = world.machines.map((m) => {
        const view = m.member?.views.current()
        return `${m.id}: ${m.member?.phase ?? (m.up ? 'opening' : 'down')}${view === undefined ? '' : ` view ${view.vid} [${view.memberIds.join(',')}]`} log ${m.log.length}`
      })
      world.violation(`did not converge after the faults stopped: ${states.join('; ')}; ${world.pendingRequests} requests unanswered`)
    }
    await world.checkEnd(converged)
    return world.violations
  }

  private scheduleWorkload(): void {
    const { virtualMs, submitsPerMs, memberCount, largeChance } = this.options
    const count = Math.round(virtualMs * submitsPerMs)
    for (let i = 0; i < count; i++) {
      const atMs = this.prng.int(0, virtualMs)
      const id = this.prng.int(0, memberCount - 1)
      const kind: WriteKind = this.prng.chance(0.5) ? 'file' : this.prng.chance(largeChance) ? 'large' : this.prng.chance(0.5) ? 'small' : 'medium'
      this.world.scheduler.at(atMs, () => void this.world.submit(id, kind))
    }
  }

  private scheduleFaults(): void {
    const world = this.world
    const { memberCount: n, virtualMs } = this.options
    const minority = Math.floor((n - 1) / 2)
    const powerLoss = (): boolean => this.prng.chance(this.options.powerLossChance ?? 0)
    const crash = (id: number): void => {
      if (this.faultsOver || !world.machines[id]!.up) return
      world.crash(id, powerLoss())
      if (this.options.restartMsMax !== undefined) world.scheduler.after(this.prng.int(this.options.restartMsMin ?? 0, this.options.restartMsMax), () => world.start(id))
    }
    for (let i = 0; i < this.options.crashes; i++) {
      world.scheduler.at(this.prng.int(0, virtualMs), () => {
        // Any member, while fewer than a minority's worth are down: a majority can always go on.
        if (world.machines.filter((m) => !m.up).length >= minority) return
        crash(this.prng.pick(world.machines.filter((m) => m.up)).id)
      })
    }
    for (let i = 0; i < (this.options.totalCrashes ?? 0); i++) {
      const atMs = this.prng.int(0, Math.floor((virtualMs * 2) / 3)) // all of it before the faults stop
      for (const machine of world.machines) world.scheduler.at(atMs + this.prng.int(0, 3), () => crash(machine.id))
    }
    const partitions = this.options.partitions ?? (this.options.partition ? 1 : 0)
    let current: ReadonlySet<number> = new Set()
    for (let i = 0; i < partitions && minority > 0; i++) {
      const side = new Set(this.prng.shuffle(world.machines.map((m) => m.id)).slice(0, this.prng.int(1, minority)))
      const fromMs = this.prng.int(0, virtualMs)
      const lengthMs = this.prng.int(10, 400)
      world.scheduler.at(fromMs, () => {
        current = side
        world.setPartition(side)
      })
      world.scheduler.at(Math.min(fromMs + lengthMs, virtualMs), () => {
        if (current === side) world.setPartition((current = new Set())) // a later split replaced it: that one heals itself
      })
    }
  }

  private endFaults(): void {
    this.faultsOver = true
    this.world.setPartition(new Set())
    for (const machine of this.world.machines) this.world.start(machine.id)
    this.world.trace('faults end')
  }
}

// ---- the scenarios the tests and the soak run share ----

export interface GroupSimScenario {
  readonly name: string
  readonly firstSeed: number // seeds firstSeed, firstSeed + 1, ...: scenarios never share a seed
  readonly options: Omit<GroupSimOptions, 'seed'>
}

export const GROUP_SIM_SCENARIOS: readonly GroupSimScenario[] = [
  { name: 'crash-restart-3', firstSeed: 100_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'crash-restart-5', firstSeed: 200_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 3, restartMsMin: 20, restartMsMax: 200, partition: false, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'partition-3', firstSeed: 300_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1, powerLossChance: 0.5 } },
  { name: 'partitions-5', firstSeed: 700_000, options: { memberCount: 5, virtualMs: 400, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: true, partitions: 3, largeChance: 0.1, slowPacketChance: 0.01, powerLossChance: 0.5 } },
  { name: 'total-restart-3', firstSeed: 500_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 0.5 } },
  { name: 'total-restart-5', firstSeed: 600_000, options: { memberCount: 5, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 0.5 } },
  // A member down for most of the run while writes go on, then back: a long missing suffix,
  // fetched in many small batches (before the join and at the epoch's start), on a slow disk.
  { name: 'long-suffix-3', firstSeed: 800_000, options: { memberCount: 3, virtualMs: 500, submitsPerMs: 0.4, crashes: 1, restartMsMin: 250, restartMsMax: 400, partition: false, largeChance: 0.2, powerLossChance: 0.5, slowDiskSyncMsMax: 40, transferBatchBytes: 16 * 1024 } },
  { name: 'slow-disks-3', firstSeed: 900_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 2, restartMsMin: 20, restartMsMax: 200, partition: true, largeChance: 0.1, powerLossChance: 0.5, slowDiskSyncMsMax: 80, transferBatchBytes: 16 * 1024 } },
  // Every process killed (no power loss), twice: every acknowledged write survives, synced or not.
  { name: 'total-kill-3', firstSeed: 1_000_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 2, partition: false, largeChance: 0.1, powerLossChance: 0, slowDiskSyncMsMax: 40 } },
  // Total power losses with every disk slow to sync: writes are acknowledged long before they are
  // synced, and only those fsynced (half of them) or still held by a machine must survive.
  { name: 'total-power-loss-3', firstSeed: 1_200_000, options: { memberCount: 3, virtualMs: 300, submitsPerMs: 0.3, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 1, slowDiskSyncMsMax: 80, allDisksSlow: true } },
  // Today's rule: a close is acknowledged once synced everywhere, so every one survives total power losses.
  { name: 'total-restart-3-sync-on-close', firstSeed: 1_100_000, options: { memberCount: 3, durability: 'sync-on-close', virtualMs: 300, submitsPerMs: 0.2, crashes: 1, restartMsMin: 0, restartMsMax: 150, totalCrashes: 1, partition: false, largeChance: 0.1, powerLossChance: 0.5 } },
]

export function scenarioNamed(name: string): GroupSimScenario {
  const scenario = GROUP_SIM_SCENARIOS.find((s) => s.name === name)
  if (scenario === undefined) throw new RangeError(`no simulation scenario '${name}' (${GROUP_SIM_SCENARIOS.map((s) => s.name).join(', ')})`)
  return scenario
}

export interface ScheduleResult {
  readonly violations: string[]
  readonly steps: number
  readonly virtualMs: number
  readonly epochs: number
}

/** Runs one schedule; an exception in the runtime or the harness is a violation too (it names the seed). */
export async function runSchedule(scenario: GroupSimScenario, seed: number, trace?: (line: string) => void): Promise<ScheduleResult> {
  const sim = new GroupSim({ ...scenario.options, seed, ...(trace !== undefined ? { trace } : {}) })
  let violations: string[]
  try {
    violations = await sim.run()
  } catch (err) {
    violations = [`seed ${seed} at ${sim.world.nowMs} ms: threw ${(err as Error).stack ?? String(err)}`]
  }
  return { violations, steps: sim.world.steps, virtualMs: sim.world.nowMs, epochs: sim.world.epochs.length }
}

/** The command that replays one schedule of a scenario, with every member's log. */
export function replayCommand(scenario: GroupSimScenario, seed: number): string {
  return `FFFS_SIM_SCENARIO=${scenario.name} FFFS_SEED=${seed} FFFS_SIM_TRACE=1 npx vitest run test/replication/groupSim.test.ts`
}
