// Strict ISO-8601 -> epoch µs. Date.parse is not used: it accepts impossible dates (Feb 30
// rolls into March in some engines), zone-less local times and engine-specific forms, and it
// drops digits past the millisecond.
//
// Three forms, never mixed within one text:
//   extended date-time  YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|±HH:MM)
//   basic date-time     YYYYMMDDTHHMM[SS[.fraction]](Z|±HHMM)   (no ':', so rsync/scp do not read host:path)
//   extended date       YYYY-MM-DD                               (00:00:00 UTC of that day)
// The fraction has up to 9 digits, after '.' or ',' (ISO allows both), and floors to µs.

import { daysFromCivil, daysInMonth, US_PER_DAY, US_PER_SECOND } from './civil.js'
import { endsLeapSecond } from './gps.js'

const EXTENDED_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/
const BASIC_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(?:(\d{2})(?:[.,](\d{1,9}))?)?(?:(Z)|([+-])(\d{2})(\d{2}))$/
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/

/** Text that is meant as ISO-8601 (and so must parse): an extended date, or a basic date followed by 'T'. */
export const ISO_SHAPE = /^(?:\d{4}-\d{2}-\d{2}(?:$|T)|\d{8}T)/

export type IsoResult = { ok: true; timeUs: bigint } | { ok: false; why: string }

export function parseIsoUs(text: string): IsoResult {
  const match = EXTENDED_PATTERN.exec(text) ?? BASIC_PATTERN.exec(text)
  if (match !== null) return fieldsToUs(match)
  const date = DATE_PATTERN.exec(text)
  if (date !== null) return fieldsToUs([text, date[1], date[2], date[3], '00', '00', undefined, undefined, 'Z'])
  return {
    ok: false,
    why: 'not an ISO-8601 date-time with zone (2026-12-07T06:00:00Z, 2026-12-07T07:00:00+01:00, basic 20261207T060000Z) nor a date (2026-12-07)',
  }
}

type Fields = ReadonlyArray<string | undefined>

function fieldsToUs(fields: Fields): IsoResult {
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fractionText, zulu, sign, offHourText, offMinuteText] = fields
  const year = Number(yearText)
  const month = Number(monthText)
  const day = Number(dayText)
  const hour = Number(hourText)
  const minute = Number(minuteText)
  const second = secondText === undefined ? 0 : Number(secondText)
  if (month < 1 || month > 12) return { ok: false, why: `month ${month} outside 01..12` }
  if (day < 1 || day > daysInMonth(year, month)) return { ok: false, why: `day ${day} does not exist in ${yearText}-${monthText}` }
  if (hour > 23) return { ok: false, why: `hour ${hour} outside 00..23` }
  if (minute > 59) return { ok: false, why: `minute ${minute} outside 00..59` }
  if (second > 60) return { ok: false, why: `second ${second} outside 00..59 (60: a leap second)` }
  let offsetMinutes = 0
  if (zulu === undefined) {
    const offHour = Number(offHourText)
    const offMinute = Number(offMinuteText)
    if (offHour > 23 || offMinute > 59) return { ok: false, why: `zone offset ${sign}${offHourText}:${offMinuteText} out of range` }
    offsetMinutes = (sign === '-' ? -1 : 1) * (offHour * 60 + offMinute)
  }
  if (second === 60) {
    // A leap second has no epoch-µs representation: the whole inserted second maps to the
    // first instant after it, as GPS instants inside it do (gps.ts). Any other :60 is invalid.
    const afterUs = BigInt(daysFromCivil(year, month, day)) * BigInt(US_PER_DAY) + BigInt((hour * 60 + minute - offsetMinutes) * 60 + 60) * BigInt(US_PER_SECOND)
    if (afterUs > BigInt(Number.MAX_SAFE_INTEGER) || !endsLeapSecond(Number(afterUs))) return { ok: false, why: `second 60 is not an inserted leap second (UTC 23:59:60 before a leap-second date)` }
    return { ok: true, timeUs: afterUs }
  }
  // The fraction is floored to µs; the zone offset is whole minutes, so flooring the
  // fraction alone floors the whole instant.
  const fractionUs = fractionText === undefined ? 0 : Number(fractionText.padEnd(9, '0').slice(0, 6))
  // BigInt so instants near the 2^53 µs limit are summed exactly before the range check.
  const timeUs =
    BigInt(daysFromCivil(year, month, day)) * BigInt(US_PER_DAY) +
    BigInt((hour * 60 + minute - offsetMinutes) * 60 + second) * BigInt(US_PER_SECOND) +
    BigInt(fractionUs)
  return { ok: true, timeUs }
}
