// Native transport benchmark (manual, never in CI): SST push-to-visible latency, SMC rate and
// latency, RDMC bandwidth, against iperf3 and a Node `net` implementation of the same patterns,
// in one run on loopback. All members live in this process (one fabric, endpoints and
// completion thread each; one shared JS thread), and so do the `net` baselines.
//   npm run build && node dist/bench/transport/native-bench.js [--quick]
import { spawn } from 'node:child_process'
import net from 'node:net'
import { NativeTransport } from '../../src/replication/transport/native.js'
import { TRANSPORT_DEFAULTS, type SstSchema, type Transport } from '../../src/replication/transport/types.js'

const quick = process.argv.includes('--quick')
const MB = 1_000_000
const schema: SstSchema = { columns: [{ name: 'counter', kind: 'u64' }] }

// ---- helpers ----

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

async function nativeGroup(memberCount: number): Promise<NativeTransport[]> {
  const ports = await freePorts(memberCount)
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }))
  const ts = members.map((m) => new NativeTransport({ ...TRANSPORT_DEFAULTS, suspectTimeoutMs: 10_000, selfId: m.id, members, schema }))
  await Promise.all(ts.map((t) => t.start()))
  return ts
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

function stats(samplesUs: number[]): { p50: number; p99: number } {
  samplesUs.sort((a, b) => a - b)
  return { p50: percentile(samplesUs, 50), p99: percentile(samplesUs, 99) }
}

const nowUs = (): number => Number(process.hrtime.bigint()) / 1000
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- native measurements ----

/** Writer 0 pushes counter=i; latency until every other member's 'rows' event shows i. */
async function sstLatency(ts: Transport[], rounds: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = []
  for (let i = 1; i <= rounds; i++) {
    const t0 = nowUs()
    await new Promise<void>((resolve) => {
      let pending = ts.length - 1
      const listeners = ts.slice(1).map((t) => {
        const l = (): void => {
          if (t.sst.u64(0, 'counter') === BigInt(i)) {
            t.off('rows', l)
            if (--pending === 0) resolve()
          }
        }
        t.on('rows', l)
        return l
      })
      void listeners
      ts[0]!.setU64('counter', BigInt(i))
      ts[0]!.push()
    })
    samples.push(nowUs() - t0)
    if (i % 10 === 0) await pause(1)
  }
  return stats(samples)
}

/** One-way SMC latency from 0 to 1 (half a ping-pong), other members receive too. */
async function smcLatency(ts: Transport[], size: number, rounds: number): Promise<{ p50: number; p99: number }> {
  const payload = new Uint8Array(size)
  const samples: number[] = []
  const echo = (sender: number): void => {
    if (sender === 0) void ts[1]!.sendSmall(payload)
  }
  ts[1]!.on('small', echo)
  for (let i = 0; i < rounds; i++) {
    const t0 = nowUs()
    await new Promise<void>((resolve) => {
      const l = (sender: number): void => {
        if (sender === 1) {
          ts[0]!.off('small', l)
          resolve()
        }
      }
      ts[0]!.on('small', l)
      void ts[0]!.sendSmall(payload)
    })
    samples.push((nowUs() - t0) / 2)
  }
  ts[1]!.off('small', echo)
  return stats(samples)
}

/** Messages per second from member 0 until every member has delivered them all. */
async function smcRate(ts: Transport[], size: number, count: number): Promise<number> {
  const payload = new Uint8Array(size)
  let remaining = count * (ts.length - 1)
  const done = new Promise<void>((resolve) => {
    ts.slice(1).forEach((t) =>
      t.on('small', (sender) => {
        if (sender === 0 && --remaining === 0) resolve()
      }),
    )
  })
  const t0 = nowUs()
  const sends: Promise<void>[] = []
  for (let i = 0; i < count; i++) sends.push(ts[0]!.sendSmall(payload))
  await Promise.all([done, ...sends])
  const rate = count / ((nowUs() - t0) / 1e6)
  ts.forEach((t) => ((t as unknown as { listeners: { small: Set<unknown> } }).listeners.small.clear()))
  return rate
}

/** MB/s of one object from member 0 until every receiver has it. */
async function rdmcBandwidth(ts: Transport[], sizeBytes: number, reps: number): Promise<number> {
  const payload = new Uint8Array(sizeBytes).fill(7)
  let best = 0
  for (let r = 0; r < reps; r++) {
    let remaining = ts.length - 1
    const done = new Promise<void>((resolve) => {
      const ls = ts.slice(1).map((t) => {
        const l = (sender: number): void => {
          if (sender === 0 && --remaining === 0) {
            ts.forEach((x, i) => i > 0 && x.off('large', ls[i - 1]!))
            resolve()
          }
        }
        t.on('large', l)
        return l
      })
    })
    const t0 = nowUs()
    await Promise.all([ts[0]!.sendLarge(payload), done])
    best = Math.max(best, sizeBytes / MB / ((nowUs() - t0) / 1e6))
  }
  return best
}

