// The local group of `fffs up` (what `npm start` runs): its config, its members as child
// processes (members already running are adopted), and the wait until every member runs in a
// view. Light until a member answers: the replication client code is loaded to ask it.

import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { errors, FffsError } from '../errors.js'
import { CONFIG_FILE_NAME, loadGroupConfig, memberById, writeLocalGroup, type GroupConfig, type GroupMember, type LocalGroupOptions } from '../replication/config.js'
import { shardGroups } from '../replication/shards.js'
import { describeTransfer, type TransferStatus } from '../replication/readiness.js'
import { isLogLine, logLine, timestamped } from './output.js'

const MEMBER_SERVING_TIMEOUT_MS = 60_000
const GROUP_STALL_TIMEOUT_MS = 60_000 // the group forming, with nothing moving
const GROUP_POLL_PERIOD_MS = 200
const PROGRESS_LINE_PERIOD_MS = 5_000
const STATUS_TIMEOUT_MS = 2_000
const MEMBER_STOP_TIMEOUT_MS = 10_000

/** The group config of `fffs up DIR`: made on first use next to the mount's default data. */
export async function localGroupConfig(groupDir: string, options: LocalGroupOptions): Promise<GroupConfig> {
  const { replicas, shards } = options
  const file = path.join(groupDir, CONFIG_FILE_NAME)
  const exists = await fsp.stat(file).then(() => true, () => false)
  if (!exists) await writeLocalGroup(groupDir, options)
  const config = await loadGroupConfig(file)
  const { layout } = config
  if (layout.replicas !== replicas || layout.shards !== shards) {
    throw errors.invalid(`${file} has ${layout.shards} shard(s) of ${layout.replicas} replicas, not ${shards} of ${replicas}; remove ${groupDir} or pass matching --replicas/--shards`)
  }
  return config
}

/** What a member answers to a status request (src/replication/member.ts MemberStatus, plus the serving process's pid). */
interface MemberAnswer {
  readonly pid?: number
  readonly phase?: string
  readonly core: { readonly view: { readonly vid: number; readonly members: readonly number[] } } | null
  readonly memberIds: readonly number[]
  readonly [more: string]: unknown
}

/** True when something accepts connections on the member's client port (no handshake: cheap, and no client code loaded). */
function listening(member: GroupMember): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: member.host, port: member.clientPort })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** The member's status (authenticated with the cluster key), or null when it does not answer. */
async function askMember(config: GroupConfig, member: GroupMember, timeoutMs = STATUS_TIMEOUT_MS): Promise<MemberAnswer | null> {
  try {
    const { fetchMemberStatus } = await import('../replication/remoteClient.js')
    return (await fetchMemberStatus(config, member, timeoutMs)) as MemberAnswer
  } catch {
    return null
  }
}

export interface LocalGroup {
  /** Member id -> the child process, for the members this group started. */
  readonly children: ReadonlyMap<number, ChildProcess>
  /** Why a member this group started is gone (`member 1 exited (code 1)`), or null while all run. */
  exited(): string | null
  /** Stops the members this process started (adopted ones are left running and reported). */
  stop(): Promise<void>
}

/**
 * Runs every member of `config`: a member already answering on its client port (started by
 * hand, or by another `fffs up`) is adopted, the others are started as child processes.
 * Resolves once each started one serves clients. Children's lines go to `relay`, timestamped.
 */
export async function startLocalGroup(config: GroupConfig, relay: (line: string) => void = (line) => process.stderr.write(line + '\n')): Promise<LocalGroup> {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/fffs')
  const groups = shardGroups(config)
  const endpointOf = (id: number): { config: GroupConfig; member: GroupMember } => {
    const group = groups.find((g) => g.config.members.some((m) => m.id === id))!
    return { config: group.config, member: memberById(group.config, id) }
  }
  const children = new Map<number, ChildProcess>()
  let stopping = false
  await Promise.all(
    config.members.map(async ({ id }) => {
      const { config: groupConfig, member } = endpointOf(id)
      const running = (await listening(member)) ? await askMember(groupConfig, member, 1_000) : null
      if (running !== null) {
        logLine(`fffs: member ${id} is running already (pid ${running.pid ?? 'unknown'}): using it; it is not stopped with this group`)
        return
      }
      const child = spawn(process.execPath, [bin, 'serve', '--config', config.path, '--id', String(id), '--with-parent'], { stdio: ['pipe', 'pipe', 'pipe'] })
      children.set(id, child)
      relayLines(child, id, relay)
      child.once('exit', (code, signal) => {
        if (stopping) return
        logLine(`fffs: member ${id} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); the others go on while a majority runs; start it again with: fffs serve --config ${config.path} --id ${id}`)
      })
    }),
  )
  const stop = async (): Promise<void> => {
    stopping = true
    await Promise.all([...children.values()].map((child) => stopChild(child)))
    // Members this group did not start (adopted, or started by hand after one of ours died).
    for (const { id } of config.members) {
      const { config: groupConfig, member } = endpointOf(id)
      const running = (await listening(member)) ? await askMember(groupConfig, member, 1_000) : null
      if (running !== null) logLine(`fffs: member ${id} (pid ${running.pid ?? 'unknown'}) was not started by this fffs up and is still running${running.pid !== undefined ? `: kill ${running.pid} stops it` : ''}`)
    }
  }
  try {
    for (const [id, child] of children) await waitServing(endpointOf(id).config, endpointOf(id).member, child)
  } catch (err) {
    await stop()
    throw err
  }
  const exited = (): string | null => {
    for (const [id, child] of children) if (child.exitCode !== null || child.signalCode !== null) return `member ${id} exited (${child.signalCode ?? `code ${child.exitCode}`})`
    return null
  }
  return { children, exited, stop }
}

