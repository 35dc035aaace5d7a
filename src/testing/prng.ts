// A small seeded pseudo-random number generator for deterministic simulation. One seed
// reproduces every choice a simulation makes, so a failing run is replayed by its seed
// alone. The generator is sfc32 (Chris Doty-Humphrey's Small Fast Counter), seeded through
// splitmix32 so that neighbouring seeds (1, 2, 3, ...) give unrelated streams.
//
// Not for cryptography. Math.random is never used in simulation code: it cannot be replayed.

const U32 = 0x1_0000_0000

function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) >>> 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  z = (z ^ (z >>> 16)) >>> 0
  return [next, z]
}

export class Prng {
  /** The seed this generator was built from; print it when a run fails. */
  readonly seed: number
  private a: number
  private b: number
  private c: number
  private d: number

  /** seed: any safe integer (both 32-bit halves count). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`prng seed must be a safe integer, got ${seed}`)
    this.seed = seed
    let state = (seed >>> 0) ^ Math.floor(Math.abs(seed) / U32)
    const words: number[] = []
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state)
      state = next
      words.push(out)
    }
    this.a = words[0]!
    this.b = words[1]!
    this.c = words[2]!
    this.d = words[3]! | 1 // never all zero
    for (let i = 0; i < 12; i++) this.u32() // mix the seed through the state
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / U32
  }

  /** Uniform integer in [minInclusive, maxInclusive]; both bounds safe integers, range below 2^32. */
  int(minInclusive: number, maxInclusive: number): number {
    if (!Number.isSafeInteger(minInclusive) || !Number.isSafeInteger(maxInclusive) || maxInclusive < minInclusive) {
      throw new RangeError(`prng.int: bad range [${minInclusive}, ${maxInclusive}]`)
    }
    const span = maxInclusive - minInclusive + 1
    if (span > U32) throw new RangeError(`prng.int: range wider than 2^32`)
    // Rejection sampling: no modulo bias, so a seed means the same thing for every span.
    const limit = U32 - (U32 % span)
    let x = this.u32()
    while (x >= limit) x = this.u32()
    return minInclusive + (x % span)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`prng.chance: probability ${p} outside [0, 1]`)
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('prng.pick: empty list')
    return items[this.int(0, items.length - 1)]!
  }

  /** Fisher–Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const tmp = items[i]!
      items[i] = items[j]!
      items[j] = tmp
    }
    return items
  }

  /** An independent generator derived from this one, so that one part of a simulation can
   * draw more or fewer numbers without shifting the choices of another. */
  fork(): Prng {
    return new Prng(this.u32() * 0x20_0000 + (this.u32() >>> 11))
  }
}

/** The seed for a run: FFFS_SEED from the environment when set (replaying a failure), else `fallback`. */
export function seedFromEnv(fallback: number): number {
  const raw = typeof process !== 'undefined' ? process.env['FFFS_SEED'] : undefined
  if (raw === undefined || raw === '') return fallback
  const seed = Number(raw)
  if (!Number.isSafeInteger(seed)) throw new RangeError(`FFFS_SEED must be an integer, got '${raw}'`)
  return seed
}
