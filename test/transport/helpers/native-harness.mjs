// One member of a native-transport test cluster, run as a child process. Reads JSON-line
// commands on stdin, writes JSON-line events on stdout. Imports the compiled transport
// (dist/), which `npm test`'s set-up builds.
import { createInterface } from 'node:readline'
import { NativeTransport } from '../../../dist/src/replication/transport/native.js'

const config = JSON.parse(process.argv[2])
const out = (ev) => process.stdout.write(JSON.stringify(ev) + '\n')

/** The bytes sender `s` puts in its message `seq` of `size` bytes: a receiver rebuilds and compares them. */
export function pattern(sender, seq, size) {
  const period = 251
  const base = new Uint8Array(period + 16)
  for (let i = 0; i < base.length; i++) base[i] = (i * 7 + sender * 13 + seq * 29) % period
  const buf = Buffer.allocUnsafe(size)
  for (let off = 0; off < size; off += period) buf.set(base.subarray(0, Math.min(period, size - off)), off)
  return buf
}

const t = new NativeTransport(config)
const seen = new Map() // rank -> last counter value seen
let backwards = 0
t.on('rows', (ranks) => {
  for (const r of ranks) {
    const v = t.sst.u64(r, 'counter')
    if (v < (seen.get(r) ?? 0n)) backwards++
    seen.set(r, v)
  }
})
t.on('small', (sender, seq, payload) => {
  const ok = Buffer.compare(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), pattern(sender, seq, payload.byteLength)) === 0
  out({ ev: 'small', sender, seq, size: payload.byteLength, ok })
})
t.on('large', (sender, seq, payload) => {
  const ok = Buffer.compare(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), pattern(sender, seq, payload.byteLength)) === 0
  out({ ev: 'large', sender, seq, size: payload.byteLength, ok })
})
t.on('suspected', (rank, reason) => out({ ev: 'suspected', rank, reason }))

let smallSeq = 0
let largeSeq = 0
const commands = {
  async count({ upTo }) {
    // Push the counter 1..upTo, each value pushed at once; peers must converge to upTo.
    for (let v = t.sst.u64(t.selfRank, 'counter') + 1n; v <= BigInt(upTo); v++) {
      t.setU64('counter', v)
      t.setBool('flag', v % 2n === 1n)
      t.push(['counter', 'flag'])
      if (v % 64n === 0n) await new Promise((r) => setImmediate(r))
    }
    return {}
  },
  rows() {
    const counters = []
    for (let r = 0; r < t.sst.rowCount; r++) counters.push(t.sst.u64(r, 'counter').toString())
    return { counters, backwards }
  },
  async small({ sizes }) {
    await Promise.all(sizes.map((size) => t.sendSmall(pattern(t.selfRank, smallSeq++, size))))
    return {}
  },
  async large({ sizes }) {
    for (const size of sizes) await t.sendLarge(pattern(t.selfRank, largeSeq++, size))
    return {}
  },
  cpu() {
    const { user, system } = process.cpuUsage()
    return { cpuUs: user + system, atUs: Number(process.hrtime.bigint() / 1000n) }
  },
  async stop() {
    await t.stop()
    setImmediate(() => process.exit(0))
    return {}
  },
}

try {
  await t.start()
  out({ ev: 'started', rank: t.selfRank, pid: process.pid })
} catch (err) {
  out({ ev: 'error', code: err.code, message: err.message })
  process.exit(3)
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line)
  try {
    const result = await commands[cmd.cmd](cmd)
    out({ ev: 'done', id: cmd.id, ...result })
  } catch (err) {
    out({ ev: 'done', id: cmd.id, error: `${err.code ?? ''} ${err.message}` })
  }
})
process.stdin.on('end', () => process.exit(0))
