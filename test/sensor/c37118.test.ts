import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { C37_FRAME, crcCcitt, encodeC37Cfg2, encodeC37Data, encodeC37Frame } from '../../src/sensor/c37118.js'
import { parseRecordFormat } from '../../src/sensor/index.js'
import { feed, US } from './feed.js'

const SOC = 1_795_255_200 // 2026-11-21T10:00:00Z
const ID = 7

function ends(frames: readonly Buffer[]): number[] {
  let at = 0
  return frames.map((f) => (at += f.length))
}

describe('c37.118', () => {
  it('computes CRC-CCITT as the standard does (CRC-16/CCITT-FALSE check value)', () => {
    expect(crcCcitt(Buffer.from('123456789'))).toBe(0x29b1)
    expect(crcCcitt(Buffer.alloc(0))).toBe(0xffff)
  })

  it('takes TIME_BASE from a CFG-2 frame earlier in the stream and stamps data frames SOC + FRACSEC / TIME_BASE', () => {
    const format = parseRecordFormat('c37.118')
    const pmu = Buffer.alloc(40, 0x11) // a PMU section the parser does not need
    const frames = [encodeC37Cfg2(ID, SOC, 1_000_000, { numPmu: 1, pmuBytes: pmu }), encodeC37Data(ID, SOC, 0), encodeC37Data(ID, SOC, 33_333), encodeC37Data(ID, SOC + 1, 999_999)]
    expect(frames[0]!.readUInt16BE(0)).toBe(0xaa31) // CFG-2, version 1
    expect(frames[1]!.readUInt16BE(0)).toBe(0xaa01) // data frame
    const stream = Buffer.concat(frames)
    const e = ends(frames)
    const parsed = feed(format, stream)
    expect(parsed.records).toEqual([
      { endOffset: e[1], sensorUs: SOC * US },
      { endOffset: e[2], sensorUs: SOC * US + 33_333 },
      { endOffset: e[3], sensorUs: (SOC + 1) * US + 999_999 },
    ])
    expect(parsed.malformed).toEqual([])
    expect(parsed.endOffset).toBe(stream.length)
  })

  it('converts fractions of other time bases, flooring to µs, and ignores the time-quality byte', () => {
    const format = parseRecordFormat('c37.118')
    const frames = [encodeC37Cfg2(ID, SOC, 60), encodeC37Frame({ type: C37_FRAME.data, idcode: ID, soc: SOC, fraction: 59, timeQuality: 0x0f, body: new Uint8Array(2) })]
    expect(feed(format, Buffer.concat(frames)).records).toEqual([{ endOffset: ends(frames)[1], sensorUs: SOC * US + Math.floor((59 * US) / 60) }])
  })

  it('uses a configured TIME_BASE when the stream has no configuration frame, and a CFG-2 in the stream over it', () => {
    const configured = parseRecordFormat('c37.118:1000')
    const data = encodeC37Data(ID, SOC, 500)
    expect(feed(configured, data).records).toEqual([{ endOffset: data.length, sensorUs: SOC * US + 500_000 }])
    const withCfg = Buffer.concat([encodeC37Cfg2(ID, SOC, 1_000_000), data])
    expect(feed(configured, withCfg).records).toEqual([{ endOffset: withCfg.length, sensorUs: SOC * US + 500 }])
    // CFG-2 for one IDCODE does not apply to another: that one falls back to the configured base
    const other = Buffer.concat([encodeC37Cfg2(ID, SOC, 1_000_000), encodeC37Data(ID + 1, SOC, 500)])
    expect(feed(configured, other).records.map((r) => r.sensorUs)).toEqual([SOC * US + 500_000])
  })

  it('refuses a data frame with no TIME_BASE, and one whose fraction is not below it', () => {
    const format = parseRecordFormat('c37.118')
    const orphan = encodeC37Data(ID, SOC, 0)
    expect(feed(format, orphan).malformed).toEqual([{ offset: 0, endOffset: orphan.length, reason: expect.stringMatching(/no TIME_BASE for IDCODE 7/) }])
    const frames = [encodeC37Cfg2(ID, SOC, 1000), encodeC37Data(ID, SOC, 1000), encodeC37Data(ID, SOC, 999)]
    const parsed = feed(format, Buffer.concat(frames))
    expect(parsed.malformed).toEqual([{ offset: ends(frames)[0], endOffset: ends(frames)[1], reason: 'FRACSEC fraction 1000 not below TIME_BASE 1000' }])
    expect(parsed.records).toEqual([{ endOffset: ends(frames)[2], sensorUs: SOC * US + 999_000 }])
  })

  it('checks the CRC: a corrupt frame is refused at its offset and the frames after it are kept', () => {
    const format = parseRecordFormat('c37.118:1000000')
    const frames = [encodeC37Data(ID, SOC, 1), encodeC37Data(ID, SOC, 2), encodeC37Data(ID, SOC, 3)]
    const e = ends(frames)
    const stream = Buffer.concat(frames)
    stream[e[0]! + 12]! ^= 0x01 // flip a FRACSEC bit of the second frame
    const parsed = feed(format, stream)
    expect(parsed.malformed).toEqual([{ offset: e[0], endOffset: e[1], reason: expect.stringMatching(/^CRC-CCITT 0x[0-9a-f]{4} does not match CHK/) }])
    expect(parsed.records.map((r) => r.sensorUs)).toEqual([SOC * US + 1, SOC * US + 3])
  })

  it('resynchronises after garbage and after a frame whose FRAMESIZE is corrupt', () => {
    const format = parseRecordFormat('c37.118:1000000')
    const good = [encodeC37Data(ID, SOC, 1), encodeC37Data(ID, SOC, 2), encodeC37Data(ID, SOC, 3)]
    const garbage = Buffer.from('not a frame')
    const stream = Buffer.concat([good[0]!, garbage, good[1]!, good[2]!])
    const parsed = feed(format, stream)
    expect(parsed.malformed).toEqual([{ offset: good[0]!.length, endOffset: good[0]!.length + garbage.length, reason: 'no SYNC byte 0xAA (found 0x6e)' }])
    expect(parsed.records.map((r) => r.sensorUs)).toEqual([1, 2, 3].map((f) => SOC * US + f))

    const badSize = Buffer.concat(good)
    badSize.writeUInt16BE(4000, good[0]!.length + 2) // second frame claims 4000 bytes; the CRC then fails
    const resynced = feed(format, badSize)
    expect(resynced.records.map((r) => r.sensorUs)).toEqual([SOC * US + 1, SOC * US + 3])
    expect(resynced.malformed.map((m) => m.offset)).toEqual([good[0]!.length])
  })

  it('refuses frames of no known type or too small, and keeps header and command frames without stamping them', () => {
    const format = parseRecordFormat('c37.118:1000000')
    const header = encodeC37Frame({ type: C37_FRAME.header, idcode: ID, soc: SOC, fraction: 0, body: Buffer.from('PMU station 7') })
    const command = encodeC37Frame({ type: C37_FRAME.command, idcode: ID, soc: SOC, fraction: 0, body: Buffer.of(0, 2) })
    const data = encodeC37Data(ID, SOC, 4)
    const unknown = Buffer.from(data)
    unknown[1] = 0x71 // frame type 7
    const tiny = encodeC37Data(ID, SOC, 5)
    tiny.writeUInt16BE(10, 2)
    const stream = Buffer.concat([header, command, unknown, tiny, data])
    const parsed = feed(format, stream)
    expect(parsed.records).toEqual([{ endOffset: stream.length, sensorUs: SOC * US + 4 }])
    const at = header.length + command.length
    expect(parsed.malformed.map((m) => [m.offset, m.reason])).toEqual([
      [at, 'SYNC 0xAA71 names no C37.118 frame type and version'],
      [at + unknown.length, 'FRAMESIZE 10 below 16, the least for its frame type'],
    ])
  })

  it('takes TIME_BASE from a CFG-3 frame (2011) and from CFG-1', () => {
    const format = parseRecordFormat('c37.118')
    const cfg3Body = Buffer.alloc(2 + 4 + 2 + 2)
    cfg3Body.writeUInt32BE(100, 2) // CONT_IDX 0, TIME_BASE 100
    const cfg3 = encodeC37Frame({ type: C37_FRAME.cfg3, version: 2, idcode: 1, soc: SOC, fraction: 0, body: cfg3Body })
    const cfg1Body = Buffer.alloc(4 + 2 + 2)
    cfg1Body.writeUInt32BE(10, 0)
    const cfg1 = encodeC37Frame({ type: C37_FRAME.cfg1, idcode: 2, soc: SOC, fraction: 0, body: cfg1Body })
    const stream = Buffer.concat([cfg3, cfg1, encodeC37Data(1, SOC, 50), encodeC37Data(2, SOC, 5)])
    expect(feed(format, stream).records.map((r) => r.sensorUs - SOC * US)).toEqual([500_000, 500_000])
  })

  it('waits for a frame torn across writes, the time base carried in its state', () => {
    const format = parseRecordFormat('c37.118')
    const frames = [encodeC37Cfg2(ID, SOC, 1_000_000), encodeC37Data(ID, SOC, 10), encodeC37Data(ID, SOC, 20)]
    const stream = Buffer.concat(frames)
    const first = format.parse(stream.subarray(0, frames[0]!.length + 5), 0, undefined)
    expect(first.records).toEqual([])
    expect(first.endOffset).toBe(frames[0]!.length)
    expect(first.state).toBeDefined()
    const rest = format.parse(stream.subarray(first.endOffset), first.endOffset, first.state)
    expect(rest.records.map((r) => r.sensorUs)).toEqual([SOC * US + 10, SOC * US + 20])
    fc.assert(
      fc.property(fc.array(fc.nat(stream.length)), (cuts) => {
        expect(feed(format, stream, [...cuts].sort((a, b) => a - b))).toEqual(feed(format, stream))
      }),
    )
  })
})
