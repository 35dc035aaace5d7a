// The commands of a replicated group: `fffs serve` runs one member, `fffs up` runs a local
// group of members as child processes plus a mount of it (what `npm start` runs).

import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { errors, FffsError } from '../errors.js'
import { CONFIG_FILE_NAME, loadGroupConfig, memberById, writeLocalGroup, type GroupConfig, type LocalGroupOptions } from '../replication/config.js'
import { Member } from '../replication/member.js'
import { serveClient } from '../replication/remote.js'
import { shardGroups, shardGroupsOf, startPerShard } from '../replication/shards.js'
import { listen } from '../replication/wire.js'

const MEMBER_READY_TIMEOUT_MS = 60_000

/**
 * Runs member `id`: one Member per shard group it serves (src/replication/shards.ts), each
 * with its own transport, log and client port. A fatal error in any of them ends the process
 * (Member.fail exits), so the shards of one process live and die together, like one node.
 */
export async function runServe(opts: { config: string; id: number }): Promise<void> {
  const config = await loadGroupConfig(path.resolve(opts.config))
  memberById(config, opts.id)
  // One shard group that cannot start (a port in use, a bad log): the process serves none.
  const served = await startPerShard(
    shardGroupsOf(config, opts.id),
    async (group) => {
      const self = memberById(group.config, opts.id)
      const shard = group.role === 'all' ? '' : ` [${group.name}]`
      const member = await Member.open(group.config, opts.id, { log: (line) => process.stderr.write(`${line}${shard}\n`) })
      try {
        const server = await listen(self.clientPort, self.host, config.key, (connection) =>
          serveClient(connection, member.client, { dedupesSubmits: true, memberId: opts.id, status: () => member.status(), views: member.views, extraRequests: (request) => member.handlePeerRequest(request) }),
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
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    process.stderr.write(`fffs: member ${opts.id}: stopping (signal)\n`)
    await Promise.all(served.map(({ server }) => server.close().catch(() => undefined)))
    await Promise.all(served.map(({ member }) => member.stop()))
    process.exit(0)
  }
  process.on('SIGINT', () => void stop())
  process.on('SIGTERM', () => void stop())
  for (const { group, self } of served) {
    const shard = group.role === 'all' ? '' : ` shard ${group.name}`
    process.stdout.write(`fffs: member ${opts.id} of ${config.name}${shard} serving clients on ${self.host}:${self.clientPort} (data ${self.dataDir}); joining the group\n`)
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

/** Starts every member of `config` as a child process; resolves once each accepts clients on every shard it serves. */
export async function startLocalGroup(config: GroupConfig, log: (line: string) => void): Promise<{ children: ChildProcess[]; stop: () => Promise<void> }> {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/fffs')
  const children = config.members.map((m) => {
    const child = spawn(process.execPath, [bin, 'serve', '--config', config.path, '--id', String(m.id)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const prefix = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') log(`[member ${m.id}] ${line}`)
    }
    child.stdout!.on('data', prefix)
    child.stderr!.on('data', prefix)
    return child
  })
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
            child.once('exit', () => {
              clearTimeout(timer)
              resolve()
            })
            child.kill('SIGTERM')
          }),
      ),
    )
  }
  try {
    const childOf = new Map(config.members.map((m, i) => [m.id, children[i]!]))
    const endpoints = shardGroups(config).flatMap((group) => group.config.members)
    await Promise.all(endpoints.map((m) => waitForPort(m.host, m.clientPort, childOf.get(m.id)!, MEMBER_READY_TIMEOUT_MS)))
  } catch (err) {
    await stop()
    throw err
  }
  return { children, stop }
}

async function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new FffsError('EIO', `a member exited (${child.exitCode ?? child.signalCode}) before serving on ${host}:${port}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadlineMs) throw new FffsError('EIO', `no member serving on ${host}:${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
