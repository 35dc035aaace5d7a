// Bootstrap over a plain TCP port: every member listens on its configured port; the lower
// rank of each pair dials the higher. Each side writes one JSON line (its hello: libfabric
// address, registered-region keys, schema and size hashes) and reads the other's, so both
// sides see a mismatch and fail with the same clear error. The listener closes once every
// peer has been heard; the libfabric endpoints carry everything after that.
import net from 'node:net'
import { TransportError } from './native-errors.js'
import type { MemberAddress } from './types.js'

export interface Hello {
  readonly magic: 'fffs-transport/1'
  readonly id: number
  readonly rank: number
  readonly memberCount: number
  readonly membersHash: string
  readonly schemaHash: string
  readonly schema: string
  readonly sizes: string // SMC/RDMC sizes: every member must agree
  readonly provider: string
  readonly address: string // base64 of the passive endpoint's fi_getname
  readonly sstBase: string
  readonly sstKey: string
  readonly smcBase: string
  readonly smcKey: string
}

const HELLO_BYTES_MAX = 64 * 1024
const DIAL_RETRY_MS = 50

export interface BootstrapOptions {
  readonly selfRank: number
  readonly members: readonly MemberAddress[]
  readonly hello: Hello
  readonly deadlineMs: number // absolute, Date.now() based
  readonly onPeer: (rank: number, hello: Hello) => void
}

export async function listenBootstrap(self: MemberAddress): Promise<net.Server> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(new TransportError('PORT_IN_USE', `bootstrap port ${self.host}:${self.port} of member ${self.id} is already in use`))
      } else {
        reject(new TransportError('TRANSPORT_CONFIG', `cannot listen on ${self.host}:${self.port} (member ${self.id}): ${err.message}`))
      }
    })
    server.listen({ port: self.port, host: self.host, exclusive: true }, () => resolve())
  })
  return server
}

function checkHello(opts: BootstrapOptions, theirs: Hello): TransportError | undefined {
  const mine = opts.hello
  const who = `member ${mine.id} and member ${theirs.id}`
  if (theirs.magic !== mine.magic) return new TransportError('SCHEMA_MISMATCH', `${who} speak different bootstrap versions`)
  const expected = opts.members[theirs.rank]
  if (expected === undefined || expected.id !== theirs.id) {
    return new TransportError('TRANSPORT_CONFIG', `member ${theirs.id} claims rank ${theirs.rank}, which member ${mine.id}'s config does not give it`)
  }
  if (theirs.membersHash !== mine.membersHash || theirs.memberCount !== mine.memberCount) {
    return new TransportError('SCHEMA_MISMATCH', `${who} have different member lists`)
  }
  if (theirs.schemaHash !== mine.schemaHash) {
    return new TransportError('SCHEMA_MISMATCH', `SST schema mismatch between ${who}: [${mine.schema}] vs [${theirs.schema}]`)
  }
  if (theirs.sizes !== mine.sizes) return new TransportError('SCHEMA_MISMATCH', `transport sizes differ between ${who}: ${mine.sizes} vs ${theirs.sizes}`)
  if (theirs.provider !== mine.provider) {
    return new TransportError('SCHEMA_MISMATCH', `${who} use different providers: ${mine.provider} vs ${theirs.provider}`)
  }
  return undefined
}

function readHello(socket: net.Socket): Promise<Hello> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8')
      const nl = text.indexOf('\n')
      if (nl >= 0) {
        cleanup()
        try {
          resolve(JSON.parse(text.slice(0, nl)) as Hello)
        } catch (err) {
          reject(new TransportError('SCHEMA_MISMATCH', `malformed bootstrap hello: ${(err as Error).message}`))
        }
      } else if (text.length > HELLO_BYTES_MAX) {
        cleanup()
        reject(new TransportError('SCHEMA_MISMATCH', 'bootstrap hello too long'))
      }
    }
    const onEnd = (): void => {
      cleanup()
      reject(new Error('bootstrap connection closed before hello'))
    }
    const cleanup = (): void => {
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onEnd)
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('error', onEnd)
  })
}

/** Exchanges hellos with every peer; resolves when all were heard and accepted. */
export function exchangeHellos(server: net.Server, opts: BootstrapOptions): Promise<void> {
  const waiting = new Set<number>()
  opts.members.forEach((_, rank) => rank !== opts.selfRank && waiting.add(rank))
  const sockets = new Set<net.Socket>()
  const line = JSON.stringify(opts.hello) + '\n'
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const finish = (err?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      server.off('connection', onConnection)
      for (const s of sockets) s.end()
      if (err) reject(err)
      else resolve()
    }
    const accept = (hello: Hello): void => {
      const err = checkHello(opts, hello)
      if (err) return finish(err)
      if (!waiting.delete(hello.rank)) return
      try {
        opts.onPeer(hello.rank, hello)
      } catch (e) {
        return finish(e as Error)
      }
      if (waiting.size === 0) finish()
    }
    const onConnection = (socket: net.Socket): void => {
      sockets.add(socket)
      socket.on('error', () => sockets.delete(socket))
      socket.write(line)
      readHello(socket).then(accept, () => sockets.delete(socket))
    }
    const dial = (rank: number): void => {
      if (settled) return
      const peer = opts.members[rank]!
      const socket = net.connect({ host: peer.host, port: peer.port })
      sockets.add(socket)
      socket.once('connect', () => {
        socket.write(line)
        readHello(socket).then(accept, () => {
          sockets.delete(socket)
          if (waiting.has(rank)) setTimeout(() => dial(rank), DIAL_RETRY_MS)
        })
      })
      socket.once('error', () => {
        sockets.delete(socket)
        socket.destroy()
        if (waiting.has(rank)) setTimeout(() => dial(rank), DIAL_RETRY_MS)
      })
    }
    const timer = setTimeout(() => {
      const missing = [...waiting].map((r) => opts.members[r]!.id)
      finish(new TransportError('CONNECT_TIMEOUT', `member ${opts.hello.id}: no bootstrap hello from member(s) ${missing.join(', ')} within the connect timeout`))
    }, Math.max(0, opts.deadlineMs - Date.now()))
    server.on('connection', onConnection)
    for (const rank of waiting) if (rank > opts.selfRank) dial(rank)
    if (waiting.size === 0) finish()
  })
}
