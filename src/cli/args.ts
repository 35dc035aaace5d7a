// Parsing the CLI's arguments: numbers, time specs, and the usage error every bad value ends
// in (exit code 2, as commander uses for its own usage errors).

import { CommanderError } from 'commander'
import { isFffsError } from '../errors.js'
import { parseTimeSpec, type TimeSpec } from '../temporal/spec.js'

export const USAGE_EXIT_CODE = 2

/** A usage error: printed as one line, exit code 2. */
export function usageError(message: string): CommanderError {
  return new CommanderError(USAGE_EXIT_CODE, 'fffs.usage', message)
}

export function nonNegativeInt(text: string): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < 0) throw usageError(`not a non-negative integer: '${text}'`)
  return n
}

export function positiveInt(text: string): number {
  const n = nonNegativeInt(text)
  if (n === 0) throw usageError(`not a positive integer: '${text}'`)
  return n
}

export function positiveNumber(text: string): number {
  const n = Number(text)
  if (!(n > 0) || !Number.isFinite(n)) throw usageError(`not a positive number: '${text}'`)
  return n
}

/** A SPEC given as an argument or option; a malformed one is a usage error. */
export function timeSpecArg(text: string, what: string): TimeSpec {
  try {
    return parseTimeSpec(text)
  } catch (err) {
    if (isFffsError(err)) throw usageError(`${what}: ${err.message}`)
    throw err
  }
}
