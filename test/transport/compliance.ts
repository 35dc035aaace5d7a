// The transport compliance suite: the properties every Transport implementation must meet
// (libp2p's interface-compliance-tests, for fffs). The native libfabric transport and the
// simulated transport each call `transportCompliance(name, makeGroup)` from their own test
// file; the factory hides how members are built, crashed and waited on:
//   - simulation: one process, virtual time (waitUntil advances the virtual clock);
//   - native: real endpoints, real time with bounds (waitUntil polls).
//
// The suite also exports TransportObserver, the invariant checker it uses (per-sender FIFO,
// byte identity, rows never backwards, one suspicion per peer, silence after a crash), so that
// implementation-specific tests (e.g. thousands of simulated schedules) check the same things.

import { describe, expect, it } from 'vitest'
import type { SstSchema, Transport } from '../../src/replication/transport/types.js'

export interface ComplianceGroup {
  /** Started transports, indexed by rank. */
  readonly transports: readonly Transport[]
  readonly smcSlotSizeBytes: number
  readonly smcWindowSlots: number
  readonly rdmcBlockSizeBytes: number
  readonly heartbeatIntervalMs: number
  readonly suspectTimeoutMs: number
  /** Allowance on top of protocol bounds (link delays, scheduling, process start) in the group's time. */
  readonly slackMs: number
  /** Kills a member as abruptly as the implementation can (kill -9 for processes). Once the
   * promise resolves, the crashed member's Transport object must emit no further event. */
  crash(rank: number): Promise<void>
  /** Waits until `condition` holds or `timeoutMs` of the group's time (virtual or real) pass; returns whether it holds. */
  waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean>
  /** Stops every member and releases resources; called once per test, also after failures. */
  close(): Promise<void>
}

export interface ComplianceGroupRequest {
  readonly memberCount: number
  readonly schema: SstSchema
}

export type MakeGroup = (request: ComplianceGroupRequest) => Promise<ComplianceGroup>

export interface ComplianceOptions {
  /** Group sizes to run every property with; default [3]. */
  readonly memberCounts?: readonly number[]
  /** Include the 64 MiB RDMC object (slow; the caller decides, e.g. from an env var). */
  readonly large64MiB?: boolean
  /** Timeout for "eventually" (delivery, convergence), in the group's time; default 20 s. */
  readonly eventuallyMs?: number
}

// ---- payloads -------------------------------------------------------------------------------

/** Deterministic bytes for message `seq` of `sender`: any misplaced block, byte or message changes them. */
export function patternPayload(sender: number, seq: number, sizeBytes: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes)
  const base = (sender * 131 + seq * 31) & 0xff
  for (let i = 0; i < sizeBytes; i++) bytes[i] = (base + i * 7 + (i >>> 8) * 13 + (i >>> 16) * 101) & 0xff
  return bytes
}

function firstPatternMismatch(payload: Uint8Array, sender: number, seq: number): number {
  const base = (sender * 131 + seq * 31) & 0xff
  for (let i = 0; i < payload.byteLength; i++) {
    if (payload[i] !== ((base + i * 7 + (i >>> 8) * 13 + (i >>> 16) * 101) & 0xff)) return i
  }
  return -1
}

// ---- the invariant checker ------------------------------------------------------------------

export interface MonotoneColumn {
  readonly name: string
  readonly length?: number // for arrays
}

export interface ObserverOptions {
  /** u64 columns whose writers only ever raise them: a reader must never see them go down. */
  readonly monotoneColumns?: readonly MonotoneColumn[]
  /** [ahead, behind]: each writer raises `ahead` and pushes it before raising `behind`, so ahead >= behind at every reader. */
  readonly orderedPairs?: ReadonlyArray<readonly [string, string]>
}

type Kind = 'small' | 'large'

export class TransportObserver {
  readonly violations: string[] = []
  /** delivered[kind][receiver][sender]: messages delivered so far. */
  readonly delivered: Record<Kind, number[][]>
  /** Sizes each sender has sent (registered by `payload`), by kind and seq. */
  private readonly sentSizes: Record<Kind, number[][]>
  /** suspicions[receiver]: rank -> reason. */
  readonly suspicions: Array<Map<number, string>>
  readonly rowsEvents: number[]
  private readonly crashed = new Set<number>()
  private readonly lastSeen: Array<Array<Map<string, bigint>>> // [reader][writer] cell -> value
  private readonly n: number

