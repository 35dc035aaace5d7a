// `csv:COLUMN`: one record per line, comma-separated. COLUMN is a column name looked up in
// the file's first line (the header, which is not a record), or, when it is all digits, a
// 0-based column index (no header: every line is a record). Fields may be double-quoted
// ("a,b", "say ""hi"""), may not span lines, and are trimmed of surrounding spaces. The
// time is integer epoch µs or ISO-8601 with a zone. Blank lines stamp nothing.

import { sensorUsOfText, type MalformedRecord, type ParseResult, type RecordFormat, type SensorRecord } from './format.js'
import { isBlank, splitLines } from './lines.js'

/** Parser state between calls: the column index once the header is known, and over-long-line skipping. */
interface CsvState {
  readonly column: number | null // null: header not seen yet
  readonly skipping: boolean
}

export class CsvFormat implements RecordFormat {
  readonly text: string
  private readonly name: string | null // null: by index
  private readonly index: number | null

  constructor(column: string) {
    this.text = `csv:${column}`
    if (/^\d+$/.test(column)) {
      this.index = Number(column)
      this.name = null
    } else {
      this.index = null
      this.name = column
    }
  }

  parse(bytes: Uint8Array, startOffset: number, stateText: string | undefined): ParseResult {
    let state = this.decodeState(stateText)
    const split = splitLines(bytes, startOffset, state.skipping)
    const records: SensorRecord[] = []
    const malformed: MalformedRecord[] = []
    let column = state.column
    for (const line of split.lines) {
      if (line.kind === 'malformed') {
        malformed.push(line.malformed)
        continue
      }
      if (isBlank(line.text)) continue
      const fields = splitFields(line.text)
      if (typeof fields === 'string') {
        malformed.push({ offset: line.offset, endOffset: line.endOffset, reason: fields })
        continue
      }
      if (column === null) {
        // The header: a bad one is reported, and the next line is tried as the header.
        const found = fields.indexOf(this.name!)
        if (found < 0) malformed.push({ offset: line.offset, endOffset: line.endOffset, reason: `header has no column '${this.name}'` })
        else column = found
        continue
      }
      const cell = fields[column]
      if (cell === undefined) {
        malformed.push({ offset: line.offset, endOffset: line.endOffset, reason: `${fields.length} fields, no column ${column}` })
        continue
      }
      const sensorUs = sensorUsOfText(cell)
      if (typeof sensorUs === 'number') records.push({ endOffset: line.endOffset, sensorUs })
      else malformed.push({ offset: line.offset, endOffset: line.endOffset, reason: sensorUs })
    }
    state = { column, skipping: split.skipping }
    return { records, malformed, endOffset: split.endOffset, state: this.encodeState(state) }
  }

  private decodeState(text: string | undefined): CsvState {
    const initial: CsvState = { column: this.index, skipping: false }
    if (text === undefined) return initial
    const parsed = JSON.parse(text) as Partial<CsvState>
    return { column: typeof parsed.column === 'number' ? parsed.column : initial.column, skipping: parsed.skipping === true }
  }

  private encodeState(state: CsvState): string | undefined {
    if (state.column === this.index && !state.skipping) return undefined
    return JSON.stringify(state)
  }
}

/** RFC 4180 fields of one line (no embedded newlines), each trimmed; or why the line is not CSV. */
export function splitFields(line: string): string[] | string {
  const fields: string[] = []
  let at = 0
  for (;;) {
    while (line[at] === ' ' || line[at] === '\t') at++
    let field: string
    if (line[at] === '"') {
      let value = ''
      let i = at + 1
      for (;;) {
        const quote = line.indexOf('"', i)
        if (quote < 0) return `unterminated quoted field at column ${fields.length}`
        value += line.slice(i, quote)
        if (line[quote + 1] === '"') {
          value += '"'
          i = quote + 2
          continue
        }
        i = quote + 1
        break
      }
      while (line[i] === ' ' || line[i] === '\t') i++
      if (i < line.length && line[i] !== ',') return `text after a quoted field at column ${fields.length}`
      field = value
      at = i
    } else {
      const comma = line.indexOf(',', at)
      const end = comma < 0 ? line.length : comma
      field = line.slice(at, end).trim()
      at = end
    }
    fields.push(field)
    if (at >= line.length) return fields
    at++ // the comma
  }
}
