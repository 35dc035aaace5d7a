// The group config: a written local group loads; each bad field is named in its error; the
// key file is checked for presence, permissions and content.

import * as fsp from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FffsError } from '../../src/errors.js'
import { initialShards, loadGroupConfig, writeLocalGroup } from '../../src/replication/config.js'
import { runInit } from '../../src/cli/init.js'

let dir: string
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fffs-config-'))
})
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

type Json = Record<string, unknown>

async function rewrite(configPath: string, change: (config: Json) => void): Promise<void> {
  const config = JSON.parse(await fsp.readFile(configPath, 'utf8')) as Json
  change(config)
  await fsp.writeFile(configPath, JSON.stringify(config))
}

async function loadError(configPath: string): Promise<string> {
  const err = await loadGroupConfig(configPath).then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(FffsError)
  expect((err as FffsError).code).toBe('EINVAL')
  const message = (err as FffsError).message
  expect(message).not.toContain('\n')
  return message
}

const members = (config: Json): Json[] => config.members as Json[]

describe('group config', () => {
  it('writes a local group that loads with resolved paths and the key', async () => {
    const configPath = await writeLocalGroup(dir, { replicas: 3, shards: 2, members: 6, basePort: 31000 })
    expect(configPath).toBe(path.join(dir, 'config.json'))
    const stat = await fsp.stat(path.join(dir, 'cluster.key'))
    expect(stat.mode & 0o777).toBe(0o600)
    const config = await loadGroupConfig(configPath)
    expect(config.members).toHaveLength(6)
    // Three shard groups (meta, data0, data1): each member has 3 transport then 3 client ports.
    expect(config.members[5]).toEqual({ id: 5, host: '127.0.0.1', transportPort: 31030, clientPort: 31033, dataDir: path.join(dir, 'm5') })
    expect(config.layout).toEqual({ shards: 2, replicas: 3 })
    expect(config.transport).toEqual({ provider: 'tcp', heartbeatIntervalMs: 100, suspectTimeoutMs: 1000, connectTimeoutMs: 10000, latencySpinUs: 50 })
    expect(config.clients.deadPeerMs).toBeGreaterThan(config.clients.heartbeatIntervalMs)
    expect(config.time).toEqual({ sensorLagMaxMs: 5000, clockSkewMaxMs: 50 })
    expect(config.durability).toBe('write-on-close')
    expect(config.keyFile).toBe(path.join(dir, 'cluster.key'))
    expect(config.key).toHaveLength(32)
    expect(config.retention).toBeNull() // every version kept unless a policy is set
    expect(initialShards(config)).toEqual({ meta: [0, 1, 2], data: [[0, 1, 2], [3, 4, 5]] })
  })

  it('derives free-looking ports from the directory, and refuses to overwrite', async () => {
    const configPath = await writeLocalGroup(dir, { replicas: 3, shards: 1 })
    const config = await loadGroupConfig(configPath)
    const base = config.members[0]!.transportPort
    expect(base).toBeGreaterThanOrEqual(20000)
    expect(base + 5).toBeLessThanOrEqual(32000)
    const err = await writeLocalGroup(dir, { replicas: 1, shards: 1 }).catch((e: unknown) => e)
    expect((err as FffsError).code).toBe('EEXIST')
  })

  it('names the field and the fault of each bad value', async () => {
    const cases: Array<[string, (c: Json) => void, RegExp]> = [
      ['port out of range', (c) => (members(c)[2]!.transportPort = 70000), /^config members\[2\]\.transportPort: 70000 is not a port \(1\.\.65535\) \(in .*config\.json\)$/],
      ['port not a number', (c) => (members(c)[0]!.clientPort = '7200'), /^config members\[0\]\.clientPort: "7200" is not a port/],
      ['missing host', (c) => delete members(c)[1]!.host, /^config members\[1\]\.host: missing is not a non-empty string/],
      ['duplicate id', (c) => (members(c)[2]!.id = 0), /^config members\[2\]\.id: 0 is already the id of members\[0\]/],
      ['duplicate endpoint', (c) => (members(c)[1]!.clientPort = members(c)[0]!.transportPort), /^config members\[1\]\.clientPort: 127\.0\.0\.1:\d+ is already used by members\[0\]\.transportPort/],
      ['shared data dir', (c) => (members(c)[1]!.dataDir = 'm0'), /^config members\[1\]\.dataDir: .*m0 is already the data directory of members\[0\]/],
      ['too few members', (c) => (c.layout = { shards: 1, replicas: 4 }), /^config members: 3 members cannot hold shards of 4 replicas \(need at least 4\)/],
      ['shard ports collide', (c) => (c.layout = { shards: 2, replicas: 3 }), /^config members\[0\]\.clientPort: 127\.0\.0\.1:\d+ is already used by members\[0\]\.transportPort \+ 1/],
      ['replicas zero', (c) => (c.layout = { shards: 1, replicas: 0 }), /^config layout\.replicas: 0 is not a positive integer/],
      ['empty provider', (c) => ((c.transport as Json).provider = ''), /^config transport\.provider: "" is not a non-empty string/],
      ['suspect below heartbeat', (c) => ((c.transport as Json).suspectTimeoutMs = 50), /^config transport\.suspectTimeoutMs: 50 must exceed transport\.heartbeatIntervalMs \(100\)/],
      ['polling window over a second', (c) => ((c.transport as Json).latencySpinUs = 2_000_000), /^config transport\.latencySpinUs: 2000000 is more than 1000000 \(1 s\)/],
      ['negative polling window', (c) => ((c.transport as Json).latencySpinUs = -5), /^config transport\.latencySpinUs: -5 is not a non-negative integer/],
      ['unknown field', (c) => (members(c)[0]!.trasnportPort = 1), /^config members\[0\]\.trasnportPort: unknown field/],
      ['bad version', (c) => (c.version = 2), /^config version: 2 is not a supported version/],
      ['empty members', (c) => (c.members = []), /^config members: the list is empty/],
      ['bad name', (c) => (c.name = 'a b'), /^config name: "a b" may use only/],
      ['negative Δ', (c) => (c.time = { sensorLagMaxMs: -1 }), /^config time\.sensorLagMaxMs: -1 is not a non-negative integer/],
      ['unknown time field', (c) => (c.time = { lagMs: 1 }), /^config time\.lagMs: unknown field/],
      ['retention below the safety floor', (c) => (c.retention = { keepAllFor: '10m' }), /^config retention\.keepAllFor: 10m is below the safety floor of 1h: .*\(retention\.force\) \(in .*config\.json\)$/],
      ['retention not a duration', (c) => (c.retention = { keepAllFor: 'a week' }), /^config retention\.keepAllFor: 'a week' is not a duration/],
      ['retention tier not a multiple', (c) => (c.retention = { keepAllFor: '7d', tiers: [{ every: '1h' }, { after: '30d', every: '90m' }] }), /^config retention\.tiers\[1\]\.every: 1h30m is not a multiple of the tier before's 1h/],
      ['retention unknown field', (c) => (c.retention = { keepAllFor: '7d', keep: 3 }), /^config retention\.keep: unknown field/],
      ['retention minVersions', (c) => (c.retention = { keepAllFor: '7d', minVersions: -1 }), /^config retention\.minVersions: -1 is not a non-negative integer/],
      ['gc budget', (c) => (c.gcBudgetMiBs = 0), /^config gcBudgetMiBs: 0 is not a positive number/],
      ['unknown durability', (c) => (c.durability = 'fsync'), /^config durability: "fsync" is not one of "write-on-close", "sync-on-close"/],
    ]
    const configPath = await writeLocalGroup(dir, { replicas: 3, shards: 1, basePort: 31100 })
    const good = await fsp.readFile(configPath, 'utf8')
    for (const [what, change, expected] of cases) {
      await fsp.writeFile(configPath, good)
      await rewrite(configPath, change)
      expect(await loadError(configPath), what).toMatch(expected)
    }
    await fsp.writeFile(configPath, '{ "version": 1, ')
    expect(await loadError(configPath)).toMatch(/^config .*config\.json: not valid JSON/)
    expect(await loadError(path.join(dir, 'nope.json'))).toMatch(/^config .*nope\.json: cannot read: ENOENT/)
  })

  it('refuses a missing, group-readable, short or non-hex key file', async () => {
    const configPath = await writeLocalGroup(dir, { replicas: 1, shards: 1, basePort: 31200 })
    const keyPath = path.join(dir, 'cluster.key')
    await fsp.chmod(keyPath, 0o640)
    expect(await loadError(configPath)).toBe(`config keyFile: ${keyPath} is readable or writable by group or others (mode 0640); run: chmod 600 ${keyPath}`)
    await fsp.writeFile(keyPath, 'ab'.repeat(31), { mode: 0o600 })
    await fsp.chmod(keyPath, 0o600)
    expect(await loadError(configPath)).toBe(`config keyFile: ${keyPath} holds 31 bytes; a cluster key has at least 32`)
    await fsp.writeFile(keyPath, 'zz'.repeat(32))
    expect(await loadError(configPath)).toMatch(/does not hold a hex key/)
    await fsp.rm(keyPath)
    expect(await loadError(configPath)).toBe(`config keyFile: ${keyPath} cannot be read: ENOENT`)
  })

  it('fffs init writes a group, prints the next step, and refuses to overwrite', async () => {
    const lines: string[] = []
    const target = path.join(dir, 'group')
    const configPath = await runInit(target, { replicas: 3, shards: 1, basePort: 31300, time: { sensorLagMaxMs: 15_000, clockSkewMaxMs: 20 }, durability: 'sync-on-close' }, (line) => lines.push(line))
    expect(configPath).toBe(path.join(target, 'config.json'))
    expect((await loadGroupConfig(configPath)).time).toEqual({ sensorLagMaxMs: 15_000, clockSkewMaxMs: 20 })
    expect((await loadGroupConfig(configPath)).durability).toBe('sync-on-close')
    expect(lines.join('\n')).toContain(configPath)
    expect(lines.join('\n')).toMatch(/fffs serve --config .* --id 0/)
    const err = await runInit(target, { replicas: 3, shards: 1 }, () => undefined).catch((e: unknown) => e)
    expect((err as FffsError).code).toBe('EEXIST')
    expect((err as FffsError).message).not.toContain('\n')
  })
})
