// Proleptic Gregorian calendar arithmetic in UTC, done by hand because Date both accepts
// impossible dates (Date.UTC(2026, 1, 30) rolls into March) and maps years 0..99 to 19xx.

import { invariant } from './assert.js'

export const US_PER_SECOND = 1_000_000
export const US_PER_DAY = 86_400 * US_PER_SECOND

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
}

export function daysInMonth(year: number, month: number): number {
  invariant(month >= 1 && month <= 12, `month ${month} outside 1..12`)
  if (month === 2) return isLeapYear(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

// Days since 1970-01-01 (negative before). Howard Hinnant's days_from_civil.
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const monthFromMarch = (month + 9) % 12
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

// Epoch µs to ISO-8601 UTC with exactly six fraction digits (2026-11-21T10:00:00.123456Z).
export function isoOfUs(timeUs: number): string {
  invariant(Number.isSafeInteger(timeUs) && timeUs >= 0, `time ${timeUs} µs is not a non-negative integer`)
  const ms = Math.floor(timeUs / 1000)
  const subMsUs = timeUs - ms * 1000
  const isoMs = new Date(ms).toISOString() // YYYY-MM-DDTHH:MM:SS.mmmZ for years 0..9999
  return `${isoMs.slice(0, -1)}${String(subMsUs).padStart(3, '0')}Z`
}
