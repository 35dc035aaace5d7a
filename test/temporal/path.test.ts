import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { isReservedName, isSpecShaped, parseTimePath, splitNameSpec } from '../../src/temporal/spec.js'

function einval(run: () => unknown): FffsError {
  let caught: unknown
  try {
    run()
  } catch (err) {
    caught = err
  }
  expect(caught).toBeInstanceOf(FffsError)
  expect((caught as FffsError).code).toBe('EINVAL')
  return caught as FffsError
}

const ORDINARY = ['alice@example.org.txt', 'icon@2x.png', 'plain', 'f@', 'a@v3.txt', 'x@v1@notes', 'mail@sensor', 'f@gpsx:1', 'f@s', 'f@v', 'f@2026-11-21']
const RESERVED_MALFORMED = ['f@2026-13-01T00:00:00Z', 'f@123xs', 'f@sensor:nope', 'f@v0', 'f@gps:x', 'icon@2x', 'f@u5ms']
const RESERVED_VALID = ['f.png@v3', 'cams@2026-11-21T10:00:00Z', 'f@1795255200s', 'f@sensor:1795255200s', 'f@u1', 'f@gps:2238:0', 'a@b@v2']

describe('isSpecShaped', () => {
  it('recognises what tries to be a SPEC', () => {
    for (const text of ['sensor:', 'gps:', '2026-13-45Tjunk', '123', '123xs', 's1', 'u1', 'v0', '2x']) expect(isSpecShaped(text), text).toBe(true)
    for (const text of ['example.org.txt', '2x.png', '', 's', 'x1', 'V3', 'Sensor:1', '2026-11-21', '12-3', 'v3.txt']) expect(isSpecShaped(text), text).toBe(false)
  })
})

describe('names', () => {
  it('keeps ordinary names with @ as ordinary', () => {
    for (const name of ORDINARY) {
      expect(isReservedName(name), name).toBe(false)
      expect(splitNameSpec(name), name).toBeNull()
    }
    expect(splitNameSpec('no-at-all')).toBeNull()
  })

  it('reserves spec-shaped suffixes, valid or not', () => {
    for (const name of [...RESERVED_MALFORMED, ...RESERVED_VALID, '@v3']) expect(isReservedName(name), name).toBe(true)
  })

  it('splits at the last @ only', () => {
    expect(splitNameSpec('f.png@v3')).toEqual({ name: 'f.png', spec: { kind: 'version', version: 3 } })
    expect(splitNameSpec('a@b@v2')).toEqual({ name: 'a@b', spec: { kind: 'version', version: 2 } })
    expect(splitNameSpec('cams@2026-11-21T10:00:00Z')).toEqual({ name: 'cams', spec: { kind: 'platform', timeUs: 1_795_255_200_000_000 } })
    expect(splitNameSpec('f@u1')).toEqual({ name: 'f', spec: { kind: 'sensor', timeUs: 1 } })
  })

  it('is EINVAL when the suffix is spec-shaped but malformed, or the name is empty', () => {
    for (const name of RESERVED_MALFORMED) einval(() => splitNameSpec(name))
    expect(einval(() => splitNameSpec('@v3')).message).toContain('no name')
  })
})

describe('parseTimePath', () => {
  it('strips the one spec and says where it was', () => {
    expect(parseTimePath('/a/b@v2/c')).toEqual({ components: ['a', 'b', 'c'], specIndex: 1, spec: { kind: 'version', version: 2 } })
    expect(parseTimePath('cams@2026-11-21T10:00:00Z/c7/f.png')).toEqual({
      components: ['cams', 'c7', 'f.png'],
      specIndex: 0,
      spec: { kind: 'platform', timeUs: 1_795_255_200_000_000 },
    })
    expect(parseTimePath('/x/f.png@sensor:1s')).toEqual({ components: ['x', 'f.png'], specIndex: 1, spec: { kind: 'sensor', timeUs: 1_000_000 } })
  })

  it('returns specIndex -1 for plain paths and ignores empty components', () => {
    expect(parseTimePath('/')).toEqual({ components: [], specIndex: -1 })
    expect(parseTimePath('')).toEqual({ components: [], specIndex: -1 })
    expect(parseTimePath('a//b/')).toEqual({ components: ['a', 'b'], specIndex: -1 })
    expect(parseTimePath('/mail/alice@example.org.txt')).toEqual({ components: ['mail', 'alice@example.org.txt'], specIndex: -1 })
  })

  it('rejects two specs and malformed specs with EINVAL', () => {
    expect(einval(() => parseTimePath('/a@v1/b@v2')).message).toContain('more than one')
    einval(() => parseTimePath('/a@2026-11-21T10:00:00Z/b/c@sensor:5s'))
    einval(() => parseTimePath('/a/f@2026-13-01T00:00:00Z'))
  })

  const ordinaryName = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}(@[a-z]{1,5}\.[a-z]{2,3})?$/)
  const specText = fc.constantFrom('v1', 'v17', '1795255200s', 'sensor:1s', 'u5', 'gps:2238:0', '2026-11-21T10:00:00.5+02:00', '123')

  it('finds a spec at any depth among ordinary names', () => {
    fc.assert(
      fc.property(fc.array(ordinaryName, { minLength: 1, maxLength: 8 }), fc.nat(), specText, (names, at, spec) => {
        const specIndex = at % names.length
        const parts = names.map((name, i) => (i === specIndex ? `${name}@${spec}` : name))
        const parsed = parseTimePath('/' + parts.join('/'))
        expect(parsed.components).toEqual(names)
        expect(parsed.specIndex).toBe(specIndex)
        for (const name of names) expect(isReservedName(name)).toBe(false)
      }),
    )
  })

  it('rejects any path with two spec components', () => {
    fc.assert(
      fc.property(fc.array(ordinaryName, { minLength: 2, maxLength: 8 }), fc.nat(), fc.nat(), specText, specText, (names, a, b, specA, specB) => {
        const first = a % names.length
        const second = (first + 1 + (b % (names.length - 1))) % names.length
        const parts = names.map((name, i) => (i === first ? `${name}@${specA}` : i === second ? `${name}@${specB}` : name))
        einval(() => parseTimePath(parts.join('/')))
      }),
    )
  })
})
