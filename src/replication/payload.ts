// The payloads a member orders (what the core's messages carry), their byte layouts and
// codecs. The first byte names the kind:
// - PAYLOAD_DATA = kind | u32 crc32c(bytes) | u32 id bytes | u32 bytes offset | blob id | zeros |
//   bytes: file bytes on the bulk path, named later by a version record. The sender member
//   checksums the bytes once, as they came off the wire; every replica logs them with that CRC
//   (SegmentLog.append's payloadCrc) instead of reading them again for its own (r replicas: one
//   CRC, not r). The ordered transport delivers the sender's very bytes, so the CRC is of the
//   bytes each replica writes, end to end from the sender. Large bytes start one page into the
//   ordered message (zeros fill the header out): a receiver's copy lands in page-aligned
//   memory, so its log writes them with O_DIRECT, without a page-cache copy.
// - PAYLOAD_RECORD = kind | JSON RecordPayload: one mutation.
// - PAYLOAD_RECONFIGURE = kind | JSON {add}: members joining (ends the epoch).
// - PAYLOAD_RECORD_INLINE = kind | u32 JSON bytes | JSON | bytes of the small blobs it names.
// - PAYLOAD_BATCH = kind | u32 count | (u32 bytes | record payload) × count: one stamp each.

import { crc32c } from '../store/crc32c.js'
import { DIRECT_PAYLOAD_MIN_BYTES, PAGE_BYTES } from '../store/segmentLog.js'
import type { Mutation } from '../store/records.js'
import type { SubmitId } from '../client/client.js'
import { MESSAGE_HEADER_BYTES } from './core/message.js'
import { prependInPlace } from './headroom.js'

export const PAYLOAD_DATA = 1
const DATA_HEADER_BYTES = 13 // kind u8 | crc u32 | id length u32 | bytes offset u32
const PAYLOAD_RECORD = 2
export const PAYLOAD_RECONFIGURE = 3
const PAYLOAD_RECORD_INLINE = 4
export const PAYLOAD_BATCH = 5
export const BATCH_PAYLOAD_HEADER_BYTES = 5 // kind u8 | count u32
export const BATCH_PART_PREFIX_BYTES = 4 // each record's length, u32

export interface RecordPayload {
  readonly mutation: Mutation
  readonly submit?: SubmitId
  /** PAYLOAD_RECORD_INLINE: blob ids and sizes of the bytes after the JSON, in this order. */
  readonly inline?: ReadonlyArray<readonly [string, number]>
}

/** File bytes named `blob`, with their CRC; the header goes in front in place when a wire frame left room there (headroom.ts), else into a copy. */
export function encodeDataPayload(blob: string, bytes: Uint8Array): Uint8Array {
  const id = Buffer.from(blob, 'utf8')
  const crc = crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) // before any prepend: of the file bytes alone
  // Large bytes: the message header and this one fill exactly a page (a long blob id: the next page).
  const headerBytes =
    bytes.byteLength >= DIRECT_PAYLOAD_MIN_BYTES ? Math.ceil((MESSAGE_HEADER_BYTES + DATA_HEADER_BYTES + id.byteLength) / PAGE_BYTES) * PAGE_BYTES - MESSAGE_HEADER_BYTES : DATA_HEADER_BYTES + id.byteLength
  let payload = prependInPlace(bytes, headerBytes)
  if (payload === null) {
    payload = new Uint8Array(headerBytes + bytes.byteLength)
    payload.set(bytes, headerBytes)
  }
  payload.fill(0, DATA_HEADER_BYTES + id.byteLength, headerBytes)
  payload[0] = PAYLOAD_DATA
  const header = new DataView(payload.buffer, payload.byteOffset, DATA_HEADER_BYTES)
  header.setUint32(1, crc, true)
  header.setUint32(5, id.byteLength, true)
  header.setUint32(9, headerBytes, true)
  payload.set(id, DATA_HEADER_BYTES)
  return payload
}

export function decodeDataPayload(payload: Uint8Array): { blob: string; crc: number; bytes: Uint8Array } {
  const header = new DataView(payload.buffer, payload.byteOffset, DATA_HEADER_BYTES)
  const idLength = header.getUint32(5, true)
  const bytesOffset = header.getUint32(9, true)
  if (bytesOffset < DATA_HEADER_BYTES + idLength || bytesOffset > payload.byteLength) throw new Error(`data payload of ${payload.byteLength} bytes puts its bytes at ${bytesOffset}`)
  return {
    blob: Buffer.from(payload.buffer, payload.byteOffset + DATA_HEADER_BYTES, idLength).toString('utf8'),
    crc: header.getUint32(1, true),
    bytes: payload.subarray(bytesOffset),
  }
}

