// The SPEC grammar: the text after the last '@' of a path component, or a SPEC argument of
// the CLI (`fffs cut SPEC`, `--at`, `--since`), names a platform time, a sensor time or a
// version. One grammar for the mount and the CLI. Pure parsing; resolving a spec to a cut
// belongs to the layers that hold versions.
//
// The grammar is narrow so that the names people use stay names: a suffix is a spec only in
// one of the forms below, and a bare number only when it is a plausible instant (2000-01-01
// or later), so `python@3`, `node@18`, `build@123s`, `a@u1`, `icon@2x.png`,
// `alice@example.org.txt` are ordinary names. A suffix in a spec's form that does not parse
// (`2026-13-45`, `v0`, `sensor:nope`, `-5x`) is malformed: EINVAL, never "no such file".
//
//   2026-12-07T06:00:00.123456Z, ±hh:mm zones    ISO-8601 extended, platform time
//   20261207T060000.123456Z, ±hhmm zones          ISO-8601 basic (no ':'), platform time
//   2026-12-07                                   00:00:00 UTC of that day
//   <digits>[s|ms|us|ns], s<digits>              epoch (bare digits and s<digits>: ms), from 2000 on
//   -5m, -2h30m, -1w2d, -90s, -250ms             now minus a duration (units w d h m s ms, largest first)
//   now, today, yesterday                        now; 00:00:00 UTC of today / yesterday
//   sensor:<any form above>                      sensor time (any instant from 1970 on)
//   u<digits>                                    sensor time, epoch µs (FFFS), from 2000 on
//   gps:<week>:<seconds-of-week>, gps:<seconds>  sensor time given as GPS time
//   v<N>                                         version N (N >= 1)
//
// Relative and human forms are resolved to an absolute instant by the caller's `nowUs`, at the
// moment of the call; they are then addressed like the absolute instant they name.

import { errors } from '../errors.js'
import { isoOfUs, US_PER_DAY, US_PER_SECOND } from './civil.js'
import { parseDurationMs } from './duration.js'
import { GPS_WEEK_SECONDS, gpsUsToUtcUs } from './gps.js'
import { wallClockUs } from './hlc.js'
import { ISO_SHAPE, parseIsoUs } from './iso.js'

export type TimeSpec =
  | { kind: 'platform'; timeUs: number } // epoch µs (ns input floors to µs)
  | { kind: 'sensor'; timeUs: number } // epoch µs, UTC
  | { kind: 'version'; version: number } // v<N>, N >= 1

/** A parsed spec; `relative`: it named an instant relative to now (`-5m`, `today`), resolved with the caller's clock. */
export interface ParsedSpec {
  readonly spec: TimeSpec
  readonly relative: boolean
}

// Times are exact integers in a JS number, so the latest addressable instant is 2^53 - 1 µs
// (2255-06-05T23:47:34.740991Z); later ones (and anything past year 9999) are malformed.
export const TIME_US_MAX = Number.MAX_SAFE_INTEGER
/** 2000-01-01T00:00:00Z: a bare number naming an earlier instant is not a plausible time, so a name. */
export const PLAUSIBLE_FROM_US = 946_684_800 * US_PER_SECOND

const SENSOR_PREFIX = 'sensor:'
const GPS_PREFIX = 'gps:'
const EPOCH_WITH_UNIT = /^(\d+)(s|ms|us|ns)?$/
const FFFS_MS_FORM = /^s(\d+)$/
const FFFS_SENSOR_US_FORM = /^u(\d+)$/
const VERSION_FORM = /^v(\d+)$/
const NEGATIVE_VERSION_FORM = /^v-\d+$/
const RELATIVE_SHAPE = /^-\d/
const GPS_WEEK_FORM = /^(\d+):(\d+)(?:\.(\d{1,9}))?$/
const GPS_SECONDS_FORM = /^(\d+)(?:\.(\d{1,9}))?$/
const UNIT_TO_US: Readonly<Record<string, (value: bigint) => bigint>> = {
  s: (value) => value * 1_000_000n,
  ms: (value) => value * 1000n,
  us: (value) => value,
  ns: (value) => value / 1000n, // BigInt division floors for non-negative values
}

