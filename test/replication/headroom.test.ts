// Headroom (src/replication/headroom.ts): the room a wire frame leaves in front of its body,
// where the member puts its data header and the core its message header without copying the
// file bytes. Granted once, consumed by the first prepend, never beyond the buffer's start.
// Large file bytes sit on a page boundary at the sender and one page into the message.

import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeMessage, decodeMessage, MESSAGE_HEADER_BYTES, MessageKind } from '../../src/replication/core/message.js'
import { grantHeadroom, prependInPlace } from '../../src/replication/headroom.js'
import { decodeDataPayload, encodeDataPayload } from '../../src/replication/payload.js'
import { connect, listen, type Incoming } from '../../src/replication/wire.js'
import { pageOffsetFinder } from '../../src/store/diskAddon.js'

const KEY = randomBytes(32)
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('headroom', () => {
  it('a prepend consumes the grant and passes the rest on; without room it declines (the caller copies)', () => {
    const buffer = new Uint8Array(100).fill(7)
    const body = buffer.subarray(40)
    expect(prependInPlace(body, 1)).toBeNull() // nothing granted
    grantHeadroom(body, 30)
    const wider = prependInPlace(body, 20)!
    expect(wider.byteOffset).toBe(20)
    expect(wider.byteLength).toBe(80)
    expect(wider.buffer).toBe(buffer.buffer)
    expect(prependInPlace(body, 1)).toBeNull() // consumed
    expect(prependInPlace(wider, 11)).toBeNull() // 10 left
    const widest = prependInPlace(wider, 10)!
    expect(widest.byteOffset).toBe(10)
    grantHeadroom(buffer.subarray(5), 6) // more than lies in front: not granted
    expect(prependInPlace(buffer.subarray(5), 1)).toBeNull()
  })

  it('encodeMessage writes the header in front of a payload with room, and copies one without; both decode alike', () => {
    const payload = randomBytes(1000)
    const roomy = new Uint8Array(MESSAGE_HEADER_BYTES + 1000)
    const inPlace = roomy.subarray(MESSAGE_HEADER_BYTES)
    inPlace.set(payload)
    grantHeadroom(inPlace, MESSAGE_HEADER_BYTES)
    const header = { kind: MessageKind.App, vid: 3, index: 9, hlc: 123_456_789n } as const
    const a = encodeMessage(header, inPlace)
    expect(a.buffer).toBe(roomy.buffer) // no copy
    const b = encodeMessage(header, inPlace) // the grant is used up: a copy
    expect(b.buffer).not.toBe(roomy.buffer)
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true)
    const decoded = decodeMessage(a)
    expect(decoded.header).toEqual(header)
    expect(Buffer.from(decoded.payload).equals(payload)).toBe(true)
  })

  it('a wire body has its frame header as headroom, more when copied out of several socket chunks, and a large one starts a page', async () => {
    const received: Incoming[] = []
    const server = await listen(0, '127.0.0.1', KEY, (connection) => connection.setHandlers({ onMessage: (m) => void received.push(m) }))
    cleanups.push(() => server.close())
    const client = await connect('127.0.0.1', server.port, KEY, 5000)
    cleanups.push(() => client.close())
    const small = randomBytes(100)
    const large = randomBytes(4 * 1024 * 1024 + 3) // spans many socket chunks: copied
    await client.send('blob', { id: '1', ino: 5 }, small)
    await client.send('blob', { id: '2', ino: 5 }, large)
    for (let i = 0; i < 500 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
    expect(received.length).toBe(2)
    const frameHeaderBytes = 8 + Buffer.byteLength(JSON.stringify({ t: 'm', name: 'blob', args: { id: '1', ino: 5 } }))
    const smallBody = received[0]!.body
    expect(prependInPlace(smallBody, frameHeaderBytes + 1)).toBeNull() // no more than that
    prependInPlace(smallBody, frameHeaderBytes)!.fill(0xee, 0, frameHeaderBytes)
    expect(smallBody.equals(small)).toBe(true) // the body itself is untouched
    // Copied to a page boundary (its log writes it with O_DIRECT), with a page of room at least in front.
    const largeBody = received[1]!.body
    expect(pageOffsetFinder()!(largeBody)).toBe(0)
    const room = frameHeaderBytes + 4096
    prependInPlace(largeBody, room)!.fill(0xee, 0, room)
    expect(largeBody.equals(large)).toBe(true)
  })

  it('a large data payload puts its bytes one page into the ordered message, in place when there is room', () => {
    const roomy = new Uint8Array(8192 + 2 * 1024 * 1024)
    const bytes = roomy.subarray(8192)
    bytes.set(randomBytes(bytes.length))
    grantHeadroom(bytes, 8192)
    const message = encodeMessage({ kind: MessageKind.App, vid: 1, index: 0, hlc: 1n }, encodeDataPayload('blob-7', bytes))
    expect(message.buffer).toBe(roomy.buffer) // no copy
    const { payload } = decodeMessage(message)
    const decoded = decodeDataPayload(payload)
    expect(decoded.blob).toBe('blob-7')
    expect(decoded.bytes.byteOffset - message.byteOffset).toBe(4096)
    expect(Buffer.from(decoded.bytes).equals(Buffer.from(bytes))).toBe(true)
    const small = new Uint8Array(randomBytes(5000))
    const smallDecoded = decodeDataPayload(encodeDataPayload('b', small))
    expect(Buffer.from(smallDecoded.bytes).equals(Buffer.from(small))).toBe(true)
  })
})
