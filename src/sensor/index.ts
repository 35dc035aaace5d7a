// Record formats (DESIGN.md "Sensor time"): the `user.fffs.record_format` a directory or an
// empty file carries names how the file's bytes split into records, each with its own sensor
// time. One module per format; this one parses the format's text.
//
//   ts64:SIZE            fixed SIZE-byte records, each headed by an 8-byte LE µs timestamp
//   jsonl:FIELD          JSON object lines; FIELD is epoch µs (number or digits) or ISO-8601
//   csv:COLUMN           CSV lines; COLUMN is a header name, or a 0-based index (no header)
//   c37.118[:TIME_BASE]  IEEE C37.118.2 frames; data frames are the records

import { errors } from '../errors.js'
import { C37118Format, C37_TIME_BASE_MAX } from './c37118.js'
import { CsvFormat } from './csv.js'
import { RECORD_BYTES_MAX, type RecordFormat } from './format.js'
import { JsonlFormat } from './jsonl.js'
import { Ts64Format, TS64_HEADER_BYTES } from './ts64.js'

export type { MalformedRecord, ParseResult, RecordFormat, SensorRecord } from './format.js'
export { RECORD_BYTES_MAX } from './format.js'

/** The extended attribute naming a record format; set on a directory, new files and directories below inherit it. */
export const XATTR_RECORD_FORMAT = 'user.fffs.record_format'

const FORMAT_TEXT_BYTES_MAX = 256
const SYNTAX = 'expected ts64:SIZE, jsonl:FIELD, csv:COLUMN, c37.118 or c37.118:TIME_BASE'

/** Parses a format's text (surrounding whitespace and trailing NULs ignored); EINVAL when it names none. */
export function parseRecordFormat(input: string): RecordFormat {
  const text = input.replace(/\0+$/, '').trim()
  if (text.length === 0 || text.length > FORMAT_TEXT_BYTES_MAX) throw errors.invalid(`record format '${text.slice(0, 32)}': ${SYNTAX}`)
  const colon = text.indexOf(':')
  const name = colon < 0 ? text : text.slice(0, colon)
  const argument = colon < 0 ? null : text.slice(colon + 1)
  const bad = (why: string) => errors.invalid(`record format '${text}': ${why}`)
  switch (name) {
    case 'ts64': {
      if (argument === null || !/^\d+$/.test(argument)) throw bad(`ts64 needs the record size in bytes: ts64:SIZE`)
      const size = Number(argument)
      if (size < TS64_HEADER_BYTES || size > RECORD_BYTES_MAX) throw bad(`record size ${argument} outside ${TS64_HEADER_BYTES}..${RECORD_BYTES_MAX}`)
      return new Ts64Format(size)
    }
    case 'jsonl':
      if (argument === null || argument.length === 0) throw bad('jsonl needs the field holding the sensor time: jsonl:FIELD')
      return new JsonlFormat(argument)
    case 'csv':
      if (argument === null || argument.length === 0) throw bad('csv needs the column holding the sensor time: csv:NAME or csv:INDEX')
      if (/^\d+$/.test(argument) && argument.length > 6) throw bad(`column index ${argument} too large`)
      return new CsvFormat(argument)
    case 'c37.118': {
      if (argument === null) return new C37118Format(null)
      if (!/^\d+$/.test(argument) || Number(argument) < 1 || Number(argument) > C37_TIME_BASE_MAX) throw bad(`TIME_BASE ${argument} outside 1..${C37_TIME_BASE_MAX}`)
      return new C37118Format(Number(argument))
    }
    default:
      throw bad(SYNTAX)
  }
}
