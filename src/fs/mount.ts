// Mounting: the mountpoint made ready (created if missing, a stale mount of a dead process
// cleared, anything else but a directory refused), fffs's FUSE session (kernel.ts) mounted on
// it, and the order of unmounting.

import { promises as fsp } from 'node:fs'
import type { Client } from '../client/client.js'
import { KernelSession } from './kernel.js'
import { inspectMountpoint, mountDevice, unmountLazy } from './mountTable.js'
import { Operations } from './operations.js'
import type { TimeOptions } from './resolve.js'

export interface MountedFs {
  readonly mountpoint: string
  readonly operations: Operations
  unmount(): Promise<void>
}

export interface MountHooks {
  /** The kernel ended the session by itself (fusermount -u, umount): the mount's owner decides what follows. */
  readonly onUnmountedFromOutside?: () => void
  /** Where the file system's own log lines go (malformed records, late sensor writes). */
  readonly log?: (line: string) => void
}

/** Where fusermount3 reads whether users other than root may mount with allow_other. */
const FUSE_CONF = '/etc/fuse.conf'
/**
 * How far the kernel reads ahead of a sequential reader, KiB: 4 read requests of 1 MiB (the
 * largest fffs takes, native/src/fuse.cpp) in flight, where the kernel's default for a FUSE
 * mount is 128 KiB requests one after another. Set as root only (sysfs); the session asks for
 * the same at its start (native/src/fuse.cpp, kReadAheadBytes), since the kernel keeps the smaller.
 */
const READ_AHEAD_KB = 4096

/**
 * The FUSE mount options. The kernel checks every caller against the owners and modes fffs
 * reports (default_permissions), so the mount can serve every user of the machine
 * (allow_other): always when mounted by root; by another user only where /etc/fuse.conf says
 * user_allow_other (fusermount3 refuses it otherwise), else `privateBecause` says why not.
 */
export function mountOptions(uid: number, fuseConf: string | null): { options: string; privateBecause: string | null } {
  const userAllowOther = (fuseConf ?? '').split('\n').some((line) => line.replace(/#.*/, '').trim() === 'user_allow_other')
  if (uid === 0 || userAllowOther) return { options: 'default_permissions,allow_other', privateBecause: null }
  return { options: 'default_permissions', privateBecause: `only this user can use the mount: allow_other needs user_allow_other in ${FUSE_CONF}` }
}

/** The kernel's read-ahead for the FUSE mount at `mountpoint` (a real path): its backing device's in /sys/class/bdi. */
async function setReadAhead(mountpoint: string, kb: number): Promise<void> {
  const device = mountDevice(mountpoint)
  if (device === null) throw new Error(`${mountpoint} is not in /proc/self/mountinfo`)
  await fsp.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, String(kb))
}

/**
 * Mounts fffs at `mountpoint` (absolute). A missing directory is made, and removed again if the
 * mount fails; a stale mount is cleared; anything else that is not a plain directory is refused.
 */
export async function mountFs(mountpoint: string, client: Client, options: TimeOptions, dataDir: string, hooks: MountHooks = {}): Promise<MountedFs> {
  const log = hooks.log ?? ((line: string) => process.stderr.write(line + '\n'))
  const state = await inspectMountpoint(mountpoint)
  if (state.kind === 'notDirectory') throw new Error(`cannot mount on ${mountpoint}: not a directory`)
  if (state.kind === 'mounted') throw new Error(`cannot mount on ${mountpoint}: ${state.fstype} is mounted there already`)
  if (state.kind === 'stale') await unmountLazy(mountpoint)
  const made = state.kind === 'missing' ? await fsp.mkdir(mountpoint, { recursive: true }) : undefined
  const operations = new Operations(client, options, dataDir, log)
  try {
    const kernel = new KernelSession(operations, hooks.onUnmountedFromOutside)
    const uid = process.getuid?.() ?? 0
    const fuse = mountOptions(uid, uid === 0 ? null : await fsp.readFile(FUSE_CONF, 'utf8').catch(() => null))
    if (fuse.privateBecause !== null) log(`fffs: ${fuse.privateBecause}`)
    kernel.followChanges(client.watchChanges?.bind(client))
    kernel.followFloor(client.history === undefined ? undefined : () => client.history!.knownFloor())
    const realMountpoint = await fsp.realpath(mountpoint) // before mounting: afterwards resolving it is a request to this mount
    kernel.mount(mountpoint, 'fffs', fuse.options)
    if (uid === 0) await setReadAhead(realMountpoint, READ_AHEAD_KB).catch((err: Error) => log(`fffs: read-ahead left at the kernel's default: ${err.message}`))
    let unmounted: Promise<void> | null = null
    return {
      mountpoint,
      operations,
      unmount: () =>
        (unmounted ??= (async () => {
          await operations.commitAll()
          kernel.unmount()
        })()),
    }
  } catch (err) {
    if (made !== undefined) await fsp.rm(made, { recursive: true, force: true }).catch(() => undefined) // leave nothing behind
    throw err
  }
}
