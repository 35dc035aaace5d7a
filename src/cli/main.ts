// The fffs command line: the commands, their options and help. Each command's code is loaded
// when it runs (`fffs --help` or `fffs status` does not load the file system, the store or the
// replication code), so the CLI starts about as fast as node itself. Inspection commands talk
// to a running mount over its control socket; every command that fails prints one line and
// exits non-zero (2 for a usage error or a bad value, 1 otherwise).

import { Command, CommanderError, Option } from 'commander'
import { readFileSync } from 'node:fs'
import { addDemoCommand } from '../demo/cli.js'
import { DURABILITY_DEFAULT, DURABILITY_MODES, type Durability } from '../client/durability.js'
import { TIME_DEFAULTS } from '../replication/timeDefaults.js'
import { nonNegativeInt, positiveInt, positiveNumber, USAGE_EXIT_CODE } from './args.js'
import type { DiffOptions } from './diff.js'
import type { LogOptions } from './inspect.js'
import type { MountOptions, UpOptions } from './mounting.js'
import type { RestoreOptions } from './restore.js'

const MAX_WAIT_MS_DEFAULT = 10_000
const WATCH_PERIOD_MS_DEFAULT = 200

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }
  return manifest.version ?? 'unknown'
}

/** The options every mounting command takes: how reads at a cut wait, and the sensor-time bounds. */
function withReadOptions(command: Command): Command {
  return command
    .option('--max-wait <ms>', 'how long a read at an unstable cut waits before EAGAIN', nonNegativeInt, MAX_WAIT_MS_DEFAULT)
    .option('--sensor-lag-max <ms>', `Δ: the most a sensor timestamp may lag platform time (default ${TIME_DEFAULTS.sensorLagMaxMs}; a group's: its config's)`, nonNegativeInt)
    .option('--clock-skew-max <ms>', `δ: the bound on writer/platform clock skew (default ${TIME_DEFAULTS.clockSkewMaxMs}; a group's: its config's)`, nonNegativeInt)
}

