import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RECORD_BYTES_MAX, parseRecordFormat } from '../../src/sensor/index.js'
import { feed, T0_US } from './feed.js'

const format = parseRecordFormat('jsonl:ts')

describe('jsonl:FIELD', () => {
  it('stamps each line by its field: epoch µs as a number or digits, or ISO-8601', () => {
    const lines = [
      `{"ts":${T0_US},"v":1}\n`,
      `{"v":2,"ts":"2026-11-21T10:00:00.5Z"}\r\n`, // CRLF works
      `\n`, // blank: stamps nothing, goes with the next record
      `{"ts":"${T0_US + 750_000}","nested":{"ts":0}}\n`,
      `{"ts":"2026-11-21T11:00:01+01:00"}\n`,
    ]
    const stream = Buffer.from(lines.join(''))
    const ends = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i + 1).join('')))
    expect(feed(format, stream)).toEqual({
      records: [
        { endOffset: ends[0], sensorUs: T0_US },
        { endOffset: ends[1], sensorUs: T0_US + 500_000 },
        { endOffset: ends[3], sensorUs: T0_US + 750_000 },
        { endOffset: ends[4], sensorUs: T0_US + 1_000_000 },
      ],
      malformed: [],
      endOffset: stream.length,
      state: undefined,
    })
  })

  it('waits for the newline: a line torn across writes counts once complete', () => {
    const stream = Buffer.from(`{"ts":${T0_US}}\n{"ts":${T0_US + 1}}\n`)
    const half = format.parse(stream.subarray(0, 25), 0, undefined)
    expect(half.records).toHaveLength(1)
    expect(half.endOffset).toBe(stream.indexOf('\n') + 1)
    const noNewline = format.parse(stream.subarray(half.endOffset, stream.length - 1), half.endOffset, half.state)
    expect(noNewline.records).toEqual([])
    expect(noNewline.endOffset).toBe(half.endOffset)
    expect(feed(format, stream, [1, 5, 25, 26, stream.length - 1]).records).toEqual(feed(format, stream).records)
  })

  it('refuses malformed lines with their offsets and keeps every record after them', () => {
    const lines = [
      `{"ts":${T0_US}}\n`,
      `{"ts":${T0_US}\n`, // not JSON
      `[1,2]\n`,
      `{"t":5}\n`,
      `{"ts":1.5}\n`,
      `{"ts":-3}\n`,
      `{"ts":null}\n`,
      `{"ts":"yesterday"}\n`,
      `{"ts":"2016-12-30T23:59:60Z"}\n`, // no leap second ends that day
      `{"ts":${T0_US + 9}}\n`,
    ]
    const stream = Buffer.from(lines.join(''))
    const offsets = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i).join('')))
    const parsed = feed(format, stream)
    expect(parsed.records).toEqual([
      { endOffset: offsets[1], sensorUs: T0_US },
      { endOffset: stream.length, sensorUs: T0_US + 9 },
    ])
    expect(parsed.malformed.map((m) => [m.offset, m.endOffset])).toEqual(offsets.slice(1, 9).map((o, i) => [o, offsets[i + 2]]))
    expect(parsed.malformed.map((m) => m.reason)).toEqual([
      expect.stringMatching(/^not JSON/),
      'not a JSON object',
      "no field 'ts'",
      expect.stringMatching(/not an integer/),
      expect.stringMatching(/before 1970/),
      expect.stringMatching(/null, not a time/),
      expect.stringMatching(/neither epoch µs nor ISO-8601/),
      expect.stringMatching(/second 60/),
    ])
  })

  it('refuses bytes that are not UTF-8, and an over-long line through its newline', () => {
    const bad = Buffer.concat([Buffer.from('{"ts":1,"x":"'), Buffer.of(0xff, 0xfe), Buffer.from('"}\n'), Buffer.from(`{"ts":${T0_US}}\n`)])
    const parsed = feed(format, bad)
    expect(parsed.malformed).toEqual([{ offset: 0, endOffset: bad.indexOf('\n') + 1, reason: 'not UTF-8' }])
    expect(parsed.records).toEqual([{ endOffset: bad.length, sensorUs: T0_US }])

    const long = Buffer.concat([Buffer.from(`{"ts":${T0_US},"x":"`), Buffer.alloc(RECORD_BYTES_MAX, 0x61), Buffer.from('"}\n'), Buffer.from(`{"ts":${T0_US + 1}}\n`)])
    const firstNewline = long.indexOf('\n')
    // Cut mid-line after the limit: the first part is refused at once, the rest of the line skipped.
    const cut = RECORD_BYTES_MAX + 10
    const pieces = feed(format, long, [cut])
    expect(pieces.malformed).toEqual([{ offset: 0, endOffset: cut, reason: expect.stringMatching(/longer than/) }])
    expect(pieces.records).toEqual([{ endOffset: long.length, sensorUs: T0_US + 1 }])
    const whole = feed(format, long)
    expect(whole.malformed).toEqual([{ offset: 0, endOffset: firstNewline + 1, reason: expect.stringMatching(/longer than/) }])
    expect(whole.records).toEqual(pieces.records)
  })

  it('gives the same records however the stream is cut into writes', () => {
    const line = fc.oneof(
      fc.nat({ max: 2 ** 50 }).map((t) => `{"ts":${t},"pad":"${'x'.repeat(t % 7)}"}\n`),
      fc.constant('\n'),
      fc.constant('{"oops":1}\n'),
      fc.constant('{"ts":"2026-11-21T10:00:00.000001Z"}\n'),
    )
    fc.assert(
      fc.property(fc.array(line, { maxLength: 15 }), fc.array(fc.nat(600)), (lines, cuts) => {
        const stream = Buffer.from(lines.join(''))
        expect(feed(format, stream, [...cuts].sort((a, b) => a - b))).toEqual(feed(format, stream))
      }),
    )
  })
})