// ---- baselines ----

async function iperf3(): Promise<number | undefined> {
  const [port] = await freePorts(1)
  const server = spawn('iperf3', ['-s', '-1', '-p', String(port)], { stdio: 'ignore' })
  try {
    await pause(300)
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', quick ? '2' : '4', '-J'])
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

interface NetLink {
  readonly a: net.Socket // member 0's side
  readonly b: net.Socket // receiver side
}

async function netLinks(count: number): Promise<{ links: NetLink[]; close: () => void }> {
  const server = net.createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as net.AddressInfo).port
  const links: NetLink[] = []
  for (let i = 0; i < count; i++) {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r))
    const a = net.connect(port, '127.0.0.1')
    a.setNoDelay(true)
    const b = await accepted
    b.setNoDelay(true)
    links.push({ a, b })
  }
  return { links, close: () => { links.forEach((l) => { l.a.destroy(); l.b.destroy() }); server.close() } }
}

/** Length-prefixed framing on a socket: calls onMessage(length) per complete message. */
function frames(socket: net.Socket, onMessage: (length: number) => void): void {
  let buffered: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let off = 0
    while (buffered.length - off >= 4) {
      const len = buffered.readUInt32LE(off)
      if (buffered.length - off - 4 < len) break
      off += 4 + len
      onMessage(len)
    }
    buffered = buffered.subarray(off)
  })
}

function frame(size: number): Buffer {
  const b = Buffer.alloc(4 + size)
  b.writeUInt32LE(size, 0)
  return b
}

async function netPingPong(size: number, rounds: number): Promise<{ p50: number; p99: number }> {
  const { links, close } = await netLinks(1)
  const { a, b } = links[0]!
  const msg = frame(size)
  frames(b, () => b.write(msg))
  const samples: number[] = []
  let resolveOne: (() => void) | undefined
  frames(a, () => resolveOne?.())
  for (let i = 0; i < rounds; i++) {
    const t0 = nowUs()
    await new Promise<void>((r) => {
      resolveOne = r
      a.write(msg)
    })
    samples.push((nowUs() - t0) / 2)
  }
  close()
  return stats(samples)
}

/**
 * The SMC latency pattern over sockets: 0 multicasts to 1 and 2 (one socket each), 1 answers
 * by multicasting to 0 and 2; half the round trip, as smcLatency measures.
 */
async function netMulticastPingPong(size: number, rounds: number): Promise<{ p50: number; p99: number }> {
  const { links, close } = await netLinks(4)
  const [to1, to2, back0, back2] = links as [NetLink, NetLink, NetLink, NetLink]
  const msg = frame(size)
  frames(to1.b, () => {
    back0.a.write(msg)
    back2.a.write(msg)
  })
  frames(to2.b, () => undefined)
  frames(back2.b, () => undefined)
  let resolveOne: (() => void) | undefined
  frames(back0.b, () => resolveOne?.())
  const samples: number[] = []
  for (let i = 0; i < rounds; i++) {
    const t0 = nowUs()
    await new Promise<void>((r) => {
      resolveOne = r
      to1.a.write(msg)
      to2.a.write(msg)
    })
    samples.push((nowUs() - t0) / 2)
  }
  close()
  return stats(samples)
}

/** CPU of an idle group (heartbeats only), per member: all members share this process. */
async function idleCpuPercent(memberCount: number, seconds: number): Promise<number> {
  const ts = await nativeGroup(memberCount)
  await pause(1000)
  const before = process.cpuUsage()
  const t0 = nowUs()
  await pause(seconds * 1000)
  const used = process.cpuUsage(before)
  const elapsedUs = nowUs() - t0
  await Promise.all(ts.map((t) => t.stop()))
  return ((used.user + used.system) / elapsedUs / memberCount) * 100
}

async function netRate(size: number, count: number, receivers: number): Promise<number> {
  const { links, close } = await netLinks(receivers)
  let remaining = count * receivers
  const done = new Promise<void>((resolve) => links.forEach((l) => frames(l.b, () => --remaining === 0 && resolve())))
  const msg = frame(size)
  const t0 = nowUs()
  for (let i = 0; i < count; i++) for (const l of links) l.a.write(msg)
  await done
  close()
  return count / ((nowUs() - t0) / 1e6)
}

