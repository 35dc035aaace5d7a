// Test helper: a local replication group of real `fffs serve` processes and real
// `fffs mount --cluster` mounts, with bounded waits; `cleanup()` kills every child it started
// and `fusermount -uz`s every mount, whatever state the test left them in.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { READY_PREFIX } from '../../src/cli/output.js'
import { loadGroupConfig, writeLocalGroup, type GroupConfig } from '../../src/replication/config.js'
import { ROOT_INO } from '../../src/store/records.js'
import { Store } from '../../src/store/store.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'
import { fetchMemberStatus } from '../../src/replication/remoteClient.js'
import { shardGroups } from '../../src/replication/shards.js'
import { FFFS_BIN, fusermountLazy, REPO } from './mount.js'

const execFileP = promisify(execFile)

const MOUNT_TIMEOUT_MS = 20_000
const EXIT_TIMEOUT_MS = 10_000
const VIEW_TIMEOUT_MS = 30_000

export interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: () => boolean
  /** Resolves when the process exits (at once if it has), or after timeoutMs with false. */
  waitExit(timeoutMs: number): Promise<boolean>
}

/**
 * Spawns `node bin/fffs ARGS`, collecting stdout+stderr. `wrap` runs it under another command
 * (nsenter, setpriv); `detached` gives it a process group of its own (a test's Ctrl-C).
 */
export function spawnFffs(args: string[], wrap: string[] = [], options: { cwd?: string; detached?: boolean; env?: NodeJS.ProcessEnv } = {}): Proc {
  const command = wrap.length > 0 ? wrap[0]! : process.execPath
  const argv = wrap.length > 0 ? [...wrap.slice(1), process.execPath, FFFS_BIN, ...args] : [FFFS_BIN, ...args]
  const child = spawn(command, argv, { cwd: options.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true, env: options.env ?? process.env })
  let log = ''
  child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null
  return {
    child,
    output: () => log,
    exited,
    waitExit: (timeoutMs) =>
      exited()
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const timer = setTimeout(() => resolve(false), timeoutMs)
            child.once('exit', () => {
              clearTimeout(timer)
              resolve(true)
            })
          }),
  }
}

/** Polls `check` until it returns a value other than undefined; throws `what` with the last state after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, periodMs = 100): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadlineMs) throw new Error(`${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, periodMs))
  }
}

export interface ClusterMount {
  readonly mountpoint: string
  readonly proc: Proc
  p(...parts: string[]): string
  stop(): Promise<void>
}

export interface TestGroup {
  readonly root: string
  readonly config: GroupConfig
  readonly members: Map<number, Proc>
  /** Starts member `id` (again); `configPath` defaults to the group's. */
  startMember(id: number, configPath?: string, wrap?: string[]): Proc
  /** SIGKILL, and wait until it is gone. */
  kill9(id: number): Promise<void>
  /** Member `id`'s own view (member ids) in shard group `shard` (default the first), asked over a connection of its own. */
  viewOf(id: number, shard?: string): Promise<{ vid: number; members: number[] }>
  /** Waits until every listed member reports a view of exactly `members` (in every shard group). */
  waitView(members: number[], timeoutMs: number, askIds?: number[]): Promise<number>
  /** `fffs mount DIR --cluster configPath`, waiting for its ready line. */
  mount(name: string, configPath?: string, wrap?: string[]): Promise<ClusterMount>
  /**
   * A copy of the config whose members are listed starting at `firstId` (and the key file
   * `keyFile`, if given): a RemoteClient tries members in file order, so a mount of it
   * connects to `firstId`.
   */
  writeClientConfig(name: string, firstId: number, keyFile?: string, clients?: Record<string, number>): Promise<string>
  cleanup(): Promise<void>
}

export interface GroupOptions {
  readonly shards?: number
  readonly hostOf?: (id: number) => string
  readonly wrapOf?: (id: number) => string[]
  /** Config `transport` fields to set (connectTimeoutMs, suspectTimeoutMs, ...). */
  readonly transport?: Record<string, number>
  /** Top-level config fields to set (retention, gcBudgetMiBs, ...). */
  readonly fields?: Record<string, unknown>
}

/** A group of `replicas` members, every one started, once they all run in one view. */
export async function startRunningGroup(replicas: number, options: GroupOptions = {}): Promise<TestGroup> {
  const group = await startGroup(replicas, options)
  for (const member of group.config.members) group.startMember(member.id)
  await group.waitView(group.config.members.map((m) => m.id), VIEW_TIMEOUT_MS)
  return group
}

