// What the CLI prints, in one place: tables, JSON or text, durations, paths relative to the
// working directory, and the timestamped log lines of the long-running commands.

import path from 'node:path'

/** The line `fffs mount` and `fffs up` print once the file system serves; scripts and tests wait for it. */
export const READY_PREFIX = 'fffs: ready at '

/** Left-aligned columns, two spaces apart; the first row is the header. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n'
}

export function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text())
}

/** Writes and waits until the bytes are handed to the OS (a pipe closing early cannot cut a line). */
export function writeOut(text: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => process.stdout.write(text, () => resolve()))
}

/** `text` as a log line: UTC time to the ms, then the text. */
export function timestamped(text: string): string {
  return `${new Date().toISOString()} ${text}`
}

/** Writes a log line of a long-running command to stderr. */
export function logLine(text: string): void {
  process.stderr.write(timestamped(text) + '\n')
}

/** True for a line logLine wrote (it starts with an ISO-8601 UTC time). */
export function isLogLine(line: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /.test(line)
}

/** `./mnt` for a path below the working directory, else the absolute path. */
export function displayPath(absolute: string): string {
  const relative = path.relative(process.cwd(), absolute)
  if (relative === '') return '.'
  return relative.startsWith('..') || path.isAbsolute(relative) ? absolute : `.${path.sep}${relative}`
}

const UNITS_MS: ReadonlyArray<readonly [string, number]> = [
  ['y', 365.25 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
]

/** A duration as people read it: `350 ms`, `4.2 s`, `3m 12s`, `3y 4d` (the two largest units). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms)
  if (ms < 0) return `-${formatDuration(-ms)}`
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  const parts: string[] = []
  let rest = ms
  for (const [unit, size] of UNITS_MS) {
    const n = Math.floor(rest / size)
    if (n > 0 || parts.length > 0) {
      if (n > 0) parts.push(`${n}${unit}`)
      rest -= n * size
      if (parts.length === 2 || (parts.length === 1 && n === 0)) break
    }
  }
  return parts.join(' ')
}

/** Bytes with a binary unit: `512 B`, `3.4 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}
