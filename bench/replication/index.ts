// The replication bench (`node dist/bench/replication/index.js [--quick]`, after `npm run build`):
// a local group of r = 1 and r = 3 members, each a real `fffs serve` process (writeLocalGroup:
// 127.0.0.1, the config's provider), mounted with `fffs mount --cluster`, measured with plain
// synchronous file I/O in a worker thread, as the fs bench does:
// - sequential write of `seqBytes` in 1 MiB writes, including the close (= durable at every
//   member of the view), and the CPU the members and the mount used for it per MiB (from
//   /proc: user + system time of every thread; the r=3 group is CPU-bound on 2 cores);
// - sequential read of that file in 1 MiB reads, opened afresh (a live file: the kernel drops
//   its cached pages at open, so every byte comes through the mount from the group);
// - small files: create+write 4 KiB+close, each timed: the close latency p50/p99 and files/s;
// - ordered 1 KB records: a RemoteClient (the mount's client, without FUSE) submits setxattr
//   records carrying 1 KB on the root; a submit returns once the record is ordered, delivered
//   and applied, and durable at every member (the global persistence frontier passed it) —
//   the same guarantee as a close. Measured with 1 record in flight (latency) and with
//   `messageWindow` in flight (rate). The RemoteClient is the driver because it is what every
//   write pays (wire + ordering + persistence) and it needs no internal API of the member.
// Rounds are interleaved (r=1 group, then r=3 group, each started fresh, stopped after) and
// the median round is reported (`--rounds N`: N rounds; `--seq-only`: the sequential write
// and read alone, for A/B runs of the data path; `--seq-mib N`: its size; `--replicas R`: one group
// size only, for profiling; every round's CPU by thread is in the JSON). Targets are reported as PASS/MISS, never asserted.

import { execFile, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startLocalGroup, waitGroupRunning } from '../../src/cli/cluster.js'
import { READY_PREFIX } from '../../src/cli/output.js'
import { loadGroupConfig, writeLocalGroup, type GroupConfig } from '../../src/replication/config.js'
import { RemoteClient } from '../../src/replication/remoteClient.js'
import { ROOT_INO } from '../../src/store/records.js'
import { inWorker as runInWorker, killAll, startMount, stopAll, type Mount } from '../fs/mounts.js'
import type { Task, Throughput } from '../fs/tasks.js'
import { BenchProgress } from '../progress.js'
import { renderText } from '../tables.js'
import { replicationSections, type Summary } from './tables.js'
import type { TimedFiles, TimedFilesTask } from './worker.js'

const MiB = 1024 * 1024
const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..', '..') // dist/bench/replication -> repo
const FFFS_BIN = path.join(repoRoot, 'bin', 'fffs')
const execFileP = promisify(execFile)

export interface ReplicationBenchConfig {
  seqBytes: number
  smallFiles: number
  smallFileBytes: number
  messageBytes: number
  messagesSequential: number
  messagesWindowed: number
  messageWindow: number
  repeats: number
}

export const defaultConfig: ReplicationBenchConfig = {
  seqBytes: 256 * MiB,
  smallFiles: 1000,
  smallFileBytes: 4096,
  messageBytes: 1024,
  messagesSequential: 1000,
  messagesWindowed: 5000,
  messageWindow: 32,
  repeats: 3,
}

export const quickConfig: ReplicationBenchConfig = {
  seqBytes: 32 * MiB,
  smallFiles: 200,
  smallFileBytes: 4096,
  messageBytes: 1024,
  messagesSequential: 200,
  messagesWindowed: 1000,
  messageWindow: 32,
  repeats: 1,
}

interface Messages {
  inFlight: number
  count: number
  seconds: number
  p50Us: number
  p99Us: number
}

interface Round {
  replicas: number
  provider: string | null
  seqWrite: Throughput | null
  seqCpuMsPerMiB: number | null // CPU of the members and the mount during the sequential write, per MiB
  seqThreadCpuMsPerMiB: Record<string, number> | null // the same by process and thread name
  seqRead: Throughput | null
  small: { count: number; seconds: number; p50Us: number; p99Us: number } | null
  messages: Messages[]
}

const benchProgress = new BenchProgress('replication')
const progress = (text: string): void => benchProgress.step(text)

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

// ---------------------------------------------------------------- a group as processes

