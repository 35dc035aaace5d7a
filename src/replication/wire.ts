// Framed request/response connections over TCP (node:net) for the cluster edge: a mount's
// RemoteClient talking to a member. Every connection first runs the cluster-key handshake
// (auth.ts). Then frames, in both directions:
//
//   u32 frameBytes (= 4 + headerBytes + bodyBytes) | u32 headerBytes | JSON header | body
//
// so file bytes travel as they are (never base64). Header kinds:
//   {t:'q', id, method, args}          request; answered by exactly one response
//   {t:'r', id, result} | {t:'r', id, error:{code, message}}
//   {t:'m', name, args}                one-way message (blobs, server-pushed events)
//   {t:'p'}                            heartbeat, sent when a side has been quiet
// Errors travel as {code, message, reason?} and are re-thrown as FffsError with that code and
// reason, so the errno mapping in src/fs, and whatever tells conditions apart by reason, keep
// working across the network. Every wait is bounded: a request
// by its timeout, the connection by heartbeats (no frame for deadPeerMs: closed, and every
// pending request rejects with ConnectionLostError).

import * as net from 'node:net'
import { codeOf, FffsError, isFffsError, reasonOf } from '../errors.js'
import { pageOffsetFinder } from '../store/diskAddon.js'
import { DIRECT_PAYLOAD_MIN_BYTES, PAGE_BYTES, type PageOffsetOf } from '../store/segmentLog.js'
import { addressOf, authenticate, type AuthOptions } from './auth.js'
import { CLIENT_WIRE_DEFAULTS } from './config.js'
import { grantHeadroom } from './headroom.js'

export const MAX_BODY_BYTES = 64 * 1024 * 1024
const MAX_HEADER_BYTES = 1024 * 1024
const PREFIX_BYTES = 8
// A frame copied out of several socket chunks gets this much room in front, besides its own
// prefix and header: the member's data header and the core's message header go there in place.
const COPY_HEADROOM_BYTES = 64
// A body of DIRECT_PAYLOAD_MIN_BYTES or more (file bytes a member logs with O_DIRECT) is copied
// to a page boundary, with a page of room in front: a data payload's header fills the page out
// (payload.ts).
let pageOffsetOf: PageOffsetOf | null | undefined // loaded with the addon at the first large body

/**
 * A member that cannot answer a read yet while another may (it restarted and has not caught
 * up to the cut, or is replacing its replica): the client asks the next member. Reaching a
 * file system caller (every member answered so), it is EAGAIN.
 */
export class MemberBehindError extends FffsError {
  constructor(message: string) {
    super('EAGAIN', message, 'behind')
    this.name = 'MemberBehindError'
  }
}

/** The connection died (closed, reset, or silent past deadPeerMs). `requestSent`: false when a request never reached the socket. */
export class ConnectionLostError extends FffsError {
  readonly requestSent: boolean
  constructor(message: string, requestSent = true) {
    super('EIO', message)
    this.name = 'ConnectionLostError'
    this.requestSent = requestSent
  }
}

export interface Incoming {
  readonly method: string
  readonly args: unknown
  readonly body: Buffer // empty when the frame had none
}

export interface Reply {
  readonly result?: unknown
  readonly body?: Uint8Array
}

export type RequestHandler = (request: Incoming, connection: Connection) => Promise<Reply>
export type MessageHandler = (message: Incoming, connection: Connection) => void

export interface WireOptions {
  readonly heartbeatIntervalMs?: number
  readonly deadPeerMs?: number
  readonly handshakeTimeoutMs?: number
  readonly onRefused?: AuthOptions['onRefused']
  /** A request handler threw something that is not an FffsError (a bug); default: stderr. */
  readonly onHandlerBug?: (method: string, err: unknown) => void
  readonly onRequest?: RequestHandler
  readonly onMessage?: MessageHandler
}

type Header =
  | { t: 'q'; id: number; method: string; args?: unknown }
  | { t: 'r'; id: number; result?: unknown; error?: WireError }
  | { t: 'm'; name: string; args?: unknown }
  | { t: 'p' }

interface Pending {
  readonly method: string
  readonly resolve: (value: { result: unknown; body: Buffer }) => void
  readonly reject: (err: Error) => void
  readonly timer: NodeJS.Timeout
}

