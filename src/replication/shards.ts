// The shard map: how one group config becomes the groups that actually run. With one data
// shard the whole state machine is one group. With k > 1 there are k + 1 groups: `meta` (the
// namespace) and `data0` .. `data{k-1}` (file contents, an inode's on shard dataShardOf(ino)).
// Each is an ordinary group (its own Member per process, transport, log and client port), so
// everything the replication layer does for one group it does for each shard unchanged.

import path from 'node:path'
import type { Ino } from '../store/records.js'
import type { ShardRole } from '../store/store.js'
import { initialShards, subgroupCount, type GroupConfig, type GroupMember } from './config.js'

export interface ShardGroup {
  /** 'all' (one group), 'meta', or 'data<s>'. */
  readonly name: string
  readonly role: ShardRole | 'all'
  /** Offset of this group's ports from each member's configured ports. */
  readonly portOffset: number
  /** The config of this group alone: its members, their ports and data dirs for it. */
  readonly config: GroupConfig
}

/** Every group the config's layout runs, meta first. */
export function shardGroups(config: GroupConfig): ShardGroup[] {
  if (subgroupCount(config.layout.shards) === 1) return [{ name: 'all', role: 'all', portOffset: 0, config }]
  const { meta, data } = initialShards(config)
  return [
    groupOf(config, 'meta', 'meta', 0, meta),
    ...data.map((ids, s) => groupOf(config, `data${s}`, 'data', s + 1, ids)),
  ]
}

/** The shard groups member `id` serves. */
export function shardGroupsOf(config: GroupConfig, id: number): ShardGroup[] {
  return shardGroups(config).filter((group) => group.config.members.some((m) => m.id === id))
}

/**
 * The data shard holding an inode's contents. Inodes are numbered in creation order, so a mix
 * (not ino mod k) keeps a tree that alternates directories and files from landing on one shard.
 */
export function dataShardOf(ino: Ino, shards: number): number {
  let x = Math.imul(ino ^ (ino >>> 16), 0x45d9f3b)
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b)
  x ^= x >>> 16
  return (x >>> 0) % shards
}

function groupOf(config: GroupConfig, name: string, role: ShardRole, portOffset: number, ids: readonly number[]): ShardGroup {
  const members = config.members
    .filter((m) => ids.includes(m.id))
    .map((m): GroupMember => ({ ...m, transportPort: m.transportPort + portOffset, clientPort: m.clientPort + portOffset, dataDir: path.join(m.dataDir, name) }))
  return { name, role, portOffset, config: { ...config, name: `${config.name}.${name}`, members, shardRole: role } }
}

/**
 * Starts one thing per shard group, all or none: if any start fails, the ones that started are
 * undone (their timers, listeners and heartbeats would keep a half-started process alive) and
 * the first failure is thrown.
 */
export async function startPerShard<G, T>(groups: readonly G[], start: (group: G) => Promise<T>, undo: (started: T) => Promise<void>): Promise<T[]> {
  const settled = await Promise.allSettled(groups.map(start))
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed === undefined) return started
  await Promise.all(started.map((s) => undo(s).catch(() => undefined)))
  throw failed.reason
}
