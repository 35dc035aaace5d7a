// Codecs between typed values and what a wire frame's JSON header carries: each checks what it
// decodes and names the field that is wrong (EINVAL), so nothing past the wire is a blind cast.
// Stamps (bigints) travel as decimal strings. Domain objects built by the same code at the other
// end (an Attr, a Mutation) are checked by the fields their readers depend on (`shaped`).

import { FffsError } from '../errors.js'

export interface Codec<T> {
  // Methods, not function properties: a codec of T[] then serves a field of readonly T[] too.
  encode(value: T): unknown
  /** `at` names the value in an error ("walk args.cut"). */
  decode(wire: unknown, at: string): T
}

function invalid(at: string, expected: string, wire: unknown): FffsError {
  const got = wire === null ? 'null' : Array.isArray(wire) ? 'an array' : typeof wire === 'string' ? `'${wire.slice(0, 40)}'` : typeof wire
  return new FffsError('EINVAL', `${at}: ${expected} expected, got ${got}`)
}

function scalar<T>(expected: string, is: (wire: unknown) => wire is T): Codec<T> {
  return {
    encode: (value) => value,
    decode: (wire, at) => {
      if (!is(wire)) throw invalid(at, expected, wire)
      return wire
    },
  }
}

export const number = scalar('a number', (w): w is number => typeof w === 'number' && Number.isFinite(w))
export const integer = scalar('an integer', (w): w is number => Number.isSafeInteger(w))
export const natural = scalar('a natural number', (w): w is number => Number.isSafeInteger(w) && (w as number) >= 0)
export const string = scalar('a string', (w): w is string => typeof w === 'string')
export const boolean = scalar('a boolean', (w): w is boolean => typeof w === 'boolean')

/** A bigint as a decimal string (HLC stamps). */
export const stamp: Codec<bigint> = {
  encode: (value) => value.toString(),
  decode: (wire, at) => {
    if (typeof wire !== 'string' || !/^\d+$/.test(wire)) throw invalid(at, 'a stamp (decimal digits)', wire)
    return BigInt(wire)
  },
}

/** Nothing: a request without arguments, a reply without a result. */
export const none: Codec<void> = { encode: () => undefined, decode: () => undefined }

export function nullable<T>(inner: Codec<T>): Codec<T | null> {
  return { encode: (value) => (value === null ? null : inner.encode(value)), decode: (wire, at) => (wire === null ? null : inner.decode(wire, at)) }
}

/** A field that may be absent (undefined in the value, left out of the JSON). */
export function optional<T>(inner: Codec<T>): Codec<T | undefined> {
  return { encode: (value) => (value === undefined ? undefined : inner.encode(value)), decode: (wire, at) => (wire === undefined ? undefined : inner.decode(wire, at)) }
}

export function array<T>(inner: Codec<T>): Codec<T[]> {
  return {
    encode: (values) => values.map((v) => inner.encode(v)),
    decode: (wire, at) => {
      if (!Array.isArray(wire)) throw invalid(at, 'an array', wire)
      return wire.map((w, i) => inner.decode(w, `${at}[${i}]`))
    },
  }
}

export function oneOf<T extends string>(values: readonly T[]): Codec<T> {
  return scalar(`one of ${values.join(', ')}`, (w): w is T => typeof w === 'string' && (values as readonly string[]).includes(w))
}

export type Fields<T> = { readonly [K in keyof T]-?: Codec<T[K]> }

/** An object of these fields, each with its codec; absent (undefined) fields are left out. */
export function object<T extends object>(fields: Fields<T>): Codec<T> {
  const entries = Object.entries(fields) as Array<[string, Codec<unknown>]>
  return {
    encode: (value) => {
      const wire: Record<string, unknown> = {}
      for (const [key, codec] of entries) {
        const encoded = codec.encode((value as Record<string, unknown>)[key])
        if (encoded !== undefined) wire[key] = encoded
      }
      return wire
    },
    decode: (wire, at) => {
      if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) throw invalid(at, 'an object', wire)
      const value: Record<string, unknown> = {}
      for (const [key, codec] of entries) {
        const decoded = codec.decode((wire as Record<string, unknown>)[key], `${at}.${key}`)
        if (decoded !== undefined) value[key] = decoded
      }
      return value as T // every field of T decoded by its own codec above
    },
  }
}

/**
 * A domain object that crosses the wire as its JSON (built by the same code at the other end),
 * checked by the fields its readers depend on: `check` names what is wrong, or returns null.
 */
export function shaped<T>(what: string, check: (wire: Record<string, unknown>) => string | null): Codec<T> {
  return {
    encode: (value) => value,
    decode: (wire, at) => {
      if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) throw invalid(at, what, wire)
      const wrong = check(wire as Record<string, unknown>)
      if (wrong !== null) throw new FffsError('EINVAL', `${at}: not ${what}: ${wrong}`)
      return wire as T // checked by `check`; the rest is the sender's own encoding of T
    },
  }
}

/** What `shaped` checks use: the field's type, or a message naming it. */
export function field(wire: Record<string, unknown>, key: string, type: 'number' | 'string' | 'boolean' | 'object'): string | null {
  const value = wire[key]
  if (type === 'object' ? typeof value === 'object' && value !== null : typeof value === type) return null
  return `${key} is not a ${type}`
}
