// System calls as a given user, for the POSIX conformance suite: each call runs a Python snippet
// in a process of its own that drops to the user's uid, gid and supplementary groups first
// (run_as.py), so the kernel and the file system see exactly that caller.

import { execFile, execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const RUN_AS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run_as.py')
const CALL_TIMEOUT_MS = 30_000
/** The interpreter itself, not a wrapper script (pyenv's shim costs ~0.3 s a call); -S: no site packages to import. */
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()

export interface User {
  readonly name: string
  readonly uid: number | null // null: the test process itself (root)
  readonly gid: number
  readonly groups: readonly number[]
}

export const ROOT: User = { name: 'root', uid: null, gid: 0, groups: [] }
/** Two unprivileged users; alice is also in group 5001 (a supplementary group). */
export const ALICE: User = { name: 'alice', uid: 5001, gid: 5001, groups: [5001, 5003] }
export const BOB: User = { name: 'bob', uid: 5002, gid: 5002, groups: [5002] }
/** A group neither alice nor bob is in. */
export const OTHER_GID = 5009

/** What a call returned: its `result`, or the errno name it failed with. */
export type Outcome = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly errno: string }

/** Runs `code` (Python; sets `result`) as `user` in `cwd`. Never throws for an OSError: the outcome names the errno. */
export function runAs(user: User, cwd: string, code: string, umask = 0o022): Promise<Outcome> {
  const request = JSON.stringify({ uid: user.uid, gid: user.gid, groups: user.groups, cwd, code, umask })
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-S', RUN_AS, request], { timeout: CALL_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`python as ${user.name} failed: ${err.message}\n${stderr}\ncode: ${code}`))
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Outcome)
    })
  })
}

/** The errno name a call failed with, or 'OK'. */
export async function errnoOf(user: User, cwd: string, code: string): Promise<string> {
  const outcome = await runAs(user, cwd, code)
  return outcome.ok ? 'OK' : outcome.errno
}

/** The result of a call that must succeed. */
export async function resultOf<T>(user: User, cwd: string, code: string): Promise<T> {
  const outcome = await runAs(user, cwd, code)
  if (!outcome.ok) throw new Error(`as ${user.name}: ${code.trim()} failed with ${outcome.errno}`)
  return outcome.result as T
}