export function encodeReconfigurePayload(add: readonly number[]): Uint8Array {
  const body = Buffer.from(JSON.stringify({ add }), 'utf8')
  const payload = new Uint8Array(1 + body.byteLength)
  payload[0] = PAYLOAD_RECONFIGURE
  payload.set(body, 1)
  return payload
}

/** The member ids a reconfigure adds. */
export function decodeReconfigurePayload(payload: Uint8Array): number[] {
  return (JSON.parse(Buffer.from(payload.buffer, payload.byteOffset + 1, payload.byteLength - 1).toString('utf8')) as { add: number[] }).add
}

/** A record's payload: PAYLOAD_RECORD = kind | JSON; PAYLOAD_RECORD_INLINE = kind | u32 JSON bytes | JSON | the inline blobs' bytes. */
export function encodeRecordPayload(record: RecordPayload, inlineBytes: readonly Uint8Array[]): Uint8Array {
  const json = Buffer.from(JSON.stringify(record), 'utf8')
  if (inlineBytes.length === 0) {
    const payload = new Uint8Array(1 + json.byteLength)
    payload[0] = PAYLOAD_RECORD
    payload.set(json, 1)
    return payload
  }
  if (record.inline?.length !== inlineBytes.length) throw new Error('invariant: inline blobs listed and given differ')
  let size = 5 + json.byteLength
  for (const bytes of inlineBytes) size += bytes.byteLength
  const payload = new Uint8Array(size)
  payload[0] = PAYLOAD_RECORD_INLINE
  new DataView(payload.buffer, payload.byteOffset, 5).setUint32(1, json.byteLength, true)
  payload.set(json, 5)
  let at = 5 + json.byteLength
  for (const bytes of inlineBytes) {
    payload.set(bytes, at)
    at += bytes.byteLength
  }
  return payload
}

export function decodeRecordPayload(payload: Uint8Array): { record: RecordPayload; inlineBytes: Array<[string, Uint8Array]> } {
  const kind = payload[0]
  if (kind === PAYLOAD_RECORD) {
    return { record: JSON.parse(Buffer.from(payload.buffer, payload.byteOffset + 1, payload.byteLength - 1).toString('utf8')) as RecordPayload, inlineBytes: [] }
  }
  if (kind !== PAYLOAD_RECORD_INLINE) throw new Error(`delivered payload of unknown kind ${kind}`)
  const jsonBytes = new DataView(payload.buffer, payload.byteOffset, 5).getUint32(1, true)
  const record = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset + 5, jsonBytes).toString('utf8')) as RecordPayload
  const inlineBytes: Array<[string, Uint8Array]> = []
  let at = 5 + jsonBytes
  for (const [blob, sizeBytes] of record.inline ?? []) {
    if (at + sizeBytes > payload.byteLength) throw new Error(`record payload ends before its inline blob ${blob}`)
    inlineBytes.push([blob, payload.subarray(at, at + sizeBytes)])
    at += sizeBytes
  }
  if (at !== payload.byteLength) throw new Error(`record payload has ${payload.byteLength - at} bytes after its inline blobs`)
  return { record, inlineBytes }
}

/** PAYLOAD_BATCH = kind | u32 count | (u32 bytes | record payload) × count. */
export function encodeBatchPayload(parts: readonly Uint8Array[]): Uint8Array {
  let size = BATCH_PAYLOAD_HEADER_BYTES
  for (const part of parts) size += BATCH_PART_PREFIX_BYTES + part.byteLength
  const payload = new Uint8Array(size)
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  payload[0] = PAYLOAD_BATCH
  view.setUint32(1, parts.length, true)
  let at = 5
  for (const part of parts) {
    view.setUint32(at, part.byteLength, true)
    payload.set(part, at + 4)
    at += 4 + part.byteLength
  }
  return payload
}

export function decodeBatchPayload(payload: Uint8Array): Uint8Array[] {
  if (payload[0] !== PAYLOAD_BATCH || payload.byteLength < 5) throw new Error('not a batch payload')
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const count = view.getUint32(1, true)
  const parts: Uint8Array[] = []
  let at = 5
  for (let i = 0; i < count; i++) {
    if (at + 4 > payload.byteLength) throw new Error(`batch payload ends before its record ${i}`)
    const sizeBytes = view.getUint32(at, true)
    if (at + 4 + sizeBytes > payload.byteLength) throw new Error(`batch payload ends inside its record ${i}`)
    parts.push(payload.subarray(at + 4, at + 4 + sizeBytes))
    at += 4 + sizeBytes
  }
  if (at !== payload.byteLength) throw new Error(`batch payload has ${payload.byteLength - at} bytes after its records`)
  return parts
}

/** The blobs a version names (each once). */
export function blobIdsOf(mutation: Mutation): string[] {
  if (mutation.type !== 'version') return []
  const ids = new Set<string>()
  for (const op of mutation.ops) if (op.op === 'write' && 'blob' in op.data) ids.add(op.data.blob)
  return [...ids]
}
