import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isoOfUs } from '../../src/temporal/civil.js'
import { GPS_EPOCH_UTC_US, gpsToUtcUs, gpsUsToUtcUs, utcUsToGps, utcUsToGpsUs } from '../../src/temporal/gps.js'
import { parseTimeSpec } from '../../src/temporal/spec.js'

const US = 1_000_000
const WEEK_S = 604_800
// UTC epoch seconds computed independently (Python calendar.timegm).
const UTC_1981_07_01_S = 362_793_600
const UTC_2017_01_01_S = 1_483_228_800

describe('GPS <-> UTC at known instants', () => {
  it('anchors the GPS epoch at 1980-01-06T00:00:00Z', () => {
    expect(GPS_EPOCH_UTC_US).toBe(315_964_800 * US)
    expect(gpsToUtcUs(0)).toBe(315_964_800 * US)
    expect(utcUsToGps(315_964_800 * US)).toBe(0)
  })

  it('converts 2017-01-01T00:00:00Z (GPS − UTC = 18 s) both ways', () => {
    expect(utcUsToGps(UTC_2017_01_01_S * US)).toBe(1_167_264_018)
    expect(gpsToUtcUs(1_167_264_018)).toBe(UTC_2017_01_01_S * US)
    // One second earlier in UTC is 23:59:59, still at 17 s: two GPS seconds earlier.
    expect(utcUsToGps((UTC_2017_01_01_S - 1) * US)).toBe(1_167_264_016)
    expect(gpsToUtcUs(1_167_264_016)).toBe((UTC_2017_01_01_S - 1) * US)
    expect(gpsUsToUtcUs(1_167_264_016 * US + 999_999)).toBe((UTC_2017_01_01_S - 1) * US + 999_999)
  })

  it('maps the inserted leap second 2016-12-31T23:59:60 to the next UTC instant', () => {
    expect(gpsUsToUtcUs(1_167_264_017 * US)).toBe(UTC_2017_01_01_S * US)
    expect(gpsToUtcUs(1_167_264_017.5)).toBe(UTC_2017_01_01_S * US)
    expect(gpsUsToUtcUs(1_167_264_018 * US - 1)).toBe(UTC_2017_01_01_S * US)
    expect(gpsUsToUtcUs(1_167_264_018 * US + 1)).toBe(UTC_2017_01_01_S * US + 1)
  })

  it('carries a GPS clock ticking every 100 ms across 2016-12-31T23:59:60Z into UTC without going backwards', () => {
    const ticksUs = Array.from({ length: 31 }, (_, i) => 1_167_264_016 * US + i * 100_000) // GPS 16.0 s .. 19.0 s of that minute
    const utc = ticksUs.map(gpsUsToUtcUs)
    for (let i = 1; i < utc.length; i++) expect(utc[i]!).toBeGreaterThanOrEqual(utc[i - 1]!)
    expect(isoOfUs(utc[9]!)).toBe('2016-12-31T23:59:59.900000Z')
    // the ten ticks inside the inserted second (GPS 17.0 .. 17.9) all read 2017-01-01T00:00:00Z
    expect(utc.slice(10, 20).every((us) => us === UTC_2017_01_01_S * US)).toBe(true)
    expect(isoOfUs(utc[20]!)).toBe('2017-01-01T00:00:00.000000Z')
    expect(isoOfUs(utc[21]!)).toBe('2017-01-01T00:00:00.100000Z')
    // and the gps: spec form says the same, week and seconds-of-week (week 1930 began 17 s before)
    expect(parseTimeSpec('gps:1930:16.999999')).toEqual({ kind: 'sensor', timeUs: UTC_2017_01_01_S * US - 1 })
    expect(parseTimeSpec('gps:1930:17')).toEqual({ kind: 'sensor', timeUs: UTC_2017_01_01_S * US })
    expect(parseTimeSpec('gps:1930:17.5')).toEqual({ kind: 'sensor', timeUs: UTC_2017_01_01_S * US })
    expect(parseTimeSpec('gps:1930:18.000001')).toEqual({ kind: 'sensor', timeUs: UTC_2017_01_01_S * US + 1 })
    expect(parseTimeSpec('gps:1167264017.25')).toEqual(parseTimeSpec('gps:1930:17.25'))
  })

  it('uses 0 s before the first leap second (1981-07-01) and 1 s after it', () => {
    expect(gpsToUtcUs(46_828_799.5)).toBe((UTC_1981_07_01_S - 1) * US + 500_000) // 1981-06-30T23:59:59.5Z
    expect(gpsToUtcUs(46_828_800)).toBe(UTC_1981_07_01_S * US) // inside the inserted second
    expect(gpsToUtcUs(46_828_801)).toBe(UTC_1981_07_01_S * US)
    expect(utcUsToGps(UTC_1981_07_01_S * US)).toBe(46_828_801)
    expect(utcUsToGps(UTC_1981_07_01_S * US - 1)).toBe(46_828_799.999999)
  })

  it('places GPS week starts where the receivers put them', () => {
    // The two GPS week-number rollovers are documented events; week 2238 began on 2022-11-27 GPS.
    expect(isoOfUs(gpsToUtcUs(1024 * WEEK_S))).toBe('1999-08-21T23:59:47.000000Z')
    expect(isoOfUs(gpsToUtcUs(2048 * WEEK_S))).toBe('2019-04-06T23:59:42.000000Z')
    expect(isoOfUs(gpsToUtcUs(2238 * WEEK_S))).toBe('2022-11-26T23:59:42.000000Z')
    expect(isoOfUs(gpsToUtcUs(2238 * WEEK_S + 345_600.25))).toBe('2022-11-30T23:59:42.250000Z')
  })

  it('rejects instants outside its domain', () => {
    expect(() => gpsToUtcUs(-1)).toThrow(/temporal invariant/)
    expect(() => gpsToUtcUs(Number.NaN)).toThrow(/temporal invariant/)
    expect(() => utcUsToGps(GPS_EPOCH_UTC_US - 1)).toThrow(/temporal invariant/)
  })
})

