// One process of the transport benchmark (native-bench.ts forks it): either a member of a
// native group or a peer of the Node `net` baselines. Commands arrive over the IPC channel
// as {id, cmd, args}; each answers {id, result} or {id, error}. Times are
// process.hrtime.bigint() values (CLOCK_MONOTONIC, one clock for every process on the host),
// sent as microseconds, so the parent can subtract a sender's start from a receiver's arrival.
import net from 'node:net'
import { NativeTransport } from '../../src/replication/transport/native.js'
import type { TransportConfig } from '../../src/replication/transport/types.js'

type Args = Record<string, unknown>
const payloads = new Map<number, Uint8Array>() // large payloads by size, reused across rounds
type Handler = (args: Args) => unknown

const nowUs = (): number => Number(process.hrtime.bigint()) / 1000

function reply(msg: unknown): void {
  process.send!(msg)
}

// ---- native member ----

function nativeMember(): Record<string, Handler> {
  let t: NativeTransport | undefined
  const tr = (): NativeTransport => {
    if (!t) throw new Error('transport not started')
    return t
  }
  // Reset per measurement: what this member saw, with the time it saw it.
  let seenUs: number[] = []
  let lastDoneUs = 0
  let largeDeliveries = 0
  let smallDeliveries = 0
  let expect: { kind: 'small' | 'large'; from: number; count: number; resolve: () => void } | undefined

  const check = (): void => {
    if (!expect) return
    const got = expect.kind === 'small' ? smallDeliveries : largeDeliveries
    if (got >= expect.count) {
      const e = expect
      expect = undefined
      e.resolve()
    }
  }

  return {
    async start({ config }) {
      t = new NativeTransport(config as TransportConfig)
      await t.start()
      t.on('small', (sender) => {
        if (expect?.kind === 'small' && sender === expect.from) {
          smallDeliveries++
          lastDoneUs = nowUs()
          check()
        }
      })
      t.on('large', (sender, _seq, payload) => {
        if (sender === tr().selfRank) return
        if (expect?.kind === 'large' && sender === expect.from) {
          largeDeliveries++
          lastDoneUs = nowUs()
          check()
        }
        tr().recycle(payload) // as the replica does once an object is in its log
      })
      return {}
    },
    async stop() {
      await t?.stop()
      return {}
    },
    /** Readers: record when each value of rank 0's counter becomes visible, and ack it. */
    sstReader() {
      seenUs = []
      const self = tr()
      let last = self.sst.u64(0, 'counter')
      self.on('rows', () => {
        const v = self.sst.u64(0, 'counter')
        if (v === last) return
        last = v
        seenUs[Number(v)] = nowUs()
        self.setU64('ack', v)
        self.push(['ack'])
      })
      return {}
    },
    sstSeen() {
      return { seenUs }
    },
    /** Writer (rank 0): push counter = base+1.., wait for every reader's ack each time. */
    async sstWrite({ rounds, base }) {
      const self = tr()
      const startUs: number[] = []
      const n = self.sst.rowCount
      for (let i = (base as number) + 1; i <= (base as number) + (rounds as number); i++) {
        const v = BigInt(i)
        await new Promise<void>((resolve) => {
          const acked = (): boolean => {
            for (let r = 1; r < n; r++) if (self.sst.u64(r, 'ack') < v) return false
            return true
          }
          const l = (): void => {
            if (acked()) {
              self.off('rows', l)
              resolve()
            }
          }
          self.on('rows', l)
          startUs[i] = nowUs()
          self.setU64('counter', v)
          self.push(['counter'])
        })
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1))
      }
      return { startUs }
    },
    /** Rank 1: answer every small message from rank 0 with one of the same size (one buffer per size, as the net echo). */
    smcEcho() {
      const self = tr()
      const replies = new Map<number, Uint8Array>()
      self.on('small', (sender, _seq, payload) => {
        if (sender !== 0) return
        let reply = replies.get(payload.byteLength)
        if (reply === undefined) replies.set(payload.byteLength, (reply = new Uint8Array(payload.byteLength)))
        void self.sendSmall(reply)
      })
      return {}
    },
    /** Rank 0: half round trips to rank 1's echo. */
    async smcPing({ size, rounds }) {
      const self = tr()
      const payload = new Uint8Array(size as number)
      const samples: number[] = []
      for (let i = 0; i < (rounds as number); i++) {
        const t0 = nowUs()
        await new Promise<void>((resolve) => {
          const l = (sender: number): void => {
            if (sender === 1) {
              self.off('small', l)
              resolve()
            }
          }
          self.on('small', l)
          void self.sendSmall(payload)
        })
        samples.push((nowUs() - t0) / 2)
      }
      return { samples }
    },
    /** Receivers: resolve once `count` messages of `kind` from `from` arrived; answers the time of the last. */
    async expect({ kind, from, count }) {
      smallDeliveries = 0
      largeDeliveries = 0
      await new Promise<void>((resolve) => {
        expect = { kind: kind as 'small' | 'large', from: from as number, count: count as number, resolve }
        check()
      })
      return { doneUs: lastDoneUs }
    },
    async smcBlast({ size, count }) {
      const self = tr()
      const payload = new Uint8Array(size as number)
      const t0 = nowUs()
      const sends: Promise<void>[] = []
      for (let i = 0; i < (count as number); i++) sends.push(self.sendSmall(payload))
      await Promise.all(sends)
      return { startUs: t0 }
    },
    /** `count` objects back to back, handed over (as the member runtime sends). */
    async largeBlast({ size, count }) {
      const self = tr()
      // One buffer per size for the whole run (never changed, so handing it over again is
      // honest): the sender does not pay first-touch faults of a fresh 256 MB buffer per round.
      const payload = payloads.get(size as number) ?? new Uint8Array(size as number).fill(7)
      payloads.set(size as number, payload)
      const t0 = nowUs()
      const sends: Promise<void>[] = []
      for (let i = 0; i < (count as number); i++) sends.push(self.sendLarge(payload, { handOver: true }))
      await Promise.all(sends)
      return { startUs: t0 }
    },
    cpu() {
      const u = process.cpuUsage()
      return { cpuUs: u.user + u.system, atUs: nowUs() }
    },
  }
}

