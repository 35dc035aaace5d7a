// Record formats at the FUSE front end: at a commit point, the bytes of the version being
// committed are in hand, so this is where a record-format file's new records are found
// (src/sensor/ parses them) and listed in the version mutation; the store then indexes
// exactly those on every replica. Also the sensor-time counters and the Δ check a mount
// applies before it ships a version (the store checks again against the version's stamp).

import { errors } from '../errors.js'
import { parseRecordFormat, XATTR_RECORD_FORMAT, type MalformedRecord, type RecordFormat } from '../sensor/index.js'
import type { Attr, RecordCursor, VersionRecords } from '../store/records.js'
import { isoOfUs } from '../temporal/civil.js'

/** Bytes read per parse step when a version's records are (re)parsed: a bound on memory, > RECORD_BYTES_MAX. */
export const PARSE_WINDOW_BYTES = 4 * 1024 * 1024

/** What a mount counts about sensor time (shown by `fffs status --json` under `sensor`). */
export interface SensorStats {
  versionsRefusedLate: number // versions (or opens/creates) refused: a sensor time older than now − Δ
  versionsWithMalformedRecords: number // committed versions whose commit reported malformed records
  recordsMalformed: number // malformed records (or runs of bytes) reported
  recordsIndexed: number // records shipped for indexing
}

export function newSensorStats(): SensorStats {
  return { versionsRefusedLate: 0, versionsWithMalformedRecords: 0, recordsMalformed: 0, recordsIndexed: 0 }
}

/** How a mount treats sensor time at its commit points. */
export interface SensorPolicy {
  readonly sensorLagMaxUs: number // Δ
  nowUs(): number
  readonly stats: SensorStats
  log(line: string): void
}

const formats = new Map<string, RecordFormat | null>() // xattr value (base64) -> parsed; a few distinct values in practice
const FORMATS_CACHED_MAX = 256

/** The record format a node carries (user.fffs.record_format), or null. A value that names no format counts as none. */
export function recordFormatOf(attr: Attr): RecordFormat | null {
  const value = attr.xattrs?.[XATTR_RECORD_FORMAT]
  if (value === undefined) return null
  let format = formats.get(value)
  if (format === undefined) {
    try {
      format = parseRecordFormat(Buffer.from(value, 'base64').toString('utf8'))
    } catch {
      format = null // set by a client that did not check it; refusing every commit would be worse
    }
    if (formats.size >= FORMATS_CACHED_MAX) formats.clear()
    formats.set(value, format)
  }
  return format
}

/** The extent of a version: the file's size before and after, and the first byte it may change. */
export interface VersionExtent {
  readonly sizeBytes: number
  readonly lowestChangedBytes: number // ≥ sizeBytes: changes nothing below the end
}

export interface ParsedVersion {
  readonly records: VersionRecords
  readonly malformed: readonly MalformedRecord[] // only in bytes this version changed
}

/**
 * Finds the records a version completes. Parsing resumes at the base version's cursor when
 * the version changes nothing below it (appends: the common case, which reads only the
 * incomplete tail back); otherwise it starts over at byte 0, and records that end at or
 * before the first changed byte are unchanged: already indexed, they only carry the running
 * maximum. An incomplete tail waits for a later version.
 */
export async function parseVersionRecords(format: RecordFormat, cursor: RecordCursor | undefined, extent: VersionExtent, bytesAt: (offset: number, lengthBytes: number) => Promise<Uint8Array>): Promise<ParsedVersion> {
  const resume = cursor !== undefined && extent.lowestChangedBytes >= cursor.endBytes && cursor.endBytes <= extent.sizeBytes
  let offset = resume ? cursor.endBytes : 0
  let state = resume ? cursor.state : undefined
  const unchangedBytes = resume ? offset : extent.lowestChangedBytes
  let baseMaxSensorUs = resume ? cursor.maxSensorUs : -1
  const entries: Array<[number, number]> = []
  const malformed: MalformedRecord[] = []
  for (let windows = 0; offset < extent.sizeBytes; windows++) {
    if (windows > extent.sizeBytes / (PARSE_WINDOW_BYTES / 4) + 2) throw new Error('parseVersionRecords: no progress')
    const lengthBytes = Math.min(PARSE_WINDOW_BYTES, extent.sizeBytes - offset)
    const reachedEnd = offset + lengthBytes >= extent.sizeBytes
    const parsed = format.parse(await bytesAt(offset, lengthBytes), offset, state)
    for (const record of parsed.records) {
      if (record.endOffset <= unchangedBytes) baseMaxSensorUs = Math.max(baseMaxSensorUs, record.sensorUs)
      else entries.push([record.endOffset, record.sensorUs])
    }
    for (const bad of parsed.malformed) {
      if (bad.endOffset <= unchangedBytes) continue
      const last = malformed[malformed.length - 1]
      // A run cut by a window edge is one run.
      if (last !== undefined && last.endOffset === bad.offset && last.reason === bad.reason) malformed[malformed.length - 1] = { ...last, endOffset: bad.endOffset }
      else malformed.push(bad)
    }
    const progressed = parsed.endOffset > offset
    offset = parsed.endOffset
    state = parsed.state
    if (!progressed || reachedEnd) break // what is left is an incomplete tail
  }
  return { records: { entries, baseMaxSensorUs, endBytes: offset, ...(state !== undefined ? { state } : {}) }, malformed }
}

/** The error a commit reports for malformed records: the first one's offset and reason, and how many more. */
export function malformedRecordsError(format: RecordFormat, path: string, malformed: readonly MalformedRecord[]): Error {
  const first = malformed[0]!
  const more = malformed.length > 1 ? `; ${malformed.length - 1} more malformed after it` : ''
  return errors.malformedRecord(`in ${path} at byte ${first.offset} (${format.text}, ${first.endOffset - first.offset} bytes): ${first.reason}${more}; the version was committed, its valid records indexed`)
}

/** Refuses a sensor time older than now − Δ (the mount's clock; the store checks again with the version's stamp). */
export function checkSensorLag(policy: SensorPolicy, path: string, sensorUs: number, what: string): void {
  const nowUs = policy.nowUs()
  const floorUs = nowUs - policy.sensorLagMaxUs
  if (sensorUs >= floorUs) return
  throw errors.lateSensorWrite(`${path}: ${what} stamped ${isoOfUs(sensorUs)} is older than now ${isoOfUs(nowUs)} − Δ ${policy.sensorLagMaxUs / 1000} ms = ${isoOfUs(Math.max(0, floorUs))}`)
}
