// The header every ordered message carries. The transport orders each sender's messages per
// channel only (small and large travel apart), so the header's per-view index restores the
// sender's order, and the view id drops messages of a view already left.

import type { HlcStamp } from '../../temporal/hlc.js'
import { prependInPlace } from '../headroom.js'

export const MESSAGE_HEADER_BYTES = 17

export const enum MessageKind {
  Null = 0, // keeps the round-robin turning when a sender has nothing to say
  App = 1,
}

export interface MessageHeader {
  readonly kind: MessageKind
  readonly vid: number
  readonly index: number // the sender's message count in this view before this one
  readonly hlc: HlcStamp // the sender's clock when it sent: the delivered stamp is at least this
}

/** Header + payload. In place, in front of the payload, when the payload's holder granted the
 * room (headroom.ts: the runtime's data path does, for file bytes off the wire); else a copy. */
export function encodeMessage(header: MessageHeader, payload: Uint8Array | null): Uint8Array {
  let bytes = payload === null ? null : prependInPlace(payload, MESSAGE_HEADER_BYTES)
  if (bytes === null) {
    bytes = new Uint8Array(MESSAGE_HEADER_BYTES + (payload?.byteLength ?? 0))
    if (payload !== null) bytes.set(payload, MESSAGE_HEADER_BYTES)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, MESSAGE_HEADER_BYTES)
  view.setUint8(0, header.kind)
  view.setUint32(1, header.vid, true)
  view.setUint32(5, header.index, true)
  view.setBigUint64(9, header.hlc, true)
  return bytes
}

export function decodeMessage(bytes: Uint8Array): { header: MessageHeader; payload: Uint8Array } {
  if (bytes.byteLength < MESSAGE_HEADER_BYTES) throw new Error(`ordered message of ${bytes.byteLength} bytes is shorter than its header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const kind = view.getUint8(0)
  if (kind !== MessageKind.Null && kind !== MessageKind.App) throw new Error(`ordered message of unknown kind ${kind}`)
  return {
    header: { kind, vid: view.getUint32(1, true), index: view.getUint32(5, true), hlc: view.getBigUint64(9, true) },
    payload: bytes.subarray(MESSAGE_HEADER_BYTES),
  }
}
