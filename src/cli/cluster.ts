// The commands of a replicated group: `fffs serve` runs one member, `fffs up` runs a local
// group of members as child processes (adopting members already running) plus a mount of it
// (what `npm start` runs), and waits until every member runs in a view before the mount.

import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { errors, FffsError } from '../errors.js'
import { CONFIG_FILE_NAME, loadGroupConfig, memberById, writeLocalGroup, type GroupConfig, type GroupMember, type LocalGroupOptions } from '../replication/config.js'
import { Member } from '../replication/member.js'
import { fetchMemberStatus, serveClient } from '../replication/remote.js'
import { shardGroups, shardGroupsOf, startPerShard } from '../replication/shards.js'
import { listen } from '../replication/wire.js'
import { openDataDir } from './dataDir.js'
import { isLogLine, logLine, timestamped } from './output.js'

const GROUP_READY_TIMEOUT_MS = 60_000
const GROUP_POLL_PERIOD_MS = 200
const STATUS_TIMEOUT_MS = 2_000
const MEMBER_STOP_TIMEOUT_MS = 10_000

/**
 * Runs member `id`: one Member per shard group it serves (src/replication/shards.ts), each
 * with its own transport, log and client port. A fatal error in any of them ends the process
 * (Member.fail exits), so the shards of one process live and die together, like one node.
 * `withParent` (a member `fffs up` started): SIGINT is left to the parent, which stops the
 * member after unmounting (a Ctrl-C reaches the whole process group), and the member stops
 * when the parent is gone (its stdin closes).
 */
