import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { utcUsToGpsUs } from '../../src/temporal/gps.js'
import { TIME_US_MAX, formatTimeSpec, isSpecShaped, parseTimeSpec, type TimeSpec } from '../../src/temporal/spec.js'

// 2026-11-21T10:00:00Z in epoch seconds, computed independently (Python calendar.timegm).
const T_S = 1_795_255_200
const T_US = T_S * 1_000_000

function expectEinval(text: string): void {
  let caught: unknown
  try {
    parseTimeSpec(text)
  } catch (err) {
    caught = err
  }
  expect(caught, `'${text}' should be malformed`).toBeInstanceOf(FffsError)
  expect((caught as FffsError).code).toBe('EINVAL')
  expect((caught as FffsError).message).toContain('malformed time spec')
}

describe('parseTimeSpec: each form', () => {
  const cases: Array<[string, TimeSpec]> = [
    ['2026-11-21T10:00:00Z', { kind: 'platform', timeUs: T_US }],
    ['2026-11-21T10:00:00.123456Z', { kind: 'platform', timeUs: T_US + 123_456 }],
    ['2026-11-21T10:00:00.123456789Z', { kind: 'platform', timeUs: T_US + 123_456 }],
    ['2026-11-21T10:00:00,5Z', { kind: 'platform', timeUs: T_US + 500_000 }],
    ['2026-11-21T10:00Z', { kind: 'platform', timeUs: T_US }],
    ['2026-11-21T11:30:00+01:30', { kind: 'platform', timeUs: T_US }],
    ['2026-11-21T04:30:00.000001-05:30', { kind: 'platform', timeUs: T_US + 1 }],
    ['2024-02-29T00:00:00Z', { kind: 'platform', timeUs: 1_709_164_800_000_000 }],
    ['1970-01-01T00:00:00.000000999Z', { kind: 'platform', timeUs: 0 }],
    [`${T_S}s`, { kind: 'platform', timeUs: T_US }],
    [`${T_S}123ms`, { kind: 'platform', timeUs: T_US + 123_000 }],
    [`${T_S}123456us`, { kind: 'platform', timeUs: T_US + 123_456 }],
    [`${T_S}123456789ns`, { kind: 'platform', timeUs: T_US + 123_456 }], // 19 digits, floored
    [`${T_S}123`, { kind: 'platform', timeUs: T_US + 123_000 }], // bare digits are ms
    [`s${T_S}123`, { kind: 'platform', timeUs: T_US + 123_000 }],
    ['0', { kind: 'platform', timeUs: 0 }],
    [`sensor:${T_S}s`, { kind: 'sensor', timeUs: T_US }],
    [`sensor:s${T_S}000`, { kind: 'sensor', timeUs: T_US }],
    [`sensor:${T_S}000`, { kind: 'sensor', timeUs: T_US }],
    ['sensor:2026-11-21T11:00:00+01:00', { kind: 'sensor', timeUs: T_US }],
    [`u${T_S}000042`, { kind: 'sensor', timeUs: T_US + 42 }],
    ['gps:0', { kind: 'sensor', timeUs: 315_964_800_000_000 }],
    ['gps:0:0', { kind: 'sensor', timeUs: 315_964_800_000_000 }],
    ['gps:1167264018', { kind: 'sensor', timeUs: 1_483_228_800_000_000 }],
    ['gps:1167264016.9999999', { kind: 'sensor', timeUs: 1_483_228_799_999_999 }],
    ['gps:2238:0', { kind: 'sensor', timeUs: 1_669_507_182_000_000 }], // 2022-11-26T23:59:42Z
    ['gps:2238:345600.25', { kind: 'sensor', timeUs: 1_669_852_782_250_000 }], // 2022-11-30T23:59:42.25Z
    ['v1', { kind: 'version', version: 1 }],
    ['v42', { kind: 'version', version: 42 }],
    ['v007', { kind: 'version', version: 7 }],
  ]
  it.each(cases)('%s', (text, expected) => {
    expect(parseTimeSpec(text)).toEqual(expected)
  })

  it('accepts the last representable µs and nothing after it', () => {
    expect(parseTimeSpec(`${TIME_US_MAX}us`)).toEqual({ kind: 'platform', timeUs: TIME_US_MAX })
    expect(parseTimeSpec('2255-06-05T23:47:34.740991Z')).toEqual({ kind: 'platform', timeUs: TIME_US_MAX })
    expectEinval('2255-06-05T23:47:34.740992Z')
    expectEinval(`${TIME_US_MAX + 1}us`)
  })

  it('names an inserted leap second (23:59:60 UTC before a leap date) as the first instant after it, as GPS does', () => {
    // 2017-01-01T00:00:00Z = 1483228800 s (Python calendar.timegm).
    const after = { kind: 'platform', timeUs: 1_483_228_800_000_000 }
    expect(parseTimeSpec('2016-12-31T23:59:60Z')).toEqual(after)
    expect(parseTimeSpec('2016-12-31T23:59:60.999999Z')).toEqual(after)
    expect(parseTimeSpec('2017-01-01T00:59:60.5+01:00')).toEqual(after)
    expect(parseTimeSpec('sensor:2016-12-31T23:59:60.25Z')).toEqual({ ...after, kind: 'sensor' })
  })
})

