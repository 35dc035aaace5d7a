// The file systems the metadata bench measures, behind one face: started before a target's
// turn in a round, stopped after it, and restarted in between for the cold read ("fresh
// mount": whatever the file system caches in its own processes is dropped; the kernel's page,
// dentry and inode caches are dropped separately, by drop_caches). Data persists across
// restarts, so the listing directories are made once per target and listed in every round.

import fs from 'node:fs'
import path from 'node:path'
import { startMount, type Mount } from '../fs/mounts.js'
import type { Gluster } from './gluster.js'

export interface Target {
  readonly key: string // in the JSON
  readonly label: string // in the tables
  readonly freshMount: string // what a fresh mount drops, for the notes
  readonly pastCuts: boolean // serves DIR@T
  /** Where the workload runs (the mount point, or the plain directory). */
  readonly dir: string
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * The replicated fffs variants measured, each a `fffs up` local group of 3 with its own flags.
 * A durability mode, once `fffs up` has one, is a variant: add `{ key: 'r3sync', label: 'fffs
 * r=3 sync-on-close', upFlags: ['--durability', 'sync-on-close'] }`, and every table grows a
 * column and a ratio against GlusterFS for it.
 */
export interface FffsVariant {
  readonly key: string
  readonly label: string
  readonly upFlags: readonly string[]
}

export const FFFS_VARIANTS: readonly FffsVariant[] = [{ key: 'r3', label: 'fffs r=3', upFlags: [] }]

const READY_MS = 180_000 // a restart replays the store (the listing directories: 110k files)

export function plainTarget(root: string): Target {
  const dir = path.join(root, 'ext4')
  return {
    key: 'ext4',
    label: 'ext4',
    freshMount: 'none (a plain directory; drop_caches only)',
    pastCuts: false,
    dir,
    start: async () => void fs.mkdirSync(dir, { recursive: true }),
    stop: async () => undefined,
  }
}

/** A target whose every start is a new mount process (`bin/fffs` with `args`) on the same data. */
function fffsTarget(key: string, label: string, repoRoot: string, mountpoint: string, args: string[], freshMount: string, processGroup: boolean): Target {
  let mount: Mount | null = null
  return {
    key,
    label,
    freshMount,
    pastCuts: true,
    dir: mountpoint,
    async start() {
      fs.mkdirSync(mountpoint, { recursive: true })
      mount = await startMount(label, [path.join(repoRoot, 'bin', 'fffs'), ...args], mountpoint, 'fffs: mounted', READY_MS, processGroup)
    },
    async stop() {
      await mount?.stop()
      mount = null
    },
  }
}

export function embeddedTarget(repoRoot: string, root: string): Target {
  const mountpoint = path.join(root, 'embedded-mnt')
  const args = ['mount', mountpoint, '--data-dir', path.join(root, 'embedded-data')]
  return fffsTarget('embedded', 'fffs embedded', repoRoot, mountpoint, args, 'the `fffs mount` process restarted on the same data dir', false)
}

export function groupTarget(repoRoot: string, root: string, variant: FffsVariant): Target {
  const mountpoint = path.join(root, `${variant.key}-mnt`)
  const args = ['up', mountpoint, '--replicas', '3', '--group-dir', path.join(root, `${variant.key}-group`), ...variant.upFlags]
  return fffsTarget(variant.key, variant.label, repoRoot, mountpoint, args, '`fffs up` restarted on the same group dir (its 3 members and the mount)', true)
}

export function glusterTarget(root: string, gluster: Gluster): Target {
  const mountpoint = path.join(root, 'gluster-mnt')
  return {
    key: 'gluster',
    label: 'GlusterFS r=3',
    freshMount: 'the FUSE client unmounted and mounted again (the bricks keep running)',
    pastCuts: false,
    dir: mountpoint,
    start: () => gluster.mount(mountpoint),
    stop: () => gluster.unmount(mountpoint),
  }
}
