// Native transport benchmark (manual, never in CI): SST push-to-visible latency, SMC rate and
// latency, RDMC bandwidth, against iperf3 and a Node `net` implementation of the same
// patterns, in one run on loopback; prints the table and writes it to bench/out/transport.json.
//   npm run build && node dist/bench/transport/native-bench.js [--quick] [--rounds N]
//
// Every member is its own process (bench-member.ts), as in a deployment, and so is every peer
// of the `net` baselines and of iperf3: nobody shares a JS thread with another member. Each
// figure is the median over interleaved rounds (native, then baseline, then native ...), so
// outside load on the shared cores hits both alike; ratios compare medians of one run.
// Arrival times come from the receivers' own clocks (CLOCK_MONOTONIC, one clock per host).
import { fork, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TRANSPORT_DEFAULTS, type SstSchema, type TransportConfig } from '../../src/replication/transport/types.js'
import { BenchProgress } from '../progress.js'

const quick = process.argv.includes('--quick')
const roundsArg = process.argv.indexOf('--rounds')
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : quick ? 3 : 5
const only = ((): string | undefined => {
  const i = process.argv.indexOf('--only')
  return i > 0 ? process.argv[i + 1] : undefined
})()
const MB = 1_000_000
const schema: SstSchema = {
  columns: [
    { name: 'counter', kind: 'u64' },
    { name: 'ack', kind: 'u64' },
  ],
}

// ---- child processes ----

type Result = Record<string, unknown>

class Child {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>()
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: { id: number; result?: Result; error?: string }) => {
      const w = this.waiting.get(m.id)
      if (!w) return
      this.waiting.delete(m.id)
      if (m.error !== undefined) w.reject(new Error(m.error))
      else w.resolve(m.result ?? {})
    })
    proc.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`bench member exited (${code})`))
      this.waiting.clear()
    })
  }
  call(cmd: string, args: Record<string, unknown> = {}): Promise<Result> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.proc.send({ id, cmd, args })
    })
  }
  kill(): void {
    this.proc.kill('SIGKILL')
  }
}

const memberScript = fileURLToPath(new URL('./bench-member.js', import.meta.url))
const children = new Set<Child>()
function spawnChild(role: 'native' | 'net'): Child {
  const c = new Child(fork(memberScript, [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  children.add(c)
  return c
}
function killAll(list: readonly Child[]): void {
  for (const c of list) {
    c.kill()
    children.delete(c)
  }
}
process.on('exit', () => killAll([...children]))

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve) => {
      const s = net.createServer()
      s.listen(0, '127.0.0.1', () => resolve(s))
    })),
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

async function nativeGroup(memberCount: number, options: Partial<TransportConfig> = {}): Promise<Child[]> {
  const ports = await freePorts(memberCount)
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }))
  const cs = members.map(() => spawnChild('native'))
  await Promise.all(cs.map((c, i) => {
    const config: TransportConfig = { ...TRANSPORT_DEFAULTS, suspectTimeoutMs: 10_000, connectTimeoutMs: 30_000, ...options, selfId: members[i]!.id, members, schema }
    return c.call('start', { config })
  }))
  return cs
}

async function stopGroup(cs: Child[]): Promise<void> {
  await Promise.all(cs.map((c) => c.call('stop').catch(() => undefined)))
  killAll(cs)
}

/** Peers of the `net` baselines, one socket per pair. */
async function netGroup(count: number): Promise<Child[]> {
  const cs = Array.from({ length: count }, () => spawnChild('net'))
  const ports = await Promise.all(cs.map((c, i) => c.call('listen', { self: i }).then((r) => r['port'] as number)))
  const peers = ports.map((port, rank) => ({ rank, port }))
  await Promise.all(cs.map((c) => c.call('connect', { peers })))
  return cs
}

// ---- statistics ----

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
interface Lat {
  p50: number
  p99: number
}
/** Latency over all rounds' samples pooled (rounds interleave with the baseline). */
function lat(samples: number[]): Lat {
  const s = [...samples].sort((a, b) => a - b)
  return { p50: percentile(s, 50), p99: percentile(s, 99) }
}
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
function range(xs: readonly number[], digits = 0): string {
  return `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`
}
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- native measurements ----