describe('parseTimeSpec: malformed input is EINVAL', () => {
  it.each([
    ['', 'empty'],
    ['2026-13-01T00:00:00Z', 'month 13'],
    ['2026-00-01T00:00:00Z', 'month 0'],
    ['2026-11-21T25:00:00Z', 'hour 25'],
    ['2026-11-21T24:00:00Z', 'hour 24'],
    ['2026-02-30T00:00:00Z', 'Feb 30'],
    ['2023-02-29T00:00:00Z', 'Feb 29 of a common year'],
    ['2100-02-29T00:00:00Z', 'Feb 29 of a century common year'],
    ['2026-04-31T00:00:00Z', 'Apr 31'],
    ['2026-11-00T00:00:00Z', 'day 0'],
    ['2026-11-21T10:60:00Z', 'minute 60'],
    ['2016-12-30T23:59:60Z', 'second 60 of a day without a leap second'],
    ['2016-12-31T23:58:60Z', 'second 60 of another minute'],
    ['2026-11-21T10:00:00', 'no zone'],
    ['2026-11-21T10:00:00+24:00', 'offset hour 24'],
    ['2026-11-21T10:00:00+0100', 'basic-format offset'],
    ['2026-11-21T10:00:00.1234567890Z', 'ten fraction digits'],
    ['2026-11-21T10:00:00.Z', 'empty fraction'],
    ['2026-11-21t10:00:00Z', 'lowercase t'],
    ['1969-12-31T23:59:59Z', 'before the epoch'],
    ['1970-01-01T00:30:00+01:00', 'before the epoch by its offset'],
    ['9999-12-31T23:59:59Z', 'beyond 2^53 µs'],
    ['123xs', 'unknown unit'],
    ['123S', 'uppercase unit'],
    ['s', 'no digits'],
    ['s12ms', 's with a unit'],
    ['u12ms', 'u with a unit'],
    ['-5', 'negative'],
    ['1.5s', 'fractional epoch'],
    ['sensor:nope', 'sensor garbage'],
    ['sensor:', 'sensor nothing'],
    ['sensor:u5', 'sensor of a sensor form'],
    ['sensor:v3', 'sensor of a version'],
    ['sensor:gps:0', 'sensor of gps'],
    ['gps:', 'gps nothing'],
    ['gps:abc', 'gps garbage'],
    ['gps:1:604800', 'seconds of week too large'],
    ['gps:1:2:3', 'three gps fields'],
    ['gps:-1', 'negative gps'],
    ['v0', 'version 0'],
    ['v', 'version without number'],
    ['v9007199254740992', 'version beyond 2^53'],
    ['v1.5', 'fractional version'],
  ])('%s (%s)', (text) => expectEinval(text))
})

