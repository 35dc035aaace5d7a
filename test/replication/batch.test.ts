// Batches in the core: a submit of `records` > 1 is one ordered message that takes that many
// consecutive stamps, the same at every member, and is answered once its last record is durable
// everywhere. Three cores over the simulated network, their actions executed by the one
// executor the member runtime uses (core/execute.ts); each delivery is reported persisted at
// once. Virtual time: no timing in this test.

import { describe, expect, it } from 'vitest'
import { executeCoreActions } from '../../src/replication/core/execute.js'
import { GroupCore, type CoreAction, type CoreEvent } from '../../src/replication/core/group.js'
import { decodeMessage, encodeMessage, MessageKind } from '../../src/replication/core/message.js'
import { groupSchema } from '../../src/replication/core/schema.js'
import type { HlcStamp } from '../../src/temporal/hlc.js'
import { SimulatedNetwork } from '../../src/testing/simulatedNetwork.js'

const START_US = 1_800_000_000_000_000

interface Delivered {
  readonly stamp: HlcStamp
  readonly records: number
  readonly payload: string
}

async function group(n: number) {
  const net = new SimulatedNetwork({ seed: 3, memberCount: n, schema: groupSchema(n), delayMsMin: 1, delayMsMax: 3, traceEnabled: false })
  await net.startAll()
  const view = { vid: 1, members: Array.from({ length: n }, (_, r) => r) }
  const nowUs = (): number => START_US + net.nowMs * 1000
  const cores = Array.from({ length: n }, (_, selfRank) => new GroupCore({ selfRank, epochSize: n, view, sst: net.transport(selfRank).sst, lastStamp: 0n, nowUs: nowUs(), smallMessageMaxBytes: 1000, acknowledge: 'synced' }))
  const delivered: Delivered[][] = Array.from({ length: n }, () => [])
  const replies: Array<Map<number, HlcStamp>> = Array.from({ length: n }, () => new Map())
  const unexpected = (action: CoreAction): never => {
    throw new Error(`unexpected ${action.kind} in a group without faults`)
  }
  const run = (rank: number, actions: readonly CoreAction[]): void =>
    executeCoreActions(actions, net.transport(rank), {
      push: () => net.transport(rank).push(),
      sendFailed: (err) => {
        throw err
      },
      deliver: (action) => {
        const records = action.records ?? 1
        delivered[rank]!.push({ stamp: action.stamp, records, payload: new TextDecoder().decode(action.payload) })
        net.scheduler.after(0, () => step(rank, { kind: 'persisted', stamp: action.stamp + BigInt(records - 1) }))
      },
      reply: (action) => void replies[rank]!.set(action.requestId, action.stamp),
      persistTrim: unexpected,
      persistAccepted: unexpected,
      installView: unexpected,
      reject: unexpected,
      excluded: unexpected,
    })
  const step = (rank: number, event: CoreEvent): void => run(rank, cores[rank]!.handle(event, nowUs()))
  cores.forEach((core, rank) => {
    const transport = net.transport(rank)
    transport.on('rows', () => step(rank, { kind: 'rows' }))
    transport.on('small', (from, _seq, bytes) => step(rank, { kind: 'message', fromRank: from, bytes }))
    transport.on('large', (from, _seq, bytes) => step(rank, { kind: 'message', fromRank: from, bytes }))
    run(rank, core.start())
  })
  const settle = (): void => void net.runUntilIdle(100_000)
  return { cores, delivered, replies, step, settle }
}

describe('batches in the core', () => {
  it('a batch takes consecutive stamps, the same at every member, and is answered once its last record is durable everywhere', async () => {
    const g = await group(3)
    const payload = (text: string): Uint8Array => new TextEncoder().encode(text)
    g.step(0, { kind: 'submit', requestId: 1, payload: payload('a') })
    g.step(0, { kind: 'submit', requestId: 2, payload: payload('batch of 5'), records: 5 })
    g.step(1, { kind: 'submit', requestId: 1, payload: payload('batch of 3'), records: 3 })
    g.step(2, { kind: 'submit', requestId: 1, payload: payload('b') })
    g.settle()
    const [first, ...others] = g.delivered
    expect(first!.map((d) => d.payload).sort()).toEqual(['a', 'b', 'batch of 3', 'batch of 5'])
    for (const other of others) expect(other).toEqual(first)
    // Stamps: each message's first is above the previous message's last.
    let last = 0n
    for (const d of first!) {
      expect(d.stamp > last).toBe(true)
      last = d.stamp + BigInt(d.records - 1)
    }
    const batch5 = first!.find((d) => d.payload === 'batch of 5')!
    expect(batch5.records).toBe(5)
    // The reply names the batch's last stamp: the frontier passed every one of its records.
    expect(g.replies[0]!.get(2)).toBe(batch5.stamp + 4n)
    expect(g.replies[1]!.get(1)).toBe(first!.find((d) => d.payload === 'batch of 3')!.stamp + 2n)
    for (const core of g.cores) expect(core.status().deliveredStamp).toBe(last)
  })

  it('a batch header carries its record count; a lone record has none', () => {
    const batch = decodeMessage(encodeMessage({ kind: MessageKind.AppBatch, vid: 3, index: 7, hlc: 42n, records: 9 }, new Uint8Array([1, 2])))
    expect(batch.header).toEqual({ kind: MessageKind.AppBatch, vid: 3, index: 7, hlc: 42n, records: 9 })
    expect([...batch.payload]).toEqual([1, 2])
    const lone = decodeMessage(encodeMessage({ kind: MessageKind.App, vid: 3, index: 7, hlc: 42n }, new Uint8Array([1])))
    expect(lone.header.records).toBeUndefined()
    expect(() => encodeMessage({ kind: MessageKind.AppBatch, vid: 1, index: 0, hlc: 1n, records: 1 }, null)).toThrow()
  })
})

describe('member payloads', () => {
  it('a record carries its small blobs after its JSON; a batch carries records; both decode to what was encoded', async () => {
    const { decodeBatchPayload, decodeRecordPayload, encodeBatchPayload, encodeRecordPayload } = await import('../../src/replication/payload.js')
    const mutation = { type: 'version' as const, ino: 5, ops: [{ op: 'write' as const, offset: 0, sizeBytes: 3, data: { blob: 'b1', offset: 0 } }] }
    const withData = encodeRecordPayload({ mutation, inline: [['b1', 3]] }, [new Uint8Array([7, 8, 9])])
    const plain = encodeRecordPayload({ mutation }, [])
    const decoded = decodeRecordPayload(withData)
    expect(decoded.record.mutation).toEqual(mutation)
    expect(decoded.inlineBytes.map(([blob, bytes]) => [blob, [...bytes]])).toEqual([['b1', [7, 8, 9]]])
    expect(decodeRecordPayload(plain).inlineBytes).toEqual([])
    const parts = decodeBatchPayload(encodeBatchPayload([withData, plain]))
    expect(parts.map((p) => [...p])).toEqual([[...withData], [...plain]])
    expect(() => decodeRecordPayload(withData.subarray(0, withData.byteLength - 1))).toThrow()
  })
})
