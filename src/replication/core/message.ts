// The header every ordered message carries. The transport orders each sender's messages per
// channel only (small and large travel apart), so the header's per-view index restores the
// sender's order, and the view id drops messages of a view already left.

import type { HlcStamp } from '../../temporal/hlc.js'
import { prependInPlace } from '../headroom.js'

export const MESSAGE_HEADER_BYTES = 17
export const BATCH_HEADER_BYTES = MESSAGE_HEADER_BYTES + 4 // an AppBatch header ends in its record count
export const BATCH_RECORDS_MAX = 0xffff

export const enum MessageKind {
  Null = 0, // keeps the round-robin turning when a sender has nothing to say
  App = 1,
  AppBatch = 2, // several records in one message: it takes one stamp per record, consecutive
}

export interface MessageHeader {
  readonly kind: MessageKind
  readonly vid: number
  readonly index: number // the sender's message count in this view before this one
  readonly hlc: HlcStamp // the sender's clock when it sent: the delivered stamp is at least this
  readonly records?: number // AppBatch only: how many records (stamps) the payload holds, 2..BATCH_RECORDS_MAX
}

/** Header + payload. In place, in front of the payload, when the payload's holder granted the
 * room (headroom.ts: the runtime's data path does, for file bytes off the wire); else a copy. */
export function encodeMessage(header: MessageHeader, payload: Uint8Array | null): Uint8Array {
  const batch = header.kind === MessageKind.AppBatch
  if (batch && !(Number.isInteger(header.records) && header.records! >= 2 && header.records! <= BATCH_RECORDS_MAX)) throw new Error(`a batch of ${header.records} records`)
  const headerBytes = batch ? BATCH_HEADER_BYTES : MESSAGE_HEADER_BYTES
  let bytes = payload === null ? null : prependInPlace(payload, headerBytes)
  if (bytes === null) {
    bytes = new Uint8Array(headerBytes + (payload?.byteLength ?? 0))
    if (payload !== null) bytes.set(payload, headerBytes)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes)
  view.setUint8(0, header.kind)
  view.setUint32(1, header.vid, true)
  view.setUint32(5, header.index, true)
  view.setBigUint64(9, header.hlc, true)
  if (batch) view.setUint32(17, header.records!, true)
  return bytes
}

export function decodeMessage(bytes: Uint8Array): { header: MessageHeader; payload: Uint8Array } {
  if (bytes.byteLength < MESSAGE_HEADER_BYTES) throw new Error(`ordered message of ${bytes.byteLength} bytes is shorter than its header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const kind = view.getUint8(0)
  if (kind !== MessageKind.Null && kind !== MessageKind.App && kind !== MessageKind.AppBatch) throw new Error(`ordered message of unknown kind ${kind}`)
  const header = { kind, vid: view.getUint32(1, true), index: view.getUint32(5, true), hlc: view.getBigUint64(9, true) }
  if (kind !== MessageKind.AppBatch) return { header, payload: bytes.subarray(MESSAGE_HEADER_BYTES) }
  if (bytes.byteLength < BATCH_HEADER_BYTES) throw new Error(`batch message of ${bytes.byteLength} bytes is shorter than its header`)
  const records = view.getUint32(17, true)
  if (records < 2 || records > BATCH_RECORDS_MAX) throw new Error(`batch message of ${records} records`)
  return { header: { ...header, records }, payload: bytes.subarray(BATCH_HEADER_BYTES) }
}
