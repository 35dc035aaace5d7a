// The commands that mount: `fffs mount` (an embedded store, or a group with --cluster), `fffs up`
// (a local group and its mount) and `fffs unmount`. Each checks the mountpoint before it starts
// or creates anything, prints one ready line once the file system serves, and on Ctrl-C
// unmounts first, then closes its client, then stops what it started.

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { mountOwner, request } from '../control/client.js'
import { controlSocketPath } from '../control/protocol.js'
import { errors, FffsError } from '../errors.js'
import { FFFS_FSTYPE, fffsMounts, inspectMountpoint, unmountLazy } from '../fs/mountTable.js'
import type { TimeOptions } from '../fs/resolve.js'
import type { Client } from '../client/client.js'
import type { RetentionPolicy } from '../store/retention/policy.js'
import { loadGroupConfig, type GroupConfig } from '../replication/config.js'
import { TIME_DEFAULTS } from '../replication/timeDefaults.js'
import type { Durability } from '../client/durability.js'
import { usageError } from './args.js'
import { localGroupConfig, startLocalGroup, waitGroupRunning } from './cluster.js'
import { openDataDir } from './dataDir.js'
import { displayPath, logLine, READY_PREFIX } from './output.js'

/**
 * The code that mounts and serves, loaded when needed: `fffs up` loads it while its members
 * start, instead of before it starts them.
 */
async function machinery() {
  const [mount, server, sharded, client] = await Promise.all([import('../fs/mount.js'), import('../control/server.js'), import('../replication/sharded.js'), import('../client/embedded.js')])
  return { mountFs: mount.mountFs, ControlServer: server.ControlServer, connectGroup: sharded.connectGroup, EmbeddedClient: client.EmbeddedClient }
}

const UNMOUNT_WAIT_MS = 10_000

export interface MountOptions {
  dataDir?: string
  cluster?: string
  keepAllFor?: string
  tier?: string[]
  minVersions?: number
  forceRetention?: boolean
  gcBudget?: number // MiB/s
  durability?: Durability // embedded; a group's is its config's
  maxWait: number
  sensorLagMax?: number // absent: the group's (its config), or TIME_DEFAULTS for an embedded mount
  clockSkewMax?: number
}

export interface UpOptions extends MountOptions {
  replicas: number
  shards: number
  groupDir?: string
}

type SensorBounds = GroupConfig['time']

export function defaultDataDir(mountpoint: string): string {
  const base = process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share')
  const digest = createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 8)
  return path.join(base, 'fffs', `${path.basename(path.resolve(mountpoint))}-${digest}`)
}

/** Δ and δ of an embedded mount: its flags, else the defaults. */
function flagBounds(opts: MountOptions): SensorBounds {
  return { sensorLagMaxMs: opts.sensorLagMax ?? TIME_DEFAULTS.sensorLagMaxMs, clockSkewMaxMs: opts.clockSkewMax ?? TIME_DEFAULTS.clockSkewMaxMs }
}

/** Δ and δ of a group mount are its config's: a flag may only repeat them. */
function groupBounds(opts: MountOptions, config: GroupConfig): SensorBounds {
  const given = [['--sensor-lag-max', opts.sensorLagMax, config.time.sensorLagMaxMs, 'sensorLagMaxMs'], ['--clock-skew-max', opts.clockSkewMax, config.time.clockSkewMaxMs, 'clockSkewMaxMs']] as const
  for (const [flag, value, groupValue, field] of given) {
    if (value !== undefined && value !== groupValue) throw usageError(`${flag} ${value}: the group ${config.name} uses ${groupValue} (time.${field} in ${config.path}); every mount and member of a group shares it`)
  }
  return config.time
}

/**
 * Refuses a mountpoint fffs cannot use, before anything is started or created: a file, a live
 * mount (an fffs one named by its pid and how to stop it). Warns when a directory's entries
 * will be hidden by the mount.
 */
