// `jsonl:FIELD`: one JSON object per line; top-level FIELD holds the sensor time, as a number
// (integer epoch µs) or a string (integer epoch µs, or ISO-8601 with a zone). Blank lines are
// allowed and stamp nothing.

import { checkSensorUs, sensorUsOfText, type MalformedRecord, type ParseResult, type RecordFormat, type SensorRecord } from './format.js'
import { isBlank, splitLines } from './lines.js'

const SKIPPING = 'skip'

export class JsonlFormat implements RecordFormat {
  readonly text: string
  readonly field: string

  constructor(field: string) {
    this.field = field
    this.text = `jsonl:${field}`
  }

  parse(bytes: Uint8Array, startOffset: number, state: string | undefined): ParseResult {
    const split = splitLines(bytes, startOffset, state === SKIPPING)
    const records: SensorRecord[] = []
    const malformed: MalformedRecord[] = []
    for (const line of split.lines) {
      if (line.kind === 'malformed') {
        malformed.push(line.malformed)
        continue
      }
      if (isBlank(line.text)) continue
      const sensorUs = this.sensorUsOf(line.text)
      if (typeof sensorUs === 'number') records.push({ endOffset: line.endOffset, sensorUs })
      else malformed.push({ offset: line.offset, endOffset: line.endOffset, reason: sensorUs })
    }
    return { records, malformed, endOffset: split.endOffset, state: split.skipping ? SKIPPING : undefined }
  }

  private sensorUsOf(text: string): number | string {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      return `not JSON: ${(err as Error).message}`
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object'
    if (!Object.hasOwn(value, this.field)) return `no field '${this.field}'`
    const time = (value as Record<string, unknown>)[this.field]
    if (typeof time === 'number') return checkSensorUs(time)
    if (typeof time === 'string') return sensorUsOfText(time)
    return `field '${this.field}' is ${time === null ? 'null' : typeof time}, not a time (epoch µs or ISO-8601)`
  }
}
