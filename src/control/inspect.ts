// What `fffs cut` and `fffs watch` ask a mount: where a cut stands on each shard, and which
// versions became stable since a stamp. Read-only; answers come from the mount's Client.

import { errors, isFffsError } from '../errors.js'
import { parsePath, type Resolver, type TimeOptions } from '../fs/resolve.js'
import type { Client } from '../client/client.js'
import { ShardedClient } from '../replication/sharded.js'
import type { Attr } from '../store/records.js'
import { hlcCeilingOfUs, hlcPhysicalUs, hlcToIso, type HlcStamp } from '../temporal/hlc.js'
import { formatTimeSpec, parseTimeSpec } from '../temporal/spec.js'

export interface ShardCut {
  readonly shard: string
  readonly frontier: string // ISO, the shard's stability frontier
  readonly stable: boolean // the cut is at or below it
  readonly untilStableMs: number // estimate: how far the frontier still has to move (0 when stable)
}

export interface CutReport {
  readonly spec: string
  readonly kind: 'platform' | 'sensor' | 'version'
  readonly stamp: string // the cut's HLC stamp (decimal); for sensor time, the stabilising platform cut T + Δ + 2δ
  readonly time: string // ISO of `stamp`
  readonly stable: boolean // on every shard
  readonly shards: readonly ShardCut[]
  /** With a path: the version the cut selects (provisional while the cut is not stable), or null: none there. */
  readonly path?: { readonly path: string; readonly version: number | null; readonly time: string | null; readonly sizeBytes: number | null; readonly provisional: boolean }
}

const isNotFound = (err: unknown): boolean => isFffsError(err) && err.code === 'ENOENT'

/** Each shard's stability frontier (one entry for an unsharded client). */
async function shardFrontiers(client: Client): Promise<Array<{ shard: string; frontier: HlcStamp }>> {
  if (client instanceof ShardedClient) return client.shardFrontiers()
  return [{ shard: 'all', frontier: await client.stableFrontier() }]
}

/** `fffs cut SPEC [PATH]`: the cut's stamp, per shard whether it is stable (or how long until), and the version it picks for PATH. */
export async function cutReport(client: Client, resolver: Resolver, options: TimeOptions, specText: string, pathText: string | null): Promise<CutReport> {
  const spec = parseTimeSpec(specText)
  let stamp: HlcStamp
  switch (spec.kind) {
    case 'platform':
      stamp = hlcCeilingOfUs(spec.timeUs)
      break
    case 'sensor':
      stamp = hlcCeilingOfUs(spec.timeUs + options.sensorLagMaxUs + 2 * options.clockSkewMaxUs)
      break
    case 'version': {
      if (pathText === null) throw errors.invalid(`${specText} names a version: give the file's path too`)
      const { attr } = await resolver.resolve(parsePath(pathText))
      if (attr === null) throw errors.invalid(`${pathText} is a virtual directory`)
      const found = await client.stampOfVersion(attr.ino, spec.version)
      if (found === null) throw errors.notFound(`version ${spec.version} of ${pathText}`)
      stamp = found
      break
    }
  }
  const shards = (await shardFrontiers(client)).map(({ shard, frontier }) => ({
    shard,
    frontier: hlcToIso(frontier),
    stable: frontier >= stamp,
    untilStableMs: frontier >= stamp ? 0 : Math.ceil((hlcPhysicalUs(stamp) - hlcPhysicalUs(frontier)) / 1000),
  }))
  const stable = shards.every((s) => s.stable)
  const report: CutReport = { spec: formatTimeSpec(spec), kind: spec.kind, stamp: stamp.toString(), time: hlcToIso(stamp), stable, shards }
  if (pathText === null) return report
  const at = spec.kind === 'version' ? `${pathText}@${specText}` : `${pathText.replace(/\/+$/, '')}@${specText}`
  const resolved = await resolver.resolve(parsePath(at), 'provisional').catch((err: unknown) => {
    if (isNotFound(err)) return null
    throw err
  })
  const attr = resolved?.attr ?? null
  return {
    ...report,
    path: { path: pathText, version: attr?.version ?? null, time: attr === null ? null : hlcToIso(BigInt(attr.stamp)), sizeBytes: attr?.sizeBytes ?? null, provisional: !stable },
  }
}

