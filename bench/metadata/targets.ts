// The file systems the metadata bench measures, behind one face: started before a target's
// turn in a round, stopped after it, and restarted in between for the cold read ("fresh
// mount": the client's caches are dropped; the kernel's page, dentry and inode caches are
// dropped separately, by drop_caches). What serves the data for a client stays up across its
// restarts and turns — GlusterFS's bricks, fffs r=3's members — until `close` at the end of
// the run. Data persists, so the listing directories are made once per target and listed in
// every round.

import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { startLocalGroup } from '../../src/cli/cluster.js'
import { READY_PREFIX } from '../../src/cli/output.js'
import { loadGroupConfig } from '../../src/replication/config.js'
import { startMount, type Mount } from '../fs/mounts.js'
import type { Gluster } from './gluster.js'

const execFileP = promisify(execFile)

export interface Target {
  readonly key: string // in the JSON
  readonly label: string // in the tables
  readonly freshMount: string // what a fresh mount drops, for the notes
  readonly pastCuts: boolean // serves DIR@T
  /** Where the workload runs (the mount point, or the plain directory). */
  readonly dir: string
  start(): Promise<void> // the client: a mount, or nothing for the plain directory
  stop(): Promise<void>
  close(): Promise<void> // the client and whatever serves it, at the end of the run
}

/**
 * The replicated fffs variants measured, each a local group of 3 `fffs serve` members (made by
 * `fffs init DIR --replicas 3 INIT_FLAGS`, started as `fffs up` starts them) and a client
 * mount (`fffs mount DIR --cluster CONFIG MOUNT_FLAGS`). Each durability mode is a variant: every
 * table has a column and a ratio against GlusterFS for each (`--targets` names it by its key).
 */
export interface FffsVariant {
  readonly key: string
  readonly label: string
  readonly initFlags: readonly string[]
  readonly mountFlags: readonly string[]
}

export const FFFS_VARIANTS: readonly FffsVariant[] = [
  { key: 'r3', label: 'fffs r=3 write-on-close', initFlags: ['--durability', 'write-on-close'], mountFlags: [] },
  { key: 'r3sync', label: 'fffs r=3 sync-on-close', initFlags: ['--durability', 'sync-on-close'], mountFlags: [] },
]

const READY_MS = 180_000 // a mount's start, with a store of 110k files

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
    close: async () => undefined,
  }
}

/**
 * An embedded mount (`fffs mount DIR --data-dir D FLAGS`) of the fffs at `repoRoot`: this
 * checkout's (key 'embedded'), in another durability mode ('embedded-sync'), or another
 * checkout's, built (`--base REPO`: 'embedded-base', the baseline a change is measured against).
 */
export interface EmbeddedVariant {
  readonly key: string
  readonly label: string
  readonly repoRoot: string
  readonly flags: readonly string[]
}

export function embeddedTarget(root: string, variant: EmbeddedVariant): Target {
  const mountpoint = path.join(root, `${variant.key}-mnt`)
  const command = [path.join(variant.repoRoot, 'bin', 'fffs'), 'mount', mountpoint, '--data-dir', path.join(root, `${variant.key}-data`), ...variant.flags]
  let mount: Mount | null = null
  const stop = async () => {
    await mount?.stop()
    mount = null
  }
  return {
    key: variant.key,
    label: variant.label,
    freshMount: 'the `fffs mount` process restarted on the same data dir',
    pastCuts: true,
    dir: mountpoint,
    async start() {
      fs.mkdirSync(mountpoint, { recursive: true })
      mount = await startMount(variant.label, command, mountpoint, READY_PREFIX, READY_MS)
    },
    stop,
    close: stop,
  }
}

export function groupTarget(repoRoot: string, root: string, variant: FffsVariant): Target {
  const bin = path.join(repoRoot, 'bin', 'fffs')
  const mountpoint = path.join(root, `${variant.key}-mnt`)
  const groupDir = path.join(root, `${variant.key}-group`)
  const configFile = path.join(groupDir, 'config.json')
  const memberLog: string[] = [] // the last lines, for the error when the group fails
  let members: { stop(): Promise<void> } | null = null
  let mount: Mount | null = null
  const stop = async () => {
    await mount?.stop()
    mount = null
  }
  return {
    key: variant.key,
    label: variant.label,
    freshMount: 'the `fffs mount --cluster` process restarted (the 3 `fffs serve` members keep running)',
    pastCuts: true,
    dir: mountpoint,
    async start() {
      if (members === null) {
        if (!fs.existsSync(configFile)) await execFileP(process.execPath, [bin, 'init', groupDir, '--replicas', '3', ...variant.initFlags], { timeout: 60_000 })
        members = await startLocalGroup(await loadGroupConfig(configFile), (line) => {
          memberLog.push(line)
          if (memberLog.length > 50) memberLog.shift()
        }).catch((err: unknown) => {
          throw new Error(`${variant.label}: the members did not start: ${err instanceof Error ? err.message : String(err)}; ${memberLog.slice(-5).join(' / ')}`)
        })
      }
      fs.mkdirSync(mountpoint, { recursive: true })
      mount = await startMount(variant.label, [bin, 'mount', mountpoint, '--cluster', configFile, ...variant.mountFlags], mountpoint, READY_PREFIX, READY_MS)
    },
    stop,
    async close() {
      await stop()
      await members?.stop()
      members = null
    },
  }
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
    close: () => gluster.unmount(mountpoint), // the bricks go with the volume, in Gluster.teardown
  }
}
