import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseRecordFormat } from '../../src/sensor/index.js'
import { feed, T0_US } from './feed.js'

const RECORD_BYTES = 16

function ts64Stream(timesUs: readonly bigint[]): Buffer {
  const out = Buffer.alloc(timesUs.length * RECORD_BYTES)
  timesUs.forEach((t, i) => {
    out.writeBigUInt64LE(t, i * RECORD_BYTES)
    out.write(`payload${i}`.padEnd(8, '.').slice(0, 8), i * RECORD_BYTES + 8)
  })
  return out
}

describe('ts64:SIZE', () => {
  const format = parseRecordFormat(`ts64:${RECORD_BYTES}`)

  it('stamps each fixed-size record with its little-endian µs header', () => {
    const stream = ts64Stream([BigInt(T0_US), BigInt(T0_US + 1000), BigInt(T0_US + 1000)])
    expect(feed(format, stream)).toEqual({
      records: [
        { endOffset: 16, sensorUs: T0_US },
        { endOffset: 32, sensorUs: T0_US + 1000 },
        { endOffset: 48, sensorUs: T0_US + 1000 },
      ],
      malformed: [],
      endOffset: 48,
      state: undefined,
    })
  })

  it('leaves an incomplete record for later: only complete records count', () => {
    const stream = ts64Stream([BigInt(T0_US), BigInt(T0_US + 1)])
    const first = format.parse(stream.subarray(0, 21), 0, undefined)
    expect(first.records).toEqual([{ endOffset: 16, sensorUs: T0_US }])
    expect(first.endOffset).toBe(16)
    const rest = format.parse(stream.subarray(16), 16, first.state)
    expect(rest.records).toEqual([{ endOffset: 32, sensorUs: T0_US + 1 }])
    // torn inside the timestamp itself
    expect(feed(format, stream, [3, 19, 20, 31]).records).toEqual(feed(format, stream).records)
  })

  it('refuses a record whose time is past 2^53 µs, with its offset, and keeps the ones after it', () => {
    const stream = ts64Stream([BigInt(T0_US), 1n << 60n, BigInt(T0_US + 5)])
    const parsed = feed(format, stream)
    expect(parsed.records).toEqual([
      { endOffset: 16, sensorUs: T0_US },
      { endOffset: 48, sensorUs: T0_US + 5 },
    ])
    expect(parsed.malformed).toEqual([{ offset: 16, endOffset: 32, reason: expect.stringMatching(/past 2\^53/) }])
  })

  it('gives the same records however the stream is cut into writes', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }), { maxLength: 20 }), fc.array(fc.nat(400)), (times, cuts) => {
        const stream = ts64Stream(times)
        const whole = feed(format, stream)
        expect(feed(format, stream, [...cuts].sort((a, b) => a - b))).toEqual(whole)
        expect(whole.records.map((r) => r.sensorUs)).toEqual(times.map(Number))
      }),
    )
  })
})
