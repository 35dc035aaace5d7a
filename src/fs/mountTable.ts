// The host's mount table as fffs needs it: what is mounted where (/proc/mounts), what a path
// to mount on holds now, and lazy unmounting through libfuse 3's setuid helper. Light on
// purpose: the CLI loads it at every start.

import { promises as fsp, readFileSync } from 'node:fs'

export const FFFS_FSTYPE = 'fuse.fffs'

export interface MountEntry {
  readonly mountpoint: string
  readonly fstype: string
}

/** Every mount of the host, mount points unescaped (/proc/mounts writes ' ' as \040). */
export function mountTable(): MountEntry[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields.length >= 3)
    .map((fields) => ({ mountpoint: fields[1]!.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8))), fstype: fields[2]! }))
}

/** The device (major:minor) of the file system mounted last at `mountpoint`, a real path (/proc/self/mountinfo), or null. */
export function mountDevice(mountpoint: string): string | null {
  const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)))
  const fields = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length >= 5 && unescape(f[4]!) === mountpoint)
    .pop()
  return fields?.[2] ?? null
}

/** fffs mount points. */
export function fffsMounts(): string[] {
  return mountTable()
    .filter((m) => m.fstype === FFFS_FSTYPE)
    .map((m) => m.mountpoint)
}

/**
 * Lazily unmounts whatever FUSE file system is at `mountpoint` (`-z`: even while busy); false
 * when nothing was unmounted. fusermount3 is libfuse 3's helper (Debian's fuse3, which also
 * installs it as `fusermount`); a host with only libfuse 2's package has `fusermount` alone,
 * which unmounts a libfuse 3 mount just as well.
 */
export async function unmountLazy(mountpoint: string): Promise<boolean> {
  const [{ execFile }, { promisify }] = await Promise.all([import('node:child_process'), import('node:util')]) // not loaded by every CLI start
  for (const helper of ['fusermount3', 'fusermount']) {
    try {
      await promisify(execFile)(helper, ['-uz', mountpoint], { timeout: 10_000 })
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false // the helper ran and refused: not mounted, or not ours
    }
  }
  return false
}

/** What a path to mount on holds now. */
export type MountpointState =
  | { readonly kind: 'missing' } // made at mount time
  | { readonly kind: 'directory'; readonly entries: number } // entries > 0: hidden while mounted
  | { readonly kind: 'notDirectory' }
  | { readonly kind: 'mounted'; readonly fstype: string } // a live mount of any file system
  | { readonly kind: 'stale' } // a FUSE mount whose process died (ENOTCONN): cleared at mount time

export async function inspectMountpoint(mountpoint: string): Promise<MountpointState> {
  const stat = await fsp.stat(mountpoint).catch((err: NodeJS.ErrnoException) => err)
  if (stat instanceof Error) {
    if (stat.code === 'ENOENT') return { kind: 'missing' }
    if (stat.code === 'ENOTCONN') return { kind: 'stale' }
    if (stat.code === 'ENOTDIR') return { kind: 'notDirectory' } // a file on the way
    throw stat
  }
  const mounted = mountTable().filter((m) => m.mountpoint === mountpoint).pop() // the last mounted there is the one visible
  if (mounted !== undefined) return { kind: 'mounted', fstype: mounted.fstype }
  if (!stat.isDirectory()) return { kind: 'notDirectory' }
  return { kind: 'directory', entries: (await fsp.readdir(mountpoint)).length }
}
