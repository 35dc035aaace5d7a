// A data directory (an embedded mount's, a member's) opened by one process at a time: when the
// store cannot open because another process holds its lock, say which process.

import { promises as fsp, readFileSync } from 'node:fs'
import path from 'node:path'
import { errors, isFffsError } from '../errors.js'

// LevelDB's lock file (classic-level), one per store index under the data dir.
const LOCK_FILE_NAME = 'LOCK'
const LOCK_SEARCH_DEPTH = 3

/** Files named LOCK at most a few levels below `dir`. */
async function lockFiles(dir: string, depth = LOCK_SEARCH_DEPTH): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])
  const found: string[] = []
  for (const entry of entries) {
    const full = path.join(dir, entry.name)
    if (entry.isFile() && entry.name === LOCK_FILE_NAME) found.push(full)
    else if (entry.isDirectory() && depth > 1) found.push(...(await lockFiles(full, depth - 1)))
  }
  return found
}

/** Linux's dev_t as /proc/locks prints it: MAJOR:MINOR in hex (two digits at least). */
function devText(dev: number): string {
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff)
  const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff & 0xfffff)
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`
}

/** The processes holding a lock (fcntl or flock, from /proc/locks) on a store under `dir`. */
export async function lockHolders(dir: string): Promise<number[]> {
  const files = await lockFiles(dir)
  const keys = new Set<string>()
  for (const file of files) {
    const stat = await fsp.stat(file).catch(() => null)
    if (stat !== null) keys.add(`${devText(stat.dev)}:${stat.ino}`)
  }
  if (keys.size === 0) return []
  const pids = new Set<number>()
  // "1: POSIX  ADVISORY  WRITE 24800 fe:00:2148197 0 EOF"
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/)
    const pid = Number(fields[4])
    if (fields.length >= 6 && keys.has(fields[5]!) && pid > 0) pids.add(pid)
  }
  return [...pids]
}

/** `1234 (fffs mount /tmp/m)`: a pid and, when readable, what it runs. */
export function describeProcess(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
    const fffs = argv.findIndex((a) => a.endsWith('/bin/fffs') || a === 'fffs')
    const shown = fffs >= 0 ? ['fffs', ...argv.slice(fffs + 1)] : argv
    return shown.length === 0 ? String(pid) : `${pid} (${shown.join(' ')})`
  } catch {
    return String(pid)
  }
}

/**
 * Opens a store under `dir` with `open`; when it fails because another process holds the
 * store's lock, the error names that process instead of "Database failed to open".
 */
export async function openDataDir<T>(dir: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open()
  } catch (err) {
    if (isFffsError(err)) throw err
    const holders = (await lockHolders(dir)).filter((pid) => pid !== process.pid)
    if (holders.length > 0) {
      throw errors.busy(`${dir} is in use by pid ${holders.map(describeProcess).join(', ')}: one process at a time opens a data directory (stop that one first)`)
    }
    throw err
  }
}