/** Writer 0 pushes counter=i; latency until every other member's 'rows' event shows i. */
async function sstLatency(g: Child[], rounds: number, base: number): Promise<number[]> {
  const { startUs } = (await g[0]!.call('sstWrite', { rounds, base })) as { startUs: number[] }
  const seen = await Promise.all(g.slice(1).map((c) => c.call('sstSeen').then((r) => r['seenUs'] as number[])))
  const samples: number[] = []
  for (let i = base + 1; i <= base + rounds; i++) samples.push(Math.max(...seen.map((s) => s[i]!)) - startUs[i]!)
  return samples
}

async function smcLatency(g: Child[], size: number, rounds: number): Promise<number[]> {
  return ((await g[0]!.call('smcPing', { size, rounds })) as { samples: number[] }).samples
}

/** Expectations first (each receiver answers `sync` once its expectation is set), then the sender. */
async function fanIn(receivers: Child[], expect: Record<string, unknown>, send: () => Promise<Result>): Promise<{ startUs: number; doneUs: number }> {
  const done = receivers.map((c) => c.call('expect', expect))
  await Promise.all(receivers.map((c) => c.call('cpu')))
  const { startUs } = (await send()) as { startUs: number }
  const doneUs = Math.max(...(await Promise.all(done)).map((r) => r['doneUs'] as number))
  return { startUs, doneUs }
}

async function smcRate(g: Child[], size: number, count: number): Promise<number> {
  const { startUs, doneUs } = await fanIn(g.slice(1), { kind: 'small', from: 0, count }, () => g[0]!.call('smcBlast', { size, count }))
  return count / ((doneUs - startUs) / 1e6)
}

async function rdmcBandwidth(g: Child[], size: number, count: number): Promise<number> {
  const { startUs, doneUs } = await fanIn(g.slice(1), { kind: 'large', from: 0, count }, () => g[0]!.call('largeBlast', { size, count }))
  return (size * count) / MB / ((doneUs - startUs) / 1e6)
}

/** CPU of an idle group (heartbeats only), per member, each member's own process. */
async function idleCpuPercent(g: Child[], seconds: number): Promise<number> {
  const before = await Promise.all(g.map((c) => c.call('cpu')))
  await pause(seconds * 1000)
  const after = await Promise.all(g.map((c) => c.call('cpu')))
  const pct = after.map((a, i) => ((a['cpuUs'] as number) - (before[i]!['cpuUs'] as number)) / ((a['atUs'] as number) - (before[i]!['atUs'] as number)) * 100)
  return pct.reduce((x, y) => x + y, 0) / pct.length
}

// ---- baselines ----

async function iperf3(seconds: number): Promise<number | undefined> {
  const [port] = await freePorts(1)
  const server = spawn('iperf3', ['-s', '-1', '-p', String(port)], { stdio: 'ignore' })
  try {
    await pause(300)
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'])
      let text = ''
      c.stdout.on('data', (d: Buffer) => (text += d.toString()))
      c.on('error', reject)
      c.on('exit', () => resolve(text))
    })
    const json = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }
    return json.end.sum_received.bits_per_second / 8 / MB
  } catch {
    return undefined
  } finally {
    server.kill()
  }
}

/** Unicast ping-pong between net peers 0 and 1. */
async function netPingPong(p: Child[], size: number, rounds: number): Promise<number[]> {
  await p[1]!.call('echo', { from: 0, to: [0], size })
  return ((await p[0]!.call('ping', { size, rounds, to: [1], from: 1 })) as { samples: number[] }).samples
}

/** The SMC pattern over sockets: 0 sends to 1 and 2, 1 answers to 0 and 2; half the round trip. */
async function netMulticastPingPong(p: Child[], size: number, rounds: number): Promise<number[]> {
  await p[1]!.call('echo', { from: 0, to: [0, 2], size })
  await p[2]!.call('echo', { from: -1, to: [], size })
  return ((await p[0]!.call('ping', { size, rounds, to: [1, 2], from: 1 })) as { samples: number[] }).samples
}

async function netRate(p: Child[], size: number, count: number, receivers: number): Promise<number> {
  const rs = p.slice(1, 1 + receivers)
  const to = rs.map((_, i) => i + 1)
  const { startUs, doneUs } = await fanIn(rs, { from: 0, count }, () => p[0]!.call('blast', { size, count, to }))
  return count / ((doneUs - startUs) / 1e6)
}

/** The sender writes each object to each receiver over its own socket (star), all at once. */
async function netBulk(p: Child[], size: number, count: number, receivers: number): Promise<number> {
  const rs = p.slice(1, 1 + receivers)
  const to = rs.map((_, i) => i + 1)
  const { startUs, doneUs } = await fanIn(rs, { from: 0, bytes: size * count }, () => p[0]!.call('bulk', { size, count, to }))
  return (size * count) / MB / ((doneUs - startUs) / 1e6)
}

