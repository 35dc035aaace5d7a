// The native transport across real processes on loopback (tcp provider): each member is a
// child process (helpers/native-harness.mjs); members are SIGKILLed in teardown whatever
// happens. Every wait is bounded. Config errors are checked in-process.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { NativeTransport, TransportError } from '../../src/replication/transport/native.js'
import type { SstSchema } from '../../src/replication/transport/types.js'
import { configs, inProcessGroups, spawnCluster, waitUntil, type ChildMember, type MemberEvent } from './helpers/native-cluster.js'

const schema: SstSchema = {
  columns: [
    { name: 'counter', kind: 'u64' },
    { name: 'flag', kind: 'bool' },
  ],
}
const MiB = 1024 * 1024

let cluster: ChildMember[] = []
afterEach(() => {
  for (const m of cluster) m.kill()
  cluster = []
})

function deliveries(m: ChildMember, kind: 'small' | 'large', sender: number): MemberEvent[] {
  return m.events.filter((e) => e.ev === kind && e['sender'] === sender)
}

/** Every receiver got exactly `sizes` from `sender`, in order, byte-identical. */
function deliveredInOrder(members: readonly ChildMember[], kind: 'small' | 'large', sender: number, sizes: readonly number[]): boolean {
  return members.every((m) => {
    if (m.rank === sender) return true
    const got = deliveries(m, kind, sender)
    return got.length === sizes.length && got.every((e, i) => e['seq'] === i && e['size'] === sizes[i] && e['ok'] === true)
  })
}

