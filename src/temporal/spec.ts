// The SPEC grammar of time-addressed paths (DESIGN.md "Time-addressed paths"): text after
// the last '@' of a path component names a platform time, a sensor time or a version.
// Pure parsing; resolving a spec to a cut belongs to the layers that hold versions.

import { errors } from '../errors.js'
import { isoOfUs, US_PER_SECOND } from './civil.js'
import { GPS_WEEK_SECONDS, gpsUsToUtcUs } from './gps.js'
import { parseIsoUs } from './iso.js'

export type TimeSpec =
  | { kind: 'platform'; timeUs: number } // epoch µs (ns input floors to µs)
  | { kind: 'sensor'; timeUs: number } // epoch µs, UTC
  | { kind: 'version'; version: number } // v<N>, N >= 1

// Times are exact integers in a JS number, so the latest addressable instant is 2^53 - 1 µs
// (2255-06-05T23:47:34.740991Z); later ones (and anything past year 9999) are malformed.
export const TIME_US_MAX = Number.MAX_SAFE_INTEGER

const SENSOR_PREFIX = 'sensor:'
const GPS_PREFIX = 'gps:'
const ISO_SHAPE = /^\d{4}-\d{2}-\d{2}T/
const DIGITS_SHAPE = /^[suv]?\d+[a-z]*$/
const EPOCH_WITH_UNIT = /^(\d+)(s|ms|us|ns)$/
const GPS_WEEK_FORM = /^(\d+):(\d+)(?:\.(\d{1,9}))?$/
const GPS_SECONDS_FORM = /^(\d+)(?:\.(\d{1,9}))?$/
const UNIT_TO_US: Readonly<Record<string, (value: bigint) => bigint>> = {
  s: (value) => value * 1_000_000n,
  ms: (value) => value * 1000n,
  us: (value) => value,
  ns: (value) => value / 1000n, // BigInt division floors for non-negative values
}

type Parsed = { ok: true; timeUs: number } | { ok: false; why: string }

function inRange(timeUs: bigint): Parsed {
  if (timeUs < 0n) return { ok: false, why: 'time before 1970-01-01T00:00:00Z' }
  if (timeUs > BigInt(TIME_US_MAX)) return { ok: false, why: `time after ${isoOfUs(TIME_US_MAX)} (2^53 µs)` }
  return { ok: true, timeUs: Number(timeUs) }
}

// The forms allowed after 'sensor:' as well as bare: ISO, epoch+unit, digits, s<digits>.
function parsePlatformUs(text: string): Parsed {
  if (ISO_SHAPE.test(text)) {
    const iso = parseIsoUs(text)
    return iso.ok ? inRange(iso.timeUs) : iso
  }
  if (/^\d+$/.test(text)) return inRange(BigInt(text) * 1000n) // bare digits: epoch ms
  if (/^s\d+$/.test(text)) return inRange(BigInt(text.slice(1)) * 1000n) // FFFS's @s<ms>
  const unit = EPOCH_WITH_UNIT.exec(text)
  if (unit !== null) return inRange(UNIT_TO_US[unit[2]!]!(BigInt(unit[1]!)))
  return { ok: false, why: 'expected ISO-8601, <digits>[s|ms|us|ns] or s<digits>' }
}

function fractionUs(digits: string | undefined): bigint {
  return digits === undefined ? 0n : BigInt(digits.padEnd(6, '0').slice(0, 6)) // floors to µs
}

function parseGpsUs(text: string): Parsed {
  let gpsUs: bigint
  const week = GPS_WEEK_FORM.exec(text)
  const seconds = GPS_SECONDS_FORM.exec(text)
  if (week !== null) {
    const secondsOfWeek = BigInt(week[2]!)
    if (secondsOfWeek >= BigInt(GPS_WEEK_SECONDS)) return { ok: false, why: `seconds of week ${week[2]} not below ${GPS_WEEK_SECONDS}` }
    gpsUs = (BigInt(week[1]!) * BigInt(GPS_WEEK_SECONDS) + secondsOfWeek) * BigInt(US_PER_SECOND) + fractionUs(week[3])
  } else if (seconds !== null) {
    gpsUs = BigInt(seconds[1]!) * BigInt(US_PER_SECOND) + fractionUs(seconds[2])
  } else {
    return { ok: false, why: 'expected gps:<week>:<seconds-of-week> or gps:<seconds>' }
  }
  const gps = inRange(gpsUs)
  return gps.ok ? inRange(BigInt(gpsUsToUtcUs(gps.timeUs))) : gps
}