/** One authenticated, framed connection. Symmetric: either side may request and send messages. */
export class Connection {
  readonly remoteAddress: string
  private readonly socket: net.Socket
  private readonly pending = new Map<number, Pending>()
  private readonly closeListeners: Array<(reason: Error) => void> = []
  private readonly heartbeatIntervalMs: number
  private readonly deadPeerMs: number
  private readonly onHandlerBug: (method: string, err: unknown) => void
  private onRequest: RequestHandler | undefined
  private onMessage: MessageHandler | undefined
  private nextId = 1
  private chunks: Buffer[] = []
  private bufferedBytes = 0
  private lastHeardMs = Date.now()
  private lastSentMs = Date.now()
  private corked = false // the socket is corked until the end of this turn of the event loop (write)
  private heartbeat: NodeJS.Timeout | null = null
  private closeReason: Error | null = null

  /** Internal: made by `connect` and `listen` once the handshake passed. */
  constructor(socket: net.Socket, options: WireOptions) {
    this.socket = socket
    this.remoteAddress = addressOf(socket)
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? CLIENT_WIRE_DEFAULTS.heartbeatIntervalMs
    this.deadPeerMs = options.deadPeerMs ?? CLIENT_WIRE_DEFAULTS.deadPeerMs
    this.onHandlerBug = options.onHandlerBug ?? ((method, err) => process.stderr.write(`fffs: bug serving ${method}: ${err instanceof Error ? err.stack : String(err)}\n`))
    this.onRequest = options.onRequest
    this.onMessage = options.onMessage
  }