describe('native transport, multi-process on loopback', () => {
  it('rows: 4 members count concurrently; every row converges to its owner\'s last push and never goes backwards', async () => {
    cluster = await spawnCluster(await configs(4, schema))
    await Promise.all(cluster.map((m) => m.command('count', { upTo: 3000 })))
    const converged = async (): Promise<boolean> => {
      const views = await Promise.all(cluster.map((m) => m.command('rows')))
      return views.every((v) => (v['counters'] as string[]).every((c) => c === '3000') && v['backwards'] === 0)
    }
    let ok = false
    for (let attempt = 0; attempt < 100 && !ok; attempt++) {
      ok = await converged()
      if (!ok) await new Promise((r) => setTimeout(r, 100))
    }
    expect(ok).toBe(true)
  })

  it('smc and rdmc: sizes 0, 1, block-1, block, block+1 and 64 MiB arrive byte-identical in per-sender order at 3 members', async () => {
    const block = MiB
    const slot = 10 * 1024
    cluster = await spawnCluster(await configs(3, schema, { rdmcBlockSizeBytes: block, smcSlotSizeBytes: slot, suspectTimeoutMs: 5000 }))
    const smallSizes = [0, 1, slot - 1, slot, 100, 1000]
    const largeSizes = [0, 1, block - 1, block, block + 1, 64 * MiB]
    const bigFromOne = [0, 1, 3 * block + 7]
    await Promise.all([
      cluster[0]!.command('small', { sizes: smallSizes }),
      cluster[1]!.command('small', { sizes: smallSizes }),
      cluster[0]!.command('large', { sizes: largeSizes }, 60_000),
      cluster[2]!.command('large', { sizes: bigFromOne }, 60_000),
    ])
    const all = (): boolean =>
      deliveredInOrder(cluster, 'small', 0, smallSizes) &&
      deliveredInOrder(cluster, 'small', 1, smallSizes) &&
      deliveredInOrder(cluster, 'large', 0, largeSizes) &&
      deliveredInOrder(cluster, 'large', 2, bigFromOne)
    expect(await waitUntil(all, 30_000, 20)).toBe(true)
  })

  it('rdmc: a 1 GiB object arrives byte-identical at 2 receivers', async () => {
    const size = 1024 * MiB
    cluster = await spawnCluster(await configs(3, schema, { suspectTimeoutMs: 10_000 }))
    await cluster[0]!.command('large', { sizes: [size] }, 120_000)
    expect(await waitUntil(() => deliveredInOrder(cluster, 'large', 0, [size]), 60_000, 50)).toBe(true)
  }, 240_000)

  it('after traffic the event loop polls only briefly (latencySpinUs): three idle members each use under 20% of a core', async () => {
    // A loop left polling would use a whole core (two thirds of one each, three on two cores).
    cluster = await spawnCluster(await configs(3, schema, { latencySpinUs: 2000 }))
    await Promise.all(cluster.map((m) => m.command('small', { sizes: Array.from({ length: 300 }, () => 100) })))
    await Promise.all(cluster.map((m) => m.command('count', { upTo: 500 })))
    expect(await waitUntil(() => cluster.every((m) => deliveries(m, 'small', (m.rank + 1) % 3).length === 300), 10_000, 10)).toBe(true)
    await new Promise((r) => setTimeout(r, 200))
    const before = await Promise.all(cluster.map((m) => m.command('cpu')))
    await new Promise((r) => setTimeout(r, 1000))
    const after = await Promise.all(cluster.map((m) => m.command('cpu')))
    const share = after.map((a, i) => ((a['cpuUs'] as number) - (before[i]!['cpuUs'] as number)) / ((a['atUs'] as number) - (before[i]!['atUs'] as number)))
    for (const s of share) expect(s).toBeLessThan(0.2)
  })

  it('kill -9 of one of 5 members: every survivor suspects it within the timeout and survivors keep exchanging', async () => {
    const suspectTimeoutMs = 1000
    cluster = await spawnCluster(await configs(5, schema, { heartbeatIntervalMs: 100, suspectTimeoutMs }))
    const victim = cluster[2]!
    const survivors = cluster.filter((m) => m !== victim)
    const killedAt = Date.now()
    victim.kill('SIGKILL')
    const suspected = (): boolean => survivors.every((m) => m.find((e) => e.ev === 'suspected' && e['rank'] === 2))
    expect(await waitUntil(suspected, suspectTimeoutMs + 1500, 10)).toBe(true)
    const elapsedMs = Date.now() - killedAt
    expect(elapsedMs).toBeLessThan(suspectTimeoutMs + 1500)
    // Only the victim is suspected; survivors still exchange rows, small and large messages.
    for (const m of survivors) expect(m.events.filter((e) => e.ev === 'suspected').map((e) => e['rank'])).toEqual([2])
    await Promise.all(survivors.map((m) => m.command('count', { upTo: 500 })))
    await Promise.all([survivors[0]!.command('small', { sizes: Array.from({ length: 200 }, (_, i) => i) }), survivors[3]!.command('large', { sizes: [MiB + 1, 5] })])
    expect(await waitUntil(() => deliveredInOrder(survivors, 'small', 0, Array.from({ length: 200 }, (_, i) => i)) && deliveredInOrder(survivors, 'large', 4, [MiB + 1, 5]), 20_000, 20)).toBe(true)
    const views = await Promise.all(survivors.map((m) => m.command('rows')))
    const survivorRanks = survivors.map((m) => m.rank)
    for (const v of views) {
      const counters = v['counters'] as string[]
      for (const r of survivorRanks) expect(counters[r]).toBe('500')
      expect(v['backwards']).toBe(0)
    }
  })
})

describe('native transport, SMC slots found by their trailer (tcp)', () => {
  // Payloads full of the 8-byte values that later slots' headers and trailers will carry, of
  // sizes that grow and shrink, so that a reused slot holds stale bytes wherever a later, shorter
  // message's trailer goes. They must not be taken for it: every message arrives whole, in order.
  const windowSlots = 3
  const slotBytes = 256
  const counterfeit = (seq: number, size: number): Uint8Array => {
    const bytes = new Uint8Array(size)
    const view = new DataView(bytes.buffer)
    for (let off = 0; off + 8 <= size; off += 8) view.setBigUint64(off, BigInt(seq + 1 + windowSlots * (1 + (off % 5))), true)
    for (let off = size - (size % 8); off < size; off++) bytes[off] = (seq + off) & 0xff
    return bytes
  }
  const sizeOf = (seq: number): number => [slotBytes, 0, 9, slotBytes - 1, 64, 1, 200, 17][seq % 8]!

  for (const smcCqData of [false, true]) {
    it(`${smcCqData ? 'with CQ data (the verbs way)' : 'by trailer'}: 600 messages through a ${windowSlots}-slot window arrive byte-identical`, async () => {
      const group = await inProcessGroups({ smcSlotSizeBytes: slotBytes, smcWindowSlots: windowSlots, smcCqData })({ memberCount: 2, schema })
      try {
        const received: Uint8Array[] = []
        group.transports[1]!.on('small', (sender, seq, payload) => {
          if (sender === 0 && seq === received.length) received.push(payload)
        })
        const count = 600
        const sends: Array<Promise<unknown>> = []
        for (let seq = 0; seq < count; seq++) sends.push(group.transports[0]!.sendSmall(counterfeit(seq, sizeOf(seq))))
        await Promise.all(sends)
        expect(await waitUntil(() => received.length === count, 20_000)).toBe(true)
        for (let seq = 0; seq < count; seq++) expect(Buffer.from(received[seq]!).equals(Buffer.from(counterfeit(seq, sizeOf(seq))))).toBe(true)
      } finally {
        await group.close()
      }
    })
  }
})

