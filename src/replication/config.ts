// The group config: one JSON file naming every member of a replication group, the shard
// layout, the transport and the cluster key file. Every process of a group (`fffs serve`,
// `fffs mount --cluster`) loads the same file. Validation is strict and each error names the
// field and what is wrong with it, because a typo in a config otherwise surfaces as a hang.

import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as net from 'node:net'
import * as path from 'node:path'
import { errors, FffsError } from '../errors.js'
import { parseRetention, type RetentionPolicy } from '../store/retention/policy.js'
import type { ShardRole } from '../store/store.js'
import { TIME_DEFAULTS } from './timeDefaults.js'
import { DURABILITY_DEFAULT, DURABILITY_MODES, type Durability } from '../client/durability.js'
import { LATENCY_SPIN_MAX_US, TRANSPORT_DEFAULTS } from './transport/types.js'

export const CONFIG_VERSION = 1
export const CONFIG_FILE_NAME = 'config.json'
export const KEY_FILE_NAME = 'cluster.key'
export const KEY_BYTES_MIN = 32

export interface GroupMember {
  readonly id: number
  readonly host: string
  readonly transportPort: number // the transport's bootstrap TCP port (member ↔ member)
  readonly clientPort: number // the client wire (mount → member), src/replication/wire.ts
  readonly dataDir: string // absolute once loaded
}

export interface GroupConfig {
  readonly version: 1
  readonly name: string
  readonly path: string // absolute path of the config file
  readonly members: readonly GroupMember[]
  readonly layout: { readonly shards: number; readonly replicas: number }
  readonly transport: {
    readonly provider: string
    readonly iface?: string
    readonly heartbeatIntervalMs: number
    readonly suspectTimeoutMs: number
    readonly connectTimeoutMs: number
    readonly latencySpinUs: number
  }
  /** The client wire (mount ↔ member); all optional in the file. */
  readonly clients: {
    readonly heartbeatIntervalMs: number
    readonly deadPeerMs: number // no frame for this long: the connection is dead
    readonly requestTimeoutMs: number // bound on a reply (waits add their own wait on top)
    readonly handshakeTimeoutMs: number
  }
  /**
   * Sensor time bounds, the group's and not a mount's: members refuse versions stamped older
   * than their stamp − Δ, and every mount cuts sensor time at T + Δ + 2δ; a mount with a larger
   * Δ than the members enforce would see a sensor cut change after it had read it.
   */
  readonly time: { readonly sensorLagMaxMs: number; readonly clockSkewMaxMs: number }
  /**
   * History retention, the group's (every member applies the same `retain` records; one proposes
   * them): absent, every version is kept. `gcBudgetMiBs`: what each member's background segment
   * GC copies per second at most.
   */
  readonly retention: RetentionPolicy | null
  readonly gcBudgetMiBs: number | null
  /**
   * When a close (a version) or a metadata operation is acknowledged: 'write-on-close' once its
   * record is ordered and written to the log of every replica of the view (it survives kill -9
   * of every process and the loss of any minority of hosts; fsync waits for the sync);
   * 'sync-on-close' once it is synced on every replica (it survives a total power loss too).
   */
  readonly durability: Durability
  readonly keyFile: string // absolute once loaded
  readonly key: Buffer
  /**
   * Set on the config of one shard's group (src/replication/shards.ts): what its state
   * machine holds. Absent: the whole state machine (a one-shard layout).
   */
  readonly shardRole?: ShardRole
}

export { TIME_DEFAULTS }

export { DURABILITY_DEFAULT, DURABILITY_MODES, type Durability }

export const CLIENT_WIRE_DEFAULTS = {
  heartbeatIntervalMs: 500,
  deadPeerMs: 5_000,
  requestTimeoutMs: 30_000,
  handshakeTimeoutMs: 5_000,
} as const

