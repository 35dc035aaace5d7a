// CRC32C (Castagnoli) over @node-rs/crc32 (hardware), plus combining the CRCs of two adjacent
// byte ranges without reading them again (zlib's crc32_combine, for this polynomial). The
// segment log uses it to checksum an entry whose payload CRC was computed piece by piece as
// the bytes arrived (src/fs/openFiles.ts), instead of reading megabytes again when it appends.

import { crc32c } from '@node-rs/crc32'

export { crc32c }

const POLY_REFLECTED = 0x82f63b78
const X0 = 0x80000000 // the polynomial 1 (reflected: bit 31 is x^0)

/** a(x)·b(x) mod P(x), both reflected; a must not be 0. */
function multiplyModP(a: number, b: number): number {
  let m = X0
  let p = 0
  for (let bit = 0; bit < 32; bit++) {
    if ((a & m) !== 0) {
      p ^= b
      if ((a & (m - 1)) === 0) break
    }
    m >>>= 1
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY_REFLECTED : b >>> 1
  }
  return p >>> 0
}

/** X_POW_2N[k] = x^(2^k) mod P(x). */
const X_POW_2N: number[] = [X0 >>> 1]
for (let k = 1; k < 32; k++) X_POW_2N.push(multiplyModP(X_POW_2N[k - 1]!, X_POW_2N[k - 1]!))

/** x^(8·lengthBytes) mod P(x): appending lengthBytes zero bytes, as a multiplier. */
function shiftOf(lengthBytes: number): number {
  let p = X0
  let n = lengthBytes
  for (let k = 3; n > 0; k++, n = Math.floor(n / 2)) {
    if (n % 2 === 1) p = multiplyModP(X_POW_2N[k & 31]!, p)
  }
  return p
}

/** The CRC32C of A‖B from crc32c(A), crc32c(B) and B's length. */
export function crc32cCombine(crcA: number, crcB: number, lengthBBytes: number): number {
  if (!Number.isSafeInteger(lengthBBytes) || lengthBBytes < 0) throw new RangeError(`crc32cCombine: length ${lengthBBytes}`)
  if (lengthBBytes === 0) return crcA >>> 0
  return (multiplyModP(shiftOf(lengthBBytes), crcA >>> 0) ^ crcB) >>> 0
}

/** crc32c(B) from the CRC32C of A‖B, crc32c(A) and B's length (combining, undone). */
export function crc32cOfSuffix(crcAB: number, crcA: number, lengthBBytes: number): number {
  return (crcAB ^ crc32cCombine(crcA, 0, lengthBBytes)) >>> 0
}
