import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { splitFields } from '../../src/sensor/csv.js'
import { parseRecordFormat } from '../../src/sensor/index.js'
import { feed, T0_US } from './feed.js'

describe('csv:COLUMN', () => {
  it('finds a named column in the header line, which stamps nothing', () => {
    const format = parseRecordFormat('csv:time')
    const lines = ['id, "time" ,value\n', `a,${T0_US},1\n`, `"b,c","2026-11-21T10:00:01Z","x ""y"""\n`, '\n', `d,${T0_US + 2_000_000},\n`]
    const stream = Buffer.from(lines.join(''))
    const ends = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i + 1).join('')))
    const parsed = feed(format, stream)
    expect(parsed.records).toEqual([
      { endOffset: ends[1], sensorUs: T0_US },
      { endOffset: ends[2], sensorUs: T0_US + 1_000_000 },
      { endOffset: ends[4], sensorUs: T0_US + 2_000_000 },
    ])
    expect(parsed.malformed).toEqual([])
  })

  it('takes a 0-based column index with no header', () => {
    const format = parseRecordFormat('csv:1')
    const stream = Buffer.from(`x,${T0_US}\ny,${T0_US + 5}\n`)
    expect(feed(format, stream).records.map((r) => r.sensorUs)).toEqual([T0_US, T0_US + 5])
  })

  it('waits for complete lines, the header included, however the writes are cut', () => {
    const format = parseRecordFormat('csv:t')
    const stream = Buffer.from(`v,t\n1,${T0_US}\n2,${T0_US + 1}\n`)
    const headerOnlyHalf = format.parse(stream.subarray(0, 2), 0, undefined)
    expect(headerOnlyHalf).toEqual({ records: [], malformed: [], endOffset: 0, state: undefined })
    const header = format.parse(stream.subarray(0, 6), 0, undefined)
    expect(header.endOffset).toBe(4)
    expect(header.state).toBeDefined() // the column index, carried to the next parse
    for (let cut = 0; cut <= stream.length; cut++) expect(feed(format, stream, [cut]).records, `cut ${cut}`).toEqual(feed(format, stream).records)
  })

  it('refuses malformed lines with their offsets; a bad header is reported and the next line tried as the header', () => {
    const format = parseRecordFormat('csv:t')
    const lines = ['a,b\n', 'v,t\n', `1,${T0_US}\n`, '2\n', '3,soon\n', '4,"unterminated\n', `5,${T0_US + 3}\n`]
    const stream = Buffer.from(lines.join(''))
    const offsets = lines.map((_, i) => Buffer.byteLength(lines.slice(0, i).join('')))
    const parsed = feed(format, stream)
    expect(parsed.records.map((r) => r.sensorUs)).toEqual([T0_US, T0_US + 3])
    expect(parsed.malformed.map((m) => [m.offset, m.reason])).toEqual([
      [offsets[0], "header has no column 't'"],
      [offsets[3], '1 fields, no column 1'],
      [offsets[4], expect.stringMatching(/neither epoch µs nor ISO-8601/)],
      [offsets[5], expect.stringMatching(/unterminated quoted field/)],
    ])
  })

  it('splits RFC 4180 fields', () => {
    expect(splitFields('a,b,,c')).toEqual(['a', 'b', '', 'c'])
    expect(splitFields(' "a,b" , "say ""hi""",x ')).toEqual(['a,b', 'say "hi"', 'x'])
    expect(splitFields('a,')).toEqual(['a', ''])
    expect(splitFields('"a"b')).toMatch(/text after a quoted field/)
  })

  it('gives the same records however the stream is cut into writes', () => {
    const format = parseRecordFormat('csv:ts')
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 2 ** 50 }), { maxLength: 12 }), fc.array(fc.nat(300)), (times, cuts) => {
        const stream = Buffer.from('id,ts\n' + times.map((t, i) => `${i},${t}\n`).join(''))
        const whole = feed(format, stream)
        expect(whole.records.map((r) => r.sensorUs)).toEqual(times)
        expect(feed(format, stream, [...cuts].sort((a, b) => a - b))).toEqual(whole)
      }),
    )
  })
})
