// The simulated transport: the shared compliance suite, then what only a simulation can
// show — exact replay from a seed, partitions, the ragged edge of a crash, the SMC window
// counted in messages, and hundreds of random schedules checked for the transport's
// invariants. A failing schedule prints its seed; replay it with
//   FFFS_SEED=<seed> npx vitest run test/transport/simulated.test.ts -t 'random schedules'
// (FFFS_TRACE=1 also prints the trace of that run; FFFS_SEEDS=<count> runs more schedules).

import { describe, expect, it } from 'vitest'
import { SimulatedNetwork, type SimulatedNetworkOptions } from '../../src/testing/simulatedNetwork.js'
import { Prng, seedFromEnv } from '../../src/testing/prng.js'
import { Scheduler } from '../../src/testing/scheduler.js'
import {
  complianceObserverOptions,
  complianceSchema,
  transportCompliance,
  TransportObserver,
  writeRound,
  type MakeGroup,
} from './compliance.js'

type Overrides = Omit<SimulatedNetworkOptions, 'seed' | 'memberCount' | 'schema'>

function simulatedGroups(seed: number, overrides: Overrides = {}): MakeGroup {
  return async ({ memberCount, schema }) => {
    const net = new SimulatedNetwork({ seed, memberCount, schema, traceEnabled: false, ...overrides })
    await net.startAll()
    const c = net.config
    return {
      transports: net.transports,
      smcSlotSizeBytes: c.smcSlotSizeBytes,
      smcWindowSlots: c.smcWindowSlots,
      rdmcBlockSizeBytes: c.rdmcBlockSizeBytes,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
      suspectTimeoutMs: c.suspectTimeoutMs,
      slackMs: 2 * c.delayMsMax,
      crash: async (rank) => net.crash(rank),
      waitUntil: (condition, timeoutMs) => net.runUntil(condition, timeoutMs),
      close: async () => {
        for (const t of net.transports) await t.stop()
      },
    }
  }
}

// Default transport settings (1 MiB blocks, 64-slot windows, 1 s suspicion), three members.
transportCompliance('simulated (defaults)', simulatedGroups(1), {
  large64MiB: process.env['FFFS_LARGE'] === '1',
})
// Tight settings, small and larger groups: windows and pipelines are crossed often.
transportCompliance(
  'simulated (tight)',
  simulatedGroups(2, {
    delayMsMin: 0,
    delayMsMax: 40,
    smcSlotSizeBytes: 100,
    smcWindowSlots: 3,
    rdmcBlockSizeBytes: 1000,
    bytesPerMs: 500,
    heartbeatIntervalMs: 20,
    suspectTimeoutMs: 150,
  }),
  { memberCounts: [2, 5] },
)

// ---- helpers ----------------------------------------------------------------------------------

function network(memberCount: number, overrides: Overrides = {}, seed = 7): SimulatedNetwork {
  return new SimulatedNetwork({ seed, memberCount, schema: complianceSchema(memberCount), ...overrides })
}