  constructor(
    private readonly transports: readonly Transport[],
    private readonly options: ObserverOptions = {},
  ) {
    const n = transports.length
    this.n = n
    const grid = (): number[][] => Array.from({ length: n }, () => new Array<number>(n).fill(0))
    this.delivered = { small: grid(), large: grid() }
    this.sentSizes = { small: Array.from({ length: n }, () => []), large: Array.from({ length: n }, () => []) }
    this.suspicions = Array.from({ length: n }, () => new Map())
    this.rowsEvents = new Array<number>(n).fill(0)
    this.lastSeen = Array.from({ length: n }, () => Array.from({ length: n }, () => new Map()))
    transports.forEach((transport, receiver) => {
      if (transport.selfRank !== receiver) this.fail(`transport ${receiver} reports selfRank ${transport.selfRank}`)
      transport.on('small', (sender, seq, payload) => this.onMessage('small', receiver, sender, seq, payload))
      transport.on('large', (sender, seq, payload) => this.onMessage('large', receiver, sender, seq, payload))
      transport.on('rows', (ranks) => this.onRows(receiver, ranks))
      transport.on('suspected', (rank, reason) => this.onSuspected(receiver, rank, reason))
    })
  }

  /** A payload for the next message of `sender` on `kind`, registered so that deliveries are checked against it. */
  payload(kind: Kind, sender: number, sizeBytes: number): Uint8Array {
    const sizes = this.sentSizes[kind][sender]!
    const seq = sizes.length
    sizes.push(sizeBytes)
    return patternPayload(sender, seq, sizeBytes)
  }

  sentCount(kind: Kind, sender: number): number {
    return this.sentSizes[kind][sender]!.length
  }

  /** From now on the member must emit nothing. */
  markCrashed(rank: number): void {
    this.crashed.add(rank)
  }

  /** True when every receiver in `receivers` has delivered everything every sender in `senders` sent. */
  allDelivered(kind: Kind, receivers: readonly number[], senders: readonly number[] = receivers): boolean {
    return receivers.every((r) => senders.every((s) => this.delivered[kind][r]![s] === this.sentCount(kind, s)))
  }

  /** Re-reads every row at every live reader (catches a change that never raised `rows`). */
  checkRowsNow(readers: readonly number[]): void {
    for (const reader of readers) {
      for (let writer = 0; writer < this.n; writer++) if (writer !== reader) this.observeRow(reader, writer)
    }
  }

  private fail(message: string): void {
    if (this.violations.length < 50) this.violations.push(message)
  }

  private checkAlive(receiver: number, event: string): void {
    if (this.crashed.has(receiver)) this.fail(`crashed member ${receiver} emitted '${event}'`)
  }

  private onMessage(kind: Kind, receiver: number, sender: number, seq: number, payload: Uint8Array): void {
    this.checkAlive(receiver, kind)
    if (!Number.isInteger(sender) || sender < 0 || sender >= this.n) {
      this.fail(`${kind} at ${receiver}: bad sender ${sender}`)
      return
    }
    const expected = this.delivered[kind][receiver]![sender]!
    if (seq !== expected) {
      this.fail(`${kind} ${sender}>${receiver}: seq ${seq} delivered, expected ${expected} (per-sender FIFO)`)
      return
    }
    this.delivered[kind][receiver]![sender] = expected + 1
    const size = this.sentSizes[kind][sender]![seq]
    if (size === undefined) {
      this.fail(`${kind} ${sender}>${receiver} #${seq}: delivered but never sent`)
      return
    }
    if (payload.byteLength !== size) {
      this.fail(`${kind} ${sender}>${receiver} #${seq}: ${payload.byteLength} bytes, sent ${size}`)
      return
    }
    const at = firstPatternMismatch(payload, sender, seq)
    if (at >= 0) this.fail(`${kind} ${sender}>${receiver} #${seq}: byte ${at} of ${size} differs`)
  }

  private onRows(reader: number, ranks: readonly number[]): void {
    this.checkAlive(reader, 'rows')
    this.rowsEvents[reader]!++
    for (const writer of ranks) {
      if (!Number.isInteger(writer) || writer < 0 || writer >= this.n || writer === reader) {
        this.fail(`rows at ${reader}: rank ${writer} is not a remote rank`)
        continue
      }
      this.observeRow(reader, writer)
    }
  }

