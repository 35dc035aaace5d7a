// `fffs serve`: one member of a replicated group, in the foreground.

import path from 'node:path'
import { errors } from '../errors.js'
import { loadGroupConfig, memberById } from '../replication/config.js'
import { Member } from '../replication/member.js'
import { serveClient } from '../replication/server.js'
import { shardGroupsOf, startPerShard } from '../replication/shards.js'
import { listen } from '../replication/wire.js'
import { openDataDir } from './dataDir.js'
import { logLine } from './output.js'

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
          serveClient(connection, member.client, { dedupesSubmits: true, memberId: opts.id, waitSynced: (stamp, maxWaitMs) => member.client.waitSynced(stamp, maxWaitMs), status: () => ({ ...member.status(), pid: process.pid }), views: member.views, changes: member.changes, peer: member.peerService, history: member.history }),
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
    logLine(`fffs: member ${opts.id} (pid ${process.pid}, group ${config.name}${shard}) serving clients on ${self.host}:${self.clientPort} (data ${self.dataDir}); joining the group`)
  }
  await Promise.all(served.map(({ member }) => member.recover()))
}