function defineCommands(program: Command): void {
  const mounting = (): Promise<typeof import('./mounting.js')> => import('./mounting.js')
  const inspect = (): Promise<typeof import('./inspect.js')> => import('./inspect.js')

  withReadOptions(program.command('mount').argument('<dir>', 'mount point (created if missing)'))
    .option('--data-dir <dir>', 'embedded: where the log and index live (default: ~/.local/share/fffs/NAME-HASH)')
    .option('--cluster <config>', 'mount a replicated group (its config.json) instead of an embedded store')
    .option('--keep-all-for <duration>', 'embedded: keep every version until it has been superseded this long (7d, 12h); older history is compacted (default: keep everything)')
    .option('--tier <after:every>', 'embedded: beyond --keep-all-for, keep the tree at one instant per EVERY from AFTER on (7d:1h); repeat for coarser tiers', (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    .option('--min-versions <n>', "embedded: keep each file's newest N versions at the history floor, readable as PATH@vN", nonNegativeInt)
    .option('--force-retention', `embedded: allow --keep-all-for below the safety floor (1h)`)
    .option('--gc-budget <MiB/s>', 'embedded: the most background segment GC copies per second', positiveNumber)
    .addOption(new Option('--durability <mode>', 'embedded: when close returns: once written to the log (fsync waits for the sync; default), or once synced').choices([...DURABILITY_MODES]))
    .description('mount fffs at DIR: an embedded store, or a group with --cluster (runs in the foreground; Ctrl-C unmounts)')
    .action(async (dir: string, opts: MountOptions) => (await mounting()).runMount(dir, opts))

  program
    .command('init')
    .argument('<dir>', 'directory for config.json and cluster.key')
    .option('--replicas <n>', 'replicas per shard', positiveInt, 3)
    .option('--shards <n>', 'data shards (more than one: plus a meta shard for the namespace)', positiveInt, 1)
    .option('--members <n>', 'member processes (default: --replicas; each serves every shard it can)', positiveInt)
    .option('--base-port <port>', 'first TCP port (each member uses 2 per shard group from there on)', positiveInt)
    .option('--sensor-lag-max <ms>', 'Δ of the group: the most a sensor timestamp may lag platform time', nonNegativeInt, TIME_DEFAULTS.sensorLagMaxMs)
    .option('--clock-skew-max <ms>', 'δ of the group: the bound on writer/platform clock skew', nonNegativeInt, TIME_DEFAULTS.clockSkewMaxMs)
    .addOption(new Option('--durability <mode>', 'when close returns: once written at every replica (fsync waits for the sync), or once synced there').choices([...DURABILITY_MODES]).default(DURABILITY_DEFAULT))
    .description('write the config and cluster key of a local group')
    .action(async (dir: string, opts: { replicas: number; shards: number; members?: number; basePort?: number; sensorLagMax: number; clockSkewMax: number; durability: Durability }) => {
      const [{ runInit }, path] = await Promise.all([import('./init.js'), import('node:path')])
      const time = { sensorLagMaxMs: opts.sensorLagMax, clockSkewMaxMs: opts.clockSkewMax }
      await runInit(path.resolve(dir), { replicas: opts.replicas, shards: opts.shards, time, durability: opts.durability, ...(opts.members !== undefined ? { members: opts.members } : {}), ...(opts.basePort !== undefined ? { basePort: opts.basePort } : {}) })
    })

  program
    .command('serve')
    .requiredOption('--config <file>', 'the group config (config.json)')
    .requiredOption('--id <n>', 'this member id', nonNegativeInt)
    .addOption(new Option('--with-parent', 'run as a member of `fffs up`: stop with it').hideHelp())
    .description('run one member of a replicated group (foreground; Ctrl-C stops it)')
    .action(async (opts: { config: string; id: number; withParent?: boolean }) => (await import('./serve.js')).runServe(opts))

  withReadOptions(program.command('up').argument('<dir>', 'mount point (created if missing)'))
    .option('--replicas <n>', 'replicas per shard', positiveInt, 3)
    .option('--shards <n>', 'data shards (more than one: plus a meta shard for the namespace)', positiveInt, 1)
    .option('--group-dir <dir>', 'where the group config, key and member data live (default: ~/.local/share/fffs/NAME-HASH/group)')
    .description('start a local replicated group (one process per member; members already running are used) and mount it at DIR; Ctrl-C stops both')
    .action(async (dir: string, opts: UpOptions) => (await mounting()).runUp(dir, opts))

  program
    .command('unmount')
    .argument('<dir>', 'mount point')
    .description('unmount a running fffs mount (its process stops) and wait until it is gone')
    .action(async (dir: string) => (await mounting()).runUnmount(dir))

  program
    .command('log')
    .argument('[path]', 'a file or directory inside a mount (PATH@SPEC: the history of PATH)')
    .option('--gc', 'instead: the audit of retention and GC runs (the floor each set, versions dropped, space freed)')
    .option('--mount <dir>', 'with --gc: the mount (default: the one holding the cwd, or the only one)')
    .option('--object', 'the history of the object PATH names, across its names (by default: of the name)')
    .option('--since <spec>', 'rows from this platform time on')
    .option('--until <spec>', 'rows up to this platform time')
    .option('--limit <n>', 'at most this many rows', positiveInt)
    .option('--reverse', 'newest first')
    .option('--json', 'machine-readable output')
    .description(
      'list the versions PATH@T returned over time, one row each (PATH@vN is row N): content changes, replacement by rename, ' +
        'removal and re-creation, with the object (inode) of each and its names (hard links); for a directory, what changed among its entries',
    )
    .action(async (target: string | undefined, opts: LogOptions) => (await inspect()).runLog(target, opts))

  program
    .command('cat')
    .argument('<path>', 'PATH or PATH@SPEC inside a mount')
    .description('print a file as of a cut')
    .action(async (target: string) => (await inspect()).runCat(target))

  program
    .command('ls')
    .argument('<path>', 'DIR or DIR@SPEC inside a mount')
    .option('--json', 'machine-readable output')
    .description('list a directory as of a cut')
    .action(async (target: string, opts: { json?: boolean }) => (await inspect()).runLs(target, opts))

  program
    .command('restore')
    .argument('<path@spec>', 'a file or directory inside a mount, as of a cut (PATH@SPEC)')
    .option('--to <dest>', 'copy it to DEST (a new path, in the mount or anywhere) instead of restoring it in place')
    .option('--json', 'print what was done as JSON')
    .description('bring a file or a tree back as it was at SPEC: in place, as new versions of the live path (entries made since are removed; history keeps them), or as a copy at DEST')
    .action(async (target: string, opts: RestoreOptions) => (await import('./restore.js')).runRestore(target, opts))

  program
    .command('diff')
    .argument('<a>', 'PATH@SPEC (or a live PATH) inside a mount')
    .argument('<b>', 'PATH@SPEC (or a live PATH) inside a mount')
    .option('--json', 'machine-readable output (trees: added, removed, changed)')
    .option('--name-only', 'for two files: say whether they differ, without the line diff')
    .description('what changed between two cuts: for trees the files added, removed and changed; for two files a unified diff (the system diff)')
    .action(async (a: string, b: string, opts: DiffOptions) => (await import('./diff.js')).runDiff(a, b, opts))

  const snapshot = program.command('snapshot').description('named snapshots: pinned cuts, readable at MOUNT/.snapshot/NAME/')
  snapshot
    .command('create')
    .argument('<name>')
    .option('--at <spec>', 'platform time to pin (default: now)')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .description('pin a cut under a name: MOUNT/.snapshot/NAME/ shows the whole tree as of it (same as mkdir MOUNT/.snapshot/NAME)')
    .action(async (name: string, opts: { at?: string; mount?: string; json?: boolean }) => (await inspect()).runSnapshotCreate(name, opts))
  snapshot
    .command('list')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .description('list the snapshots: name, the instant each pins, and the spec it was made with')
    .action(async (opts: { mount?: string; json?: boolean }) => (await inspect()).runSnapshotList(opts))
  snapshot
    .command('delete')
    .argument('<name>')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .description('remove a snapshot name (same as rmdir MOUNT/.snapshot/NAME; refused while it is held); what only it pinned is compacted at the next retention run')
    .action(async (name: string, opts: { mount?: string }) => (await inspect()).runSnapshotDelete(name, opts))
  for (const [verb, what] of [['hold', 'hold a snapshot under TAG: it cannot be deleted until every hold is released'], ['release', 'release the hold TAG on a snapshot']] as const) {
    snapshot
      .command(verb)
      .argument('<name>')
      .argument('<tag>')
      .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
      .description(what)
      .action(async (name: string, tag: string, opts: { mount?: string }) => (await inspect()).runSnapshotHold(verb, name, tag, opts))
  }

  program
    .command('gc')
    .option('--dry-run', 'print what a run would drop and free, change nothing')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .description('run retention now: move the history floor by the policy, drop what it no longer needs, and free log segments (each store of a group collects its own)')
    .action(async (opts: { dryRun?: boolean; mount?: string; json?: boolean }) => (await inspect()).runGc(opts))

  program
    .command('cut')
    .argument('<spec>', 'a SPEC as after @ in a path: platform time, sensor:/gps: time, or vN (with a path)')
    .argument('[path]', 'a file or directory inside a mount: which version the cut picks for it')
    .option('--mount <dir>', 'the mount, when no path is given (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output')
    .description('what a cut resolves to: its stamp, on each shard stable or how long until, and the version it picks for PATH')
    .allowUnknownOption() // so that a relative SPEC (`fffs cut -5m`) is the argument it looks like
    .action(async (spec: string, target: string | undefined, opts: { mount?: string; json?: boolean }) => (await inspect()).runCut(spec, target, opts))

  program
    .command('watch')
    .argument('<pattern>', 'a path prefix or glob (*, ?, **) inside a mount')
    .option('--since <spec>', 'also report versions after this platform time (default: from now)')
    .option('--period <ms>', 'how often to ask the mount', positiveInt, WATCH_PERIOD_MS_DEFAULT)
    .option('--count <n>', 'exit after this many versions', positiveInt)
    .option('--json', 'one JSON object per line')
    .description('stream versions of matching files as they become stable, in stamp order, with paths relative to the mount (Ctrl-C stops)')
    .action(async (pattern: string, opts: { since?: string; period: number; count?: number; json?: boolean }) => (await inspect()).runWatch(pattern, opts))

  program
    .command('status')
    .option('--mount <dir>', 'the mount (default: the one holding the cwd, or the only one)')
    .option('--json', 'machine-readable output, everything (with --watch: one JSON object per line)')
    .option('--verbose', "also each member's row of the shared state table, ballots and HLC logical counters")
    .option('--watch [ms]', 'refresh every ms (default 1000) until Ctrl-C')
    .description('show the mount and, for a group, its view, every member (pid, phase) and how far behind each is')
    .action(async (opts: { mount?: string; json?: boolean; watch?: string | boolean; verbose?: boolean }) => (await inspect()).runStatus(opts))

  addDemoCommand(program)
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command()
  program
    .name('fffs')
    .description('Freeze-Frame File System: every committed write is a version; read any tree as it was with path@SPEC')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
  defineCommands(program)
  try {
    await program.parseAsync(argv)
  } catch (err) {
    exit(err)
  }
}

/** A failed command: one line on stderr, then exit at once (a connection left open must not keep it alive). */
function exit(err: unknown): never {
  let code = 1
  if (err instanceof CommanderError) {
    if (err.exitCode === 0) process.exit(0) // --help, --version
    // Commander printed its own errors; ours (thrown by option parsers and actions) it did not.
    if (!err.code.startsWith('commander.')) process.stderr.write(`fffs: ${err.message}\n`)
    code = USAGE_EXIT_CODE
  } else {
    process.stderr.write(`fffs: ${err instanceof Error ? err.message : String(err)}\n`)
  }
  process.exit(code) // stderr is synchronous on Linux (files, pipes, terminals): the line is out
}
