// CRC32C combining: the CRC of A‖B from the CRCs of A and B, as the segment log checksums an
// entry whose payload CRC was computed piece by piece.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { crc32c, crc32cCombine, crc32cOfSuffix } from '../../src/store/crc32c.js'

describe('crc32cCombine', () => {
  it('equals the CRC of the concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
        const whole = crc32c(Buffer.concat([a, b]))
        expect(crc32cCombine(crc32c(Buffer.from(a)), crc32c(Buffer.from(b)), b.length)).toBe(whole)
      }),
      { numRuns: 500 },
    )
  })

  it('undone: the CRC of B from the CRC of A‖B and of A (a log entry payload CRC from its header)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
        const whole = crc32c(Buffer.concat([a, b]))
        expect(crc32cOfSuffix(whole, crc32c(Buffer.from(a)), b.length)).toBe(crc32c(Buffer.from(b)))
      }),
      { numRuns: 500 },
    )
  })

  it('chains: pieces checksummed in order, then combined with a header in front', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }), (header, pieces) => {
        let payloadCrc = 0
        for (const piece of pieces) payloadCrc = crc32c(Buffer.from(piece), payloadCrc)
        const payload = Buffer.concat(pieces)
        expect(crc32cCombine(crc32c(Buffer.from(header)), payloadCrc, payload.length)).toBe(crc32c(payload, crc32c(Buffer.from(header))))
      }),
      { numRuns: 300 },
    )
  })

  it('handles long second parts and the empty one', () => {
    const a = Buffer.from('FFS1 header.')
    const b = Buffer.alloc(4 * 1024 * 1024 + 3, 0x5a)
    expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(crc32c(Buffer.concat([a, b])))
    expect(crc32cCombine(crc32c(a), 0, 0)).toBe(crc32c(a))
    expect(() => crc32cCombine(1, 2, -1)).toThrow(RangeError)
  })
})