/** What a text is: a spec, malformed (it is in a spec's form but does not parse), or not a spec at all (a name). */
type Classified =
  | { readonly kind: 'spec'; readonly spec: TimeSpec; readonly relative: boolean }
  | { readonly kind: 'malformed'; readonly why: string }
  | { readonly kind: 'name'; readonly why: string }

type Instant = { kind: 'instant'; timeUs: number; relative: boolean } | { kind: 'malformed'; why: string } | { kind: 'name'; why: string }

const NOT_A_SPEC =
  'not a time spec: expected ISO-8601 (2026-12-07T06:00:00Z, 20261207T060000Z, 2026-12-07), epoch from 2000 on (1795255200s, 1795255200123), ' +
  'a relative time (-5m, -2h30m, today, yesterday, now), sensor:<time>, u<µs>, gps:<week>:<sow> or v<N>'

function inRange(timeUs: bigint, relative = false): Instant {
  if (timeUs < 0n) return { kind: 'malformed', why: 'time before 1970-01-01T00:00:00Z' }
  if (timeUs > BigInt(TIME_US_MAX)) return { kind: 'malformed', why: `time after ${isoOfUs(TIME_US_MAX)} (2^53 µs)` }
  return { kind: 'instant', timeUs: Number(timeUs), relative }
}

/** A bare epoch number: a spec from 2000 on; an earlier instant is a name (`python@3`), unless `explicit` (after `sensor:`). */
function plausible(timeUs: bigint, text: string, explicit: boolean): Instant {
  const instant = inRange(timeUs)
  if (instant.kind === 'instant' && !explicit && instant.timeUs < PLAUSIBLE_FROM_US) {
    return { kind: 'name', why: `'${text}' names an instant before 2000-01-01 (${isoOfUs(instant.timeUs)}), not a plausible time` }
  }
  return instant
}

function relativeInstant(text: string, nowUs: number): Instant {
  const agoMs = parseDurationMs(text.slice(1))
  if (agoMs === null) return { kind: 'malformed', why: 'a relative time is -<n><unit>... with units w, d, h, m, s, ms, largest first (-5m, -2h30m, -1d12h)' }
  return inRange(BigInt(nowUs) - BigInt(agoMs) * 1000n, true)
}

// The instant forms allowed bare and after 'sensor:': ISO, epoch, s<digits>, relative and human.
function classifyInstant(text: string, nowUs: number, explicit: boolean): Instant {
  if (ISO_SHAPE.test(text)) {
    const iso = parseIsoUs(text)
    return iso.ok ? inRange(iso.timeUs) : { kind: 'malformed', why: iso.why }
  }
  const epoch = EPOCH_WITH_UNIT.exec(text)
  if (epoch !== null) return plausible(UNIT_TO_US[epoch[2] ?? 'ms']!(BigInt(epoch[1]!)), text, explicit)
  const fffsMs = FFFS_MS_FORM.exec(text)
  if (fffsMs !== null) return plausible(BigInt(fffsMs[1]!) * 1000n, text, explicit)
  if (RELATIVE_SHAPE.test(text)) return relativeInstant(text, nowUs)
  const todayUs = Math.floor(nowUs / US_PER_DAY) * US_PER_DAY
  if (text === 'now') return inRange(BigInt(nowUs), true)
  if (text === 'today') return inRange(BigInt(todayUs), true)
  if (text === 'yesterday') return inRange(BigInt(todayUs - US_PER_DAY), true)
  return { kind: 'name', why: NOT_A_SPEC }
}

function fractionUs(digits: string | undefined): bigint {
  return digits === undefined ? 0n : BigInt(digits.padEnd(6, '0').slice(0, 6)) // floors to µs
}

function gpsInstant(text: string): Instant {
  let gpsUs: bigint
  const week = GPS_WEEK_FORM.exec(text)
  const seconds = GPS_SECONDS_FORM.exec(text)
  if (week !== null) {
    const secondsOfWeek = BigInt(week[2]!)
    if (secondsOfWeek >= BigInt(GPS_WEEK_SECONDS)) return { kind: 'malformed', why: `seconds of week ${week[2]} not below ${GPS_WEEK_SECONDS}` }
    gpsUs = (BigInt(week[1]!) * BigInt(GPS_WEEK_SECONDS) + secondsOfWeek) * BigInt(US_PER_SECOND) + fractionUs(week[3])
  } else if (seconds !== null) {
    gpsUs = BigInt(seconds[1]!) * BigInt(US_PER_SECOND) + fractionUs(seconds[2])
  } else {
    return { kind: 'malformed', why: 'expected gps:<week>:<seconds-of-week> or gps:<seconds>' }
  }
  const gps = inRange(gpsUs)
  return gps.kind === 'instant' ? inRange(BigInt(gpsUsToUtcUs(gps.timeUs))) : gps
}

