// The control socket: how `fffs` CLI commands reach a running mount (the mount process owns
// the LevelDB lock). One JSON request per line, one JSON response per line. The socket's
// path is derived from the mount point, so the CLI finds it from any path inside the mount.

import { createHash } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'

export type ControlRequest =
  /** since/until: SPEC text of platform times (absolute: the CLI resolves relative ones); object: the object's own history. */
  | { readonly op: 'log'; readonly path: string; readonly object?: boolean; readonly since?: string; readonly until?: string; readonly limit?: number; readonly reverse?: boolean }
  | { readonly op: 'cat'; readonly path: string; readonly offset?: number }
  | { readonly op: 'ls'; readonly path: string }
  | { readonly op: 'stat'; readonly path: string } // one node's EntryInfo (src/control/server.ts)
  | { readonly op: 'snapshot.create'; readonly name: string; readonly at?: string }
  | { readonly op: 'snapshot.list' }
  | { readonly op: 'snapshot.delete'; readonly name: string }
  | { readonly op: 'snapshot.hold' | 'snapshot.release'; readonly name: string; readonly tag: string }
  | { readonly op: 'gc'; readonly dryRun?: boolean } // a retention run now (src/client/history.ts)
  | { readonly op: 'gc.log'; readonly limit?: number } // the audit of retention and GC runs
  | { readonly op: 'status' }
  | { readonly op: 'ping' } // the mount process's pid, at once
  | { readonly op: 'cut'; readonly spec: string; readonly path?: string } // path: mount-relative
  | { readonly op: 'changes'; readonly pattern: string; readonly after?: string } // after: HlcStamp, decimal; absent: from now
  | { readonly op: 'unmount' }

export type ControlResponse = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly code: string; readonly message: string; readonly reason?: string }

export const CONTROL_REQUEST_BYTES_MAX = 64 * 1024

export function controlSocketPath(mountpoint: string): string {
  const digest = createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 16)
  const uid = process.getuid?.() ?? 0
  return path.join(os.tmpdir(), `fffs-${uid}`, `${digest}.sock`)
}
