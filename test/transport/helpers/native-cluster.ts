// Helpers for native transport tests: free loopback ports, configs, in-process groups for the
// compliance suite, and child-process clusters (test/transport/helpers/native-harness.mjs)
// whose members are killed in teardown whatever happens.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { listenPortRange } from '../../../src/replication/config.js'
import { NativeTransport } from '../../../src/replication/transport/native.js'
import { TRANSPORT_DEFAULTS, type SstSchema, type TransportConfig } from '../../../src/replication/transport/types.js'
import type { ComplianceGroup, MakeGroup } from '../compliance.js'

export type Sizes = Partial<Pick<TransportConfig, 'smcSlotSizeBytes' | 'smcWindowSlots' | 'rdmcBlockSizeBytes' | 'heartbeatIntervalMs' | 'suspectTimeoutMs' | 'connectTimeoutMs' | 'provider' | 'smcCqData' | 'latencySpinUs'>>

/**
 * Free loopback ports where listeners belong (listenPortRange: below the kernel's ephemeral
 * range), picked at random and held together while picked. Not ports the kernel hands out
 * itself: those come back to the next outgoing connection (every endpoint connects), so a
 * parallel test could take one before it is used.
 */
export async function freePorts(count: number): Promise<number[]> {
  const { min, max } = listenPortRange()
  const held: net.Server[] = []
  try {
    for (let attempt = 0; held.length < count; attempt++) {
      if (attempt >= 1000) throw new Error(`no ${count} free ports in ${min}..${max}`)
      const port = min + Math.floor(Math.random() * (max - min + 1))
      const server = await new Promise<net.Server | undefined>((resolve) => {
        const s = net.createServer()
        s.once('error', () => resolve(undefined))
        s.listen(port, '127.0.0.1', () => resolve(s))
      })
      if (server !== undefined) held.push(server)
    }
    return held.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))))
  }
}

export async function configs(memberCount: number, schema: SstSchema, sizes: Sizes = {}): Promise<TransportConfig[]> {
  const ports = await freePorts(memberCount)
  const members = ports.map((port, i) => ({ id: 100 + i, host: '127.0.0.1', port }))
  return members.map((m) => ({ ...TRANSPORT_DEFAULTS, connectTimeoutMs: 15_000, ...sizes, selfId: m.id, members, schema }))
}

export async function waitUntil(condition: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (condition()) return true
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** Several native transports in this process: real endpoints over loopback; crash = abort (silence). */
export function inProcessGroups(sizes: Sizes = {}): MakeGroup {
  return async ({ memberCount, schema }) => {
    const cfgs = await configs(memberCount, schema, sizes)
    const transports = cfgs.map((c) => new NativeTransport(c))
    try {
      await Promise.all(transports.map((t) => t.start()))
    } catch (err) {
      await Promise.all(transports.map((t) => t.stop()))
      throw err
    }
    const c = cfgs[0]!
    const group: ComplianceGroup = {
      transports,
      smcSlotSizeBytes: c.smcSlotSizeBytes,
      smcWindowSlots: c.smcWindowSlots,
      rdmcBlockSizeBytes: c.rdmcBlockSizeBytes,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
      suspectTimeoutMs: c.suspectTimeoutMs,
      slackMs: 1500, // real time on 2 shared cores
      crash: async (rank) => transports[rank]!.abort(),
      // Memory is visible before its notification: once the condition holds, let every live
      // member's completion thread and JS catch up, so events match what the table shows.
      waitUntil: async (condition, timeoutMs) => {
        const held = await waitUntil(condition, timeoutMs)
        if (held) await Promise.all(transports.map((t) => t.settle()))
        return held
      },
      close: async () => {
        await Promise.all(transports.map((t) => t.stop()))
      },
    }
    return group
  }
}

// ---- child-process clusters ----

export interface MemberEvent {
  readonly ev: string
  readonly [key: string]: unknown
}

export class ChildMember {
  readonly events: MemberEvent[] = []
  private buffered = ''
  private nextId = 1
  exited = false

  constructor(readonly rank: number, readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('utf8')
      let nl: number
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl)
        this.buffered = this.buffered.slice(nl + 1)
        if (line.startsWith('{')) this.events.push(JSON.parse(line) as MemberEvent)
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[member ${rank}] ${chunk.toString('utf8')}`))
    child.on('exit', () => (this.exited = true))
  }

  find(predicate: (e: MemberEvent) => boolean): MemberEvent | undefined {
    return this.events.find(predicate)
  }

  /** Sends a command; resolves with its 'done' event (bounded). */
  async command(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<MemberEvent> {
    const id = this.nextId++
    this.child.stdin!.write(JSON.stringify({ cmd, id, ...args }) + '\n')
    let done: MemberEvent | undefined
    const ok = await waitUntil(() => (done = this.find((e) => e.ev === 'done' && e['id'] === id)) !== undefined || this.exited, timeoutMs, 10)
    if (!ok || !done) throw new Error(`member ${this.rank}: no answer to '${cmd}' within ${timeoutMs} ms`)
    if (done['error']) throw new Error(`member ${this.rank}: '${cmd}' failed: ${String(done['error'])}`)
    return done
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal)
  }
}

const HARNESS = fileURLToPath(new URL('./native-harness.mjs', import.meta.url))

export async function spawnCluster(cfgs: readonly TransportConfig[], startTimeoutMs = 20_000): Promise<ChildMember[]> {
  const members = cfgs.map((c, rank) => new ChildMember(rank, spawn(process.execPath, [HARNESS, JSON.stringify(c)], { stdio: ['pipe', 'pipe', 'pipe'] })))
  const started = await waitUntil(() => members.every((m) => m.find((e) => e.ev === 'started' || e.ev === 'error') || m.exited), startTimeoutMs, 10)
  if (!started || !members.every((m) => m.find((e) => e.ev === 'started'))) {
    const why = members.map((m) => `${m.rank}: ${JSON.stringify(m.find((e) => e.ev === 'error') ?? (m.exited ? 'exited' : 'no start'))}`)
    for (const m of members) m.kill()
    throw new Error(`cluster did not start: ${why.join('; ')}`)
  }
  return members
}