// ---- the run ----

type Row = [string, string, string, string]
const rows: Row[] = []
const progress = new BenchProgress('transport')
const fmtLat = (s: Lat): string => `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} µs`
const ratio = (a: number, b: number | undefined): string => (b ? `${(a / b).toFixed(2)}×` : 'n/a')
const want = (section: string): boolean => only === undefined || only.split(',').includes(section)

/** Rounds alternate which side goes first. */
async function interleave<T>(rounds: number, native: () => Promise<T>, baseline: () => Promise<T>): Promise<{ native: T[]; baseline: T[] }> {
  const out = { native: [] as T[], baseline: [] as T[] }
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      out.native.push(await native())
      out.baseline.push(await baseline())
    } else {
      out.baseline.push(await baseline())
      out.native.push(await native())
    }
  }
  return out
}

async function main(): Promise<void> {
  const started = new Date()
  const latRounds = quick ? 200 : 500
  const netPeers = await netGroup(5)

  if (want('idle')) {
    progress.step('idle CPU of 3 members')
    const g = await nativeGroup(3)
    // Traffic first: the loops poll after it (latencySpinUs) and must go back to sleep.
    await g[0]!.call('smcBlast', { size: 100, count: 2000 })
    await pause(1000)
    const idle = await idleCpuPercent(g, quick ? 2 : 5)
    rows.push(['idle CPU per member, 3 members (own processes), from 1 s after traffic', `${idle.toFixed(2)} %`, 'target < 2 %', ''])
    await stopGroup(g)
  }

  if (want('sst')) {
    progress.step(`SST latency, 2 and 3 members (${ROUNDS} interleaved rounds)`)
    const net8 = (await interleave(ROUNDS, async () => [] as number[], () => netPingPong(netPeers, 8, latRounds))).baseline.flat()
    for (const n of [2, 3]) {
      const g = await nativeGroup(n)
      await Promise.all(g.slice(1).map((c) => c.call('sstReader')))
      let base = 0
      const s = (await interleave(ROUNDS, async () => {
        const r = await sstLatency(g, latRounds, base)
        base += latRounds
        return r
      }, async () => [] as number[])).native.flat()
      rows.push([`SST push→visible p50/p99, ${n} members`, fmtLat(lat(s)), `net 8 B one-way ${fmtLat(lat(net8))}`, ratio(lat(s).p50, lat(net8).p50)])
      await stopGroup(g)
    }
  }

  if (want('smc')) {
    progress.step(`SMC latency and rate, 2 and 3 members (${ROUNDS} interleaved rounds each)`)
    // The target row (default latencySpinUs), then what that polling is worth: the native
    // transport without it, and the net ping-pong with the same polling done in JS.
    const spinUs = TRANSPORT_DEFAULTS.latencySpinUs
    for (const variant of ['default', 'no polling', 'net polling too'] as const) {
      const g = await nativeGroup(2, variant === 'no polling' ? { latencySpinUs: 0 } : {})
      await g[1]!.call('smcEcho')
      const netPoll = variant === 'net polling too' ? spinUs : 0
      await Promise.all(netPeers.slice(0, 2).map((c) => c.call('poll', { us: netPoll })))
      const r = await interleave(ROUNDS, () => smcLatency(g, 1000, latRounds), () => netPingPong(netPeers, 1000, latRounds))
      await Promise.all(netPeers.slice(0, 2).map((c) => c.call('poll', { us: 0 })))
      const a = lat(r.native.flat())
      const b = lat(r.baseline.flat())
      const label = {
        default: `SMC 1000 B one-way latency p50/p99, 2 members (latencySpinUs ${spinUs})`,
        'no polling': '  same, latencySpinUs 0 (the loop sleeps at once)',
        'net polling too': `  same, net polling ${spinUs} µs after traffic too (setImmediate)`,
      }[variant]
      const target = variant === 'default' ? (a.p50 <= b.p50 ? ' target ≤ 1: PASS' : ' target ≤ 1: MISS') : ''
      rows.push([label, fmtLat(a), `net ${fmtLat(b)}`, ratio(a.p50, b.p50) + target])
      await stopGroup(g)
    }
    const g = await nativeGroup(3)
    await g[1]!.call('smcEcho')
    for (const size of [100, 1000, 10_000]) {
      progress.step(`SMC ${size} B, 3 members`)
      const r = await interleave(ROUNDS, () => smcLatency(g, size, latRounds), () => netPingPong(netPeers, size, latRounds))
      const a = lat(r.native.flat())
      const b = lat(r.baseline.flat())
      rows.push([`SMC ${size} B one-way latency p50/p99, 3 members`, fmtLat(a), `net ${fmtLat(b)}`, ratio(a.p50, b.p50)])
      const mc = lat((await interleave(ROUNDS, async () => [] as number[], () => netMulticastPingPong(netPeers, size, latRounds))).baseline.flat())
      rows.push([`  same, net doing the 3-member multicast pattern`, '', `net ${fmtLat(mc)}`, ratio(a.p50, mc.p50)])
      const count = quick ? 5000 : 20_000
      const rate = await interleave(ROUNDS, () => smcRate(g, size, count), () => netRate(netPeers, size, count, 2))
      const nr = median(rate.native)
      const br = median(rate.baseline)
      rows.push([`SMC ${size} B rate to 2 receivers`, `${(nr / 1000).toFixed(1)} k msg/s (${range(rate.native.map((x) => x / 1000))})`, `net ${(br / 1000).toFixed(1)} k msg/s (${range(rate.baseline.map((x) => x / 1000))})`, ratio(nr, br)])
    }
    await stopGroup(g)
  }

  if (want('rdmc')) {
    progress.step(`RDMC bandwidth to 1, 2 and 4 receivers (${ROUNDS} interleaved rounds each)`)
    const iperfRuns: number[] = []
    const pending: Array<{ label: string; native: number[]; baseline: number[] }> = []
    for (const receivers of [1, 2, 4]) {
      const g = await nativeGroup(receivers + 1)
      for (const sizeMB of quick ? [1, 16] : [1, 16, 256]) {
        progress.step(`RDMC ${sizeMB} MB to ${receivers} receiver(s)`)
        const count = sizeMB >= 256 ? 1 : sizeMB >= 16 ? 4 : 20
        const r = await interleave(ROUNDS, () => rdmcBandwidth(g, sizeMB * MB, count), () => netBulk(netPeers, sizeMB * MB, count, receivers))
        pending.push({ label: `RDMC ${sizeMB} MB to ${receivers} receiver(s)`, ...r })
      }
      await stopGroup(g)
      const ip = await iperf3(quick ? 1 : 2)
      if (ip !== undefined) iperfRuns.push(ip)
    }
    const ip = iperfRuns.length > 0 ? median(iperfRuns) : undefined
    rows.push(['iperf3 single stream, loopback (median of runs between)', ip ? `${ip.toFixed(0)} MB/s (${range(iperfRuns)})` : 'iperf3 missing or failed', '', ''])
    for (const p of pending) {
      const nb = median(p.native)
      const bb = median(p.baseline)
      rows.push([p.label, `${nb.toFixed(0)} MB/s (${range(p.native)})`, `net star ${bb.toFixed(0)} MB/s (${range(p.baseline)}); vs iperf3 ${ratio(nb, ip)}`, ratio(nb, bb)])
    }
  }

  await Promise.all(netPeers.map((c) => c.call('stop').catch(() => undefined)))
  killAll(netPeers)

  const header = `fffs transport bench ${started.toISOString()} · node ${process.version} · ${os.type()} ${os.release()} · ${os.cpus().length} CPU ${os.cpus()[0]?.model ?? ''}${quick ? ' · QUICK' : ''}`
  const outDir = fileURLToPath(new URL('../../../bench/out', import.meta.url)) // from dist/bench/transport
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, 'transport.json')
  const table = rows.map(([measure, native, baseline, ratio]) => ({ measure: measure.trim(), native, baseline, ratio }))
  fs.writeFileSync(file, JSON.stringify({ started: started.toISOString(), header, rounds: ROUNDS, rows: table }, null, 2) + '\n')

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), ['measure', 'native', 'baseline', 'ratio'][i]!.length))
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  console.log(header)
  console.log(`medians of ${ROUNDS} interleaved rounds; (min-max over rounds); latencies pool every round's samples`)
  console.log(line(['measure', 'native', 'baseline', 'ratio']))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const r of rows) console.log(line(r))
  console.log(`(wrote ${path.relative(process.cwd(), file) || file})`)
}

await main()
process.exit(0)
