// The framed, authenticated wire over real sockets on loopback: binary bodies, errors with
// their codes, wrong keys refused on both sides, dead peers, bounded waits, nothing leaked.

import { randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { errors, FffsError } from '../../src/errors.js'
import { authenticate } from '../../src/replication/auth.js'
import { connect, ConnectionLostError, listen, type Connection, type WireServer } from '../../src/replication/wire.js'

const KEY = randomBytes(32)
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function echoServer(options: Parameters<typeof listen>[4] = {}): Promise<{ server: WireServer; accepted: Connection[] }> {
  const accepted: Connection[] = []
  const server = await listen(0, '127.0.0.1', KEY, (connection) => {
    accepted.push(connection)
    connection.setHandlers({
      onRequest: async (request) => {
        if (request.method === 'echo') return { result: request.args, body: request.body }
        if (request.method === 'fail') throw errors.notFound('the thing')
        if (request.method === 'never') return new Promise(() => undefined)
        if (request.method === 'push') {
          await connection.send('event', { n: 1 }, Buffer.from('pushed'))
          return {}
        }
        throw errors.invalid(`unknown ${request.method}`)
      },
    })
  }, options)
  cleanups.push(() => server.close())
  return { server, accepted }
}

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

describe('wire', () => {
  it('round-trips requests with binary bodies up to 8 MiB, concurrently, and server-pushed messages', async () => {
    const { server } = await echoServer()
    const events: Array<{ method: string; body: string }> = []
    const client = await connect('127.0.0.1', server.port, KEY, 5000, { onMessage: (m) => events.push({ method: m.method, body: m.body.toString() }) })
    cleanups.push(() => client.close())
    const sizes = [0, 1, 7, 65_536 + 3, 1024 * 1024, 8 * 1024 * 1024]
    const bodies = sizes.map((n) => randomBytes(n))
    const replies = await Promise.all(bodies.map((body, i) => client.request('echo', { i, text: 'é∂' }, { body, timeoutMs: 20_000 })))
    replies.forEach((reply, i) => {
      expect(reply.result).toEqual({ i, text: 'é∂' })
      expect(reply.body.equals(bodies[i]!)).toBe(true)
    })
    await client.request('push', null, { timeoutMs: 5000 })
    expect(events).toEqual([{ method: 'event', body: 'pushed' }])
  })

  it('carries errors as FffsError with their code', async () => {
    const { server } = await echoServer()
    const client = await connect('127.0.0.1', server.port, KEY, 5000)
    cleanups.push(() => client.close())
    const err = await client.request('fail', null, { timeoutMs: 5000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FffsError)
    expect((err as FffsError).code).toBe('ENOENT')
    expect((err as FffsError).message).toBe('no such file or directory: the thing')
    // The connection survives an error reply.
    expect((await client.request('echo', 5, { timeoutMs: 5000 })).result).toBe(5)
  })

  it('refuses a wrong key on both sides and logs it', async () => {
    const serverLog: string[] = []
    const { server, accepted } = await echoServer({ onRefused: (address, reason) => serverLog.push(`${address}: ${reason}`) })
    const clientLog: string[] = []
    const err = await connect('127.0.0.1', server.port, randomBytes(32), 5000, { onRefused: (address, reason) => clientLog.push(`${address}: ${reason}`) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FffsError)
    expect((err as FffsError).code).toBe('EACCES')
    expect(clientLog).toEqual([`127.0.0.1:${server.port}: bad cluster key`])
    await until(() => serverLog.length > 0)
    expect(serverLog[0]).toMatch(/^127\.0\.0\.1:\d+: bad cluster key$/)
    expect(accepted).toHaveLength(0)
  })

  it('refuses a peer that does not speak the protocol, with a one-line reason', async () => {
    const serverLog: string[] = []
    const { server } = await echoServer({ onRefused: (_address, reason) => serverLog.push(reason) })
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(server.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\n\r\n'))
      let text = ''
      socket.on('data', (chunk) => (text += chunk.toString('latin1')))
      socket.on('close', () => resolve(text))
    })
    expect(answer.endsWith('refused: not an fffs peer\n')).toBe(true)
    expect(serverLog).toEqual(['not an fffs peer'])
  })

  it('a silent peer is refused after the handshake timeout', async () => {
    const serverLog: string[] = []
    const { server } = await echoServer({ handshakeTimeoutMs: 200, onRefused: (_address, reason) => serverLog.push(reason) })
    const socket = net.connect(server.port, '127.0.0.1')
    socket.on('error', () => undefined)
    socket.resume() // read (and ignore) the server's hello, so the close is seen
    await new Promise((resolve) => socket.on('close', resolve))
    expect(serverLog).toEqual(['no handshake within 200 ms'])
  })

  it('a dead peer rejects every pending request within the bound', async () => {
    // A peer that passes the handshake, then never answers nor sends heartbeats.
    const raw = net.createServer((socket) => {
      socket.on('error', () => undefined)
      void authenticate(socket, KEY, 'server', { timeoutMs: 5000 }).catch(() => undefined)
    })
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => raw.close(() => resolve())))
    const port = (raw.address() as net.AddressInfo).port
    const client = await connect('127.0.0.1', port, KEY, 5000, { heartbeatIntervalMs: 50, deadPeerMs: 400 })
    const closed = new Promise<Error>((resolve) => client.onClose(resolve))
    const startedMs = Date.now()
    const results = await Promise.allSettled([
      client.request('echo', 1, { timeoutMs: 60_000 }),
      client.request('echo', 2, { body: randomBytes(1024 * 1024), timeoutMs: 60_000 }),
    ])
    const elapsedMs = Date.now() - startedMs
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConnectionLostError)
      expect(((r as PromiseRejectedResult).reason as FffsError).code).toBe('EIO')
    }
    expect(elapsedMs).toBeGreaterThanOrEqual(350)
    expect(elapsedMs).toBeLessThan(1500)
    expect((await closed).message).toMatch(/no frame from .* in 400 ms/)
    // A request on a closed connection fails at once, marked as never sent.
    const late = await client.request('echo', 3, { timeoutMs: 60_000 }).catch((e: unknown) => e)
    expect((late as ConnectionLostError).requestSent).toBe(false)
  })

  it('a closed server rejects pending requests at once; a request timeout rejects only that request', async () => {
    const { server } = await echoServer()
    const client = await connect('127.0.0.1', server.port, KEY, 5000)
    const startedMs = Date.now()
    const timedOut = await client.request('never', null, { timeoutMs: 200 }).catch((e: unknown) => e)
    expect((timedOut as FffsError).code).toBe('EIO')
    expect((timedOut as FffsError).message).toMatch(/no reply to never .* within 200 ms/)
    expect(Date.now() - startedMs).toBeLessThan(1000)
    expect((await client.request('echo', 'still open', { timeoutMs: 5000 })).result).toBe('still open')
    const pending = client.request('never', null, { timeoutMs: 60_000 })
    await server.close()
    await expect(pending).rejects.toBeInstanceOf(ConnectionLostError)
  })

  it('leaks no sockets or timers once closed', async () => {
    const before = resourceCounts()
    const { server } = await echoServer()
    const clients = await Promise.all([1, 2, 3].map(() => connect('127.0.0.1', server.port, KEY, 5000, { heartbeatIntervalMs: 20 })))
    await Promise.all(clients.map((c) => c.request('echo', 1, { body: randomBytes(100_000), timeoutMs: 5000 })))
    await new Promise((resolve) => setTimeout(resolve, 100)) // heartbeats run
    for (const c of clients) c.close()
    await server.close()
    cleanups.length = 0
    await until(() => {
      const after = resourceCounts()
      return (after.TCPSocketWrap ?? 0) <= (before.TCPSocketWrap ?? 0) && (after.TCPServerWrap ?? 0) <= (before.TCPServerWrap ?? 0) && (after.Timeout ?? 0) <= (before.Timeout ?? 0)
    })
  })
})

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(resourceCounts())}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
