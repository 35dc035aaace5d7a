import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { utcUsToGpsUs } from '../../src/temporal/gps.js'
import { PLAUSIBLE_FROM_US, TIME_US_MAX, formatTimeSpec, parseSpecArgument, parseTimeSpec, specOfSuffix, type TimeSpec } from '../../src/temporal/spec.js'

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
    ['946684800000', { kind: 'platform', timeUs: PLAUSIBLE_FROM_US }], // 2000-01-01: the first plausible bare number
    [`sensor:0`, { kind: 'sensor', timeUs: 0 }], // after sensor: any instant
    ['20261121T100000Z', { kind: 'platform', timeUs: T_US }], // ISO-8601 basic
    ['20261121T100000.123456Z', { kind: 'platform', timeUs: T_US + 123_456 }],
    ['20261121T100000,5Z', { kind: 'platform', timeUs: T_US + 500_000 }],
    ['20261121T1000Z', { kind: 'platform', timeUs: T_US }],
    ['20261121T113000+0130', { kind: 'platform', timeUs: T_US }],
    ['sensor:20261121T100000.000001Z', { kind: 'sensor', timeUs: T_US + 1 }],
    ['2026-11-21', { kind: 'platform', timeUs: T_US - 10 * 3600 * 1_000_000 }], // a date: 00:00:00 UTC
    ['sensor:2026-11-21', { kind: 'sensor', timeUs: T_US - 10 * 3600 * 1_000_000 }],
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
    ['v-1', 'negative version'],
    ['2026-13-45', 'a date with month 13'],
    ['2026-02-30', 'a date that does not exist'],
    ['20261121T10:00:00Z', 'basic date, extended time'],
    ['2026-11-21T100000Z', 'extended date, basic time'],
    ['20261121T100000', 'basic without zone'],
    ['20261321T100000Z', 'basic month 13'],
    ['-5', 'relative without a unit'],
    ['-5x', 'relative with an unknown unit'],
    ['-30m2h', 'relative units not largest first'],
    ['-5m5m', 'relative unit twice'],
    ['-1.5h', 'fractional relative'],
    ['sensor:-5', 'sensor relative without unit'],
    ['123', 'bare number before 2000 (a name, not a spec)'],
    ['123s', 'epoch seconds before 2000'],
    ['s1', 'FFFS ms before 2000'],
    ['u1', 'FFFS µs before 2000'],
    ['python', 'a word'],
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
        expect(specOfSuffix(text, 0)).toEqual({ spec, relative: false })
      }),
    )
  })

  it('formats canonically as ISO µs, sensor:ISO and v<N>', () => {
    expect(formatTimeSpec({ kind: 'platform', timeUs: T_US + 123_456 })).toBe('2026-11-21T10:00:00.123456Z')
    expect(formatTimeSpec({ kind: 'sensor', timeUs: 1 })).toBe('sensor:1970-01-01T00:00:00.000001Z')
    expect(formatTimeSpec({ kind: 'version', version: 3 })).toBe('v3')
    expect(() => formatTimeSpec({ kind: 'version', version: 0 })).toThrow(/temporal invariant/)
  })

  it('every epoch form of a plausible instant parses to that instant', () => {
    fc.assert(
      fc.property(fc.integer({ min: PLAUSIBLE_FROM_US + 1_000_000, max: TIME_US_MAX }), fc.integer({ min: 0, max: 999 }), (timeUs, subUsNs) => {
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

describe('the grammar is narrow: names people use stay names', () => {
  const NOW_US = T_US + 123_456 // 2026-11-21T10:00:00.123456Z

  it('a bare number, epoch with unit, s<ms> or u<µs> before 2000 is an ordinary name', () => {
    for (const suffix of ['3', '18', '123s', '2x', '1', 'u1', 's42', '20261207', '1795255200', '946684799999', '946684799s', '007', 'v2.png', 'example.org.txt', '', 'x', '@x', 'V3', 'Sensor:1', '+5m', 'now.txt', '2026-12-07.pdf', 'v1.5', 'gpsx:1']) {
      expect(specOfSuffix(suffix, NOW_US), suffix).toBeNull()
    }
  })

  it('any epoch number below 2000-01-01 is a name; any from then to 2^53 µs a spec', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: TIME_US_MAX }), (timeUs) => {
        const ms = Math.floor(timeUs / 1000)
        const forms = [`${ms}`, `${ms}ms`, `${timeUs}us`, `s${ms}`, `u${timeUs}`]
        for (const form of forms) {
          const parsed = specOfSuffix(form, NOW_US)
          const formUs = form.startsWith('u') || form.endsWith('us') ? timeUs : ms * 1000
          if (formUs < PLAUSIBLE_FROM_US) expect(parsed, form).toBeNull()
          else expect(parsed?.spec, form).toEqual({ kind: form.startsWith('u') ? 'sensor' : 'platform', timeUs: formUs })
        }
      }),
    )
  })

  it('a suffix with no digits, ISO shape or prefix of the grammar is a name, whatever else it holds', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z._ +=,~%][A-Za-z0-9._ +=,~%-]{0,20}$/), (suffix) => {
        fc.pre(!['now', 'today', 'yesterday'].includes(suffix) && !/^(?:[suv]\d|sensor:|gps:)/.test(suffix))
        expect(specOfSuffix(suffix, NOW_US)).toBeNull()
      }),
    )
  })
})