/** The sender writes the object to each receiver over its own socket (star), all at once. */
async function netBulk(sizeBytes: number, receivers: number, reps: number): Promise<number> {
  let best = 0
  const payload = Buffer.alloc(sizeBytes, 7)
  for (let r = 0; r < reps; r++) {
    const { links, close } = await netLinks(receivers)
    let remaining = receivers
    const done = new Promise<void>((resolve) =>
      links.forEach((l) => {
        let got = 0
        const chunks: Buffer[] = []
        l.b.on('data', (c: Buffer) => {
          chunks.push(c) // the receiver keeps the object, as RDMC's receiver does
          got += c.length
          if (got === sizeBytes && --remaining === 0) resolve()
        })
      }),
    )
    const t0 = nowUs()
    for (const l of links) l.a.write(payload)
    await done
    best = Math.max(best, sizeBytes / MB / ((nowUs() - t0) / 1e6))
    close()
  }
  return best
}

// ---- the run ----

type Row = [string, string, string, string]

async function main(): Promise<void> {
  const rows: Row[] = []
  const fmtUs = (s: { p50: number; p99: number }): string => `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} µs`
  const ratio = (a: number, b: number | undefined): string => (b ? `${(a / b).toFixed(2)}×` : 'n/a')
  const latRounds = quick ? 200 : 1000

  const iperfMBs = await iperf3()
  rows.push(['iperf3 single stream, loopback', iperfMBs ? `${iperfMBs.toFixed(0)} MB/s` : 'iperf3 missing or failed', '', ''])

  const idle = await idleCpuPercent(3, quick ? 2 : 5)
  rows.push(['idle CPU per member, 3 members', `${idle.toFixed(2)} %`, 'target < 2 %', ''])

  const netLat8 = await netPingPong(8, latRounds)
  {
    const ts = await nativeGroup(2)
    const lat = await smcLatency(ts, 1000, latRounds)
    const netLat = await netPingPong(1000, latRounds)
    rows.push(['SMC 1000 B one-way latency p50/p99, 2 members', fmtUs(lat), `net ${fmtUs(netLat)}`, ratio(lat.p50, netLat.p50)])
    await Promise.all(ts.map((t) => t.stop()))
  }
  for (const n of [2, 3]) {
    const ts = await nativeGroup(n)
    const s = await sstLatency(ts, latRounds)
    rows.push([`SST push→visible p50/p99, ${n} members`, fmtUs(s), `net 8 B one-way ${fmtUs(netLat8)}`, ratio(s.p50, netLat8.p50)])
    await Promise.all(ts.map((t) => t.stop()))
  }

  {
    const ts = await nativeGroup(3)
    for (const size of [100, 1000, 10_000]) {
      const lat = await smcLatency(ts, size, latRounds)
      const netLat = await netPingPong(size, latRounds)
      rows.push([`SMC ${size} B one-way latency p50/p99, 3 members`, fmtUs(lat), `net ${fmtUs(netLat)}`, ratio(lat.p50, netLat.p50)])
      const netMc = await netMulticastPingPong(size, latRounds)
      rows.push([`  same, net doing the 3-member multicast pattern`, '', `net ${fmtUs(netMc)}`, ratio(lat.p50, netMc.p50)])
      const count = quick ? 5000 : 20_000
      const rate = await smcRate(ts, size, count)
      const netR = await netRate(size, count, 2)
      rows.push([`SMC ${size} B rate to 2 receivers`, `${(rate / 1000).toFixed(1)} k msg/s`, `net ${(netR / 1000).toFixed(1)} k msg/s`, ratio(rate, netR)])
    }
    await Promise.all(ts.map((t) => t.stop()))
  }

  for (const receivers of [1, 2, 4]) {
    const ts = await nativeGroup(receivers + 1)
    for (const sizeMB of quick ? [1, 16] : [1, 16, 256]) {
      const reps = sizeMB >= 256 ? 1 : sizeMB >= 16 ? 2 : 5
      const bw = await rdmcBandwidth(ts, sizeMB * MB, reps)
      const netBw = await netBulk(sizeMB * MB, receivers, reps)
      rows.push([`RDMC ${sizeMB} MB to ${receivers} receiver(s)`, `${bw.toFixed(0)} MB/s`, `net star ${netBw.toFixed(0)} MB/s; vs iperf3 ${ratio(bw, iperfMBs)}`, ratio(bw, netBw)])
    }
    await Promise.all(ts.map((t) => t.stop()))
  }

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), ['measure', 'native', 'baseline', 'ratio'][i]!.length))
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  console.log(line(['measure', 'native', 'baseline', 'ratio']))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const r of rows) console.log(line(r))
}

await main()
process.exit(0)