// ---- net peer: length-prefixed frames over one socket per pair ----

function netPeer(): Record<string, Handler> {
  let rank = -1
  // The native transport's latencySpinUs, done the JS way: after a frame arrives the loop keeps
  // turning (setImmediate) for `pollUs` instead of sleeping. 0 (default): a plain Node socket.
  let pollUs = 0
  let polledUntilNs = 0n
  let polling = false
  const keepPolling = (): void => {
    if (pollUs === 0) return
    polledUntilNs = process.hrtime.bigint() + BigInt(pollUs) * 1000n
    if (polling) return
    polling = true
    const turn = (): void => {
      if (process.hrtime.bigint() < polledUntilNs) setImmediate(turn)
      else polling = false
    }
    setImmediate(turn)
  }
  const sockets = new Map<number, net.Socket>()
  const server = net.createServer()
  // What a frame (or, in bulk mode, a byte) from a peer does; set per measurement.
  let onFrame: (from: number, length: number) => void = () => undefined
  let onBytes: ((from: number, bytes: Buffer) => void) | undefined

  const attach = (peer: number, s: net.Socket): void => {
    s.setNoDelay(true)
    sockets.set(peer, s)
    let buffered: Buffer = Buffer.alloc(0)
    s.on('data', (chunk: Buffer) => {
      keepPolling()
      if (onBytes) return onBytes(peer, chunk)
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      let off = 0
      while (buffered.length - off >= 4) {
        const len = buffered.readUInt32LE(off)
        if (buffered.length - off - 4 < len) break
        off += 4 + len
        onFrame(peer, len)
      }
      buffered = buffered.subarray(off)
    })
  }
  const frame = (size: number): Buffer => {
    const b = Buffer.alloc(4 + size)
    b.writeUInt32LE(size, 0)
    return b
  }
  const to = (ranks: unknown): net.Socket[] => (ranks as number[]).map((r) => sockets.get(r)!)

  return {
    async listen({ self }) {
      rank = self as number
      server.on('connection', (s) => {
        s.once('readable', () => {
          const hello = s.read(4) as Buffer | null
          if (hello) attach(hello.readUInt32LE(0), s)
        })
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
      return { port: (server.address() as net.AddressInfo).port }
    },
    /** Connects to every peer of higher rank; lower ranks connect to us. Resolves when all are attached. */
    async connect({ peers }) {
      for (const { rank: r, port } of peers as { rank: number; port: number }[]) {
        if (r <= rank) continue
        const s = net.connect(port as number, '127.0.0.1')
        await new Promise<void>((resolve) => s.once('connect', () => resolve()))
        const hello = Buffer.alloc(4)
        hello.writeUInt32LE(rank, 0)
        s.write(hello)
        attach(r, s)
      }
      const want = (peers as unknown[]).length - 1
      while (sockets.size < want) await new Promise((r) => setTimeout(r, 5))
      return {}
    },
    poll({ us }) {
      pollUs = us as number
      return {}
    },
    /** Echo: a frame from `from` goes back as one frame to each of `to`. */
    echo({ from, to: targets, size }) {
      const msg = frame(size as number)
      const out = to(targets)
      onBytes = undefined
      onFrame = (peer) => {
        if (peer === from) for (const s of out) s.write(msg)
      }
      return {}
    },
    /** Half round trips: one frame to each of `to`, wait for one from `from`. */
    async ping({ size, rounds, to: targets, from }) {
      const msg = frame(size as number)
      const out = to(targets)
      onBytes = undefined
      const samples: number[] = []
      let resolveOne: (() => void) | undefined
      onFrame = (peer) => {
        if (peer === from) resolveOne?.()
      }
      for (let i = 0; i < (rounds as number); i++) {
        const t0 = nowUs()
        await new Promise<void>((r) => {
          resolveOne = r
          for (const s of out) s.write(msg)
          keepPolling()
        })
        samples.push((nowUs() - t0) / 2)
      }
      return { samples }
    },
    /** Resolves when `count` frames from `from` arrived (frames) or `bytes` bytes (bulk); the time of the last. */
    async expect({ from, count, bytes }) {
      let doneUs = 0
      await new Promise<void>((resolve) => {
        if (bytes !== undefined) {
          let got = 0
          const chunks: Buffer[] = []
          onBytes = (peer, chunk) => {
            if (peer !== from) return
            chunks.push(chunk) // the receiver keeps the object, as RDMC's receiver does
            got += chunk.length
            if (got >= (bytes as number)) {
              doneUs = nowUs()
              chunks.length = 0
              resolve()
            }
          }
        } else {
          onBytes = undefined
          let got = 0
          onFrame = (peer) => {
            if (peer === from && ++got === count) {
              doneUs = nowUs()
              resolve()
            }
          }
        }
      })
      return { doneUs }
    },
    async blast({ size, count, to: targets }) {
      const msg = frame(size as number)
      const out = to(targets)
      const t0 = nowUs()
      for (let i = 0; i < (count as number); i++) for (const s of out) s.write(msg)
      await Promise.all(out.map((s) => new Promise<void>((r) => (s.writableNeedDrain ? s.once('drain', () => r()) : r()))))
      return { startUs: t0 }
    },
    /** Star: `count` objects of `size` bytes to each of `to`, back to back. */
    async bulk({ size, count, to: targets }) {
      const payload = payloads.get(size as number) ?? Buffer.alloc(size as number, 7)
      payloads.set(size as number, payload)
      const out = to(targets)
      const t0 = nowUs()
      for (let i = 0; i < (count as number); i++) for (const s of out) s.write(payload)
      return { startUs: t0 }
    },
    cpu() {
      const u = process.cpuUsage()
      return { cpuUs: u.user + u.system, atUs: nowUs() }
    },
    stop() {
      for (const s of sockets.values()) s.destroy()
      server.close()
      return {}
    },
  }
}

const role = process.argv[2]
const handlers = role === 'native' ? nativeMember() : netPeer()
process.on('message', (msg: { id: number; cmd: string; args: Args }) => {
  const h = handlers[msg.cmd]
  if (!h) return reply({ id: msg.id, error: `unknown command ${msg.cmd}` })
  Promise.resolve()
    .then(() => h(msg.args ?? {}))
    .then(
      (result) => reply({ id: msg.id, result }),
      (err: Error) => reply({ id: msg.id, error: err.stack ?? String(err) }),
    )
})
process.on('disconnect', () => process.exit(0))