async function checkMountpoint(mountpoint: string): Promise<void> {
  const shown = displayPath(mountpoint)
  const state = await inspectMountpoint(mountpoint)
  switch (state.kind) {
    case 'notDirectory':
      throw new FffsError('ENOTDIR', `cannot mount on ${shown}: not a directory`)
    case 'mounted': {
      if (state.fstype !== FFFS_FSTYPE) throw errors.busy(`cannot mount on ${shown}: a ${state.fstype} file system is mounted there`)
      const pid = await mountOwner(mountpoint)
      if (pid === null) throw errors.busy(`${shown} is an fffs mount whose process does not answer: clear it with \`fffs unmount ${shown}\``)
      throw errors.busy(`${shown} is mounted already by fffs (pid ${pid}): stop it with Ctrl-C where it runs, \`fffs unmount ${shown}\` or \`kill ${pid}\``)
    }
    case 'directory':
      if (state.entries > 0) logLine(`fffs: warning: ${shown} is not empty: its ${state.entries} entr${state.entries === 1 ? 'y is' : 'ies are'} hidden while fffs is mounted there`)
      return
    case 'missing':
    case 'stale':
      return
  }
}

/**
 * Mounts `client` at `mountpoint` with its control socket and prints the ready line. Ctrl-C,
 * SIGTERM, `fffs unmount` or an unmount from outside stop it: unmount, close the client, then
 * `onStopped` (the local group), then exit.
 */
async function serveMount(mountpoint: string, client: Client, opts: MountOptions, bounds: SensorBounds, stateDir: string, ready: string, onStopped: () => Promise<void> = async () => undefined): Promise<void> {
  const options: TimeOptions = { maxWaitMs: opts.maxWait, sensorLagMaxUs: bounds.sensorLagMaxMs * 1000, clockSkewMaxUs: bounds.clockSkewMaxMs * 1000 }
  const { mountFs, ControlServer } = await machinery()
  let control: InstanceType<typeof ControlServer> | null = null
  let stopping: Promise<void> | null = null
  const stop = (why: string | null): Promise<void> =>
    (stopping ??= (async () => {
      if (why !== null) logLine(`fffs: ${why}; stopping`)
      await control?.stop().catch(() => undefined)
      await mounted.unmount()
      await client.close()
      await onStopped()
      logLine(`fffs: stopped; unmounted ${displayPath(mountpoint)}`)
      process.exit(0)
    })())
  const mounted = await mountFs(mountpoint, client, options, stateDir, {
    onUnmountedFromOutside: () => void stop(`${displayPath(mountpoint)} was unmounted from outside (fusermount -u)`),
    log: logLine,
  })
  control = new ControlServer(client, mounted, options, stateDir, () => void stop(null))
  try {
    await control.start()
  } catch (err) {
    await mounted.unmount()
    throw err
  }
  process.on('SIGINT', () => void stop(null))
  process.on('SIGTERM', () => void stop(null))
  process.stdout.write(`${READY_PREFIX}${displayPath(mountpoint)}: ${ready}; Ctrl-C to stop\n`)
}

/** The outermost directory `mkdir -p dir` would make, or null when `dir` exists. */
async function firstMissing(dir: string): Promise<string | null> {
  let missing: string | null = null
  for (let at = dir; at !== path.dirname(at); at = path.dirname(at)) {
    if (await fsp.stat(at).then(() => true, () => false)) break
    missing = at
  }
  return missing
}

/** The retention policy of an embedded mount's flags (a bad one is a usage error naming the flag). */
async function flagRetention(opts: MountOptions): Promise<RetentionPolicy | null> {
  const { retentionOfFlags } = await import('../store/retention/policy.js')
  try {
    return retentionOfFlags(opts)
  } catch (err) {
    if (err instanceof FffsError) throw usageError(err.message)
    throw err
  }
}