function parseVersion(text: string): number | string {
  const version = Number(text.slice(1))
  if (version < 1) return 'versions are numbered from v1'
  if (!Number.isSafeInteger(version)) return `version ${text.slice(1)} too large`
  return version
}

export function parseTimeSpec(text: string): TimeSpec {
  let parsed: Parsed
  let kind: 'platform' | 'sensor' = 'sensor'
  if (text.startsWith(SENSOR_PREFIX)) {
    parsed = parsePlatformUs(text.slice(SENSOR_PREFIX.length))
  } else if (text.startsWith(GPS_PREFIX)) {
    parsed = parseGpsUs(text.slice(GPS_PREFIX.length))
  } else if (/^u\d+$/.test(text)) {
    parsed = inRange(BigInt(text.slice(1))) // FFFS's @u<µs>: sensor time
  } else if (/^v\d+$/.test(text)) {
    const version = parseVersion(text)
    if (typeof version === 'string') throw errors.malformedSpec(text, version)
    return { kind: 'version', version }
  } else {
    kind = 'platform'
    parsed = parsePlatformUs(text)
  }
  if (!parsed.ok) throw errors.malformedSpec(text, parsed.why)
  return { kind, timeUs: parsed.timeUs }
}

// True for text that is, or tries to be, a SPEC. Deliberately wider than the grammar so a
// typo ('123xs', '2026-13-01T...') is an error rather than silently an ordinary name.
export function isSpecShaped(text: string): boolean {
  return text.startsWith(SENSOR_PREFIX) || text.startsWith(GPS_PREFIX) || ISO_SHAPE.test(text) || DIGITS_SHAPE.test(text)
}

// Canonical forms: ISO-8601 UTC with six fraction digits (exact for every µs in range, and
// what `fffs` prints), 'sensor:' + the same, 'v<N>'.
export function formatTimeSpec(spec: TimeSpec): string {
  switch (spec.kind) {
    case 'platform':
      return isoOfUs(spec.timeUs)
    case 'sensor':
      return SENSOR_PREFIX + isoOfUs(spec.timeUs)
    case 'version':
      if (!Number.isSafeInteger(spec.version) || spec.version < 1) throw new Error(`temporal invariant broken: version ${spec.version} < 1`)
      return `v${spec.version}`
  }
}

// 'f.png@v3' -> { name: 'f.png', spec }. Only the last '@' can introduce a spec; a suffix
// that is not spec-shaped leaves the whole component an ordinary name (null).
export function splitNameSpec(component: string): { name: string; spec: TimeSpec } | null {
  const at = component.lastIndexOf('@')
  if (at < 0) return null
  const suffix = component.slice(at + 1)
  if (!isSpecShaped(suffix)) return null
  const name = component.slice(0, at)
  if (name === '') throw errors.malformedSpec(suffix, `no name before '@' in '${component}'`)
  return { name, spec: parseTimeSpec(suffix) }
}

export function parseTimePath(
  path: string,
): { components: string[]; specIndex: number; spec: TimeSpec } | { components: string[]; specIndex: -1 } {
  const components: string[] = []
  let found: { specIndex: number; spec: TimeSpec } | null = null
  for (const component of path.split('/')) {
    if (component === '') continue
    const split = splitNameSpec(component)
    if (split === null) {
      components.push(component)
      continue
    }
    if (found !== null) throw errors.invalid(`more than one @SPEC in path: ${path}`)
    found = { specIndex: components.length, spec: split.spec }
    components.push(split.name)
  }
  return found === null ? { components, specIndex: -1 } : { components, ...found }
}

// Names whose last '@' is followed by something spec-shaped would be read back as NAME@SPEC
// (or fail to parse), so creating them is EINVAL. '@v3' (nothing before '@') is reserved too.
export function isReservedName(name: string): boolean {
  const at = name.lastIndexOf('@')
  return at >= 0 && isSpecShaped(name.slice(at + 1))
}