async function drainMicrotasks(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

// ---- the building blocks ----------------------------------------------------------------------

describe('prng and scheduler', () => {
  it('a seed gives one sequence; neighbouring seeds and forks give different ones', () => {
    const draw = (p: Prng): number[] => Array.from({ length: 8 }, () => p.u32())
    expect(draw(new Prng(42))).toEqual(draw(new Prng(42)))
    expect(draw(new Prng(42))).not.toEqual(draw(new Prng(43)))
    const p = new Prng(42)
    expect(draw(p.fork())).not.toEqual(draw(p.fork()))
    const q = new Prng(2 ** 40 + 5)
    for (let i = 0; i < 1000; i++) {
      const x = q.int(-3, 3)
      expect(x >= -3 && x <= 3 && Number.isInteger(x)).toBe(true)
    }
    expect(() => new Prng(0.5)).toThrow(RangeError)
  })

  it('the scheduler runs one instant per step, in insertion order, and counts only foreground work as busy', () => {
    const s = new Scheduler()
    const log: string[] = []
    s.at(5, () => log.push('a5'))
    s.at(3, () => {
      log.push('b3')
      s.after(0, () => log.push('c3-next-step'))
    })
    s.at(3, () => log.push('d3'))
    s.at(100, () => log.push('hb'), { background: true })
    expect(s.step()).toBe(true)
    expect(log).toEqual(['b3', 'd3'])
    expect(s.nowMs).toBe(3)
    s.step()
    expect(log.at(-1)).toBe('c3-next-step')
    expect(s.nowMs).toBe(3)
    s.runUntilIdle()
    expect(log).toEqual(['b3', 'd3', 'c3-next-step', 'a5'])
    expect(s.idle).toBe(true)
    s.advanceMs(200)
    expect(log.at(-1)).toBe('hb')
    expect(s.nowMs).toBe(205)
    expect(() => s.at(1, () => {})).toThrow(RangeError)
  })
})

// ---- simulation-specific behaviour ----------------------------------------------------------

describe('simulated transport', () => {
  it('rejects unknown options and impossible combinations', () => {
    const schema = complianceSchema(2)
    expect(() => new SimulatedNetwork({ seed: 1, memberCount: 2, schema, delayMS: 3 } as never)).toThrow(/unknown option 'delayMS'/)
    expect(() => new SimulatedNetwork({ seed: 1, memberCount: 2, schema, delayMsMin: 5, delayMsMax: 2 })).toThrow(/delayMsMax/)
    expect(() => new SimulatedNetwork({ seed: 1, memberCount: 2, schema, suspectTimeoutMs: 50, heartbeatIntervalMs: 100 })).toThrow(
      /suspectTimeoutMs/,
    )
  })

  it('start: resolves once every member has started; a member that never starts times the others out', async () => {
    const net = network(3, { connectTimeoutMs: 500 })
    let started = 0
    void net.transport(0).start().then(() => started++)
    void net.transport(1).start().then(() => started++)
    await drainMicrotasks()
    expect(started).toBe(0)
    await net.transport(2).start()
    await drainMicrotasks()
    expect(started).toBe(2)

    const lonely = network(2, { connectTimeoutMs: 500 })
    const attempt = lonely.transport(0).start()
    const rejected = expect(attempt).rejects.toThrow(/did not connect within 500 ms/)
    lonely.advanceMs(501)
    await rejected
  })

  it('self delivery happens at the same virtual instant but never inside sendSmall', async () => {
    const net = network(2)
    await net.startAll()
    const got: number[] = []
    net.transport(0).on('small', (sender, seq) => got.push(sender * 100 + seq))
    await net.transport(0).sendSmall(new Uint8Array([1]))
    expect(got).toEqual([])
    net.step()
    expect(got).toEqual([0])
    expect(net.nowMs).toBe(0)
  })

  it('rows: pushes landing in one step are coalesced; the reader skips the earlier value, never sees it after the later', async () => {
    const net = network(2, { delayMsMin: 5, delayMsMax: 5 })
    await net.startAll()
    const [writer, reader] = net.transports as [typeof net.transports[0], typeof net.transports[0]]
    const batches: Array<readonly number[]> = []
    const seen: bigint[] = []
    reader.on('rows', (ranks) => {
      batches.push(ranks)
      seen.push(reader.sst.u64(0, 'counter'))
    })
    writer.setU64('counter', 1n)
    writer.push(['counter'])
    writer.setU64('counter', 2n)
    writer.push(['counter'])
    net.runUntilIdle()
    expect(batches).toEqual([[0]])
    expect(seen).toEqual([2n])
    expect(net.nowMs).toBe(5)
  })

  it('smc window: with 4 slots, 4 of 10 sends complete at once, the rest as receivers deliver', async () => {
    const net = network(3, { smcWindowSlots: 4 })
    await net.startAll()
    let resolved = 0
    for (let i = 0; i < 10; i++) void net.transport(0).sendSmall(new Uint8Array([i])).then(() => resolved++)
    await drainMicrotasks()
    expect(resolved).toBe(4)
    await net.runUntilIdleAsync()
    expect(resolved).toBe(10)
  })

  it('smc window: a crashed receiver holds the window only until the sender suspects it', async () => {
    const net = network(3, { smcWindowSlots: 2, heartbeatIntervalMs: 10, suspectTimeoutMs: 100 })
    await net.startAll()
    net.crash(2)
    let resolved = 0
    for (let i = 0; i < 5; i++) void net.transport(0).sendSmall(new Uint8Array([i])).then(() => resolved++)
    await net.runUntilIdleAsync()
    expect(resolved).toBe(2)
    const crashedAtMs = net.nowMs
    expect(await net.runUntil(() => resolved === 5, 1000)).toBe(true)
    expect(net.nowMs - crashedAtMs).toBeGreaterThan(100 - 20)
    expect(net.nowMs - crashedAtMs).toBeLessThanOrEqual(100 + 10 + 20)
  })

  it('crash: the crashed member emits nothing more and its operations have no effect', async () => {
    const net = network(3)
    await net.startAll()
    const observer = new TransportObserver(net.transports, complianceObserverOptions(3))
    void net.transport(1).sendSmall(observer.payload('small', 1, 3))
    net.transport(0).setU64('counter', 9n)
    net.transport(0).push()
    net.crash(1)
    observer.markCrashed(1)
    await net.transport(1).sendSmall(new Uint8Array(1)) // no effect, does not hang
    net.transport(1).push()
    net.runUntilIdle()
    net.advanceMs(3000)
    expect(observer.violations).toEqual([])
    expect(net.transport(1).sst.u64(0, 'counter')).toBe(0n)
    expect(net.transport(2).sst.u64(0, 'counter')).toBe(9n)
    expect(observer.suspicions[0]!.has(1) && observer.suspicions[2]!.has(1)).toBe(true)
  })

  it('stop: graceful — what left is delivered everywhere, sends waiting for the window reject, peers suspect', async () => {
    const net = network(3, { smcWindowSlots: 2, delayMsMin: 10, delayMsMax: 20, heartbeatIntervalMs: 10, suspectTimeoutMs: 100 })
    await net.startAll()
    const observer = new TransportObserver(net.transports)
    const outcomes: string[] = []
    for (let i = 0; i < 4; i++) {
      net.transport(0).sendSmall(observer.payload('small', 0, 5)).then(
        () => outcomes.push('sent'),
        (err: Error) => outcomes.push(`refused: ${err.message}`),
      )
    }
    await drainMicrotasks()
    await net.transport(0).stop()
    observer.markCrashed(0)
    await drainMicrotasks()
    expect(outcomes.slice(0, 2)).toEqual(['sent', 'sent'])
    expect(outcomes.slice(2)).toEqual([0, 0].map(() => expect.stringMatching(/refused: .*stopped before the message was sent/)))
    net.advanceMs(500)
    expect([1, 2].map((r) => observer.delivered.small[r]![0])).toEqual([2, 2])
    expect([1, 2].map((r) => observer.suspicions[r]!.has(0))).toEqual([true, true])
    expect(observer.violations).toEqual([])
  })

  it('crash: what a crashed sender had in flight reaches some survivors and not others (the ragged edge)', async () => {
    let ragged = 0
    for (let seed = 1; seed <= 40; seed++) {
      const net = network(4, { delayMsMin: 1, delayMsMax: 30 }, seed)
      await net.startAll()
      const observer = new TransportObserver(net.transports, complianceObserverOptions(4))
      for (let i = 0; i < 5; i++) void net.transport(0).sendSmall(observer.payload('small', 0, 4))
      net.advanceMs(net.workload.int(0, 30))
      net.crash(0)
      observer.markCrashed(0)
      net.advanceMs(2000)
      expect(observer.violations).toEqual([])
      const counts = [1, 2, 3].map((r) => observer.delivered.small[r]![0]!)
      if (new Set(counts).size > 1) ragged++
    }
    expect(ragged).toBeGreaterThan(5)
  })

  it('partition: each side suspects the other, not its own; held packets arrive in order after heal', async () => {
    const net = network(5, { heartbeatIntervalMs: 20, suspectTimeoutMs: 200 })
    await net.startAll()
    const observer = new TransportObserver(net.transports, complianceObserverOptions(5))
    const all = [0, 1, 2, 3, 4]
    const minority = [0, 1]
    net.partition(minority, [2, 3, 4])
    for (let round = 1; round <= 3; round++) {
      for (const rank of all) {
        void net.transport(rank).sendSmall(observer.payload('small', rank, 10))
        void net.transport(rank).sendLarge(observer.payload('large', rank, 5000))
        writeRound(net.transport(rank), 5, round)
      }
      net.advanceMs(100)
    }
    net.advanceMs(400)
    for (const rank of all) {
      const other = minority.includes(rank) ? [2, 3, 4] : minority
      expect([...observer.suspicions[rank]!.keys()].sort()).toEqual(other)
    }
    // Within a side, everything flowed; across, nothing yet.
    expect(observer.allDelivered('small', minority)).toBe(true)
    expect(observer.allDelivered('small', [2, 3, 4])).toBe(true)
    expect(observer.delivered.small[2]![0]).toBe(0)
    expect(net.transport(2).sst.u64(0, 'counter')).toBe(0n)
    net.heal()
    net.runUntilIdle()
    expect(observer.allDelivered('small', all)).toBe(true)
    expect(observer.allDelivered('large', all)).toBe(true)
    for (const reader of all) for (const writer of all) expect(net.transport(reader).sst.u64(writer, 'counter')).toBe(3n)
    observer.checkRowsNow(all)
    expect(observer.violations).toEqual([])
  })

  it('slow packets: a long tail makes live members suspected, and nothing is lost or reordered', async () => {
    let falseSuspicions = 0
    for (let seed = 1; seed <= 10; seed++) {
      const net = network(3, { slowPacketChance: 0.05, slowPacketDelayMsMax: 500, heartbeatIntervalMs: 20, suspectTimeoutMs: 150 }, seed)
      await net.startAll()
      const observer = new TransportObserver(net.transports, complianceObserverOptions(3))
      for (let i = 0; i < 20; i++) {
        for (const t of net.transports) {
          void t.sendSmall(observer.payload('small', t.selfRank, 3))
          writeRound(t, 3, i + 1)
        }
        net.advanceMs(10)
      }
      net.advanceMs(1000)
      net.runUntilIdle()
      expect(observer.allDelivered('small', [0, 1, 2])).toBe(true)
      observer.checkRowsNow([0, 1, 2])
      expect(observer.violations).toEqual([])
      falseSuspicions += observer.suspicions.reduce((sum, m) => sum + m.size, 0)
    }
    expect(falseSuspicions).toBeGreaterThan(0)
  })

  it('cutLink: a one-way cut makes only the far side suspect', async () => {
    const net = network(3, { heartbeatIntervalMs: 20, suspectTimeoutMs: 200 })
    await net.startAll()
    const observer = new TransportObserver(net.transports)
    net.cutLink(0, 1)
    net.advanceMs(500)
    expect([...observer.suspicions[1]!.keys()]).toEqual([0])
    expect(observer.suspicions[0]!.size + observer.suspicions[2]!.size).toBe(0)
  })
})

// ---- random schedules ---------------------------------------------------------------------

interface ScenarioResult {
  readonly trace: readonly string[]
  readonly ragged: boolean
  readonly summary: string
}

const WORKLOAD_MS = 1000
const SLOT_BYTES = 64
const BLOCK_BYTES = 256

/** A random group, workload and fault schedule from one seed; throws on any broken invariant. */
async function runScenario(seed: number, traceEnabled = true): Promise<ScenarioResult> {
  const shape = new Prng(seed)
  const n = shape.int(2, 5)
  const delayMsMin = shape.int(0, 5)
  const options: Overrides = {
    delayMsMin,
    delayMsMax: delayMsMin + shape.int(0, 30),
    bytesPerMs: shape.pick([0, 0, 100, 1000]),
    ...(shape.chance(0.2) ? { slowPacketChance: 0.02, slowPacketDelayMsMax: 400 } : {}),
    smcSlotSizeBytes: SLOT_BYTES,
    smcWindowSlots: shape.int(1, 8),
    rdmcBlockSizeBytes: BLOCK_BYTES,
    heartbeatIntervalMs: 20,
    suspectTimeoutMs: 200,
    traceEnabled,
  }
  const net = new SimulatedNetwork({ seed, memberCount: n, schema: complianceSchema(n), ...options })
  await net.startAll()
  const observer = new TransportObserver(net.transports, complianceObserverOptions(n))
  const w = net.workload
  const rounds = new Array<number>(n).fill(0)
  const smallSent = new Array<number>(n).fill(0) // sendSmall promises resolved: the message left
  let smallRefused = 0
  const act = (rank: number, kind: 'push' | 'small' | 'large'): void => {
    if (net.status(rank) !== 'running') return
    const t = net.transport(rank)
    if (kind === 'push') writeRound(t, n, ++rounds[rank]!)
    if (kind === 'small') {
      t.sendSmall(observer.payload('small', rank, w.int(0, SLOT_BYTES))).then(
        () => smallSent[rank]!++,
        () => smallRefused++,
      )
    }
    if (kind === 'large') void t.sendLarge(observer.payload('large', rank, w.pick([0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, BLOCK_BYTES + 1, 700])))
  }
  const actions = w.int(20, 150)
  for (let i = 0; i < actions; i++) {
    const rank = w.int(0, n - 1)
    const kind = w.pick(['push', 'push', 'small', 'small', 'small', 'large'] as const)
    const burst = w.chance(0.2) ? w.int(2, 12) : 1
    net.scheduler.at(w.int(0, WORKLOAD_MS), () => {
      for (let b = 0; b < burst; b++) act(rank, kind)
    })
  }
  let victim: number | undefined
  if (n >= 2 && w.chance(0.6)) {
    const rank = w.int(0, n - 1)
    net.scheduler.at(w.int(0, WORKLOAD_MS), () => {
      victim = rank
      net.crash(rank)
      observer.markCrashed(rank)
    })
  }
  let leaver: number | undefined
  if (n >= 3 && w.chance(0.15)) {
    const rank = w.int(0, n - 1)
    net.scheduler.at(w.int(0, WORKLOAD_MS), () => {
      if (net.status(rank) !== 'running') return
      leaver = rank
      void net.transport(rank).stop()
      observer.markCrashed(rank)
    })
  }
  let partitioned = false
  if (n >= 2 && w.chance(0.4)) {
    const side = w.shuffle([...Array(n).keys()]).slice(0, w.int(1, n - 1))
    const fromMs = w.int(0, WORKLOAD_MS)
    net.scheduler.at(fromMs, () => {
      partitioned = true
      net.partition(side)
    })
    net.scheduler.at(fromMs + w.int(10, 600), () => net.heal())
  }
  net.advanceMs(WORKLOAD_MS + 700) // every heal has happened, every crash has been suspected
  net.runUntilIdle()
  await new Promise((resolve) => setImmediate(resolve)) // let send promises settle

  const survivors = [...Array(n).keys()].filter((r) => net.status(r) === 'running')
  const problems = [...observer.violations]
  for (const kind of ['small', 'large'] as const) {
    if (!observer.allDelivered(kind, survivors)) {
      problems.push(`${kind}: survivors did not all deliver each other's messages: ${JSON.stringify(observer.delivered[kind])}`)
    }
  }
  for (const reader of survivors) {
    for (const writer of survivors) {
      const value = net.transport(reader).sst.u64(writer, 'counter')
      if (value !== BigInt(rounds[writer]!)) problems.push(`row ${writer} at ${reader}: counter ${value}, last pushed ${rounds[writer]}`)
    }
    if (victim !== undefined && !observer.suspicions[reader]!.has(victim)) problems.push(`${reader} never suspected crashed ${victim}`)
    if (leaver !== undefined) {
      // A graceful stop has no ragged edge: everything the leaver sent reaches every survivor.
      if (observer.delivered.small[reader]![leaver] !== smallSent[leaver]) {
        problems.push(`${reader} delivered ${observer.delivered.small[reader]![leaver]} small messages of stopped ${leaver}, which sent ${smallSent[leaver]}`)
      }
      if (observer.delivered.large[reader]![leaver] !== observer.sentCount('large', leaver)) {
        problems.push(`${reader} lost large messages of stopped member ${leaver}`)
      }
      if (!observer.suspicions[reader]!.has(leaver)) problems.push(`${reader} never suspected stopped ${leaver}`)
    }
    if (!partitioned && options.slowPacketChance === undefined) {
      const wrong = [...observer.suspicions[reader]!.keys()].filter((r) => r !== victim && r !== leaver)
      if (wrong.length > 0) problems.push(`${reader} suspected live members ${wrong.join(',')} without a partition`)
    }
  }
  if (leaver === undefined && smallRefused > 0) problems.push(`${smallRefused} sends refused without a stop`)
  observer.checkRowsNow(survivors)
  problems.push(...observer.violations.filter((v) => !problems.includes(v)))
  const summary =
    `n=${n} delay=${options.delayMsMin}..${options.delayMsMax} window=${options.smcWindowSlots} ` +
    `slow=${options.slowPacketChance ?? 0} crash=${victim ?? '-'} stop=${leaver ?? '-'} partition=${partitioned}`
  if (problems.length > 0) throw new Error(`${summary}\n  ${problems.slice(0, 10).join('\n  ')}`)
  const ragged =
    victim !== undefined && new Set(survivors.map((r) => observer.delivered.small[r]![victim!])).size > 1
  return { trace: net.trace, ragged, summary }
}

describe('simulated transport: random schedules', () => {
  it('one seed replays the identical trace; another seed does not', async () => {
    const a = await runScenario(1234)
    const b = await runScenario(1234)
    const c = await runScenario(1235)
    expect(a.trace.length).toBeGreaterThan(100)
    expect(b.trace).toEqual(a.trace)
    expect(c.trace).not.toEqual(a.trace)
  })

  it('random schedules: per-sender FIFO, byte identity, rows never backwards, convergence, suspicion', async () => {
    const single = process.env['FFFS_SEED'] !== undefined && process.env['FFFS_SEED'] !== ''
    const count = single ? 1 : Number(process.env['FFFS_SEEDS'] ?? 300)
    const first = seedFromEnv(1)
    let ragged = 0
    for (let seed = first; seed < first + count; seed++) {
      try {
        const result = await runScenario(seed, single)
        if (single && process.env['FFFS_TRACE'] === '1') console.log(result.summary + '\n' + result.trace.join('\n'))
        if (result.ragged) ragged++
      } catch (err) {
        throw new Error(
          `schedule with seed ${seed} failed: ${(err as Error).message}\n` +
            `replay: FFFS_SEED=${seed} FFFS_TRACE=1 npx vitest run test/transport/simulated.test.ts -t 'random schedules'`,
          { cause: err },
        )
      }
    }
    if (!single) expect(ragged).toBeGreaterThan(0) // the schedules do exercise the ragged edge
  })
})
