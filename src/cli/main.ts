// The fffs command line. Inspection commands talk to a running mount over its control socket;
// every command that fails prints one line and exits non-zero.

import { Command, CommanderError } from 'commander'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { defaultMount, locate, request } from '../control/client.js'
import type { CutReport, StableChange } from '../control/inspect.js'
import { ControlServer, type EntryInfo, type VersionInfo } from '../control/server.js'
import { addDemoCommand } from '../demo/cli.js'
import { errors } from '../errors.js'
import { mountFs } from '../fs/mount.js'
import type { TimeOptions } from '../fs/resolve.js'
import { EmbeddedClient, type Client } from '../replication/client.js'
import { loadGroupConfig, TIME_DEFAULTS, type GroupConfig } from '../replication/config.js'
import { connectGroup } from '../replication/sharded.js'
import { hlcCeilingOfUs } from '../temporal/hlc.js'
import { parseTimeSpec } from '../temporal/spec.js'
import { localGroupConfig, runServe, startLocalGroup } from './cluster.js'
import { runInit } from './init.js'
import { renderStatus, statusJson } from './statusView.js'

const MAX_WAIT_MS_DEFAULT = 10_000
const STATUS_WATCH_MS_DEFAULT = 1_000

function defaultDataDir(mountpoint: string): string {
  const base = process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share')
  const digest = createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 8)
  return path.join(base, 'fffs', `${path.basename(path.resolve(mountpoint))}-${digest}`)
}

function positiveInt(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new CommanderError(2, 'fffs.badNumber', `not a non-negative integer: '${text}'`)
  return n
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text())
}

const WATCH_PERIOD_MS_DEFAULT = 200

function renderCut(report: CutReport): string {
  const what = report.kind === 'sensor' ? `sensor cut ${report.spec}: structure at platform ${report.time} (T + Δ + 2δ)` : `cut ${report.spec}: platform ${report.time}`
  const lines = [`${what} · ${report.stable ? 'stable' : `not stable yet (≈ ${Math.max(...report.shards.map((s) => s.untilStableMs))} ms)`}`]
  lines.push(table([['SHARD', 'FRONTIER', 'STABLE', 'UNTIL_STABLE_MS'], ...report.shards.map((s) => [s.shard, s.frontier, s.stable ? 'yes' : 'no', String(s.untilStableMs)])]).trimEnd())
  if (report.path !== undefined) {
    const p = report.path
    lines.push(p.version === null ? `${p.path}: absent at this cut` : `${p.path}: version ${p.version} (${p.time}, ${p.sizeBytes} bytes)${p.provisional ? ' — provisional: the cut is not stable yet' : ''}`)
  }
  return lines.join('\n') + '\n'
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n'
}

interface MountOptions {
  dataDir?: string
  cluster?: string
  maxWait: number
  sensorLagMax?: number // absent: the group's (its config), or TIME_DEFAULTS for an embedded mount
  clockSkewMax?: number
}

type SensorBounds = GroupConfig['time']

/** Δ and δ of an embedded mount: its flags, else the defaults. */
function flagBounds(opts: MountOptions): SensorBounds {
  return { sensorLagMaxMs: opts.sensorLagMax ?? TIME_DEFAULTS.sensorLagMaxMs, clockSkewMaxMs: opts.clockSkewMax ?? TIME_DEFAULTS.clockSkewMaxMs }
}

/** Δ and δ of a group mount are its config's: a flag may only repeat them. */
function groupBounds(opts: MountOptions, config: GroupConfig): SensorBounds {
  const given = [['--sensor-lag-max', opts.sensorLagMax, config.time.sensorLagMaxMs, 'sensorLagMaxMs'], ['--clock-skew-max', opts.clockSkewMax, config.time.clockSkewMaxMs, 'clockSkewMaxMs']] as const
  for (const [flag, value, groupValue, field] of given) {
    if (value !== undefined && value !== groupValue) throw errors.invalid(`${flag} ${value}: the group ${config.name} uses ${groupValue} (time.${field} in ${config.path}); every mount and member of a group shares it`)
  }
  return config.time
}

/** Mounts `client` at `dir` with its control socket; Ctrl-C or SIGTERM unmounts, then runs `onStopped`. */
async function serveMount(dir: string, client: Client, opts: MountOptions, bounds: SensorBounds, stateDir: string, banner: string, onStopped: () => Promise<void> = async () => undefined): Promise<void> {
  const options: TimeOptions = { maxWaitMs: opts.maxWait, sensorLagMaxUs: bounds.sensorLagMaxMs * 1000, clockSkewMaxUs: bounds.clockSkewMaxMs * 1000 }
  const mounted = await mountFs(path.resolve(dir), client, options, stateDir)
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await control.stop().catch(() => undefined)
      await mounted.unmount()
      await client.close()
      await onStopped()
      process.stderr.write(`fffs: unmounted ${mounted.mountpoint}\n`)
      process.exit(0)
    })())
  const control = new ControlServer(client, mounted, options, stateDir, () => void stop())
  await control.start()
  process.on('SIGINT', () => void stop())
  process.on('SIGTERM', () => void stop())
  process.stdout.write(`fffs: mounted ${mounted.mountpoint} (${banner})\n`)
}

