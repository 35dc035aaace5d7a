import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { compileWatchPattern, stableChanges } from '../../src/control/inspect.js'
import { FffsError } from '../../src/errors.js'
import { EmbeddedClient } from '../../src/client/embedded.js'
import { ROOT_INO } from '../../src/store/records.js'

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

describe('stable changes', () => {
  it('reports each version once, and never moves the cursor back when the frontier is behind it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-changes-'))
    const { client } = await EmbeddedClient.open(dir)
    try {
      const { stamp } = await client.submit({ type: 'mknod', parent: ROOT_INO, name: 'a.log', kind: 'file', mode: 0o644, uid: 0, gid: 0 })
      await client.waitStable(stamp, 10_000) // once synced, after the answer
      const first = await stableChanges(client, '/', 0n)
      expect(first.changes.map((c) => c.path)).toEqual(['/a.log'])
      const again = await stableChanges(client, '/', BigInt(first.frontier))
      expect(again.changes).toEqual([])
      // A cursor past the frontier (the mount now asks a member that just restarted, or --since
      // names a later time) stays where it is: nothing at or below it is reported again.
      const ahead = BigInt(first.frontier) + (1n << 40n)
      expect(await stableChanges(client, '/', ahead)).toEqual({ frontier: ahead.toString(), changes: [] })
    } finally {
      await client.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
