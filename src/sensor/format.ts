// What every record format shares: the parse result and the contract a format implements.
// Pure: a parser gets bytes and returns records; no I/O, no clocks. The FUSE front end
// (src/fs/sensorRecords.ts) feeds it the bytes of a version at commit, and the records it
// finds travel in the version mutation so every replica indexes the same ones.

import { parseIsoUs } from '../temporal/iso.js'
import { TIME_US_MAX } from '../temporal/spec.js'

/** The longest record any format accepts; longer ones are malformed (bounds the bytes a parse holds). */
export const RECORD_BYTES_MAX = 1024 * 1024

/** One complete, well-formed record: it ends at `endOffset` (exclusive, file offset) and is stamped `sensorUs`. */
export interface SensorRecord {
  readonly endOffset: number
  readonly sensorUs: number // epoch µs, UTC
}

/** Bytes [offset, endOffset) that do not form a record; `reason` says why. */
export interface MalformedRecord {
  readonly offset: number
  readonly endOffset: number
  readonly reason: string
}

export interface ParseResult {
  readonly records: readonly SensorRecord[]
  readonly malformed: readonly MalformedRecord[]
  /** Every byte before this file offset is settled (a record or malformed); the rest is an incomplete tail. */
  readonly endOffset: number
  /** The parser's state at `endOffset`, to resume from (undefined: the initial state). */
  readonly state: string | undefined
}

export interface RecordFormat {
  /** The canonical text of the format, as `user.fffs.record_format` holds it. */
  readonly text: string
  /**
   * Parses `bytes`, which sit at file offset `startOffset` (the `endOffset` of an earlier
   * parse, or 0) in parser state `state`. Complete records only: an incomplete tail is left
   * for the next call. Never throws on bad data: bad bytes come back as `malformed`.
   */
  parse(bytes: Uint8Array, startOffset: number, state: string | undefined): ParseResult
}

/** A sensor time given as a count of µs since the epoch: a safe non-negative integer, or why not. */
export function checkSensorUs(value: number): number | string {
  if (!Number.isInteger(value)) return `time ${value} is not an integer count of µs`
  if (value < 0) return `time ${value} µs is before 1970`
  if (value > TIME_US_MAX) return `time ${value} µs is past 2^53 µs`
  return value
}

/** Text naming a sensor time: integer epoch µs, or ISO-8601 with a zone. Number or why not. */
export function sensorUsOfText(text: string): number | string {
  if (/^\d+$/.test(text)) return text.length > 16 ? `time ${text} µs is past 2^53 µs` : checkSensorUs(Number(text))
  const iso = parseIsoUs(text)
  if (!iso.ok) return `'${text.slice(0, 64)}' is neither epoch µs nor ISO-8601: ${iso.why}`
  return iso.timeUs > BigInt(TIME_US_MAX) ? `time ${text} is past 2^53 µs` : checkSensorUs(Number(iso.timeUs))
}