async function runMount(dir: string, opts: MountOptions): Promise<void> {
  if (opts.cluster !== undefined) {
    if (opts.dataDir !== undefined) throw new CommanderError(2, 'fffs.badOptions', '--data-dir and --cluster exclude each other: a cluster mount keeps no data')
    const config = await loadGroupConfig(path.resolve(opts.cluster))
    const bounds = groupBounds(opts, config)
    const client = await connectGroup(config)
    await serveMount(dir, client, opts, bounds, path.dirname(config.path), `cluster ${config.name}: ${describeLayout(config)}`)
    return
  }
  const dataDir = path.resolve(opts.dataDir ?? defaultDataDir(dir))
  const { client, replayedRecords, truncatedBytes } = await EmbeddedClient.open(dataDir)
  await serveMount(dir, client, opts, flagBounds(opts), dataDir, `data ${dataDir}; replayed ${replayedRecords} records, dropped ${truncatedBytes} torn bytes`)
}

async function runUp(dir: string, opts: MountOptions & { replicas: number; shards: number; groupDir?: string }): Promise<void> {
  const groupDir = path.resolve(opts.groupDir ?? path.join(defaultDataDir(dir), 'group'))
  // A new group takes the flags' Δ and δ; an existing one keeps its own (a differing flag fails).
  const config = await localGroupConfig(groupDir, { replicas: opts.replicas, shards: opts.shards, time: flagBounds(opts) })
  const bounds = groupBounds(opts, config)
  const group = await startLocalGroup(config, (line) => process.stderr.write(line + '\n'))
  try {
    const client = await connectGroup(config)
    await serveMount(dir, client, opts, bounds, groupDir, `local group ${config.path}: ${describeLayout(config)}`, group.stop)
  } catch (err) {
    await group.stop()
    throw err
  }
}

function describeLayout(config: GroupConfig): string {
  const { shards, replicas } = config.layout
  return `${config.members.length} members` + (shards > 1 ? `, a meta shard and ${shards} data shards of ${replicas} replicas` : `, ${replicas} replicas`)
}