  private observeRow(reader: number, writer: number): void {
    const sst = this.transports[reader]!.sst
    const seen = this.lastSeen[reader]![writer]!
    for (const column of this.options.monotoneColumns ?? []) {
      const indexes = column.length === undefined ? [undefined] : Array.from({ length: column.length }, (_, i) => i)
      for (const index of indexes) {
        const key = index === undefined ? column.name : `${column.name}[${index}]`
        const value = sst.u64(writer, column.name, index)
        const before = seen.get(key) ?? 0n
        if (value < before) this.fail(`row ${writer} at ${reader}: ${key} went back from ${before} to ${value}`)
        seen.set(key, value)
      }
    }
    for (const [ahead, behind] of this.options.orderedPairs ?? []) {
      const a = sst.u64(writer, ahead)
      const b = sst.u64(writer, behind)
      if (a < b) this.fail(`row ${writer} at ${reader}: ${ahead}=${a} < ${behind}=${b}, pushes arrived out of order`)
    }
  }

  private onSuspected(receiver: number, rank: number, reason: string): void {
    this.checkAlive(receiver, 'suspected')
    if (typeof reason !== 'string' || reason === '') this.fail(`suspected at ${receiver}: empty reason`)
    if (rank === receiver) this.fail(`member ${receiver} suspected itself`)
    if (this.suspicions[receiver]!.has(rank)) this.fail(`member ${receiver} reported ${rank} suspected twice`)
    this.suspicions[receiver]!.set(rank, reason)
  }
}

// ---- the suite ------------------------------------------------------------------------------

export function complianceSchema(memberCount: number): SstSchema {
  return {
    columns: [
      { name: 'counter', kind: 'u64' },
      { name: 'echo', kind: 'u64' },
      { name: 'flag', kind: 'bool' },
      { name: 'received', kind: 'u64[]', length: memberCount },
      { name: 'suspected', kind: 'bool[]', length: memberCount },
    ],
  }
}

export function complianceObserverOptions(memberCount: number): ObserverOptions {
  return {
    monotoneColumns: [{ name: 'counter' }, { name: 'echo' }, { name: 'received', length: memberCount }],
    orderedPairs: [['counter', 'echo']],
  }
}

const ROUNDS = 40

function ranks(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}

async function withGroup(
  makeGroup: MakeGroup,
  memberCount: number,
  body: (group: ComplianceGroup, observer: TransportObserver) => Promise<void>,
): Promise<void> {
  const group = await makeGroup({ memberCount, schema: complianceSchema(memberCount) })
  try {
    expect(group.transports.length).toBe(memberCount)
    const observer = new TransportObserver(group.transports, complianceObserverOptions(memberCount))
    await body(group, observer)
    expect(observer.violations).toEqual([])
  } finally {
    await group.close()
  }
}

/** One round of row writes by `writer`: counter, then (in a later push) echo and received[]. */
export function writeRound(transport: Transport, memberCount: number, round: number): void {
  const value = BigInt(round)
  transport.setU64('counter', value)
  transport.push(['counter'])
  transport.setU64('echo', value)
  for (let i = 0; i < memberCount; i++) transport.setU64('received', value * 10n + BigInt(i), i)
  transport.setBool('flag', round % 2 === 1)
  transport.push(['echo', 'received', 'flag'])
}

/** Every reader sees every writer's row as writeRound(round) left it. */
export function rowsConverged(
  group: { readonly transports: readonly Transport[] },
  readers: readonly number[],
  writers: readonly number[],
  round: number,
): boolean {
  const n = group.transports.length
  return readers.every((reader) =>
    writers.every((writer) => {
      if (writer === reader) return true
      const sst = group.transports[reader]!.sst
      if (sst.u64(writer, 'counter') !== BigInt(round) || sst.u64(writer, 'echo') !== BigInt(round)) return false
      if (sst.bool(writer, 'flag') !== (round % 2 === 1)) return false
      for (let i = 0; i < n; i++) if (sst.u64(writer, 'received', i) !== BigInt(round) * 10n + BigInt(i)) return false
      return true
    }),
  )
}

async function sendAll(sends: Array<Promise<void>>): Promise<void> {
  await Promise.all(sends)
}

