import { describe, expect, it } from 'vitest'
import { parseRecordFormat } from '../../src/sensor/index.js'

describe('record format text', () => {
  it('parses every format and prints it canonically', () => {
    for (const [text, canonical] of [
      ['ts64:16', 'ts64:16'],
      ['ts64:8', 'ts64:8'],
      [' jsonl:ts \0', 'jsonl:ts'],
      ['jsonl:a:b', 'jsonl:a:b'], // the field is everything after the first ':'
      ['csv:time', 'csv:time'],
      ['csv:0', 'csv:0'],
      ['c37.118', 'c37.118'],
      ['c37.118:1000000', 'c37.118:1000000'],
    ]) {
      expect(parseRecordFormat(text!).text, text).toBe(canonical)
    }
  })

  it('refuses what names no format, with EINVAL and the reason', () => {
    for (const [text, why] of [
      ['', /expected ts64:SIZE/],
      ['ts64', /record size/],
      ['ts64:7', /outside 8\.\./],
      ['ts64:99999999', /outside/],
      ['ts64:x', /record size/],
      ['jsonl', /jsonl:FIELD/],
      ['jsonl:', /jsonl:FIELD/],
      ['csv', /csv:NAME/],
      ['csv:12345678', /too large/],
      ['c37.118:0', /TIME_BASE 0 outside/],
      ['c37.118:16777216', /outside 1\.\.16777215/],
      ['c37.118:abc', /TIME_BASE/],
      ['parquet:x', /expected ts64:SIZE/],
    ] as const) {
      expect(() => parseRecordFormat(text), text).toThrow(why)
      try {
        parseRecordFormat(text)
      } catch (err) {
        expect((err as { code: string }).code).toBe('EINVAL')
      }
    }
  })
})