  /** Internal: starts reading frames (after the handlers are in place) from the handshake's leftover bytes on. */
  start(leftover: Buffer): void {
    this.socket.setNoDelay(true)
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk))
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.close(new ConnectionLostError(`connection to ${this.remoteAddress} failed: ${err.code ?? err.message}`)))
    this.socket.on('close', () => this.close(new ConnectionLostError(`connection to ${this.remoteAddress} closed`)))
    this.heartbeat = setInterval(() => this.tick(), Math.max(1, Math.floor(Math.min(this.heartbeatIntervalMs, this.deadPeerMs / 4))))
    this.heartbeat.unref() // the socket keeps the process alive while it is open, not this timer
    if (this.socket.destroyed) this.close(new ConnectionLostError(`connection to ${this.remoteAddress} closed`))
    else if (leftover.length > 0) this.onData(leftover)
  }

  setHandlers(handlers: { onRequest?: RequestHandler; onMessage?: MessageHandler }): void {
    if (handlers.onRequest !== undefined) this.onRequest = handlers.onRequest
    if (handlers.onMessage !== undefined) this.onMessage = handlers.onMessage
  }

  get isOpen(): boolean {
    return this.closeReason === null
  }

  /** Called once, with the reason, when the connection closes (at once if it already has). */
  onClose(listener: (reason: Error) => void): void {
    if (this.closeReason !== null) listener(this.closeReason)
    else this.closeListeners.push(listener)
  }

  /** Sends a request; resolves with the reply, rejects with its FffsError, a timeout (EIO) or ConnectionLostError. */
  request(method: string, args: unknown, options: { body?: Uint8Array; timeoutMs: number }): Promise<{ result: unknown; body: Buffer }> {
    if (this.closeReason !== null) return Promise.reject(new ConnectionLostError(`${method}: ${this.closeReason.message}`, false))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new FffsError('EIO', `no reply to ${method} from ${this.remoteAddress} within ${options.timeoutMs} ms`))
      }, options.timeoutMs)
      this.pending.set(id, { method, resolve, reject, timer })
      try {
        this.write({ t: 'q', id, method, args }, options.body)
      } catch (err) {
        clearTimeout(timer)
        this.pending.delete(id)
        reject(err)
      }
    })
  }

  /** Sends a one-way message; resolves once the bytes are handed to the kernel. */
  send(name: string, args: unknown, body?: Uint8Array): Promise<void> {
    if (this.closeReason !== null) return Promise.reject(new ConnectionLostError(`${name}: ${this.closeReason.message}`, false))
    return new Promise((resolve, reject) => {
      this.write({ t: 'm', name, args }, body, (err) => (err ? reject(new ConnectionLostError(`${name} to ${this.remoteAddress}: ${err.message}`)) : resolve()))
    })
  }

  /** Closes the connection; pending requests reject with `reason` (a ConnectionLostError by default). */
  close(reason: Error = new ConnectionLostError(`connection to ${this.remoteAddress} closed locally`)): void {
    if (this.closeReason !== null) return
    this.closeReason = reason
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.socket.destroy()
    this.chunks = []
    for (const [, pending] of this.pending) {
      clearTimeout(pending.timer)
      pending.reject(reason instanceof ConnectionLostError ? new ConnectionLostError(`${pending.method}: ${reason.message}`) : reason)
    }
    this.pending.clear()
    for (const listener of this.closeListeners.splice(0)) listener(reason)
  }

  // ---------------------------------------------------------------- frames

  private write(header: Header, body?: Uint8Array, callback?: (err?: Error | null) => void): void {
    const bodyBytes = body?.byteLength ?? 0
    if (bodyBytes > MAX_BODY_BYTES) throw new FffsError('EINVAL', `frame body of ${bodyBytes} bytes exceeds ${MAX_BODY_BYTES}`)
    const json = Buffer.from(JSON.stringify(header))
    if (json.length > MAX_HEADER_BYTES) throw new FffsError('EINVAL', `frame header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES}`)
    const prefix = Buffer.allocUnsafe(PREFIX_BYTES + json.length)
    prefix.writeUInt32BE(4 + json.length + bodyBytes, 0)
    prefix.writeUInt32BE(json.length, 4)
    json.copy(prefix, PREFIX_BYTES)
    this.lastSentMs = Date.now()
    // Every frame written in one turn of the event loop leaves in one writev (the body is never
    // copied into the frame): many small requests and replies in flight cost a system call (and
    // a loopback TCP segment) each otherwise, the largest cost of the mount and of a member.
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      setImmediate(() => {
        this.corked = false
        this.socket.uncork()
      })
    }
    if (bodyBytes === 0) {
      this.socket.write(prefix, callback)
      return
    }
    this.socket.write(prefix)
    this.socket.write(body!, callback)
  }

  private onData(chunk: Buffer): void {
    if (this.closeReason !== null) return
    this.lastHeardMs = Date.now()
    this.chunks.push(chunk)
    this.bufferedBytes += chunk.length
    while (this.closeReason === null && this.bufferedBytes >= PREFIX_BYTES) {
      const prefix = this.peek(PREFIX_BYTES)
      const frameBytes = prefix.readUInt32BE(0)
      const headerBytes = prefix.readUInt32BE(4)
      if (headerBytes > MAX_HEADER_BYTES || frameBytes < 4 + headerBytes || frameBytes - 4 - headerBytes > MAX_BODY_BYTES) {
        this.close(new ConnectionLostError(`${this.remoteAddress} sent a malformed frame (${frameBytes} bytes, header ${headerBytes})`))
        return
      }
      if (this.bufferedBytes < 4 + frameBytes) return
      const frame = this.take(4 + frameBytes, PREFIX_BYTES + headerBytes)
      let header: Header
      try {
        header = JSON.parse(frame.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerBytes)) as Header
      } catch {
        this.close(new ConnectionLostError(`${this.remoteAddress} sent a frame whose header is not JSON`))
        return
      }
      // The frame's prefix and header (parsed) and any copy headroom are the body's to overwrite.
      const body = frame.subarray(PREFIX_BYTES + headerBytes)
      grantHeadroom(body, (copiedFrames.get(frame) ?? 0) + PREFIX_BYTES + headerBytes)
      this.dispatch(header, body)
    }
  }

  /** The first n buffered bytes, without consuming them. */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]!.subarray(0, n)
  }

  /** Consumes n buffered bytes: a view when they lie in one chunk, else one copy (a large body, from `bodyOffset` on, page-aligned). */
  private take(n: number, bodyOffset: number): Buffer {
    this.bufferedBytes -= n
    const first = this.chunks[0]!
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    let headroomBytes = COPY_HEADROOM_BYTES
    let whole: Buffer
    if (n - bodyOffset >= DIRECT_PAYLOAD_MIN_BYTES && (pageOffsetOf ??= pageOffsetFinder()) !== null) {
      whole = Buffer.allocUnsafe(n + 2 * PAGE_BYTES)
      headroomBytes = PAGE_BYTES + ((2 * PAGE_BYTES - ((pageOffsetOf(whole) + PAGE_BYTES + bodyOffset) % PAGE_BYTES)) % PAGE_BYTES)
    } else {
      whole = Buffer.allocUnsafe(COPY_HEADROOM_BYTES + n)
    }
    const out = whole.subarray(headroomBytes, headroomBytes + n)
    copiedFrames.set(out, headroomBytes)
    let done = 0
    while (done < n) {
      const chunk = this.chunks[0]!
      const use = Math.min(chunk.length, n - done)
      chunk.copy(out, done, 0, use)
      done += use
      if (use === chunk.length) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(use)
    }
    return out
  }

  private dispatch(header: Header, body: Buffer): void {
    switch (header.t) {
      case 'p':
        return
      case 'm':
        this.onMessage?.({ method: header.name, args: header.args, body }, this)
        return
      case 'r': {
        const pending = this.pending.get(header.id)
        if (pending === undefined) return // timed out earlier
        this.pending.delete(header.id)
        clearTimeout(pending.timer)
        if (header.error !== undefined) pending.reject(errorFromWire(header.error))
        else pending.resolve({ result: header.result, body })
        return
      }
      case 'q':
        void this.answer(header.id, header.method, header.args, body)
        return
      default:
        this.close(new ConnectionLostError(`${this.remoteAddress} sent an unknown frame kind`))
    }
  }

  private async answer(id: number, method: string, args: unknown, body: Buffer): Promise<void> {
    let header: Header
    let replyBody: Uint8Array | undefined
    try {
      if (this.onRequest === undefined) throw new FffsError('ENOTSUP', `${method}: this side serves no requests`)
      const reply = await this.onRequest({ method, args, body }, this)
      header = { t: 'r', id, result: reply.result }
      replyBody = reply.body
    } catch (err) {
      if (!isFffsError(err)) this.onHandlerBug(method, err)
      header = { t: 'r', id, error: errorToWire(method, err) }
      replyBody = undefined
    }
    if (this.closeReason !== null) return
    try {
      this.write(header, replyBody)
    } catch (err) {
      this.write({ t: 'r', id, error: { code: 'EIO', message: err instanceof Error ? err.message : String(err) } })
    }
  }

  private tick(): void {
    const nowMs = Date.now()
    if (nowMs - this.lastHeardMs > this.deadPeerMs) {
      this.close(new ConnectionLostError(`no frame from ${this.remoteAddress} in ${this.deadPeerMs} ms`))
      return
    }
    if (nowMs - this.lastSentMs >= this.heartbeatIntervalMs) this.write({ t: 'p' })
  }
}

