import { describe, expect, it } from 'vitest'
import { compileWatchPattern } from '../../src/control/inspect.js'
import { FffsError } from '../../src/errors.js'

describe('watch patterns', () => {
  it('a prefix matches itself and everything below it, nothing beside it', () => {
    const { base, matches } = compileWatchPattern('/cams/c1')
    expect(base).toEqual(['cams', 'c1'])
    expect(['/cams/c1', '/cams/c1/f.png', '/cams/c1/a/b'].map(matches)).toEqual([true, true, true])
    expect(['/cams/c10', '/cams', '/other'].map(matches)).toEqual([false, false, false])
    expect(compileWatchPattern('/').matches('/anything')).toBe(true)
  })

  it('* and ? stay within a component, ** spans any number of directories (also none)', () => {
    const star = compileWatchPattern('/cams/*/f?.png')
    expect(star.base).toEqual(['cams'])
    expect(['/cams/c1/f1.png', '/cams/c2/fx.png'].map(star.matches)).toEqual([true, true])
    expect(['/cams/c1/d/f1.png', '/cams/f1.png', '/cams/c1/f10.png'].map(star.matches)).toEqual([false, false, false])
    const deep = compileWatchPattern('/data/**/*.csv')
    expect(deep.base).toEqual(['data'])
    expect(['/data/a.csv', '/data/x/a.csv', '/data/x/y/a.csv'].map(deep.matches)).toEqual([true, true, true])
    expect(['/data/a.csvx', '/other/a.csv'].map(deep.matches)).toEqual([false, false])
    expect(compileWatchPattern('/logs/a.b+c*').matches('/logs/a.b+c1')).toBe(true)
    expect(compileWatchPattern('/logs/a.b+c*').matches('/logs/aXb+c1')).toBe(false)
  })

  it('refuses .. and time specs', () => {
    for (const bad of ['/a/../b', '/a@v2/*']) {
      expect(() => compileWatchPattern(bad)).toThrow(FffsError)
    }
  })
})