/** Reads, validates and resolves a group config; loads the key. Errors are one-line EINVAL FffsErrors. */
export async function loadGroupConfig(file: string): Promise<GroupConfig> {
  const configPath = path.resolve(file)
  let text: string
  try {
    text = await fsp.readFile(configPath, 'utf8')
  } catch (err) {
    throw errors.invalid(`config ${configPath}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw errors.invalid(`config ${configPath}: not valid JSON: ${(err as Error).message}`)
  }
  const parsed = parseGroupConfig(json, configPath)
  return { ...parsed, key: await loadClusterKey(parsed.keyFile) }
}

/** Validates a parsed config (no I/O); paths resolve against the config file's directory. */
export function parseGroupConfig(json: unknown, configPath: string): Omit<GroupConfig, 'key'> {
  const baseDir = path.dirname(configPath)
  const fail = (field: string, why: string): FffsError => errors.invalid(`config ${field}: ${why} (in ${configPath})`)
  const root = object(json, 'config', fail, ['version', 'name', 'members', 'layout', 'transport', 'clients', 'time', 'durability', 'retention', 'gcBudgetMiBs', 'keyFile'])
  if (root.version !== CONFIG_VERSION) throw fail('version', `${show(root.version)} is not a supported version (1)`)
  const name = nonEmptyString(root.name, 'name', fail)
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw fail('name', `${show(name)} may use only letters, digits, '.', '_' and '-'`)

  if (!Array.isArray(root.members)) throw fail('members', `${show(root.members)} is not a list`)
  if (root.members.length === 0) throw fail('members', 'the list is empty')
  const layoutRaw = object(root.layout, 'layout', fail, ['shards', 'replicas'])
  const shards = positiveInt(layoutRaw.shards, 'layout.shards', fail)
  const replicas = positiveInt(layoutRaw.replicas, 'layout.replicas', fail)
  const portsPerKind = subgroupCount(shards)
  const ids = new Map<number, number>()
  const endpoints = new Map<string, string>()
  const members: GroupMember[] = root.members.map((raw: unknown, i: number) => {
    const at = `members[${i}]`
    const m = object(raw, at, fail, ['id', 'host', 'transportPort', 'clientPort', 'dataDir'])
    const id = m.id
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw fail(`${at}.id`, `${show(id)} is not a non-negative integer`)
    if (ids.has(id)) throw fail(`${at}.id`, `${id} is already the id of members[${ids.get(id)}]`)
    ids.set(id, i)
    const host = nonEmptyString(m.host, `${at}.host`, fail)
    if (/\s/.test(host)) throw fail(`${at}.host`, `${show(host)} contains whitespace`)
    const ports: Record<'transportPort' | 'clientPort', number> = { transportPort: 0, clientPort: 0 }
    for (const field of ['transportPort', 'clientPort'] as const) {
      const port = m[field]
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw fail(`${at}.${field}`, `${show(port)} is not a port (1..65535)`)
      // Shard g's group of this member listens on port + g (shards.ts): all of them must be free.
      if (port + portsPerKind - 1 > 65535) throw fail(`${at}.${field}`, `${port} leaves no room for the ${portsPerKind} ports of ${shards} data shards and the meta shard`)
      for (let g = 0; g < portsPerKind; g++) {
        const endpoint = `${host}:${port + g}`
        const previous = endpoints.get(endpoint)
        const what = g === 0 ? '' : ` (${field} + ${g}, for shard group ${g})`
        if (previous !== undefined) throw fail(`${at}.${field}`, `${endpoint}${what} is already used by ${previous}`)
        endpoints.set(endpoint, g === 0 ? `${at}.${field}` : `${at}.${field} + ${g}`)
      }
      ports[field] = port
    }
    const dataDir = nonEmptyString(m.dataDir, `${at}.dataDir`, fail)
    return { id, host, ...ports, dataDir: path.resolve(baseDir, dataDir) }
  })
  const dataDirs = new Map<string, number>()
  members.forEach((m, i) => {
    const previous = dataDirs.get(m.dataDir)
    // Two members on one host sharing a data directory would corrupt each other's log.
    if (previous !== undefined && members[previous]!.host === m.host) throw fail(`members[${i}].dataDir`, `${m.dataDir} is already the data directory of members[${previous}] on the same host`)
    dataDirs.set(m.dataDir, i)
  })

  if (members.length < replicas) throw fail('members', `${members.length} members cannot hold shards of ${replicas} replicas (need at least ${replicas})`)

  const t = root.transport === undefined ? {} : object(root.transport, 'transport', fail, ['provider', 'iface', 'heartbeatIntervalMs', 'suspectTimeoutMs', 'connectTimeoutMs', 'latencySpinUs'])
  const provider = t.provider === undefined ? TRANSPORT_DEFAULTS.provider : nonEmptyString(t.provider, 'transport.provider', fail)
  const iface = t.iface === undefined ? undefined : nonEmptyString(t.iface, 'transport.iface', fail)
  const heartbeatIntervalMs = t.heartbeatIntervalMs === undefined ? TRANSPORT_DEFAULTS.heartbeatIntervalMs : positiveInt(t.heartbeatIntervalMs, 'transport.heartbeatIntervalMs', fail)
  const suspectTimeoutMs = t.suspectTimeoutMs === undefined ? TRANSPORT_DEFAULTS.suspectTimeoutMs : positiveInt(t.suspectTimeoutMs, 'transport.suspectTimeoutMs', fail)
  const connectTimeoutMs = t.connectTimeoutMs === undefined ? TRANSPORT_DEFAULTS.connectTimeoutMs : positiveInt(t.connectTimeoutMs, 'transport.connectTimeoutMs', fail)
  const latencySpinUs = t.latencySpinUs === undefined ? TRANSPORT_DEFAULTS.latencySpinUs : nonNegativeInt(t.latencySpinUs, 'transport.latencySpinUs', fail)
  if (latencySpinUs > LATENCY_SPIN_MAX_US) throw fail('transport.latencySpinUs', `${latencySpinUs} is more than ${LATENCY_SPIN_MAX_US} (1 s)`)
  if (suspectTimeoutMs <= heartbeatIntervalMs) throw fail('transport.suspectTimeoutMs', `${suspectTimeoutMs} must exceed transport.heartbeatIntervalMs (${heartbeatIntervalMs})`)

  const c = root.clients === undefined ? {} : object(root.clients, 'clients', fail, ['heartbeatIntervalMs', 'deadPeerMs', 'requestTimeoutMs', 'handshakeTimeoutMs'])
  const clients = {
    heartbeatIntervalMs: c.heartbeatIntervalMs === undefined ? CLIENT_WIRE_DEFAULTS.heartbeatIntervalMs : positiveInt(c.heartbeatIntervalMs, 'clients.heartbeatIntervalMs', fail),
    deadPeerMs: c.deadPeerMs === undefined ? CLIENT_WIRE_DEFAULTS.deadPeerMs : positiveInt(c.deadPeerMs, 'clients.deadPeerMs', fail),
    requestTimeoutMs: c.requestTimeoutMs === undefined ? CLIENT_WIRE_DEFAULTS.requestTimeoutMs : positiveInt(c.requestTimeoutMs, 'clients.requestTimeoutMs', fail),
    handshakeTimeoutMs: c.handshakeTimeoutMs === undefined ? CLIENT_WIRE_DEFAULTS.handshakeTimeoutMs : positiveInt(c.handshakeTimeoutMs, 'clients.handshakeTimeoutMs', fail),
  }
  if (clients.deadPeerMs <= clients.heartbeatIntervalMs) throw fail('clients.deadPeerMs', `${clients.deadPeerMs} must exceed clients.heartbeatIntervalMs (${clients.heartbeatIntervalMs})`)

  const timeRaw = root.time === undefined ? {} : object(root.time, 'time', fail, ['sensorLagMaxMs', 'clockSkewMaxMs'])
  const time = {
    sensorLagMaxMs: timeRaw.sensorLagMaxMs === undefined ? TIME_DEFAULTS.sensorLagMaxMs : nonNegativeInt(timeRaw.sensorLagMaxMs, 'time.sensorLagMaxMs', fail),
    clockSkewMaxMs: timeRaw.clockSkewMaxMs === undefined ? TIME_DEFAULTS.clockSkewMaxMs : nonNegativeInt(timeRaw.clockSkewMaxMs, 'time.clockSkewMaxMs', fail),
  }

  const retention = root.retention === undefined ? null : retentionOf(root.retention, configPath)
  const gcBudgetMiBs = root.gcBudgetMiBs === undefined ? null : positiveNumber(root.gcBudgetMiBs, 'gcBudgetMiBs', fail)
  const durability = root.durability === undefined ? DURABILITY_DEFAULT : DURABILITY_MODES.find((mode) => mode === root.durability)
  if (durability === undefined) throw fail('durability', `${show(root.durability)} is not one of ${DURABILITY_MODES.map((mode) => `"${mode}"`).join(', ')}`)

  const keyFile = path.resolve(baseDir, nonEmptyString(root.keyFile, 'keyFile', fail))
  return {
    version: CONFIG_VERSION,
    name,
    path: configPath,
    members,
    layout: { shards, replicas },
    transport: { provider, ...(iface !== undefined ? { iface } : {}), heartbeatIntervalMs, suspectTimeoutMs, connectTimeoutMs, latencySpinUs },
    clients,
    time,
    retention,
    gcBudgetMiBs,
    durability,
    keyFile,
  }
}

/**
 * Loads the cluster key: hex, at least 32 bytes, and readable by its owner only (refused
 * otherwise, as ssh refuses a private key others can read: the key is the group's only secret).
 */
export async function loadClusterKey(keyFile: string): Promise<Buffer> {
  const fail = (why: string): FffsError => errors.invalid(`config keyFile: ${keyFile} ${why}`)
  let stat
  try {
    stat = await fsp.stat(keyFile)
  } catch (err) {
    throw fail(`cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  if (!stat.isFile()) throw fail('is not a regular file')
  if ((stat.mode & 0o077) !== 0) throw fail(`is readable or writable by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${keyFile}`)
  const text = (await fsp.readFile(keyFile, 'utf8')).trim()
  if (!/^[0-9a-fA-F]*$/.test(text) || text.length % 2 !== 0) throw fail('does not hold a hex key (an even number of hex digits)')
  if (text.length < KEY_BYTES_MIN * 2) throw fail(`holds ${text.length / 2} bytes; a cluster key has at least ${KEY_BYTES_MIN}`)
  return Buffer.from(text, 'hex')
}

/**
 * The initial layout: replica j of data shard s is members[(s*r + j) mod n] (in file order),
 * so n >= shards*r members serve disjoint shards (the rest are spares for joins) and fewer
 * serve several each (n = r: every member serves every shard); the meta shard is served by
 * the members of data shard 0.
 */
export function initialShards(config: Pick<GroupConfig, 'members' | 'layout'>): { meta: number[]; data: number[][] } {
  const { shards, replicas } = config.layout
  const n = config.members.length
  const data = Array.from({ length: shards }, (_, s) => Array.from({ length: replicas }, (_, j) => config.members[(s * replicas + j) % n]!.id))
  return { meta: data[0]!, data }
}

/**
 * How many groups a layout runs: one (the whole state machine) for one data shard, else the
 * meta shard and each data shard. Shard group g of a member uses its ports + g.
 */
export function subgroupCount(shards: number): number {
  return shards === 1 ? 1 : shards + 1
}

export function memberById(config: Pick<GroupConfig, 'members'>, id: number): GroupMember {
  const member = config.members.find((m) => m.id === id)
  if (member === undefined) throw errors.invalid(`no member with id ${id} in the group config (ids: ${config.members.map((m) => m.id).join(', ')})`)
  return member
}

// ---------------------------------------------------------------- writing a local group

export interface LocalGroupOptions {
  readonly replicas: number
  readonly shards: number
  /** How many member processes; default `replicas` (each serves every shard). */
  readonly members?: number
  /**
   * First port. With G shard groups (subgroupCount), member i uses basePort + 2Gi .. + G - 1
   * (transport, one per shard group) and basePort + 2Gi + G .. + 2G - 1 (clients).
   */
  readonly basePort?: number
  /** Δ and δ; default TIME_DEFAULTS. */
  readonly time?: { readonly sensorLagMaxMs: number; readonly clockSkewMaxMs: number }
  /** Default DURABILITY_DEFAULT (GroupConfig.durability). */
  readonly durability?: Durability
}

/**
 * Writes `dir/config.json` and `dir/cluster.key` (mode 0600) for a group on 127.0.0.1. Refuses
 * to overwrite either file. Without `basePort`, the ports start at a base derived from a hash of
 * `dir` in 20000..32000, below the kernel's ephemeral ports (so two groups in different
 * directories rarely collide), moved on while any of them is in use right now.
 */
export async function writeLocalGroup(dir: string, options: LocalGroupOptions): Promise<string> {
  const { replicas, shards } = options
  if (!Number.isInteger(replicas) || replicas < 1) throw errors.invalid(`replicas: ${replicas} is not a positive integer`)
  if (!Number.isInteger(shards) || shards < 1) throw errors.invalid(`shards: ${shards} is not a positive integer`)
  const count = options.members ?? replicas
  if (!Number.isInteger(count) || count < replicas) throw errors.invalid(`members: ${count} cannot hold shards of ${replicas} replicas`)
  const portsPerMember = 2 * subgroupCount(shards)
  const root = path.resolve(dir)
  const configPath = path.join(root, CONFIG_FILE_NAME)
  const keyPath = path.join(root, KEY_FILE_NAME)
  for (const existing of [configPath, keyPath]) {
    if (await exists(existing)) throw errors.exists(`${existing} (refusing to overwrite a group config or key)`)
  }
  let basePort: number
  if (options.basePort !== undefined) {
    basePort = options.basePort
    if (!Number.isInteger(basePort) || basePort < 1 || basePort + portsPerMember * count - 1 > 65535) throw errors.invalid(`base port: ${basePort} leaves no room for ${portsPerMember * count} ports below 65536`)
  } else {
    basePort = await findFreeBase(root, portsPerMember * count)
  }
  const config = {
    version: CONFIG_VERSION,
    name: path.basename(root).replace(/[^A-Za-z0-9._-]/g, '_') || 'local',
    members: Array.from({ length: count }, (_, i) => ({
      id: i,
      host: '127.0.0.1',
      transportPort: basePort + portsPerMember * i,
      clientPort: basePort + portsPerMember * i + portsPerMember / 2,
      dataDir: `m${i}`,
    })),
    layout: { shards, replicas },
    transport: { provider: TRANSPORT_DEFAULTS.provider, heartbeatIntervalMs: TRANSPORT_DEFAULTS.heartbeatIntervalMs, suspectTimeoutMs: TRANSPORT_DEFAULTS.suspectTimeoutMs, connectTimeoutMs: TRANSPORT_DEFAULTS.connectTimeoutMs, latencySpinUs: TRANSPORT_DEFAULTS.latencySpinUs },
    time: options.time ?? TIME_DEFAULTS,
    durability: options.durability ?? DURABILITY_DEFAULT,
    keyFile: KEY_FILE_NAME,
  }
  await fsp.mkdir(root, { recursive: true })
  // 'wx': never clobber a file that appeared since the check above.
  await fsp.writeFile(keyPath, randomBytes(KEY_BYTES_MIN).toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
  await fsp.chmod(keyPath, 0o600) // the umask could have narrowed it further, never widened; make it exact
  await fsp.writeFile(configPath, JSON.stringify(config, null, 2) + '\n', { flag: 'wx' })
  return configPath
}

// Listening ports must stay out of the kernel's ephemeral range: an outgoing connection (a
// member's own, to a peer) can take any free port there as its local port, and the next bind of
// a listener on it fails with EADDRINUSE. Linux's default range is 32768..60999.
const BASE_PORT_MIN = 20000
const BASE_PORT_MAX = 32000

/** The ports usable for listeners: BASE_PORT_MIN..BASE_PORT_MAX minus the ephemeral range when it reaches down there. */
export function listenPortRange(): { min: number; max: number } {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (low !== undefined && Number.isInteger(low) && low > BASE_PORT_MIN + 1000) return { min: BASE_PORT_MIN, max: Math.min(BASE_PORT_MAX, low - 1) }
  } catch {
    // not Linux: keep the default range
  }
  return { min: BASE_PORT_MIN, max: BASE_PORT_MAX }
}

async function findFreeBase(dir: string, portCount: number): Promise<number> {
  const { min, max } = listenPortRange()
  const span = max - min - portCount
  if (span <= 0) throw errors.invalid(`no room for ${portCount} ports in ${min}..${max}; pass a base port`)
  const hash = createHash('sha256').update(dir).digest().readUInt32BE(0)
  let base = min + (hash % span)
  for (let attempt = 0; attempt < 20; attempt++) {
    if (await portsFree(base, portCount)) return base
    base = min + ((base - min + 97 * portCount) % span)
  }
  throw errors.invalid(`found no ${portCount} free consecutive ports in ${min}..${max}; pass a base port`)
}

async function portsFree(base: number, count: number): Promise<boolean> {
  for (let port = base; port < base + count; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (!free) return false
  }
  return true
}

// ---------------------------------------------------------------- validation helpers

type Fail = (field: string, why: string) => FffsError

function object(value: unknown, field: string, fail: Fail, known: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(field, `${show(value)} is not an object`)
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) throw fail(field === 'config' ? key : `${field}.${key}`, `unknown field (known: ${known.join(', ')})`)
  }
  return record
}

function nonEmptyString(value: unknown, field: string, fail: Fail): string {
  if (typeof value !== 'string' || value.length === 0) throw fail(field, `${show(value)} is not a non-empty string`)
  return value
}

function positiveInt(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw fail(field, `${show(value)} is not a positive integer`)
  return value
}

/** `retention` of a config: a policy's error as every config error reads (`config retention.keepAllFor: ... (in PATH)`). */
function retentionOf(raw: unknown, configPath: string): RetentionPolicy {
  try {
    return parseRetention(raw, (field) => `retention${field === '' ? '' : `.${field}`}`)
  } catch (err) {
    if (err instanceof FffsError) throw errors.invalid(`config ${err.message} (in ${configPath})`)
    throw err
  }
}

function positiveNumber(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw fail(field, `${show(value)} is not a positive number`)
  return value
}

function nonNegativeInt(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw fail(field, `${show(value)} is not a non-negative integer`)
  return value
}

function show(value: unknown): string {
  if (value === undefined) return 'missing'
  const text = JSON.stringify(value)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file)
    return true
  } catch {
    return false
  }
}