interface Group {
  readonly config: GroupConfig
  readonly mount: Mount
  readonly pids: number[] // the members' and the mount's processes
  readonly labels: string[] // per pid: "member ID" or "mount"
  stop(): Promise<void>
}

const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ of /proc/PID/stat: 100 on Linux x86-64 and arm64

/** CPU seconds (user + system, every thread) a process has used so far; null once it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return null
  }
}

/** Sum of cpuSeconds over `pids`; null when any is unreadable (not Linux, or a process died). */
function groupCpuSeconds(pids: readonly number[]): number | null {
  let total = 0
  for (const pid of pids) {
    const seconds = cpuSeconds(pid)
    if (seconds === null) return null
    total += seconds
  }
  return total
}

/** CPU seconds per thread of `pid`, keyed by thread name (comm; threads of one name summed; the main thread is "main"). */
function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>()
  let tids: string[] = []
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return byName
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND)
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return byName
}

/** ms of CPU per MiB by process and thread name between two samples ("member 1/fffs-cq": 0.4); threads that ended are missed. */
function threadCpuMsPerMiB(labels: readonly string[], before: Array<Map<string, number>>, after: Array<Map<string, number>>, mib: number): Record<string, number> {
  const out: Record<string, number> = {}
  labels.forEach((label, i) => {
    for (const [name, seconds] of after[i]!) {
      const ms = ((seconds - (before[i]!.get(name) ?? 0)) * 1000) / mib
      if (ms >= 0.05) out[`${label}/${name}`] = Math.round(ms * 100) / 100
    }
  })
  return out
}

const liveMembers = new Set<ChildProcess>()

async function startGroup(root: string, replicas: number): Promise<Group> {
  const dir = path.join(root, `group-r${replicas}`)
  fs.rmSync(dir, { recursive: true, force: true })
  const config = await loadGroupConfig(await writeLocalGroup(dir, { replicas, shards: 1 }))
  const log: string[] = []
  const group = await startLocalGroup(config, (line) => {
    log.push(line + '\n')
    if (log.length > 200) log.splice(0, log.length - 200)
  })
  const stopMembers = group.stop
  const members = config.members.flatMap((m) => (group.children.has(m.id) ? [{ id: m.id, child: group.children.get(m.id)! }] : []))
  for (const { child } of members) {
    liveMembers.add(child)
    child.once('exit', () => liveMembers.delete(child))
  }
  try {
    await waitGroupRunning(config, group.exited).catch((err: Error) => {
      throw new Error(`group of ${replicas}: ${err.message}: ${log.join('')}`)
    })
    const mountpoint = path.join(root, `mnt-r${replicas}`)
    fs.mkdirSync(mountpoint, { recursive: true })
    const mount = await startMount(`fffs r=${replicas}`, [FFFS_BIN, 'mount', mountpoint, '--cluster', config.path], mountpoint, READY_PREFIX)
    return {
      config,
      mount,
      pids: [...members.map((m) => m.child), mount.child].flatMap((c) => (c.pid === undefined ? [] : [c.pid])),
      labels: [...members.flatMap((m) => (m.child.pid === undefined ? [] : [`member ${m.id}`])), ...(mount.child.pid === undefined ? [] : ['mount'])],
      async stop() {
        await mount.stop()
        await stopMembers()
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      },
    }
  } catch (err) {
    await stopMembers()
    throw err
  }
}

// ---------------------------------------------------------------- workloads

function inWorker<T>(task: Task | TimedFilesTask, deadlineMs: number): Promise<T> {
  return runInWorker<T>(path.join(here, 'worker.js'), task, deadlineMs)
}

/** `count` setxattr records of `bytes` on the root, `inFlight` at a time; latency per record. */
async function orderedMessages(config: GroupConfig, bytes: number, count: number, inFlight: number): Promise<Messages> {
  const client = await RemoteClient.connect(config, { log: () => undefined })
  try {
    const valueBase64 = Buffer.alloc(Math.floor((bytes * 3) / 4), 0x6d).toString('base64') // `bytes` on the wire
    const latenciesUs: number[] = []
    let next = 0
    const started = performance.now()
    const lane = async (): Promise<void> => {
      while (next < count) {
        const i = next++
        const began = process.hrtime.bigint()
        await client.submit({ type: 'setxattr', ino: ROOT_INO, name: `user.bench${i % 16}`, valueBase64 })
        latenciesUs.push(Number(process.hrtime.bigint() - began) / 1000)
      }
    }
    await Promise.all(Array.from({ length: inFlight }, lane))
    const seconds = (performance.now() - started) / 1000
    latenciesUs.sort((a, b) => a - b)
    return { inFlight, count, seconds, p50Us: percentile(latenciesUs, 0.5), p99Us: percentile(latenciesUs, 0.99) }
  } finally {
    await client.close()
  }
}

