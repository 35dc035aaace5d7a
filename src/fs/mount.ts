// Mounting: the mountpoint made ready (created if missing, a stale mount of a dead process
// cleared), fffs's FUSE session (kernel.ts) mounted on it, and the order of unmounting.

import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Client } from '../replication/client.js'
import { KernelSession } from './kernel.js'
import { Operations } from './operations.js'
import type { TimeOptions } from './resolve.js'

const ENOTCONN = 'ENOTCONN'

export interface MountedFs {
  readonly mountpoint: string
  readonly operations: Operations
  unmount(): Promise<void>
}

/** Lazily unmounts whatever is at `mountpoint`; quiet when nothing is. */
async function fusermountLazy(mountpoint: string): Promise<void> {
  await promisify(execFile)('fusermount', ['-uz', mountpoint], { timeout: 10_000 }).catch(() => undefined)
}

/** A directory to mount on: created if missing; a mount left by a process that died is cleared, a live one refused. */
async function prepareMountpoint(mountpoint: string): Promise<void> {
  const stale = await fsp.stat(mountpoint).then(() => false, (err: NodeJS.ErrnoException) => err.code === ENOTCONN)
  if (stale) await fusermountLazy(mountpoint)
  await fsp.mkdir(mountpoint, { recursive: true })
  const [here, parent] = await Promise.all([fsp.stat(mountpoint), fsp.stat(path.dirname(mountpoint))])
  if (!here.isDirectory()) throw new Error(`cannot mount on ${mountpoint}: not a directory`)
  if (here.dev !== parent.dev) throw new Error(`cannot mount on ${mountpoint}: something is mounted there already`)
}

/** Where fusermount3 reads whether users other than root may mount with allow_other. */
const FUSE_CONF = '/etc/fuse.conf'

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

export async function mountFs(mountpoint: string, client: Client, options: TimeOptions, dataDir: string): Promise<MountedFs> {
  const operations = new Operations(client, options, dataDir)
  await prepareMountpoint(mountpoint)
  const kernel = new KernelSession(operations)
  const uid = process.getuid?.() ?? 0
  const fuse = mountOptions(uid, uid === 0 ? null : await fsp.readFile(FUSE_CONF, 'utf8').catch(() => null))
  if (fuse.privateBecause !== null) process.stderr.write(`fffs: ${fuse.privateBecause}\n`)
  kernel.mount(mountpoint, 'fffs', fuse.options)
  let unmounted: Promise<void> | null = null
  return {
    mountpoint,
    operations,
    unmount: () =>
      (unmounted ??= (async () => {
        await operations.commitAll()
        kernel.unmount()
        await operations.stop()
      })()),
  }
}