export function transportCompliance(name: string, makeGroup: MakeGroup, options: ComplianceOptions = {}): void {
  const eventuallyMs = options.eventuallyMs ?? 20_000
  for (const n of options.memberCounts ?? [3]) {
    describe(`${name} transport compliance (${n} members)`, () => {
      it('rows: every row converges to the last value its owner pushed and never goes backwards', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          expect(group.transports.map((t) => t.sst.rowCount)).toEqual(ranks(n).map(() => n))
          for (let round = 1; round <= ROUNDS; round++) {
            group.transports.forEach((t) => writeRound(t, n, round))
            await group.waitUntil(() => false, round % 3) // let some rounds land before the next, some not
            observer.checkRowsNow(ranks(n))
          }
          expect(await group.waitUntil(() => rowsConverged(group, ranks(n), ranks(n), ROUNDS), eventuallyMs)).toBe(true)
          observer.checkRowsNow(ranks(n))
          // Own row reads back what was set, and every reader was told about every writer.
          group.transports.forEach((t) => expect(t.sst.u64(t.selfRank, 'counter')).toBe(BigInt(ROUNDS)))
          for (const reader of ranks(n)) expect(observer.rowsEvents[reader]).toBeGreaterThan(0)
        })
      })

      it('rows: an unpushed set stays local; a partial push carries only the named columns', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          const [writer, reader] = [group.transports[0]!, group.transports[1]!]
          writer.setU64('counter', 7n)
          writer.setU64('echo', 7n)
          writer.push(['counter'])
          expect(await group.waitUntil(() => reader.sst.u64(0, 'counter') === 7n, eventuallyMs)).toBe(true)
          expect(reader.sst.u64(0, 'echo')).toBe(0n)
          writer.push()
          expect(await group.waitUntil(() => reader.sst.u64(0, 'echo') === 7n, eventuallyMs)).toBe(true)
          expect(observer.rowsEvents[1]).toBeGreaterThan(0)
        })
      })

      it('smc: sizes 0, 1, slot-1, slot arrive byte-identical, in per-sender order, at every member including the sender', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          const slot = group.smcSlotSizeBytes
          const sizes = [0, 1, slot - 1, slot]
          const sends: Array<Promise<void>> = []
          for (let repeat = 0; repeat < 3; repeat++) {
            for (const size of sizes) {
              group.transports.forEach((t, rank) => sends.push(t.sendSmall(observer.payload('small', rank, size))))
            }
          }
          expect(await group.waitUntil(() => observer.allDelivered('small', ranks(n)), eventuallyMs)).toBe(true)
          await sendAll(sends)
        })
      })

      it('smc: a message larger than the slot is refused', async () => {
        await withGroup(makeGroup, n, async (group) => {
          const oversized = new Uint8Array(group.smcSlotSizeBytes + 1)
          await expect((async () => group.transports[0]!.sendSmall(oversized))()).rejects.toThrow()
        })
      })

      it('smc: a burst of three windows is flow-controlled, not lost or reordered', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          const count = 3 * group.smcWindowSlots + 1
          const sends: Array<Promise<void>> = []
          for (let i = 0; i < count; i++) {
            group.transports.forEach((t, rank) => sends.push(t.sendSmall(observer.payload('small', rank, 1 + (i % 64)))))
          }
          let settled = false
          void Promise.all(sends).then(() => (settled = true))
          expect(await group.waitUntil(() => settled && observer.allDelivered('small', ranks(n)), eventuallyMs)).toBe(true)
        })
      })

      it('rdmc: sizes 0, 1, block-1, block, block+1, 2 blocks+3 arrive byte-identical, in per-sender order', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          const block = group.rdmcBlockSizeBytes
          const sizes = [0, 1, block - 1, block, block + 1, 2 * block + 3]
          const sends: Array<Promise<void>> = []
          for (const size of sizes) {
            group.transports.forEach((t, rank) => sends.push(t.sendLarge(observer.payload('large', rank, size))))
          }
          expect(await group.waitUntil(() => observer.allDelivered('large', ranks(n)), eventuallyMs)).toBe(true)
          await sendAll(sends)
        })
      })

      it('payloads: the sender may reuse its buffer once the send resolves; each receiver owns its copy', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          // Receivers scribble over what they got (after the observer checked it): shared buffers would show.
          group.transports.forEach((t) => {
            t.on('small', (_sender, _seq, payload) => payload.fill(0xee))
            t.on('large', (_sender, _seq, payload) => payload.fill(0xee))
          })
          const sizes = [1, group.rdmcBlockSizeBytes + 1]
          for (const [rank, t] of group.transports.entries()) {
            const small = observer.payload('small', rank, Math.min(group.smcSlotSizeBytes, 100))
            await t.sendSmall(small)
            small.fill(0xff)
            for (const size of sizes) {
              const large = observer.payload('large', rank, size)
              await t.sendLarge(large)
              large.fill(0xff)
            }
          }
          const done = (): boolean => observer.allDelivered('small', ranks(n)) && observer.allDelivered('large', ranks(n))
          expect(await group.waitUntil(done, eventuallyMs)).toBe(true)
        })
      })

      it('hand-over and recycle: handed-over objects arrive byte-identical everywhere; receivers recycle each (its views go empty), and later objects reusing the memory arrive intact', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          // After the observer checked it (it listens first): hand it back, as a replica does once it is in its log.
          const recycled: Array<{ view: Uint8Array; bytes: Buffer }> = []
          group.transports.forEach((t, rank) => {
            t.on('large', (sender, _seq, payload) => {
              if (sender === rank || t.recycle === undefined) return
              const view = payload.subarray(1)
              const bytes = Buffer.from(view) // a copy, to compare with once later objects arrived
              t.recycle(payload)
              recycled.push({ view, bytes })
            })
          })
          const sizes = [group.rdmcBlockSizeBytes * 3 + 5, 70_000, group.rdmcBlockSizeBytes * 3 + 5, 1, group.rdmcBlockSizeBytes * 3 + 5]
          for (const size of sizes) {
            for (const [rank, t] of group.transports.entries()) await t.sendLarge(observer.payload('large', rank, size), { handOver: true })
          }
          expect(await group.waitUntil(() => observer.allDelivered('large', ranks(n)), eventuallyMs)).toBe(true)
          // A recycled buffer's views are empty (detached), or (a buffer the transport did not lend)
          // still hold their bytes: never bytes of a later object.
          for (const { view, bytes } of recycled) expect(view.byteLength === 0 || Buffer.from(view).equals(bytes)).toBe(true)
        })
      })

      if (options.large64MiB === true) {
        it('rdmc: a 64 MiB object arrives byte-identical at every member', async () => {
          await withGroup(makeGroup, n, async (group, observer) => {
            await group.transports[0]!.sendLarge(observer.payload('large', 0, 64 * 1024 * 1024))
            expect(await group.waitUntil(() => observer.allDelivered('large', ranks(n), [0]), eventuallyMs * 3)).toBe(true)
          })
        })
      }

      it('crash: every survivor suspects the crashed member within the timeout, and survivors keep exchanging', async () => {
        await withGroup(makeGroup, n, async (group, observer) => {
          const victim = n - 1 > 1 ? 1 : n - 1 // not always the last rank
          const survivors = ranks(n).filter((r) => r !== victim)
          await group.crash(victim)
          observer.markCrashed(victim)
          // Survivors send more than a window at once: a dead receiver must not hang them.
          const sends: Array<Promise<void>> = []
          for (let i = 0; i < 2 * group.smcWindowSlots + 1; i++) {
            for (const rank of survivors) sends.push(group.transports[rank]!.sendSmall(observer.payload('small', rank, 8)))
          }
          for (const rank of survivors) {
            sends.push(group.transports[rank]!.sendLarge(observer.payload('large', rank, group.rdmcBlockSizeBytes + 1)))
            writeRound(group.transports[rank]!, n, 1)
          }
          const suspectBoundMs = group.suspectTimeoutMs + 2 * group.heartbeatIntervalMs + group.slackMs
          const allSuspect = (): boolean => survivors.every((r) => observer.suspicions[r]!.has(victim))
          expect(await group.waitUntil(allSuspect, suspectBoundMs)).toBe(true)
          let settled = false
          void Promise.all(sends).then(() => (settled = true))
          const exchanged = (): boolean =>
            settled &&
            observer.allDelivered('small', survivors) &&
            observer.allDelivered('large', survivors) &&
            rowsConverged(group, survivors, survivors, 1)
          expect(await group.waitUntil(exchanged, eventuallyMs)).toBe(true)
          // Nobody suspects a live member (the group ran with normal delays).
          for (const r of survivors) expect([...observer.suspicions[r]!.keys()]).toEqual([victim])
          observer.checkRowsNow(survivors)
        })
      })
    })
  }
}
