// GlusterFS replica 3 for the metadata bench: Debian's glusterfs-server (installed with apt-get
// when missing), glusterd started here unless one is already running, one volume of three
// bricks on this host (created with `force`: replicas on one host, bricks on the root file
// system), mounted with the FUSE client (`mount -t glusterfs`). Everything this module starts
// it stops in `teardown`; a volume or mount a crashed run left behind is removed by
// `clearStaleGluster` before a new run starts.

import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

/** The bench's volume; only this name is ever stopped or deleted. */
export const VOLUME = 'fffs-bench-meta'
const GLUSTERD_PIDFILE = '/run/fffs-bench-meta-glusterd.pid'
const CLI_TIMEOUT_MS = 120_000
const GLUSTERD_READY_MS = 60_000

async function sh(command: string, args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  const { stdout } = await execFileP(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

function pidInFile(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim())
  } catch {
    return -1
  }
}

const gluster = (...args: string[]) => sh('gluster', ['--mode=script', ...args])

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin').split(':').some((dir) => fs.existsSync(path.join(dir, binary)))
}

function pidsOf(comm: string): number[] {
  return fs.readdirSync('/proc').flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return []
    try {
      return fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm ? [Number(entry)] : []
    } catch {
      return []
    }
  })
}

/** Gluster processes serving our volume (bricks, self-heal daemon, FUSE client): their command line names it. */
function volumePids(): number[] {
  return [...pidsOf('glusterfsd'), ...pidsOf('glusterfs')].filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(VOLUME)
    } catch {
      return false
    }
  })
}

/** The first non-loopback IPv4 address: glusterd refuses localhost and 127.x in brick names. */
function hostAddress(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  throw new Error('GlusterFS: no non-loopback IPv4 address for the bricks (glusterd refuses localhost)')
}

/** Mount points at or below `prefix` (/proc/mounts writes a space as \040). */
export function mountsUnder(prefix: string): string[] {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === prefix || m.startsWith(prefix + '/')))
}

async function glusterdResponds(): Promise<boolean> {
  return gluster('volume', 'list').then(
    () => true,
    () => false,
  )
}

/** Installs glusterfs-server if `glusterd` is missing (apt-get update first; never at the cost of removing a package). */
async function ensureInstalled(log: (line: string) => void): Promise<boolean> {
  if (onPath('glusterd') && onPath('mount.glusterfs')) return false
  log('GlusterFS: installing glusterfs-server with apt-get')
  await sh('apt-get', ['update', '-qq'], 600_000)
  await execFileP('apt-get', ['install', '-y', '-qq', '--no-remove', 'glusterfs-server', 'glusterfs-client'], { timeout: 900_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (!onPath('glusterd')) throw new Error('GlusterFS: glusterd not found after installing glusterfs-server')
  return true
}

export interface Gluster {
  readonly version: string
  readonly startedGlusterd: boolean
  mount(mountpoint: string): Promise<void>
  unmount(mountpoint: string): Promise<void>
  teardown(): Promise<void>
}

/** Lazily unmounts every FUSE mount of the bench's volume (their source is HOST:/VOLUME). */
async function unmountVolume(log: (line: string) => void): Promise<void> {
  for (const m of fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[0]?.endsWith(`:/${VOLUME}`))) {
    log(`GlusterFS: unmounting ${VOLUME} at ${m[1]}`)
    await sh('umount', ['-l', m[1]!]).catch(() => undefined)
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

/** Removes what a crashed run of this bench left: its mounts of the volume, then the volume itself. */
export async function clearStaleGluster(log: (line: string) => void): Promise<void> {
  if (!onPath('gluster')) return
  await unmountVolume(log)
  if (!(await glusterdResponds())) return
  const volumes = (await gluster('volume', 'list')).split('\n').map((v) => v.trim())
  if (!volumes.includes(VOLUME)) return
  log(`GlusterFS: stopping and deleting the stale volume ${VOLUME}`)
  await gluster('volume', 'stop', VOLUME, 'force').catch(() => undefined)
  await gluster('volume', 'delete', VOLUME)
}

/** Installs and starts what is needed and creates + starts the volume with bricks under `brickRoot`. */
export async function setUpGluster(brickRoot: string, log: (line: string) => void): Promise<Gluster> {
  const installed = await ensureInstalled(log)
  const version = (await sh('glusterfs', ['--version'])).split('\n')[0]!.trim()
  const before = pidsOf('glusterd')
  // Ours to stop: one started here, one the install started (the package's service), and one
  // an earlier run of this bench started and could not stop (its pid is in our pid file).
  const startedGlusterd = before.length === 0 || installed || before.includes(pidInFile(GLUSTERD_PIDFILE))
  // Only one glusterd can run on a host (it owns port 24007), so "every glusterd" is the one.
  const stopGlusterd = async () => {
    if (!startedGlusterd) return
    for (const pid of pidsOf('glusterd')) kill(pid, 'SIGTERM')
    const until = Date.now() + 30_000
    while (pidsOf('glusterd').length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200))
    for (const pid of pidsOf('glusterd')) kill(pid, 'SIGKILL')
    fs.rmSync(GLUSTERD_PIDFILE, { force: true })
  }
  const host = hostAddress()
  try {
    if (before.length === 0) {
      log(`GlusterFS: starting glusterd (${version})`)
      await sh('glusterd', ['-p', GLUSTERD_PIDFILE])
    }
    const deadlineMs = Date.now() + GLUSTERD_READY_MS
    while (!(await glusterdResponds())) {
      if (Date.now() > deadlineMs) throw new Error(`GlusterFS: glusterd does not answer after ${GLUSTERD_READY_MS} ms`)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    await clearStaleGluster(log)
    const bricks = [1, 2, 3].map((i) => path.join(brickRoot, `brick${i}`))
    for (const b of bricks) fs.mkdirSync(b, { recursive: true })
    log(`GlusterFS: creating ${VOLUME} (replica 3, bricks ${bricks.map((b) => `${host}:${b}`).join(' ')})`)
    await gluster('volume', 'create', VOLUME, 'replica', '3', ...bricks.map((b) => `${host}:${b}`), 'force')
    await gluster('volume', 'start', VOLUME)
  } catch (err) {
    await stopGlusterd()
    throw err
  }
  const unmount = async (mountpoint: string) => {
    if (mountsUnder(mountpoint).length === 0) return
    await sh('umount', [mountpoint]).catch(() => sh('umount', ['-l', mountpoint]))
  }
  return {
    version,
    startedGlusterd,
    async mount(mountpoint: string) {
      fs.mkdirSync(mountpoint, { recursive: true })
      await sh('mount', ['-t', 'glusterfs', `${host}:/${VOLUME}`, mountpoint])
      if (mountsUnder(mountpoint).length === 0) throw new Error(`GlusterFS: mount.glusterfs returned but ${mountpoint} is not mounted`)
    },
    unmount,
    async teardown() {
      log(`GlusterFS: stopping and deleting ${VOLUME}${startedGlusterd ? ', stopping glusterd' : ''}`)
      await unmountVolume(log) // a client a failed turn left mounted
      await gluster('volume', 'stop', VOLUME, 'force').catch((err: unknown) => log(`GlusterFS: volume stop: ${String(err)}`))
      await gluster('volume', 'delete', VOLUME).catch((err: unknown) => log(`GlusterFS: volume delete: ${String(err)}`))
      await stopGlusterd()
      // Bricks and the self-heal daemon of our volume, should glusterd have left any.
      for (const pid of volumePids()) kill(pid, 'SIGKILL')
    },
  }
}