describe('parse ∘ format round trips', () => {
  const timeUsArb = fc.integer({ min: 0, max: TIME_US_MAX })
  const specArb: fc.Arbitrary<TimeSpec> = fc.oneof(
    fc.record({ kind: fc.constant('platform' as const), timeUs: timeUsArb }),
    fc.record({ kind: fc.constant('sensor' as const), timeUs: timeUsArb }),
    fc.record({ kind: fc.constant('version' as const), version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) }),
  )

  it('parse(format(spec)) == spec, and the canonical text is stable', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const text = formatTimeSpec(spec)
        expect(parseTimeSpec(text)).toEqual(spec)
        expect(formatTimeSpec(parseTimeSpec(text))).toBe(text)
        expect(isSpecShaped(text)).toBe(true)
      }),
    )
  })

  it('formats canonically as ISO µs, sensor:ISO and v<N>', () => {
    expect(formatTimeSpec({ kind: 'platform', timeUs: T_US + 123_456 })).toBe('2026-11-21T10:00:00.123456Z')
    expect(formatTimeSpec({ kind: 'sensor', timeUs: 1 })).toBe('sensor:1970-01-01T00:00:00.000001Z')
    expect(formatTimeSpec({ kind: 'version', version: 3 })).toBe('v3')
    expect(() => formatTimeSpec({ kind: 'version', version: 0 })).toThrow(/temporal invariant/)
  })

  it('every epoch form of an instant parses to that instant', () => {
    fc.assert(
      fc.property(timeUsArb, fc.integer({ min: 0, max: 999 }), (timeUs, subUsNs) => {
        const ms = Math.floor(timeUs / 1000)
        const msUs = ms * 1000
        const platform = (us: number): TimeSpec => ({ kind: 'platform', timeUs: us })
        const sensor = (us: number): TimeSpec => ({ kind: 'sensor', timeUs: us })
        expect(parseTimeSpec(`${timeUs}us`)).toEqual(platform(timeUs))
        expect(parseTimeSpec(`${BigInt(timeUs) * 1000n + BigInt(subUsNs)}ns`)).toEqual(platform(timeUs))
        expect(parseTimeSpec(`${ms}ms`)).toEqual(platform(msUs))
        expect(parseTimeSpec(`${ms}`)).toEqual(platform(msUs))
        expect(parseTimeSpec(`s${ms}`)).toEqual(platform(msUs))
        expect(parseTimeSpec(`${Math.floor(timeUs / 1e6)}s`)).toEqual(platform(Math.floor(timeUs / 1e6) * 1e6))
        expect(parseTimeSpec(`sensor:${timeUs}us`)).toEqual(sensor(timeUs))
        expect(parseTimeSpec(`sensor:${ms}`)).toEqual(sensor(msUs))
        expect(parseTimeSpec(`u${timeUs}`)).toEqual(sensor(timeUs))
      }),
    )
  })

  it('gps:<week>:<sow> and gps:<seconds> of an instant parse to that instant', () => {
    // Up to 2200 so the GPS count (UTC + 18 s) stays below 2^53 µs.
    fc.assert(
      fc.property(fc.integer({ min: 315_964_800_000_000, max: 7_258_118_400_000_000 }), (timeUs) => {
        const gpsUs = utcUsToGpsUs(timeUs)
        const seconds = Math.floor(gpsUs / 1e6)
        const fraction = String(gpsUs % 1e6).padStart(6, '0')
        const week = Math.floor(seconds / 604_800)
        const sensor: TimeSpec = { kind: 'sensor', timeUs }
        expect(parseTimeSpec(`gps:${seconds}.${fraction}`)).toEqual(sensor)
        expect(parseTimeSpec(`gps:${week}:${seconds - week * 604_800}.${fraction}`)).toEqual(sensor)
      }),
    )
  })
})

describe('ISO-8601 agrees with Date', () => {
  const dateArb = fc.date({ min: new Date(0), max: new Date(9_007_199_254_740), noInvalidDate: true })

  it('for Date.toISOString text (UTC, ms precision)', () => {
    fc.assert(
      fc.property(dateArb, (date) => {
        expect(parseTimeSpec(date.toISOString())).toEqual({ kind: 'platform', timeUs: date.getTime() * 1000 })
      }),
    )
  })

  it('for the same instant written in another zone', () => {
    const pad = (n: number, width = 2): string => String(n).padStart(width, '0')
    fc.assert(
      fc.property(dateArb, fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }), (date, offsetMinutes) => {
        const local = new Date(date.getTime() + offsetMinutes * 60_000)
        if (local.getTime() < 0 || local.getUTCFullYear() > 9999) return
        const sign = offsetMinutes < 0 ? '-' : '+'
        const abs = Math.abs(offsetMinutes)
        const text =
          `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}` +
          `T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}` +
          `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
        expect(Date.parse(text)).toBe(date.getTime())
        expect(parseTimeSpec(text)).toEqual({ kind: 'platform', timeUs: date.getTime() * 1000 })
      }),
    )
  })
})