/** Each line a child writes: as it is when it is a log line (timestamped), else timestamped and named. */
function relayLines(child: ChildProcess, id: number, relay: (line: string) => void): void {
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (text: string) => {
      const lines = (partial + text).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        if (line.trim() === '') continue
        relay(isLogLine(line) ? line : timestamped(`[member ${id}] ${line}`))
      }
    })
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), MEMBER_STOP_TIMEOUT_MS)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Until the child answers a status request on its client port (it serves clients). */
async function waitServing(config: GroupConfig, member: GroupMember, child: ChildProcess): Promise<void> {
  const deadlineMs = Date.now() + MEMBER_SERVING_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new FffsError('EIO', `member ${member.id} exited (${child.signalCode ?? `code ${child.exitCode}`}) before serving on ${member.host}:${member.clientPort}`)
    if ((await listening(member)) && (await askMember(config, member, 1_000)) !== null) return
    if (Date.now() > deadlineMs) throw new FffsError('EIO', `member ${member.id} not serving on ${member.host}:${member.clientPort} after ${MEMBER_SERVING_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_PERIOD_MS))
  }
}

/** One member's state in one shard group, as the progress lines print it. */
function phaseOf(answer: MemberAnswer | null, withProgress: boolean): string {
  if (answer === null) return 'not answering'
  const phase = answer.phase ?? 'unknown'
  const progress = withProgress ? catchUpText(answer) : null
  if (answer.core === null) return progress === null ? phase : `${phase}, ${progress}`
  return `${phase} in view ${answer.core.view.vid}`
}

/**
 * What a member reports of its catching up (its status's `transfer`, a state transfer under
 * way): `catching up from member 0: 40% of 1.2 GiB, about 3 s left`. Null when it reports none.
 */
/** The member's state transfer in the words its own log uses, when it reports one. */
function catchUpText(answer: MemberAnswer): string | null {
  const transfer = answer.transfer as TransferStatus | null | undefined
  return typeof transfer === 'object' && transfer !== null && typeof transfer.totalBytes === 'number' && transfer.totalBytes > 0 ? describeTransfer(transfer) : null
}

/**
 * Waits until every member of every shard group runs in one view that holds them all. Prints a
 * progress line when a member's phase changes, and while one catches up at most every few
 * seconds. Gives up when nothing has moved for GROUP_STALL_TIMEOUT_MS (a long catch-up that
 * moves is waited for), or when `exited` names a member that is gone. Returns each shard
 * group's view number.
 */
export async function waitGroupRunning(config: GroupConfig, exited: () => string | null = () => null): Promise<Array<{ shard: string; vid: number }>> {
  let shownPhases = ''
  let shownPicture = ''
  let shownAtMs = 0
  let movedAtMs = Date.now()
  for (;;) {
    const groups = await Promise.all(
      shardGroups(config).map(async (group) => ({ group, answers: await Promise.all(group.config.members.map(async (m) => ({ id: m.id, answer: await askMember(group.config, m) }))) })),
    )
    const views = groups.map(({ group, answers }) => {
      const vids = new Set(answers.map(({ answer }) => (answer?.phase === 'running' && answer.core !== null && answer.core.view.members.length === answers.length ? answer.core.view.vid : -1)))
      return { shard: group.name, vid: vids.size === 1 ? [...vids][0]! : -1 }
    })
    if (views.every((v) => v.vid >= 0)) return views
    const gone = exited()
    if (gone !== null) throw new FffsError('EIO', `the group did not form: ${gone} (its log is above)`)
    const describe = (withProgress: boolean): string =>
      groups.map(({ group, answers }) => `${group.name === 'all' ? '' : `${group.name}: `}${answers.map(({ id, answer }) => `member ${id} ${phaseOf(answer, withProgress)}`).join(', ')}`).join('; ')
    const [phases, picture] = [describe(false), describe(true)]
    const nowMs = Date.now()
    if (picture !== shownPicture) movedAtMs = nowMs
    if (phases !== shownPhases || (picture !== shownPicture && nowMs - shownAtMs >= PROGRESS_LINE_PERIOD_MS)) {
      logLine(`fffs: forming the group: ${picture}`)
      ;[shownPhases, shownPicture, shownAtMs] = [phases, picture, nowMs]
    }
    if (nowMs - movedAtMs > GROUP_STALL_TIMEOUT_MS) throw new FffsError('EIO', `the group did not form: nothing moved for ${GROUP_STALL_TIMEOUT_MS / 1000} s: ${picture}`)
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_PERIOD_MS))
  }
}