/** Frames `take` copied, and how many bytes in front of them are theirs too. */
const copiedFrames = new WeakMap<Buffer, number>()

/** An error as it travels: its code, message and reason (errors.ts FffsReason). */
export interface WireError {
  readonly code: string
  readonly message: string
  readonly reason?: string
}

/** What a handler of `method` threw, as the reply carries it; anything but an FffsError is a bug, answered EIO. */
export function errorToWire(method: string, err: unknown): WireError {
  if (!isFffsError(err)) return { code: 'EIO', message: `internal error serving ${method}: ${err instanceof Error ? err.message : String(err)}` }
  return { code: err.code, message: err.message, ...(err.reason !== undefined ? { reason: err.reason } : {}) }
}

export function errorFromWire(error: WireError): FffsError {
  const reason = reasonOf(error.reason)
  if (reason === 'behind') return new MemberBehindError(error.message)
  return new FffsError(codeOf(error.code), error.message, reason)
}

// ---------------------------------------------------------------- both ends

/** Connects and authenticates; bounded by `timeoutMs` (TCP connect + handshake). */
export async function connect(host: string, port: number, key: Uint8Array, timeoutMs: number, options: WireOptions = {}): Promise<Connection> {
  const startedMs = Date.now()
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host, port })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new FffsError('EIO', `connect to ${host}:${port} timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      s.destroy()
      reject(new FffsError('EIO', `connect to ${host}:${port}: ${err.code ?? err.message}`))
    })
  })
  const remainingMs = Math.max(1, Math.min(timeoutMs - (Date.now() - startedMs), options.handshakeTimeoutMs ?? timeoutMs))
  const leftover = await authenticate(socket, key, 'client', { timeoutMs: remainingMs, ...(options.onRefused ? { onRefused: options.onRefused } : {}) })
  const connection = new Connection(socket, options)
  connection.start(leftover)
  return connection
}

export interface WireServer {
  readonly port: number
  /** Stops accepting and closes every connection. */
  close(): Promise<void>
}

/**
 * Listens for authenticated connections. `onConnection` runs once a peer passed the
 * handshake, before its first frame is read: set the handlers there.
 */
export async function listen(port: number, host: string, key: Uint8Array, onConnection: (connection: Connection) => void, options: WireOptions = {}): Promise<WireServer> {
  const connections = new Set<Connection>()
  const handshaking = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    handshaking.add(socket)
    authenticate(socket, key, 'server', { timeoutMs: options.handshakeTimeoutMs ?? CLIENT_WIRE_DEFAULTS.handshakeTimeoutMs, ...(options.onRefused ? { onRefused: options.onRefused } : {}) }).then(
      (leftover) => {
        handshaking.delete(socket)
        if (!server.listening) return void socket.destroy()
        const connection = new Connection(socket, options)
        connections.add(connection)
        connection.onClose(() => connections.delete(connection))
        onConnection(connection)
        connection.start(leftover)
      },
      () => handshaking.delete(socket), // refused and logged by authenticate; the socket is closed
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new FffsError('EIO', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`)))
    server.listen(port, host, () => resolve())
  })
  const address = server.address() as net.AddressInfo
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of handshaking) socket.destroy()
        for (const connection of connections) connection.close()
      }),
  }
}
