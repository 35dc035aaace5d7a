// GPS time <-> UTC (epoch µs). GPS time counts SI seconds since 1980-01-06T00:00:00Z with no
// leap seconds, so GPS − UTC grows by one at every UTC leap second: 0 s before 1981-07-01,
// 18 s since 2017-01-01 (IERS Bulletin C). A future leap second needs a row in LEAP_TABLE
// (none is announced; the CGPM resolved in 2022 to stop inserting them by 2035).
//
// The inserted second (UTC 23:59:60 before each table date) has no epoch-µs representation.
// GPS instants inside it map to the first UTC instant after it (00:00:00.000000 of the
// table date): a reading taken during the leap second happened after 23:59:59.999999, so a
// cut at 23:59:59.999999Z must not include it and a cut at 00:00:00Z must. The mapping
// stays monotone non-decreasing; only inside the inserted second is it not invertible.

import { invariant } from './assert.js'
import { daysFromCivil, US_PER_DAY, US_PER_SECOND } from './civil.js'

export const GPS_EPOCH_UTC_US = daysFromCivil(1980, 1, 6) * US_PER_DAY
export const GPS_WEEK_SECONDS = 604_800

interface LeapStep {
  readonly utcUs: number // first UTC instant at which the new offset is in force
  readonly gpsUs: number // the same instant in GPS µs since the GPS epoch
  readonly offsetS: number // GPS − UTC from utcUs on
}

const LEAP_DATES: ReadonlyArray<readonly [number, number]> = [
  [1981, 7], [1982, 7], [1983, 7], [1985, 7], [1988, 1], [1990, 1], [1991, 1], [1992, 7], [1993, 7],
  [1994, 7], [1996, 1], [1997, 7], [1999, 1], [2006, 1], [2009, 1], [2012, 7], [2015, 7], [2017, 1],
]

const LEAP_TABLE: readonly LeapStep[] = LEAP_DATES.map(([year, month], index) => {
  const utcUs = daysFromCivil(year, month, 1) * US_PER_DAY
  const offsetS = index + 1
  return { utcUs, gpsUs: utcUs - GPS_EPOCH_UTC_US + offsetS * US_PER_SECOND, offsetS }
})

/** Whether UTC epoch µs `utcUs` is the instant right after an inserted leap second (00:00:00 of a table date). */
export function endsLeapSecond(utcUs: number): boolean {
  return LEAP_TABLE.some((step) => step.utcUs === utcUs)
}

// GPS µs since the GPS epoch -> UTC epoch µs (exact integers; the parser uses this).
export function gpsUsToUtcUs(gpsUs: number): number {
  invariant(Number.isSafeInteger(gpsUs) && gpsUs >= 0, `GPS time ${gpsUs} µs is not a non-negative integer`)
  let offsetS = 0
  for (const step of LEAP_TABLE) {
    if (gpsUs >= step.gpsUs) {
      offsetS = step.offsetS
    } else if (gpsUs >= step.gpsUs - US_PER_SECOND) {
      return step.utcUs // inside the inserted second: see the header
    } else {
      break
    }
  }
  return gpsUs + GPS_EPOCH_UTC_US - offsetS * US_PER_SECOND
}

// UTC epoch µs -> GPS µs since the GPS epoch.
export function utcUsToGpsUs(utcUs: number): number {
  invariant(Number.isSafeInteger(utcUs) && utcUs >= GPS_EPOCH_UTC_US, `UTC time ${utcUs} µs is not an integer at or after the GPS epoch`)
  let offsetS = 0
  for (const step of LEAP_TABLE) {
    if (utcUs < step.utcUs) break
    offsetS = step.offsetS
  }
  return utcUs - GPS_EPOCH_UTC_US + offsetS * US_PER_SECOND
}

// GPS seconds (may be fractional) -> UTC epoch µs. Rounds to the nearest µs because a
// binary fraction of seconds rarely holds a decimal µs exactly (0.000001 is 9.99...e-7).
export function gpsToUtcUs(gpsSeconds: number): number {
  invariant(Number.isFinite(gpsSeconds) && gpsSeconds >= 0, `GPS time ${gpsSeconds} s is not a non-negative number`)
  return gpsUsToUtcUs(Math.round(gpsSeconds * US_PER_SECOND))
}

// UTC epoch µs -> GPS seconds (fractional when utcUs is not on a whole second).
export function utcUsToGps(utcUs: number): number {
  return utcUsToGpsUs(utcUs) / US_PER_SECOND
}
