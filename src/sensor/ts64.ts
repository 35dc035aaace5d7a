// `ts64:SIZE`: fixed-size records of SIZE bytes (8 ≤ SIZE ≤ RECORD_BYTES_MAX), each headed by
// its sensor time as an 8-byte little-endian unsigned count of µs since the epoch (FFFS's
// test format). A record is malformed only when its time is past 2^53 µs; the next record
// starts SIZE bytes later either way.

import { RECORD_BYTES_MAX, type MalformedRecord, type ParseResult, type RecordFormat, type SensorRecord } from './format.js'

export const TS64_HEADER_BYTES = 8

export class Ts64Format implements RecordFormat {
  readonly text: string
  readonly recordBytes: number

  constructor(recordBytes: number) {
    if (!Number.isSafeInteger(recordBytes) || recordBytes < TS64_HEADER_BYTES || recordBytes > RECORD_BYTES_MAX) {
      throw new Error(`ts64 record size ${recordBytes} outside ${TS64_HEADER_BYTES}..${RECORD_BYTES_MAX}`)
    }
    this.recordBytes = recordBytes
    this.text = `ts64:${recordBytes}`
  }

  parse(bytes: Uint8Array, startOffset: number, _state: string | undefined): ParseResult {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const records: SensorRecord[] = []
    const malformed: MalformedRecord[] = []
    let at = 0
    for (; at + this.recordBytes <= bytes.length; at += this.recordBytes) {
      const sensorUs = view.getBigUint64(at, true)
      const endOffset = startOffset + at + this.recordBytes
      if (sensorUs > BigInt(Number.MAX_SAFE_INTEGER)) malformed.push({ offset: startOffset + at, endOffset, reason: `time ${sensorUs} µs is past 2^53 µs` })
      else records.push({ endOffset, sensorUs: Number(sensorUs) })
    }
    return { records, malformed, endOffset: startOffset + at, state: undefined }
  }
}