export async function startGroup(replicas: number, options: GroupOptions = {}): Promise<TestGroup> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-cluster-'))
  // No base port given: writeLocalGroup derives one from a hash of the (random) directory and
  // moves it on while any of its ports is bound, so parallel test files do not collide.
  let configPath = await writeLocalGroup(path.join(root, 'group'), { replicas, shards: options.shards ?? 1 })
  if (options.hostOf !== undefined || options.transport !== undefined || options.fields !== undefined) {
    const json = JSON.parse(await fsp.readFile(configPath, 'utf8')) as { members: Array<{ id: number; host: string }>; transport: Record<string, unknown> }
    if (options.hostOf !== undefined) for (const m of json.members) m.host = options.hostOf(m.id)
    json.transport = { ...json.transport, ...options.transport }
    await fsp.writeFile(configPath, JSON.stringify({ ...json, ...options.fields }, null, 2))
  }
  const config = await loadGroupConfig(configPath)
  configPath = config.path
  const members = new Map<number, Proc>()
  const mounts: ClusterMount[] = []
  const extra: Proc[] = []

  const group: TestGroup = {
    root,
    config,
    members,
    startMember(id, memberConfig = configPath, wrap = options.wrapOf?.(id) ?? []) {
      const proc = spawnFffs(['serve', '--config', memberConfig, '--id', String(id)], wrap)
      if (memberConfig === configPath) members.set(id, proc)
      else extra.push(proc)
      return proc
    },
    async kill9(id) {
      const proc = members.get(id)
      if (proc === undefined) return
      proc.child.kill('SIGKILL')
      await proc.waitExit(EXIT_TIMEOUT_MS)
    },
    async viewOf(id, shard) {
      const groupConfig = shardGroups(config).find((g) => shard === undefined || g.name === shard)!.config
      const status = (await fetchMemberStatus(groupConfig, groupConfig.members.find((m) => m.id === id)!, 2_000)) as {
        phase: string
        core: { view: { vid: number; members: number[] } } | null
        memberIds: number[]
      }
      if (status.core === null) throw new Error(`member ${id} is in no epoch (${status.phase})`)
      return { vid: status.core.view.vid, members: status.core.view.members.map((rank) => status.memberIds[rank]!) }
    },
    async waitView(expected, timeoutMs, askIds = expected) {
      const want = expected.join(',')
      const shards = shardGroups(config).map((g) => g.name)
      return waitFor(`members ${askIds.join(', ')} in view [${want}]`, timeoutMs, async () => {
        const views = await Promise.all(shards.flatMap((shard) => askIds.map((id) => group.viewOf(id, shard))))
        return views.every((v) => v.members.join(',') === want) ? views[0]!.vid : undefined
      })
    },
    async mount(name, mountConfig = configPath, wrap = []) {
      const mountpoint = path.join(root, name)
      const proc = spawnFffs(['mount', mountpoint, '--cluster', mountConfig], wrap)
      const mount: ClusterMount = {
        mountpoint,
        proc,
        p: (...parts) => path.join(mountpoint, ...parts),
        async stop() {
          if (!proc.exited()) {
            proc.child.kill('SIGTERM')
            if (!(await proc.waitExit(EXIT_TIMEOUT_MS))) proc.child.kill('SIGKILL')
            await proc.waitExit(EXIT_TIMEOUT_MS)
          }
          fusermountLazy(mountpoint)
        },
      }
      mounts.push(mount)
      await waitFor(`mount ${name}`, MOUNT_TIMEOUT_MS, () => {
        if (proc.output().includes(READY_PREFIX)) return true
        if (proc.exited()) throw new Error(`mount exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output()}`)
        return undefined
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${proc.output()}`)
      })
      return mount
    },
    async writeClientConfig(name, firstId, keyFile, clients) {
      const json = JSON.parse(await fsp.readFile(configPath, 'utf8')) as { members: Array<{ id: number; dataDir: string }>; keyFile: string; clients?: Record<string, number> }
      if (clients !== undefined) json.clients = { ...json.clients, ...clients }
      const at = json.members.findIndex((m) => m.id === firstId)
      json.members = [...json.members.slice(at), ...json.members.slice(0, at)]
      for (const m of json.members) m.dataDir = path.resolve(path.dirname(configPath), m.dataDir)
      json.keyFile = keyFile ?? config.keyFile
      const file = path.join(root, name)
      await fsp.writeFile(file, JSON.stringify(json, null, 2))
      return file
    },
    async cleanup() {
      await Promise.all(mounts.map((m) => m.stop()))
      for (const proc of [...members.values(), ...extra]) if (!proc.exited()) proc.child.kill('SIGKILL')
      await Promise.all([...members.values(), ...extra].map((proc) => proc.waitExit(EXIT_TIMEOUT_MS)))
      for (const m of mounts) fusermountLazy(m.mountpoint)
      rmSync(root, { recursive: true, force: true })
    },
  }
  return group
}

/** Runs the CLI asynchronously (the test's own event loop keeps running); never throws. */
/**
 * A group of 3 whose member `member` (or each of several) keeps its data on a tmpfs of its own of `size` (a small disk:
 * small log segments, and a disk that fills), every member started and in the view, and a mount.
 * `stop` kills the members, unmounts the tmpfs and cleans up.
 */
export async function startGroupWithSmallDisk(member: number | readonly number[], size: string, fields: Record<string, unknown>): Promise<{ group: TestGroup; mount: ClusterMount; volume: string; stop(): Promise<void> }> {
  const group = await startGroup(3, { fields })
  const volumes = (typeof member === 'number' ? [member] : member).map((id) => group.config.members.find((m) => m.id === id)!.dataDir)
  const mounted: string[] = []
  const stop = async (): Promise<void> => {
    for (const proc of group.members.values()) proc.child.kill('SIGKILL')
    await Promise.all([...group.members.values()].map((proc) => proc.waitExit(10_000)))
    for (const volume of mounted) execFileSync('umount', ['-l', volume], { stdio: 'ignore' })
    await group.cleanup()
  }
  for (const volume of volumes) {
    await fsp.mkdir(volume, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', volume])
    mounted.push(volume)
  }
  const volume = volumes[0]!
  try {
    for (const id of [0, 1, 2]) group.startMember(id)
    await group.waitView([0, 1, 2], VIEW_TIMEOUT_MS)
    return { group, mount: await group.mount('mnt'), volume, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

export async function cli(args: string[], timeoutMs = 30_000): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [FFFS_BIN, ...args], { cwd: REPO, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 })
    return { status: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string }
    return { status: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

export interface Written {
  readonly name: string
  readonly sha256: string
  readonly sizeBytes: number
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Writes files one after another until stopped; a file is acknowledged when its close returned. */
export class Writer {
  readonly acknowledged: Written[] = []
  readonly failures: string[] = []
  private stopped = false
  private loop: Promise<void> | null = null

  constructor(private readonly dir: string) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        // Mostly small files (one ordered record carries them), every 8th 1-2 MiB (the bulk path).
        const sizeBytes = i % 8 === 7 ? 1024 * 1024 + ((i * 7919) % (1024 * 1024)) : 1 + ((i * 104729) % (16 * 1024))
        const bytes = randomBytes(sizeBytes)
        const name = `w-${String(i).padStart(5, '0')}.bin`
        try {
          await fsp.writeFile(path.join(this.dir, name), bytes) // open, write, close
          this.acknowledged.push({ name, sha256: sha256(bytes), sizeBytes })
        } catch (err) {
          this.failures.push(`${name}: ${(err as Error).message}`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}

export interface ReplicaFile {
  readonly content: Buffer
  readonly versions: string[] // "number@stamp"
}

/** The files in the root of a stopped member's store: content and every version's number and stamp. */
export async function replicaContents(dataDir: string): Promise<Map<string, ReplicaFile>> {
  const store = new Store(dataDir)
  await store.open()
  try {
    const files = new Map<string, ReplicaFile>()
    for (const { name, ino } of await store.readdir(ROOT_INO, HLC_MAX)) {
      const attr = await store.attr(ino, HLC_MAX)
      if (attr === null || attr.kind !== 'file') continue
      const content = Buffer.alloc(attr.sizeBytes)
      await store.read(attr, 0, content, attr.sizeBytes)
      const versions = (await store.versions(ino)).map((v) => `${v.version}@${v.stamp}`)
      files.set(name, { content, versions })
    }
    return files
  } finally {
    await store.close()
  }
}