function asSpec(instant: Instant, kind: 'platform' | 'sensor', malformedIfName = false): Classified {
  switch (instant.kind) {
    case 'instant':
      return { kind: 'spec', spec: { kind, timeUs: instant.timeUs }, relative: instant.relative }
    case 'name':
      return malformedIfName ? { kind: 'malformed', why: instant.why } : instant
    case 'malformed':
      return instant
  }
}

function classify(text: string, nowUs: number): Classified {
  if (text.startsWith(SENSOR_PREFIX)) return asSpec(classifyInstant(text.slice(SENSOR_PREFIX.length), nowUs, true), 'sensor', true)
  if (text.startsWith(GPS_PREFIX)) return asSpec(gpsInstant(text.slice(GPS_PREFIX.length)), 'sensor')
  const fffsUs = FFFS_SENSOR_US_FORM.exec(text)
  if (fffsUs !== null) return asSpec(plausible(BigInt(fffsUs[1]!), text, false), 'sensor')
  const version = VERSION_FORM.exec(text)
  if (version !== null) {
    const n = Number(version[1])
    if (n < 1) return { kind: 'malformed', why: 'versions are numbered from v1' }
    if (!Number.isSafeInteger(n)) return { kind: 'malformed', why: `version ${version[1]} too large` }
    return { kind: 'spec', spec: { kind: 'version', version: n }, relative: false }
  }
  if (NEGATIVE_VERSION_FORM.test(text)) return { kind: 'malformed', why: 'versions are numbered from v1 (fffs log lists them)' }
  return asSpec(classifyInstant(text, nowUs, false), 'platform')
}

/**
 * A SPEC argument (`fffs cut SPEC`, `--at`, `--since`, an xattr's time): it must be a spec.
 * Relative forms resolve against `nowUs`.
 */
export function parseSpecArgument(text: string, nowUs: number = wallClockUs()): ParsedSpec {
  const found = classify(text, nowUs)
  if (found.kind !== 'spec') throw errors.malformedSpec(text, found.why)
  return { spec: found.spec, relative: found.relative }
}

export function parseTimeSpec(text: string, nowUs: number = wallClockUs()): TimeSpec {
  return parseSpecArgument(text, nowUs).spec
}

/** The text after a name's last '@': the spec it names, or null when it is an ordinary part of the name. EINVAL when malformed. */
export function specOfSuffix(text: string, nowUs: number): ParsedSpec | null {
  const found = classify(text, nowUs)
  if (found.kind === 'malformed') throw errors.malformedSpec(text, found.why)
  return found.kind === 'spec' ? { spec: found.spec, relative: found.relative } : null
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

/** A path component split at its last '@' when what follows is a spec. */
export interface NameSpec extends ParsedSpec {
  readonly name: string
}

/**
 * 'f.png@v3' -> { name: 'f.png', spec }. Only the text after the last '@' can be a spec; when
 * it is not one, the whole component is an ordinary name (null). EINVAL when it is malformed,
 * or when nothing precedes the '@'.
 */
export function splitNameSpec(component: string, nowUs: number): NameSpec | null {
  const at = component.lastIndexOf('@')
  if (at < 0) return null
  const suffix = component.slice(at + 1)
  const parsed = specOfSuffix(suffix, nowUs)
  if (parsed === null) return null
  const name = component.slice(0, at)
  if (name === '') throw errors.malformedSpec(suffix, `no name before '@' in '${component}'`)
  return { name, ...parsed }
}

/** Whether a name would be read as NAME@SPEC (or is malformed as one): such names cannot name snapshots. */
export function isSpecName(name: string, nowUs: number = wallClockUs()): boolean {
  try {
    return splitNameSpec(name, nowUs) !== null
  } catch {
    return true
  }
}