export async function runServe(opts: { config: string; id: number; withParent?: boolean }): Promise<void> {
  const config = await loadGroupConfig(path.resolve(opts.config))
  memberById(config, opts.id)
  // One shard group that cannot start (a port in use, a bad log): the process serves none.
  const served = await startPerShard(
    shardGroupsOf(config, opts.id),
    async (group) => {
      const self = memberById(group.config, opts.id)
      const shard = group.role === 'all' ? '' : ` [${group.name}]`
      const member = await openDataDir(self.dataDir, () => Member.open(group.config, opts.id, { log: (line) => logLine(`${line}${shard}`) }))
      try {
        const server = await listen(self.clientPort, self.host, config.key, (connection) =>
          serveClient(connection, member.client, { dedupesSubmits: true, memberId: opts.id, status: () => ({ ...member.status(), pid: process.pid }), extraRequests: (request) => member.handlePeerRequest(request) }),
        )
        return { group, self, member, server }
      } catch (err) {
        await member.stop().catch(() => undefined)
        throw err
      }
    },
    async ({ server, member }) => {
      await server.close().catch(() => undefined)
      await member.stop()
    },
  )
  if (served.length === 0) throw errors.invalid(`member ${opts.id} serves no shard in the layout of ${config.path} (a spare: it waits to be added by a join)`)
  let stopping = false
  const stop = async (why: string): Promise<void> => {
    if (stopping) return
    stopping = true
    logLine(`fffs: member ${opts.id}: stopping (${why})`)
    await Promise.all(served.map(({ server }) => server.close().catch(() => undefined)))
    await Promise.all(served.map(({ member }) => member.stop()))
    process.exit(0)
  }
  if (opts.withParent === true) {
    process.on('SIGINT', () => undefined)
    process.stdin.on('end', () => void stop('fffs up is gone')).on('error', () => void stop('fffs up is gone')).resume()
  } else {
    process.on('SIGINT', () => void stop('SIGINT'))
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  for (const { group, self } of served) {
    const shard = group.role === 'all' ? '' : ` shard ${group.name}`
    logLine(`fffs: member ${opts.id} of ${config.name}${shard} (pid ${process.pid}) serving clients on ${self.host}:${self.clientPort} (data ${self.dataDir}); joining the group`)
  }
  await Promise.all(served.map(({ member }) => member.recover()))
}

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

async function askMember(config: GroupConfig, member: GroupMember, timeoutMs = STATUS_TIMEOUT_MS): Promise<MemberAnswer | null> {
  try {
    return (await fetchMemberStatus(config, member, timeoutMs)) as MemberAnswer
  } catch {
    return null
  }
}

export interface LocalGroup {
  /** Member id -> pid of the members this group runs or adopted. */
  readonly pids: ReadonlyMap<number, number>
  /** Member id -> the child process, for the members this group started. */
  readonly children: ReadonlyMap<number, ChildProcess>
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
  const pids = new Map<number, number>()
  const children = new Map<number, ChildProcess>()
  let stopping = false
  await Promise.all(
    config.members.map(async ({ id }) => {
      const { config: groupConfig, member } = endpointOf(id)
      const running = await askMember(groupConfig, member, 1_000)
      if (running !== null) {
        if (running.pid !== undefined) pids.set(id, running.pid)
        logLine(`fffs: member ${id} is running already (pid ${running.pid ?? 'unknown'}): using it; it is not stopped with this group`)
        return
      }
      const child = spawn(process.execPath, [bin, 'serve', '--config', config.path, '--id', String(id), '--with-parent'], { stdio: ['pipe', 'pipe', 'pipe'] })
      children.set(id, child)
      if (child.pid !== undefined) pids.set(id, child.pid)
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
      const running = await askMember(groupConfig, member, 1_000)
      if (running !== null) logLine(`fffs: member ${id} (pid ${running.pid ?? 'unknown'}) was not started by this fffs up and is still running${running.pid !== undefined ? `: kill ${running.pid} stops it` : ''}`)
    }
  }
  try {
    for (const [id, child] of children) await waitServing(endpointOf(id).config, endpointOf(id).member, child)
  } catch (err) {
    await stop()
    throw err
  }
  return { pids, children, stop }
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
  const deadlineMs = Date.now() + GROUP_READY_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new FffsError('EIO', `member ${member.id} exited (${child.signalCode ?? `code ${child.exitCode}`}) before serving on ${member.host}:${member.clientPort}`)
    if ((await askMember(config, member, 1_000)) !== null) return
    if (Date.now() > deadlineMs) throw new FffsError('EIO', `member ${member.id} not serving on ${member.host}:${member.clientPort} after ${GROUP_READY_TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_PERIOD_MS))
  }
}

/** One member's state in one shard group, as the progress lines print it. */
function phaseOf(answer: MemberAnswer | null): string {
  if (answer === null) return 'not answering'
  const phase = answer.phase ?? 'unknown'
  const progress = catchUpText(answer)
  if (answer.core === null) return progress === null ? phase : `${phase}, ${progress}`
  return `${phase} in view ${answer.core.view.vid}`
}

/**
 * What a member reports of its catching up (state transfer): `catching up 40% of 1.2 GiB`.
 * Null when it reports none.
 */
function catchUpText(answer: MemberAnswer): string | null {
  const catchUp = answer.catchUp as { doneBytes?: unknown; totalBytes?: unknown; doneRecords?: unknown; totalRecords?: unknown } | undefined
  if (typeof catchUp !== 'object' || catchUp === null) return null
  const pair = (done: unknown, total: unknown, unit: string): string | null =>
    typeof done === 'number' && typeof total === 'number' && total > 0 ? `catching up ${Math.floor((100 * done) / total)}% of ${total} ${unit}` : null
  return pair(catchUp.doneBytes, catchUp.totalBytes, 'bytes') ?? pair(catchUp.doneRecords, catchUp.totalRecords, 'records')
}

/**
 * Waits until every member of every shard group runs in one view that holds them all, printing
 * a progress line whenever the picture changes. Returns each shard group's view number.
 */
export async function waitGroupRunning(config: GroupConfig): Promise<Array<{ shard: string; vid: number }>> {
  const deadlineMs = Date.now() + GROUP_READY_TIMEOUT_MS
  let shown = ''
  for (;;) {
    const groups = await Promise.all(
      shardGroups(config).map(async (group) => ({ group, answers: await Promise.all(group.config.members.map(async (m) => ({ id: m.id, answer: await askMember(group.config, m) }))) })),
    )
    const views = groups.map(({ group, answers }) => {
      const vids = new Set(answers.map(({ answer }) => (answer?.phase === 'running' && answer.core !== null && answer.core.view.members.length === answers.length ? answer.core.view.vid : -1)))
      return { shard: group.name, vid: vids.size === 1 ? [...vids][0]! : -1 }
    })
    if (views.every((v) => v.vid >= 0)) return views
    const picture = groups
      .map(({ group, answers }) => `${group.name === 'all' ? '' : `${group.name}: `}${answers.map(({ id, answer }) => `member ${id} ${phaseOf(answer)}`).join(', ')}`)
      .join('; ')
    if (picture !== shown) logLine(`fffs: forming the group: ${picture}`)
    shown = picture
    if (Date.now() > deadlineMs) throw new FffsError('EIO', `the group did not form within ${GROUP_READY_TIMEOUT_MS} ms: ${picture}`)
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_PERIOD_MS))
  }
}