async function runRound(root: string, replicas: number, config: ReplicationBenchConfig, round: number, errors: string[], seqOnly = false): Promise<Round> {
  const result: Round = { replicas, provider: null, seqWrite: null, seqCpuMsPerMiB: null, seqThreadCpuMsPerMiB: null, seqRead: null, small: null, messages: [] }
  const safely = async <T>(label: string, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run()
    } catch (err) {
      const message = `r=${replicas} round ${round + 1} ${label}: ${err instanceof Error ? err.message : String(err)}`
      errors.push(message)
      progress(`FAILED ${message}`)
      return null
    }
  }
  progress(`r=${replicas}: starting ${replicas} member process(es) and the mount`)
  const group = await safely('group start', () => startGroup(root, replicas))
  if (group === null) return result
  result.provider = group.config.transport.provider
  try {
    const settle = () => execFileP('sync', [], { timeout: 300_000 }).catch(() => undefined)
    const big = 30 * 60_000
    await settle()
    progress(`r=${replicas}: write ${config.seqBytes / MiB} MiB (pids: ${group.labels.map((label, i) => `${label} ${group.pids[i]}`).join(', ')})`)
    const threadsBefore = group.pids.map(threadCpuSeconds)
    const cpuBefore = groupCpuSeconds(group.pids)
    result.seqWrite = await safely('seq write', () => inWorker<Throughput>({ kind: 'seqWrite', file: path.join(group.mount.mountpoint, 'seq'), bytes: config.seqBytes, blockBytes: MiB, fsync: false }, big))
    const cpuAfter = groupCpuSeconds(group.pids)
    const threadsAfter = group.pids.map(threadCpuSeconds)
    if (result.seqWrite !== null && cpuBefore !== null && cpuAfter !== null) {
      result.seqCpuMsPerMiB = ((cpuAfter - cpuBefore) * 1000) / (config.seqBytes / MiB)
      result.seqThreadCpuMsPerMiB = threadCpuMsPerMiB(group.labels, threadsBefore, threadsAfter, config.seqBytes / MiB)
      progress(`r=${replicas}: seq write CPU ms/MiB by thread: ${Object.entries(result.seqThreadCpuMsPerMiB).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    }
    progress(`r=${replicas}: read it back`)
    result.seqRead = await safely('seq read', () => inWorker<Throughput>({ kind: 'seqRead', file: path.join(group.mount.mountpoint, 'seq'), blockBytes: MiB }, big))
    if (seqOnly) return result
    await settle()
    progress(`r=${replicas}: ${config.smallFiles} small files, each timed`)
    const timed = await safely('small files', () => inWorker<TimedFiles>({ kind: 'smallFilesTimed', dir: path.join(group.mount.mountpoint, 'small'), count: config.smallFiles, bytes: config.smallFileBytes }, big))
    if (timed !== null) {
      const sorted = [...timed.closeUs].sort((a, b) => a - b)
      result.small = { count: timed.count, seconds: timed.seconds, p50Us: percentile(sorted, 0.5), p99Us: percentile(sorted, 0.99) }
    }
    for (const [count, inFlight] of [
      [config.messagesSequential, 1],
      [config.messagesWindowed, config.messageWindow],
    ] as const) {
      progress(`r=${replicas}: ${count} ordered ${config.messageBytes} B records, ${inFlight} in flight`)
      const messages = await safely(`messages x${inFlight}`, () => orderedMessages(group.config, config.messageBytes, count, inFlight))
      if (messages !== null) result.messages.push(messages)
    }
  } finally {
    progress(`r=${replicas}: stopping the group`)
    await group.stop()
  }
  return result
}

// ---------------------------------------------------------------- summary

/** The median of the rounds' values (null values skipped). */
function median(values: Array<number | null>): number | null {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b)
  return xs.length === 0 ? null : xs[Math.floor((xs.length - 1) / 2)]!
}

function summarize(rounds: Round[], replicaCounts: number[], config: ReplicationBenchConfig): Summary {
  const of = (r: number) => rounds.filter((x) => x.replicas === r)
  const seqReadMBps: Record<number, number | null> = {}
  const s: Summary = { seqWriteMBps: {}, seqCpuMsPerMiB: {}, seqReadMBps, closeP50Ms: {}, closeP99Ms: {}, smallFilesPerSec: {}, messages: {} }
  for (const r of replicaCounts) {
    s.seqWriteMBps[r] = median(of(r).map((x) => (x.seqWrite ? x.seqWrite.bytes / 1e6 / x.seqWrite.seconds : null)))
    s.seqCpuMsPerMiB[r] = median(of(r).map((x) => x.seqCpuMsPerMiB))
    seqReadMBps[r] = median(of(r).map((x) => (x.seqRead ? x.seqRead.bytes / 1e6 / x.seqRead.seconds : null)))
    s.closeP50Ms[r] = median(of(r).map((x) => (x.small ? x.small.p50Us / 1000 : null)))
    s.closeP99Ms[r] = median(of(r).map((x) => (x.small ? x.small.p99Us / 1000 : null)))
    s.smallFilesPerSec[r] = median(of(r).map((x) => (x.small ? x.small.count / x.small.seconds : null)))
    s.messages[r] = [1, config.messageWindow].map((inFlight) => {
      const ms = of(r).map((x) => x.messages.find((m) => m.inFlight === inFlight) ?? null)
      return {
        inFlight,
        perSec: median(ms.map((m) => (m ? m.count / m.seconds : null))),
        p50Ms: median(ms.map((m) => (m ? m.p50Us / 1000 : null))),
        p99Ms: median(ms.map((m) => (m ? m.p99Us / 1000 : null))),
      }
    })
  }
  return s
}

// ---------------------------------------------------------------- entry

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick')
  const roundsAt = args.indexOf('--rounds')
  const seqOnly = args.includes('--seq-only') // only the sequential write and read (A/B runs of the data path)
  const seqMiBAt = args.indexOf('--seq-mib')
  const config: ReplicationBenchConfig = {
    ...(quick ? quickConfig : defaultConfig),
    ...(roundsAt >= 0 ? { repeats: Number(args[roundsAt + 1]) } : {}),
    ...(seqMiBAt >= 0 ? { seqBytes: Number(args[seqMiBAt + 1]) * MiB } : {}),
  }
  if (!(Number.isInteger(config.repeats) && config.repeats > 0)) throw new Error(`--rounds ${args[roundsAt + 1]}: a positive integer expected`)
  if (!(Number.isInteger(config.seqBytes) && config.seqBytes > 0)) throw new Error(`--seq-mib ${args[seqMiBAt + 1]}: a positive integer expected`)
  const replicasAt = args.indexOf('--replicas') // one group size only (profiling)
  const replicaCounts = replicasAt >= 0 ? [Number(args[replicasAt + 1])] : [1, 3]
  const started = new Date()
  const header = `fffs replication bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''} · tmp ${os.tmpdir()}${quick ? ' · QUICK' : ''}${seqOnly ? ' · SEQ ONLY' : ''}`
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fffs-bench-repl-'))
  const errors: string[] = []
  const rounds: Round[] = []
  const onSignal = () => {
    for (const child of liveMembers) child.kill('SIGKILL')
    void killAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let provider: string
  try {
    for (let round = 0; round < config.repeats; round++) {
      benchProgress.round(round, config.repeats)
      for (const replicas of replicaCounts) rounds.push(await runRound(root, replicas, config, round, errors, seqOnly))
    }
  } finally {
    await stopAll()
    for (const child of liveMembers) child.kill('SIGKILL')
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  provider = rounds.find((r) => r.provider !== null)?.provider ?? '?'
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 })
  const summary = summarize(rounds, replicaCounts, config)
  const outDir = path.join(repoRoot, 'bench', 'out')
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'replication.json')
  fs.writeFileSync(file, JSON.stringify({ started: started.toISOString(), header, config, summary, rounds, errors }, null, 2) + '\n')
  process.stdout.write(`${header}\n\n${[renderText(replicationSections(summary, config, provider)), ...errors.map((e) => `ERROR: ${e}`)].join('\n')}\n\n(wrote ${path.relative(process.cwd(), file) || file}; took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`)
  if (errors.length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