export async function runMount(dir: string, opts: MountOptions): Promise<void> {
  const mountpoint = path.resolve(dir)
  if (opts.cluster !== undefined) {
    if (opts.dataDir !== undefined) throw usageError('--data-dir and --cluster exclude each other: a cluster mount keeps no data')
    const retentionFlag = opts.keepAllFor !== undefined ? '--keep-all-for' : opts.tier !== undefined ? '--tier' : opts.minVersions !== undefined ? '--min-versions' : opts.forceRetention === true ? '--force-retention' : opts.gcBudget !== undefined ? '--gc-budget' : null
    if (retentionFlag !== null) throw usageError(`${retentionFlag}: a group's retention is its config's (retention in ${path.resolve(opts.cluster)}), the same for every member`)
    if (opts.durability !== undefined) throw usageError(`--durability: a group's durability is its config's (durability in ${path.resolve(opts.cluster)}, set by fffs init --durability)`)
    const config = await loadGroupConfig(path.resolve(opts.cluster))
    const bounds = groupBounds(opts, config)
    await checkMountpoint(mountpoint)
    const { connectGroup } = await machinery()
    const client = await connectGroup(config, { log: logLine })
    try {
      await serveMount(mountpoint, client, opts, bounds, path.dirname(config.path), `group ${config.name}, ${describeLayout(config)}`)
    } catch (err) {
      await client.close().catch(() => undefined)
      throw err
    }
    return
  }
  const retention = await flagRetention(opts)
  await checkMountpoint(mountpoint)
  const dataDir = path.resolve(opts.dataDir ?? defaultDataDir(dir))
  const made = await firstMissing(dataDir)
  let client: Client | null = null
  try {
    const { EmbeddedClient } = await machinery()
    const embedded = { retention, log: logLine, ...(opts.durability !== undefined ? { durability: opts.durability } : {}), ...(opts.gcBudget !== undefined ? { gcCopyBytesPerSecond: opts.gcBudget * 1024 * 1024 } : {}) }
    const opened = await openDataDir(dataDir, () => EmbeddedClient.open(dataDir, embedded))
    client = opened.client
    if (opened.truncatedBytes > 0) logLine(`fffs: ${displayPath(dataDir)}: dropped ${opened.truncatedBytes} torn bytes at the end of the log (a write never acknowledged)`)
    const { describePolicy } = await import('../store/retention/policy.js')
    const kept = retention === null ? '' : `, retention ${describePolicy(retention)}`
    await serveMount(mountpoint, client, opts, flagBounds(opts), dataDir, `embedded store ${displayPath(dataDir)} (${opened.replayedRecords} records replayed${kept})`)
  } catch (err) {
    await client?.close().catch(() => undefined)
    if (made !== null) await fsp.rm(made, { recursive: true, force: true }).catch(() => undefined) // leave nothing behind
    throw err
  }
}

export async function runUp(dir: string, opts: UpOptions): Promise<void> {
  const mountpoint = path.resolve(dir)
  await checkMountpoint(mountpoint)
  const groupDir = path.resolve(opts.groupDir ?? path.join(defaultDataDir(dir), 'group'))
  // A new group takes the flags' Δ and δ; an existing one keeps its own (a differing flag fails).
  const config = await localGroupConfig(groupDir, { replicas: opts.replicas, shards: opts.shards, time: flagBounds(opts) })
  const bounds = groupBounds(opts, config)
  logLine(`fffs: starting the local group: ${describeLayout(config)} (config ${displayPath(config.path)})`)
  const loading = machinery() // while the members start
  loading.catch(() => undefined) // awaited below; a failure is reported there
  const group = await startLocalGroup(config)
  try {
    const views = await waitGroupRunning(config, group.exited)
    const { connectGroup } = await loading
    const client = await connectGroup(config, { log: logLine })
    const viewText = views.every((v) => v.vid === views[0]!.vid) ? `view ${views[0]!.vid}` : `views ${views.map((v) => `${v.shard} ${v.vid}`).join(', ')}`
    await serveMount(mountpoint, client, opts, bounds, groupDir, `${describeLayout(config)}, ${viewText}`, group.stop)
  } catch (err) {
    await group.stop()
    throw err
  }
}

/** `fffs unmount DIR`: asks the mount process to stop; a mount whose process is gone is cleared. Returns once it is unmounted. */
export async function runUnmount(dir: string): Promise<void> {
  const mountpoint = path.resolve(dir)
  if (!fffsMounts().includes(mountpoint)) throw errors.invalid(`${displayPath(mountpoint)} is not an fffs mount`)
  try {
    await request(mountpoint, { op: 'unmount' }, 5_000)
  } catch {
    await unmountLazy(mountpoint) // the mount process is gone or hung: clear the mount
  }
  const deadlineMs = Date.now() + UNMOUNT_WAIT_MS
  while (fffsMounts().includes(mountpoint)) {
    if (Date.now() > deadlineMs) throw new FffsError('EIO', `${displayPath(mountpoint)} is still mounted after ${UNMOUNT_WAIT_MS} ms (socket ${controlSocketPath(mountpoint)})`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  process.stdout.write(`unmounted ${displayPath(mountpoint)}\n`)
}

export function describeLayout(config: GroupConfig): string {
  const { shards, replicas } = config.layout
  return `${config.members.length} members` + (shards > 1 ? `, a meta shard and ${shards} data shards of ${replicas} replicas` : `, ${replicas} replicas`)
}
