// Mutual authentication of a fresh connection by the cluster key: members and clients prove
// they hold it before anything else crosses the socket. Challenge–response with HMAC-SHA256,
// so the key itself never travels:
//
//   both → hello  = "FFFSAUTH" | u8 version | 32-byte random nonce
//   both → proof  = HMAC(key, role | own nonce | peer nonce)      (32 bytes)
//   both → verdict line: "ok\n" or "refused: <reason>\n", then a refusing side closes
//
// The role ("client" for the connecting side, "server" for the accepting one) in the HMAC
// stops a peer from reflecting our own proof back at us. This authenticates the peer; it does
// not encrypt or sign later frames (a later step: TLS-PSK or per-frame MACs).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type * as net from 'node:net'
import { FffsError } from '../errors.js'

export type AuthRole = 'client' | 'server'

const MAGIC = Buffer.from('FFFSAUTH')
const AUTH_VERSION = 1
const NONCE_BYTES = 32
const HELLO_BYTES = MAGIC.length + 1 + NONCE_BYTES
const PROOF_BYTES = 32
const VERDICT_LINE_MAX_BYTES = 256

export interface AuthOptions {
  readonly timeoutMs: number
  /** Called once for every peer this side refuses; default: one stderr line. */
  readonly onRefused?: (address: string, reason: string) => void
}

export function defaultOnRefused(address: string, reason: string): void {
  process.stderr.write(`fffs: refused ${address}: ${reason}\n`)
}

export function addressOf(socket: net.Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
}

/** The peer refused us (bad key, or not an fffs peer), or we refused it: EACCES. */
export function refusedError(message: string): FffsError {
  return new FffsError('EACCES', message)
}

/**
 * Runs the handshake on a connected socket. Resolves with any bytes that arrived after the
 * peer's verdict (the first frames); rejects (and closes the socket) when either side refuses,
 * the peer closes, or `timeoutMs` passes. The socket must not have a 'data' listener yet.
 */
export function authenticate(socket: net.Socket, key: Uint8Array, role: AuthRole, options: AuthOptions): Promise<Buffer> {
  const address = addressOf(socket)
  const onRefused = options.onRefused ?? defaultOnRefused
  const ownNonce = randomBytes(NONCE_BYTES)
  const peerRole: AuthRole = role === 'client' ? 'server' : 'client'
  const hello = Buffer.concat([MAGIC, Buffer.from([AUTH_VERSION]), ownNonce])

  return new Promise<Buffer>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0)
    let stage: 'hello' | 'proof' | 'verdict' = 'hello'
    let peerNonce: Buffer | null = null
    let settled = false

    const finish = (err: Error | null, leftover?: Buffer): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
      if (err === null) {
        resolve(leftover!)
      } else {
        socket.on('error', () => undefined) // a late reset of a refused socket is not news
        reject(err)
      }
    }
    const refuse = (reason: string): void => {
      onRefused(address, reason)
      socket.end(`refused: ${reason}\n`, () => socket.destroy())
      finish(refusedError(`${role === 'client' ? 'refused server' : 'refused'} ${address}: ${reason}`))
    }
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      step()
    }
    const step = (): void => {
      if (stage === 'hello') {
        if (buffered.length < HELLO_BYTES) {
          // Refuse early when what arrived is visibly not our protocol (a stray HTTP client, ...).
          if (!MAGIC.subarray(0, Math.min(buffered.length, MAGIC.length)).equals(buffered.subarray(0, MAGIC.length))) refuse('not an fffs peer')
          return
        }
        if (!buffered.subarray(0, MAGIC.length).equals(MAGIC)) return refuse('not an fffs peer')
        const version = buffered[MAGIC.length]!
        if (version !== AUTH_VERSION) return refuse(`handshake version ${version}, expected ${AUTH_VERSION}`)
        peerNonce = Buffer.from(buffered.subarray(MAGIC.length + 1, HELLO_BYTES))
        buffered = buffered.subarray(HELLO_BYTES)
        socket.write(proofOf(key, role, ownNonce, peerNonce))
        stage = 'proof'
      }
      if (stage === 'proof') {
        if (buffered.length < PROOF_BYTES) return
        const proof = buffered.subarray(0, PROOF_BYTES)
        buffered = buffered.subarray(PROOF_BYTES)
        const expected = proofOf(key, peerRole, peerNonce!, ownNonce)
        if (!timingSafeEqual(proof, expected)) return refuse('bad cluster key')
        socket.write('ok\n')
        stage = 'verdict'
      }
      if (stage === 'verdict') {
        const newline = buffered.indexOf(0x0a)
        if (newline < 0) {
          if (buffered.length > VERDICT_LINE_MAX_BYTES) refuse('not an fffs peer')
          return
        }
        const line = buffered.subarray(0, newline).toString('utf8')
        const leftover = buffered.subarray(newline + 1)
        if (line === 'ok') return finish(null, leftover)
        socket.destroy()
        finish(refusedError(`${address} ${line.startsWith('refused') ? line : `answered '${line.slice(0, 80)}'`}`))
      }
    }
    const onClose = (): void => {
      finish(new FffsError('EIO', `${address} closed the connection during the handshake`))
    }
    const onError = (err: Error): void => {
      socket.destroy()
      finish(new FffsError('EIO', `handshake with ${address}: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
    }
    const timer = setTimeout(() => {
      onRefused(address, `no handshake within ${options.timeoutMs} ms`)
      socket.destroy()
      finish(new FffsError('EIO', `handshake with ${address} timed out after ${options.timeoutMs} ms`))
    }, options.timeoutMs)

    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.write(hello)
  })
}

function proofOf(key: Uint8Array, role: AuthRole, firstNonce: Buffer, secondNonce: Buffer): Buffer {
  return createHmac('sha256', key).update(role).update(firstNonce).update(secondNonce).digest()
}
