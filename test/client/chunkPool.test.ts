// The chunk pool of the embedded log's chunks: buffers of the asked size come back, up to its bound.

import { describe, expect, it } from 'vitest'
import { ChunkPool } from '../../src/client/chunkPool.js'

const KiB = 1024

describe('ChunkPool', () => {
  it('hands back buffers of the asked size, up to its bound', () => {
    const pool = new ChunkPool(3 * 64 * KiB)
    const a = pool.take(64 * KiB)
    const b = pool.take(64 * KiB)
    const c = pool.take(128 * KiB)
    pool.give(a)
    pool.give(c)
    pool.give(b) // past the bound: dropped
    expect(pool.sizeBytes).toBe(3 * 64 * KiB)
    expect(pool.take(64 * KiB)).toBe(a)
    expect(pool.take(64 * KiB)).not.toBe(b)
    expect(pool.take(128 * KiB)).toBe(c)
    expect(pool.sizeBytes).toBe(0)
  })
})
