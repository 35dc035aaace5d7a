// The front end's record driver (src/fs/sensorRecords.ts): which bytes of a version it parses
// and which records it ships, given the file's record cursor and what the version changes.

import { describe, expect, it } from 'vitest'
import { PARSE_WINDOW_BYTES, parseVersionRecords } from '../../src/fs/sensorRecords.js'
import { parseRecordFormat, RECORD_BYTES_MAX } from '../../src/sensor/index.js'
import type { RecordCursor } from '../../src/store/records.js'
import { T0_US } from './feed.js'

const jsonl = parseRecordFormat('jsonl:t')
const line = (us: number, pad = ''): string => `{"t":${us}${pad.length > 0 ? `,"p":"${pad}"` : ''}}\n`

/** A reader over `bytes` that records which ranges were asked for. */
function over(bytes: Buffer): { at: (offset: number, n: number) => Promise<Uint8Array>; reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = []
  return { reads, at: async (offset, n) => (reads.push([offset, n]), bytes.subarray(offset, offset + n)) }
}

describe('parseVersionRecords', () => {
  it('resumes an append at the cursor: reads back only the incomplete tail, ships only new records', async () => {
    const text = line(T0_US) + line(T0_US + 1) + line(T0_US + 2)
    const file = Buffer.from(text + '{"t":') // a torn tail
    const cursor: RecordCursor = { endBytes: Buffer.byteLength(line(T0_US)), maxSensorUs: T0_US }
    const reader = over(file)
    const parsed = await parseVersionRecords(jsonl, cursor, { sizeBytes: file.length, lowestChangedBytes: cursor.endBytes + 3 }, reader.at)
    expect(reader.reads).toEqual([[cursor.endBytes, file.length - cursor.endBytes]])
    expect(parsed.records).toEqual({
      entries: [
        [Buffer.byteLength(line(T0_US) + line(T0_US + 1)), T0_US + 1],
        [text.length, T0_US + 2],
      ],
      baseMaxSensorUs: T0_US,
      endBytes: text.length,
    })
    expect(parsed.malformed).toEqual([])
  })

  it('starts over at byte 0 when a version changes bytes below the cursor; unchanged records only carry the running maximum', async () => {
    const lines = [line(T0_US + 5), line(T0_US), 'garbage\n', line(T0_US + 7), line(T0_US + 8)]
    const file = Buffer.from(lines.join(''))
    const changedAt = Buffer.byteLength(lines.slice(0, 3).join('')) + 2 // inside the 4th line
    const parsed = await parseVersionRecords(jsonl, { endBytes: file.length, maxSensorUs: T0_US + 8 }, { sizeBytes: file.length, lowestChangedBytes: changedAt }, over(file).at)
    expect(parsed.records.baseMaxSensorUs).toBe(T0_US + 5)
    expect(parsed.records.entries.map(([, us]) => us)).toEqual([T0_US + 7, T0_US + 8])
    expect(parsed.malformed).toEqual([]) // the garbage line lies in unchanged bytes: reported when it was written
    const rewrite = await parseVersionRecords(jsonl, undefined, { sizeBytes: file.length, lowestChangedBytes: 0 }, over(file).at)
    expect(rewrite.records.entries).toHaveLength(4)
    expect(rewrite.malformed.map((m) => m.offset)).toEqual([Buffer.byteLength(lines[0]! + lines[1]!)])
  })

  it('parses a large version in windows, records and malformed runs exactly as in one piece', async () => {
    const lines: string[] = []
    for (let i = 0, size = 0; size < 2.5 * PARSE_WINDOW_BYTES; i++) {
      const text = i % 1000 === 999 ? 'not json\n' : line(T0_US + i, 'x'.repeat(i % 50))
      lines.push(text)
      size += text.length
    }
    lines.push(`{"t":${T0_US},"p":"${'y'.repeat(RECORD_BYTES_MAX + 10)}"}\n`, line(T0_US + 1))
    const file = Buffer.from(lines.join(''))
    const reader = over(file)
    const parsed = await parseVersionRecords(jsonl, undefined, { sizeBytes: file.length, lowestChangedBytes: 0 }, reader.at)
    expect(reader.reads.length).toBeGreaterThan(2)
    expect(reader.reads.every(([, n]) => n <= PARSE_WINDOW_BYTES)).toBe(true)
    const whole = jsonl.parse(file, 0, undefined)
    expect(parsed.records.entries).toEqual(whole.records.map((r) => [r.endOffset, r.sensorUs]))
    expect(parsed.malformed).toEqual(whole.malformed)
    expect(parsed.records.endBytes).toBe(file.length)
  })
})
