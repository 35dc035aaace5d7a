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

export async function mountFs(mountpoint: string, client: Client, options: TimeOptions, dataDir: string): Promise<MountedFs> {
  const operations = new Operations(client, options, dataDir)
  await prepareMountpoint(mountpoint)
  const kernel = new KernelSession(operations)
  kernel.mount(mountpoint, 'fffs')
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