describe('native transport config errors', () => {
  /** start() of a one-member group with `provider`: its error (the transport stopped after). */
  const providerError = async (provider: string): Promise<TransportError> => {
    const [cfg] = await configs(1, schema, { provider })
    const t = new NativeTransport(cfg!)
    const err = await t.start().then(() => undefined, (e: unknown) => e)
    await t.stop()
    expect(err).toBeInstanceOf(TransportError)
    return err as TransportError
  }

  it('an unknown provider fails start() with a clear error', async () => {
    const err = await providerError('no-such-provider')
    expect(err.code).toBe('PROVIDER_UNAVAILABLE')
    expect(err.message).toMatch(/provider 'no-such-provider'.*providers available here: .*tcp/)
  })

  it("provider 'net' is refused with the reason (its wait object would make an idle member spin)", async () => {
    const err = await providerError('net')
    expect(err.code).toBe('PROVIDER_UNAVAILABLE')
    expect(err.message).toMatch(/provider 'net' is not supported: .*spin.*use 'tcp'/)
  })

  it('a bootstrap port in use fails start() with a clear error', async () => {
    const [cfg] = await configs(1, schema)
    const squatter = net.createServer()
    await new Promise<void>((r) => squatter.listen(cfg!.members[0]!.port, '127.0.0.1', () => r()))
    try {
      const t = new NativeTransport(cfg!)
      const err = await t.start().then(() => undefined, (e: unknown) => e)
      expect((err as TransportError).code).toBe('PORT_IN_USE')
      expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${cfg!.members[0]!.port}.*in use`))
    } finally {
      await new Promise((r) => squatter.close(r))
    }
  })

  it('members with different SST schemas both fail start() naming the mismatch', async () => {
    const [a, b] = await configs(2, schema, { connectTimeoutMs: 5000 })
    const other: SstSchema = { columns: [...schema.columns, { name: 'extra', kind: 'u64[]', length: 3 }] }
    const ta = new NativeTransport(a!)
    const tb = new NativeTransport({ ...b!, schema: other })
    const errs = await Promise.all([ta, tb].map((t) => t.start().then(() => undefined, (e: unknown) => e)))
    await Promise.all([ta.stop(), tb.stop()])
    for (const err of errs) {
      expect((err as TransportError).code).toBe('SCHEMA_MISMATCH')
      expect((err as Error).message).toMatch(/SST schema mismatch between member 10[01] and member 10[01]/)
    }
  })

  it('invalid config is refused by the constructor', () => {
    const good = { selfId: 1, members: [{ id: 1, host: '127.0.0.1', port: 1 }], schema, provider: 'tcp', smcSlotSizeBytes: 1, smcWindowSlots: 1, rdmcBlockSizeBytes: 1, heartbeatIntervalMs: 1, suspectTimeoutMs: 2, connectTimeoutMs: 1 }
    expect(() => new NativeTransport({ ...good, selfId: 9 })).toThrow(/selfId 9/)
    expect(() => new NativeTransport({ ...good, latencySpinUs: -1 })).toThrow(/latencySpinUs must be an integer in 0\.\.1000000 \(got -1\)/)
  })
})