describe('GPS <-> UTC properties', () => {
  const utcUsArb = fc.integer({ min: GPS_EPOCH_UTC_US, max: 4_102_444_800 * US }) // to 2100
  const gpsUsArb = fc.integer({ min: 0, max: 4_102_444_800 * US - GPS_EPOCH_UTC_US })

  it('UTC -> GPS -> UTC is the identity (every UTC µs has a GPS instant)', () => {
    fc.assert(
      fc.property(utcUsArb, (utcUs) => {
        expect(gpsUsToUtcUs(utcUsToGpsUs(utcUs))).toBe(utcUs)
      }),
    )
  })

  it('GPS -> UTC -> GPS is the identity away from inserted leap seconds', () => {
    fc.assert(
      fc.property(gpsUsArb, (gpsUs) => {
        const back = utcUsToGpsUs(gpsUsToUtcUs(gpsUs))
        if (back !== gpsUs) {
          // Only an inserted second may collapse, and only onto the instant right after it.
          expect(back - gpsUs).toBeGreaterThan(0)
          expect(back - gpsUs).toBeLessThanOrEqual(US)
          expect(back % US).toBe(0)
        }
      }),
    )
    // Near-leap instants that must still round-trip exactly.
    for (const gpsUs of [1_167_264_017 * US - 1, 1_167_264_018 * US, 46_828_800 * US - 1]) {
      expect(utcUsToGpsUs(gpsUsToUtcUs(gpsUs))).toBe(gpsUs)
    }
  })

  it('GPS -> UTC never runs backwards and GPS − UTC stays within 0..18 s', () => {
    fc.assert(
      fc.property(gpsUsArb, gpsUsArb, (a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a]
        expect(gpsUsToUtcUs(early)).toBeLessThanOrEqual(gpsUsToUtcUs(late))
        const offsetUs = early + GPS_EPOCH_UTC_US - gpsUsToUtcUs(early)
        expect(offsetUs).toBeGreaterThanOrEqual(0)
        expect(offsetUs).toBeLessThanOrEqual(18 * US)
      }),
    )
  })
})