/** The options every mounting command takes: how reads at a cut wait, and the sensor-time bounds. */
function withReadOptions(command: Command): Command {
  return command
    .option('--max-wait <ms>', 'how long a read at an unstable cut waits before EAGAIN', positiveInt, MAX_WAIT_MS_DEFAULT)
    .option('--sensor-lag-max <ms>', `Δ: the most a sensor timestamp may lag platform time (default ${TIME_DEFAULTS.sensorLagMaxMs}; a group's: its config's)`, positiveInt)
    .option('--clock-skew-max <ms>', `δ: the bound on writer/platform clock skew (default ${TIME_DEFAULTS.clockSkewMaxMs}; a group's: its config's)`, positiveInt)
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command()
  program.name('fffs').description('Freeze-Frame File System: every committed write is a version; read any tree as it was with path@SPEC').exitOverride()

  withReadOptions(program
    .command('mount')
    .argument('<dir>', 'mount point (created if missing)'))
    .option('--data-dir <dir>', 'embedded: where the log and index live (default: ~/.local/share/fffs/NAME-HASH)')
    .option('--cluster <config>', 'mount a replicated group (its config.json) instead of an embedded store')
    .description('mount fffs at DIR: an embedded store, or a group with --cluster (runs in the foreground; Ctrl-C unmounts)')
    .action(runMount)

  program
    .command('init')
    .argument('<dir>', 'directory for config.json and cluster.key')
    .option('--replicas <n>', 'replicas per shard', positiveInt, 3)
    .option('--shards <n>', 'data shards (more than one: plus a meta shard for the namespace)', positiveInt, 1)
    .option('--members <n>', 'member processes (default: --replicas; each serves every shard it can)', positiveInt)
    .option('--base-port <port>', 'first TCP port (each member uses 2 per shard group from there on)', positiveInt)
    .option('--sensor-lag-max <ms>', 'Δ of the group: the most a sensor timestamp may lag platform time', positiveInt, TIME_DEFAULTS.sensorLagMaxMs)
    .option('--clock-skew-max <ms>', 'δ of the group: the bound on writer/platform clock skew', positiveInt, TIME_DEFAULTS.clockSkewMaxMs)
    .description('write the config and cluster key of a local group')
    .action(async (dir: string, opts: { replicas: number; shards: number; members?: number; basePort?: number; sensorLagMax: number; clockSkewMax: number }) => {
      const time = { sensorLagMaxMs: opts.sensorLagMax, clockSkewMaxMs: opts.clockSkewMax }
      await runInit(path.resolve(dir), { replicas: opts.replicas, shards: opts.shards, time, ...(opts.members !== undefined ? { members: opts.members } : {}), ...(opts.basePort !== undefined ? { basePort: opts.basePort } : {}) })
    })

  program
    .command('serve')
    .requiredOption('--config <file>', 'the group config (config.json)')
    .requiredOption('--id <n>', 'this member id', positiveInt)
    .description('run one member of a replicated group (foreground)')
    .action(runServe)

  withReadOptions(program
    .command('up')
    .argument('<dir>', 'mount point (created if missing)'))
    .option('--replicas <n>', 'replicas per shard', positiveInt, 3)
    .option('--shards <n>', 'data shards (more than one: plus a meta shard for the namespace)', positiveInt, 1)
    .option('--group-dir <dir>', 'where the group config, key and member data live (default: ~/.local/share/fffs/NAME-HASH/group)')
    .description('start a local replicated group (one process per member) and mount it at DIR; Ctrl-C stops both')
    .action(runUp)

  program
    .command('unmount')
    .argument('<dir>', 'mount point')
    .description('unmount a running fffs mount')
    .action(async (dir: string) => {
      const mountpoint = locate(dir).mountpoint
      try {
        await request(mountpoint, { op: 'unmount' })
      } catch {
        await promisify(execFile)('fusermount', ['-uz', mountpoint]) // the mount process is gone: clear the stale mount
      }
      process.stdout.write(`unmounted ${mountpoint}\n`)
    })

  program
    .command('log')
    .argument('<path>', 'a file or directory inside a mount')
    .option('--json', 'machine-readable output')
    .description('list the versions of a file: number, platform (HLC) time, sensor time, size, names (hard links)')
    .action(async (target: string, opts: { json?: boolean }) => {
      const { mountpoint, inner } = locate(target)
      const versions = await request<VersionInfo[]>(mountpoint, { op: 'log', path: inner })
      print(opts.json === true, versions, () =>
        table([['VERSION', 'TIME', 'SENSOR_TIME', 'SIZE', 'LINKS', 'CHANGE'], ...versions.map((v) => [String(v.version), v.time, v.sensorTime ?? '-', String(v.sizeBytes), String(v.links), v.change])]),
      )
    })

  program
    .command('cat')
    .argument('<path>', 'PATH or PATH@SPEC inside a mount')
    .description('print a file as of a cut')
    .action(async (target: string) => {
      const { mountpoint, inner } = locate(target)
      for (let offset = 0; ; ) {
        const chunk = await request<{ sizeBytes: number; dataBase64: string }>(mountpoint, { op: 'cat', path: inner, offset })
        const bytes = Buffer.from(chunk.dataBase64, 'base64')
        if (bytes.length > 0) await new Promise<void>((resolve) => process.stdout.write(bytes, () => resolve()))
        offset += bytes.length
        if (bytes.length === 0 || offset >= chunk.sizeBytes) break
      }
    })

  program
    .command('ls')
    .argument('<path>', 'DIR or DIR@SPEC inside a mount')
    .option('--json', 'machine-readable output')
    .description('list a directory as of a cut')
    .action(async (target: string, opts: { json?: boolean }) => {
      const { mountpoint, inner } = locate(target)
      const entries = await request<EntryInfo[]>(mountpoint, { op: 'ls', path: inner })
      print(opts.json === true, entries, () => table([['NAME', 'KIND', 'SIZE', 'VERSION', 'TIME'], ...entries.map((e) => [e.name, e.kind, String(e.sizeBytes), String(e.version), e.time])]))
    })

  const snapshot = program.command('snapshot').description('named snapshots: pinned cuts visible at MOUNT/.snapshot/NAME/')
  snapshot
    .command('create')
    .argument('<name>')
    .option('--at <spec>', 'platform time to pin (default: now)')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { at?: string; mount?: string; json?: boolean }) => {
      const created = await request<{ name: string; at: string }>(defaultMount(opts.mount), { op: 'snapshot.create', name, ...(opts.at !== undefined ? { at: opts.at } : {}) })
      print(opts.json === true, created, () => `snapshot ${created.name} at ${created.at}\n`)
    })
  snapshot
    .command('list')
    .option('--mount <dir>', 'the mount')
    .option('--json', 'machine-readable output')
    .action(async (opts: { mount?: string; json?: boolean }) => {
      const list = await request<Array<{ name: string; at: string; spec: string }>>(defaultMount(opts.mount), { op: 'snapshot.list' })
      print(opts.json === true, list, () => table([['NAME', 'AT', 'SPEC'], ...list.map((s) => [s.name, s.at, s.spec])]))
    })
  snapshot
    .command('delete')
    .argument('<name>')
    .option('--mount <dir>', 'the mount')
    .action(async (name: string, opts: { mount?: string }) => {
      await request(defaultMount(opts.mount), { op: 'snapshot.delete', name })
      process.stdout.write(`deleted snapshot ${name}\n`)
    })

  program
    .command('cut')
    .argument('<spec>', 'a SPEC as after @ in a path: platform time, sensor:/gps: time, or vN (with a path)')
    .argument('[path]', 'a file or directory inside a mount: which version the cut picks for it')
    .option('--mount <dir>', 'the mount, when no path is given (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .description('what a cut resolves to: its stamp, on each shard stable or how long until, and the version it picks for PATH')
    .action(async (spec: string, target: string | undefined, opts: { mount?: string; json?: boolean }) => {
      const where = target === undefined ? { mountpoint: defaultMount(opts.mount), inner: undefined } : locate(target)
      const report = await request<CutReport>(where.mountpoint, { op: 'cut', spec, ...(where.inner !== undefined ? { path: where.inner } : {}) })
      print(opts.json === true, report, () => renderCut(report))
    })

  program
    .command('watch')
    .argument('<pattern>', 'a path prefix or glob (*, ?, **) inside a mount')
    .option('--since <spec>', 'also report versions after this platform time (default: from now)')
    .option('--period <ms>', 'how often to ask the mount', positiveInt, WATCH_PERIOD_MS_DEFAULT)
    .option('--count <n>', 'exit after this many versions', positiveInt)
    .option('--json', 'one JSON object per line')
    .description('stream versions of matching files as they become stable, in stamp order (Ctrl-C stops)')
    .action(async (pattern: string, opts: { since?: string; period: number; count?: number; json?: boolean }) => {
      const { mountpoint, inner } = locate(pattern)
      let after: string | undefined
      if (opts.since !== undefined) {
        const since = parseTimeSpec(opts.since)
        if (since.kind !== 'platform') throw errors.invalid(`--since ${opts.since}: give a platform time`)
        after = hlcCeilingOfUs(since.timeUs).toString()
      }
      let printed = 0
      for (;;) {
        const { frontier, changes } = await request<{ frontier: string; changes: StableChange[] }>(mountpoint, { op: 'changes', pattern: inner, ...(after !== undefined ? { after } : {}) })
        for (const change of changes) {
          const line = opts.json === true ? JSON.stringify(change) : `${change.time}  ${path.join(mountpoint, change.path)}  v${change.version}  ${change.sizeBytes}  ${change.change}${change.sensorTime !== null ? `  sensor ${change.sensorTime}` : ''}`
          await new Promise<void>((resolve) => process.stdout.write(line + '\n', () => resolve()))
          if (opts.count !== undefined && ++printed >= opts.count) return
        }
        after = frontier
        await new Promise((resolve) => setTimeout(resolve, opts.period))
      }
    })

  program
    .command('status')
    .option('--mount <dir>', 'the mount')
    .option('--json', 'machine-readable output (with --watch: one JSON object per line)')
    .option('--watch [ms]', 'refresh every ms (default 1000) until Ctrl-C')
    .description('show the mount; for a cluster mount the view, shard layout, every member and its row of the shared state table, frontiers and replica lag')
    .action(async (opts: { mount?: string; json?: boolean; watch?: string | boolean }) => {
      const mountpoint = defaultMount(opts.mount)
      const json = opts.json === true
      const fetch = async (): Promise<Record<string, unknown>> => statusJson(await request<Record<string, unknown>>(mountpoint, { op: 'status' }))
      if (opts.watch === undefined || opts.watch === false) {
        const status = await fetch()
        print(json, status, () => renderStatus(status))
        return
      }
      const periodMs = opts.watch === true ? STATUS_WATCH_MS_DEFAULT : positiveInt(opts.watch)
      const clear = process.stdout.isTTY && !json ? '\x1b[H\x1b[2J' : ''
      for (;;) {
        const status = await fetch()
        process.stdout.write(json ? JSON.stringify(status) + '\n' : `${clear}${renderStatus(status)}${clear === '' ? '\n' : ''}`)
        await new Promise((resolve) => setTimeout(resolve, Math.max(50, periodMs)))
      }
    })

  addDemoCommand(program)

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return
      // Commander printed its own errors; ours (thrown by option parsers and actions) it did not.
      if (!err.code.startsWith('commander.')) process.stderr.write(`fffs: ${err.message}\n`)
      process.exitCode = err.exitCode || 2
      return
    }
    process.stderr.write(`fffs: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  }
}