describe('relative and human times', () => {
  const NOW_US = T_US + 123_456 // 2026-11-21T10:00:00.123456Z
  const MIN_US = 60_000_000
  const DAY_US = 86_400_000_000

  it.each([
    ['-5m', NOW_US - 5 * MIN_US],
    ['-2h30m', NOW_US - 150 * MIN_US],
    ['-1w2d', NOW_US - 9 * DAY_US],
    ['-90s', NOW_US - 90_000_000],
    ['-250ms', NOW_US - 250_000],
    ['-1d12h30m15s500ms', NOW_US - DAY_US - 12 * 60 * MIN_US - 30 * MIN_US - 15_500_000],
    ['-0s', NOW_US],
    ['now', NOW_US],
    ['today', T_US - 10 * 3600 * 1_000_000], // 00:00:00 UTC of that day
    ['yesterday', T_US - 10 * 3600 * 1_000_000 - DAY_US],
  ])('%s resolves against the moment of the call', (text, timeUs) => {
    expect(parseSpecArgument(text, NOW_US)).toEqual({ spec: { kind: 'platform', timeUs }, relative: true })
    expect(parseSpecArgument(`sensor:${text}`, NOW_US)).toEqual({ spec: { kind: 'sensor', timeUs }, relative: true })
  })

  it('-N<unit> is now minus N units, for every unit and N', () => {
    const units: Array<[string, number]> = [['w', 7 * DAY_US], ['d', DAY_US], ['h', 60 * MIN_US], ['m', MIN_US], ['s', 1_000_000], ['ms', 1000]]
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(...units), (n, [unit, unitUs]) => {
        expect(parseTimeSpec(`-${n}${unit}`, NOW_US)).toEqual({ kind: 'platform', timeUs: NOW_US - n * unitUs })
      }),
    )
  })

  it('absolute forms are not relative; a relative time before 1970 is malformed', () => {
    expect(parseSpecArgument('2026-11-21T10:00:00Z', NOW_US).relative).toBe(false)
    expect(() => parseTimeSpec('-100000w', NOW_US)).toThrow(/before 1970/)
  })
})

describe('ISO-8601 basic and extended forms agree', () => {
  it('for every instant and zone', () => {
    const pad = (n: number, width = 2): string => String(n).padStart(width, '0')
    fc.assert(
      fc.property(fc.integer({ min: 0, max: TIME_US_MAX }), fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }), (timeUs, offsetMinutes) => {
        const local = new Date(Math.floor(timeUs / 1000) + offsetMinutes * 60_000)
        if (local.getTime() < 0 || timeUs + offsetMinutes * 60_000_000 < 0) return
        const fraction = `${pad(local.getUTCMilliseconds(), 3)}${pad(timeUs % 1000, 3)}`
        const sign = offsetMinutes < 0 ? '-' : '+'
        const abs = Math.abs(offsetMinutes)
        const [y, mo, d, h, mi, se] = [pad(local.getUTCFullYear(), 4), pad(local.getUTCMonth() + 1), pad(local.getUTCDate()), pad(local.getUTCHours()), pad(local.getUTCMinutes()), pad(local.getUTCSeconds())]
        const extended = `${y}-${mo}-${d}T${h}:${mi}:${se}.${fraction}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
        const basic = `${y}${mo}${d}T${h}${mi}${se}.${fraction}${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
        expect(basic).not.toContain(':')
        expect(parseTimeSpec(basic)).toEqual(parseTimeSpec(extended))
        expect(parseTimeSpec(extended)).toEqual({ kind: 'platform', timeUs })
      }),
    )
  })
})
