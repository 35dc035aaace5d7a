// `fffs init DIR`: writes the config and cluster key of a local group (every member on
// 127.0.0.1), ready for `fffs serve` / `fffs up`. Never overwrites an existing group: its key
// is the only thing that lets its members and mounts in.

import { writeLocalGroup, type LocalGroupOptions } from '../replication/config.js'

export type InitOptions = LocalGroupOptions

/** Writes DIR/config.json and DIR/cluster.key; prints where and what to run next. Returns the config path. */
export async function runInit(dir: string, options: InitOptions, print: (line: string) => void = (line) => process.stdout.write(line + '\n')): Promise<string> {
  // An existing config.json or cluster.key: EEXIST naming the file (writeLocalGroup checks both).
  const configPath = await writeLocalGroup(dir, options)
  const count = options.members ?? options.replicas
  const layout = options.shards === 1 ? `${options.replicas} replica(s)` : `a meta shard and ${options.shards} data shards of ${options.replicas} replica(s)`
  print(`wrote ${configPath} (${count} member${count === 1 ? '' : 's'} on 127.0.0.1: ${layout}) and its cluster key`)
  print(`next: fffs serve --config ${configPath} --id 0   (one per member id 0..${count - 1}), then fffs mount DIR --cluster ${configPath}`)
  return configPath
}
