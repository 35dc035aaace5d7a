import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { parsePath, type PathComponent } from '../../src/fs/resolve.js'
import { isSpecName, splitNameSpec } from '../../src/temporal/spec.js'

const NOW_US = 1_795_255_200_000_000 // 2026-11-21T10:00:00Z

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

const ORDINARY = ['alice@example.org.txt', 'icon@2x.png', 'icon@2x', 'plain', 'f@', 'f@@x', 'a@v3.txt', 'x@v1@notes', 'mail@sensor', 'f@gpsx:1', 'f@s', 'f@v', 'python@3', 'node@18', 'build@123s', 'a@u1', 'f@123xs', 'lib@v1.5', 'report@2026-12-07.pdf']
const MALFORMED = ['f@2026-13-01T00:00:00Z', 'f@2026-13-45', 'f@sensor:nope', 'f@v0', 'f@v-1', 'f@gps:x', 'f@-5x', 'f@20261207T06:00Z']
const SPECS = ['f.png@v3', 'x@v2', 'cams@2026-11-21T10:00:00Z', 'cams@20261121T100000Z', 'f@2026-12-07', 'f@1795255200s', 'f@sensor:1795255200s', 'f@u1795255200000000', 'f@gps:2238:0', 'a@b@v2', 'f@-5m', 'f@today']

describe('splitNameSpec', () => {
  it('keeps ordinary names with @ whole', () => {
    for (const name of ORDINARY) {
      expect(splitNameSpec(name, NOW_US), name).toBeNull()
      expect(isSpecName(name, NOW_US), name).toBe(false)
    }
    expect(splitNameSpec('no-at-all', NOW_US)).toBeNull()
  })

  it('splits at the last @ when what follows is a spec', () => {
    for (const name of SPECS) expect(isSpecName(name, NOW_US), name).toBe(true)
    expect(splitNameSpec('f.png@v3', NOW_US)).toEqual({ name: 'f.png', spec: { kind: 'version', version: 3 }, relative: false })
    expect(splitNameSpec('a@b@v2', NOW_US)).toEqual({ name: 'a@b', spec: { kind: 'version', version: 2 }, relative: false })
    expect(splitNameSpec('cams@20261121T100000Z', NOW_US)).toEqual({ name: 'cams', spec: { kind: 'platform', timeUs: NOW_US }, relative: false })
    expect(splitNameSpec('f@-5m', NOW_US)).toEqual({ name: 'f', spec: { kind: 'platform', timeUs: NOW_US - 300_000_000 }, relative: true })
  })

  it('is EINVAL when the suffix is in a spec form but malformed, or the name is empty', () => {
    for (const name of MALFORMED) {
      expect(einval(() => splitNameSpec(name, NOW_US)).message, name).toContain('malformed time spec')
      expect(isSpecName(name, NOW_US)).toBe(true)
    }
    expect(einval(() => splitNameSpec('@v3', NOW_US)).message).toContain('no name')
  })
})

const suffixKind = (c: PathComponent): string => (c.suffix === null ? 'name' : 'malformed' in c.suffix ? 'malformed' : c.suffix.spec.kind)

describe('parsePath', () => {
  it('finds the roots: live, /.snapshot[/NAME], /.at[/SPEC]', () => {
    expect(parsePath('/a/b', NOW_US).root).toEqual({ kind: 'live' })
    expect(parsePath('/', NOW_US)).toEqual({ text: '/', root: { kind: 'live' }, components: [] })
    expect(parsePath('/.snapshot', NOW_US).root).toEqual({ kind: 'snapshots' })
    expect(parsePath('/.snapshot/s@v2/x', NOW_US)).toMatchObject({ root: { kind: 'snapshot', name: 's@v2' }, components: [{ text: 'x', suffix: null }] })
    expect(parsePath('/.at', NOW_US).root).toEqual({ kind: 'times' })
    expect(parsePath('/.at/20261121T100000Z/a/b', NOW_US)).toMatchObject({ root: { kind: 'at', spec: { spec: { kind: 'platform', timeUs: NOW_US } } }, components: [{ text: 'a' }, { text: 'b' }] })
    expect(parsePath('/.at/-1h', NOW_US).root).toEqual({ kind: 'at', spec: { spec: { kind: 'platform', timeUs: NOW_US - 3_600_000_000 }, relative: true } })
    expect(parsePath('/a/.at/x', NOW_US).root).toEqual({ kind: 'live' }) // only at the mount root
  })

  it('refuses a /.at/ component that is not a spec', () => {
    for (const bad of ['/.at/foo', '/.at/123', '/.at/2026-13-01', '/.at/python@3']) expect(einval(() => parsePath(bad, NOW_US)).message, bad).toContain('malformed time spec')
  })

  it('marks each component: ordinary, a spec, or malformed (decided against the tree: an entry of that exact name wins)', () => {
    const parsed = parsePath('/mail/alice@example.org.txt/f@v2/g@2026-13-45/h@sensor:-5s', NOW_US)
    expect(parsed.components.map(suffixKind)).toEqual(['name', 'name', 'version', 'malformed', 'sensor'])
    expect(parsed.components.map((c) => c.text)).toEqual(['mail', 'alice@example.org.txt', 'f@v2', 'g@2026-13-45', 'h@sensor:-5s'])
  })

  const ordinaryName = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}(@[a-z]{1,5}\.[a-z]{2,3})?$/).filter((n) => n !== '.snapshot' && n !== '.at')
  const specText = fc.constantFrom('v1', 'v17', '1795255200s', 'sensor:1s', 'u1795255200000000', 'gps:2238:0', '2026-11-21T10:00:00.5+02:00', '20261121T100000Z', '1795255200000', '-5m', 'today')

  it('finds a spec at any depth among ordinary names', () => {
    fc.assert(
      fc.property(fc.array(ordinaryName, { minLength: 1, maxLength: 8 }), fc.nat(), specText, (names, at, spec) => {
        const specIndex = at % names.length
        const parsed = parsePath('/' + names.map((name, i) => (i === specIndex ? `${name}@${spec}` : name)).join('/'), NOW_US)
        parsed.components.forEach((c, i) => {
          if (i !== specIndex) expect(c.suffix).toBeNull()
          else expect(c.suffix !== null && !('malformed' in c.suffix) && c.suffix.name).toBe(names[i])
        })
      }),
    )
  })
})
