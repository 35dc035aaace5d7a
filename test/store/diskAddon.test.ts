// The disk addon: the log's page-cache and O_DIRECT helpers load from an addon of their own,
// which links no libfabric and no libfuse (so an embedded mount keeps O_DIRECT on a host where
// the transport cannot load), and they do what the log relies on.

import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, fdatasyncSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { findNativeAddon } from '../../src/nativeAddons.js'
import { pageCacheDropper, pageOffsetFinder } from '../../src/store/diskAddon.js'
import { PAGE_BYTES } from '../../src/store/segmentLog.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('disk addon', () => {
  it('is built with the project and needs no library but the C and C++ runtimes', () => {
    const addon = findNativeAddon('fffs_disk.node')
    expect(addon).toBeDefined()
    const needed = [...execFileSync('readelf', ['-d', addon!], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!)
    expect(needed).toContain('libc.so.6')
    expect(needed.filter((lib) => /fabric|fuse/.test(lib))).toEqual([])
  })

  it('finds page offsets of views and drops a synced file range from the page cache', () => {
    const pageOffsetOf = pageOffsetFinder()
    const drop = pageCacheDropper()
    expect(pageOffsetOf).not.toBeNull()
    expect(drop).not.toBeNull()
    const block = Buffer.from(new SharedArrayBuffer(4 * PAGE_BYTES))
    const first = pageOffsetOf!(block)
    expect(first).toBeGreaterThanOrEqual(0)
    expect(first).toBeLessThan(PAGE_BYTES)
    expect(pageOffsetOf!(block.subarray(100))).toBe((first + 100) % PAGE_BYTES)
    expect(() => pageOffsetOf!('not a view' as unknown as Uint8Array)).toThrow(TypeError)

    const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-diskaddon-'))
    dirs.push(dir)
    const fd = openSync(path.join(dir, 'f'), 'w+')
    try {
      writeSync(fd, Buffer.alloc(8 * PAGE_BYTES, 7))
      fdatasyncSync(fd)
      drop!(fd, 0, 8 * PAGE_BYTES)
      expect(() => drop!(fd, -1, PAGE_BYTES)).toThrow(RangeError)
    } finally {
      closeSync(fd)
    }
  })
})