export interface StableChange {
  readonly path: string
  readonly version: number
  readonly stamp: string
  readonly time: string
  readonly sensorTime: string | null
  readonly sizeBytes: number
  readonly change: string
}

/**
 * The versions of files matching `pattern` (a path prefix, or a glob with `*`, `?`, `**`)
 * stamped in (after, frontier], oldest first, where frontier is the stable frontier now: each
 * is final, so a watcher that asks again from the returned frontier sees every version once.
 * Cost: a walk of the tree under the pattern's fixed prefix at the frontier per call, and the
 * version list of each matching file (O(its versions): no index by stamp yet). Versions
 * of a file removed before the frontier are not reported (the walk no longer finds it).
 */
export async function stableChanges(client: Client, pattern: string, after: HlcStamp | null): Promise<{ frontier: string; changes: StableChange[] }> {
  const frontier = await client.stableFrontier()
  // A member that just restarted reports a frontier below what the watcher has seen: the
  // cursor never moves back (every version at or below it was reported already).
  if (after === null) return { frontier: frontier.toString(), changes: [] }
  if (frontier <= after) return { frontier: after.toString(), changes: [] }
  const { base, matches } = compileWatchPattern(pattern)
  const start = await client.walk(base, frontier).catch((err: unknown) => {
    if (isNotFound(err)) return null
    throw err
  })
  const changes: StableChange[] = []
  const visit = async (attr: Attr, components: string[]): Promise<void> => {
    if (attr.kind === 'dir') {
      for (const entry of await client.readdir(attr.ino, frontier)) {
        const child = await client.attr(entry.ino, frontier)
        if (child !== null) await visit(child, [...components, entry.name])
      }
      return
    }
    const pathText = '/' + components.join('/')
    if (!matches(pathText)) return
    for (const version of await client.versions(attr.ino)) {
      const stamp = BigInt(version.stamp)
      if (stamp <= after || stamp > frontier) continue
      changes.push({
        path: pathText,
        version: version.version,
        stamp: version.stamp,
        time: hlcToIso(stamp),
        sensorTime: version.sensorUs === undefined ? null : formatTimeSpec({ kind: 'platform', timeUs: version.sensorUs }),
        sizeBytes: version.sizeBytes,
        change: version.change,
      })
    }
  }
  if (start !== null) await visit(start, [...base])
  changes.sort((a, b) => (BigInt(a.stamp) < BigInt(b.stamp) ? -1 : BigInt(a.stamp) > BigInt(b.stamp) ? 1 : 0))
  return { frontier: frontier.toString(), changes }
}

/** A watch pattern: the fixed leading components, and a test for a file's mount-relative path ('/a/b'). */
export function compileWatchPattern(pattern: string): { base: string[]; matches: (path: string) => boolean } {
  const components = pattern.split('/').filter((c) => c !== '' && c !== '.')
  if (components.some((c) => c === '..')) throw errors.invalid(`watch pattern ${pattern}: '..' is not allowed`)
  if (components.some((c) => c.includes('@'))) throw errors.invalid(`watch pattern ${pattern}: a watch follows the live tree; @SPEC is not allowed`)
  const firstGlob = components.findIndex((c) => /[*?]/.test(c))
  if (firstGlob < 0) {
    const prefix = '/' + components.join('/')
    return { base: components, matches: (p) => prefix === '/' || p === prefix || p.startsWith(prefix + '/') }
  }
  // `**` is any number of directories (also none); `*` and `?` stay within one component.
  let source = ''
  components.forEach((c, i) => {
    const last = i === components.length - 1
    if (c === '**') source += last ? '/.*' : '(?:/[^/]+)*'
    else source += '/' + c.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')
  })
  const regex = new RegExp(`^${source}$`)
  return { base: components.slice(0, firstGlob), matches: (p) => regex.test(p) }
}
