// Parsing the CLI's numbers, and the usage error every bad value ends in (exit code 2, as
// commander uses for its own usage errors). Light: every command loads it.

import { CommanderError } from 'commander'

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
