// Test helper: parse a stream the way the FUSE front end does, in pieces, resuming each parse
// at the previous one's endOffset with its state (an incomplete tail is parsed again once
// more bytes arrive).

import type { MalformedRecord, RecordFormat, SensorRecord } from '../../src/sensor/index.js'

export interface Fed {
  records: SensorRecord[]
  malformed: MalformedRecord[]
  endOffset: number
  state: string | undefined
}

/** Parses `stream` as if its bytes arrived up to each of `cuts` in turn (then to the end). */
export function feed(format: RecordFormat, stream: Uint8Array, cuts: readonly number[] = []): Fed {
  const out: Fed = { records: [], malformed: [], endOffset: 0, state: undefined }
  for (const upto of [...cuts, stream.length]) {
    if (upto < out.endOffset) continue
    const result = format.parse(stream.subarray(out.endOffset, upto), out.endOffset, out.state)
    out.records.push(...result.records)
    out.malformed.push(...result.malformed)
    out.endOffset = result.endOffset
    out.state = result.state
  }
  return out
}

export const US = 1_000_000
/** 2026-11-21T10:00:00Z in epoch µs. */
export const T0_US = 1_795_255_200 * US
