// `c37.118` and `c37.118:TIME_BASE`: an IEEE C37.118.2 synchrophasor stream (the PMU stream
// FFFS was built for). Every frame: SYNC (0xAA, then reserved bit, 3-bit frame type, 4-bit
// version 1 or 2), FRAMESIZE (u16, the whole frame), IDCODE (u16), SOC (u32 seconds since
// 1970 UTC), FRACSEC (8-bit time quality, 24-bit fraction of a second), the body, and CHK, a
// CRC-CCITT (poly 0x1021, init 0xFFFF) over everything before it; all big-endian.
//
// Records are the data frames (type 0), stamped SOC + fraction / TIME_BASE. TIME_BASE is the
// one declared by the last configuration frame (CFG-1, CFG-2, or the first CFG-3 fragment)
// seen earlier in the stream for the frame's IDCODE; failing that, the one configured in the
// format; failing both, the data frame is malformed. Other frames (configuration, header,
// command) are checked and kept, and stamp nothing: their bytes go with the next data frame.
//
// A bad frame is malformed from its first byte to the next frame: the end its FRAMESIZE
// gives when a plausible SYNC (or the end of the bytes) is there, else the next plausible
// SYNC, so the frames after a corrupt one are still found. A frame whose FRAMESIZE runs past
// the bytes at hand is incomplete and waits, unless a whole frame with a good CRC starts
// inside that span: then its FRAMESIZE is what is corrupt.

import { type MalformedRecord, type ParseResult, type RecordFormat, type SensorRecord } from './format.js'

const SYNC_BYTE = 0xaa
const HEADER_BYTES = 14 // SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC
const CHK_BYTES = 2
const US_PER_SECOND = 1_000_000
const TIME_BASE_MASK = 0x00ff_ffff
export const C37_TIME_BASE_MAX = TIME_BASE_MASK

export const C37_FRAME = { data: 0, header: 1, cfg1: 2, cfg2: 3, command: 4, cfg3: 5 } as const
export type C37FrameType = (typeof C37_FRAME)[keyof typeof C37_FRAME]

/** The smallest FRAMESIZE each frame type can have (fixed fields and CHK, no PMU). */
const MIN_FRAME_BYTES: Readonly<Record<C37FrameType, number>> = {
  0: HEADER_BYTES + CHK_BYTES,
  1: HEADER_BYTES + CHK_BYTES,
  2: HEADER_BYTES + 4 + 2 + 2 + CHK_BYTES, // TIME_BASE, NUM_PMU, DATA_RATE
  3: HEADER_BYTES + 4 + 2 + 2 + CHK_BYTES,
  4: HEADER_BYTES + 2 + CHK_BYTES, // CMD
  5: HEADER_BYTES + 2 + 4 + 2 + 2 + CHK_BYTES, // CONT_IDX, TIME_BASE, NUM_PMU, DATA_RATE
}

const CRC_TABLE = (() => {
  const table = new Uint16Array(256)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[byte] = crc
  }
  return table
})()

/** CRC-CCITT as C37.118 uses it (CRC-16/CCITT-FALSE): poly 0x1021, init 0xFFFF, no reflection, no final XOR. */
export function crcCcitt(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

/** The frame type a SYNC second byte announces, or null when no C37.118 frame starts with it. */
function frameTypeOf(syncByte2: number): C37FrameType | null {
  if ((syncByte2 & 0x80) !== 0) return null
  const type = (syncByte2 >> 4) & 0x07
  const version = syncByte2 & 0x0f
  if (type > C37_FRAME.cfg3 || version < 1 || version > 2) return null
  return type as C37FrameType
}

/** Parser state: TIME_BASE per IDCODE from the configuration frames seen so far. */
interface C37State {
  readonly timeBases: Record<string, number>
}

export class C37118Format implements RecordFormat {
  readonly text: string
  readonly configuredTimeBase: number | null

  constructor(configuredTimeBase: number | null) {
    if (configuredTimeBase !== null && (!Number.isInteger(configuredTimeBase) || configuredTimeBase < 1 || configuredTimeBase > C37_TIME_BASE_MAX)) {
      throw new Error(`TIME_BASE ${configuredTimeBase} outside 1..${C37_TIME_BASE_MAX}`)
    }
    this.configuredTimeBase = configuredTimeBase
    this.text = configuredTimeBase === null ? 'c37.118' : `c37.118:${configuredTimeBase}`
  }

  /** The first offset at or after `from` where a whole frame with a matching CRC starts, or null. */
  private completeFrameAfter(bytes: Uint8Array, view: DataView, from: number): number | null {
    for (let at = bytes.indexOf(SYNC_BYTE, from); at >= 0; at = bytes.indexOf(SYNC_BYTE, at + 1)) if (completeFrameAt(bytes, view, at)) return at
    return null
  }

  parse(bytes: Uint8Array, startOffset: number, stateText: string | undefined): ParseResult {
    const timeBases: Record<string, number> = stateText === undefined ? {} : { ...(JSON.parse(stateText) as C37State).timeBases }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const records: SensorRecord[] = []
    const malformed: MalformedRecord[] = []
    const plausibleSyncAt = (at: number): boolean => at === bytes.length || (bytes[at] === SYNC_BYTE && (at + 1 === bytes.length || frameTypeOf(bytes[at + 1]!) !== null))
    const nextSync = (from: number): number => {
      for (let at = from; at < bytes.length; at++) if (plausibleSyncAt(at)) return at
      return bytes.length
    }
    const refuse = (at: number, end: number, reason: string): number => {
      malformed.push({ offset: startOffset + at, endOffset: startOffset + end, reason })
      return end
    }
    let at = 0
    while (at < bytes.length) {
      if (bytes[at] !== SYNC_BYTE) {
        at = refuse(at, nextSync(at + 1), `no SYNC byte 0xAA (found 0x${bytes[at]!.toString(16).padStart(2, '0')})`)
        continue
      }
      if (at + 1 >= bytes.length) break // incomplete: the rest of SYNC still to come
      const type = frameTypeOf(bytes[at + 1]!)
      if (type === null) {
        at = refuse(at, nextSync(at + 1), `SYNC 0xAA${bytes[at + 1]!.toString(16).padStart(2, '0')} names no C37.118 frame type and version`)
        continue
      }
      if (at + 4 > bytes.length) break // incomplete: FRAMESIZE still to come
      const frameBytes = view.getUint16(at + 2)
      if (frameBytes < MIN_FRAME_BYTES[type]) {
        at = refuse(at, nextSync(at + 1), `FRAMESIZE ${frameBytes} below ${MIN_FRAME_BYTES[type]}, the least for its frame type`)
        continue
      }
      if (at + frameBytes > bytes.length) {
        // Incomplete, or a corrupt FRAMESIZE: a whole, CRC-checked frame starting inside the
        // claimed span says the latter. Otherwise it waits for more bytes.
        const inside = this.completeFrameAfter(bytes, view, at + 1)
        if (inside === null) break
        at = refuse(at, inside, `FRAMESIZE ${frameBytes} runs past a complete frame at byte ${startOffset + inside}`)
        continue
      }
      const end = at + frameBytes
      const crc = crcCcitt(bytes, at, end - CHK_BYTES)
      const chk = view.getUint16(end - CHK_BYTES)
      if (crc !== chk) {
        const next = plausibleSyncAt(end) ? end : nextSync(at + 1)
        at = refuse(at, next, `CRC-CCITT 0x${crc.toString(16).padStart(4, '0')} does not match CHK 0x${chk.toString(16).padStart(4, '0')}`)
        continue
      }
      const idcode = view.getUint16(at + 4)
      if (type === C37_FRAME.data) {
        const timeBase = timeBases[idcode] ?? this.configuredTimeBase
        const soc = view.getUint32(at + 6)
        const fraction = view.getUint32(at + 10) & 0x00ff_ffff
        if (timeBase === null) refuse(at, end, `no TIME_BASE for IDCODE ${idcode}: no configuration frame earlier in the stream, none configured`)
        else if (fraction >= timeBase) refuse(at, end, `FRACSEC fraction ${fraction} not below TIME_BASE ${timeBase}`)
        else records.push({ endOffset: startOffset + end, sensorUs: soc * US_PER_SECOND + Math.floor((fraction * US_PER_SECOND) / timeBase) })
      } else if (type === C37_FRAME.cfg1 || type === C37_FRAME.cfg2 || type === C37_FRAME.cfg3) {
        const continuation = type === C37_FRAME.cfg3 ? view.getUint16(at + HEADER_BYTES) : 0
        if (continuation <= 1) {
          // Only an unfragmented CFG-3 or its first fragment carries TIME_BASE.
          const timeBase = view.getUint32(at + HEADER_BYTES + (type === C37_FRAME.cfg3 ? 2 : 0)) & TIME_BASE_MASK
          if (timeBase === 0) refuse(at, end, `configuration frame declares TIME_BASE 0 for IDCODE ${idcode}`)
          else timeBases[idcode] = timeBase
        }
      }
      at = end
    }
    const state = Object.keys(timeBases).length === 0 ? undefined : JSON.stringify({ timeBases } satisfies C37State)
    return { records, malformed, endOffset: startOffset + at, state }
  }
}

/** Whether a whole frame with a matching CRC starts at `at`. */
function completeFrameAt(bytes: Uint8Array, view: DataView, at: number): boolean {
  if (bytes[at] !== SYNC_BYTE || at + 4 > bytes.length) return false
  const type = frameTypeOf(bytes[at + 1]!)
  if (type === null) return false
  const frameBytes = view.getUint16(at + 2)
  if (frameBytes < MIN_FRAME_BYTES[type] || at + frameBytes > bytes.length) return false
  return crcCcitt(bytes, at, at + frameBytes - CHK_BYTES) === view.getUint16(at + frameBytes - CHK_BYTES)
}

// ---------------------------------------------------------------- encoding (tests, demos)

export interface C37FrameFields {
  readonly type: C37FrameType
  readonly version?: 1 | 2
  readonly idcode: number
  readonly soc: number
  readonly fraction: number // 24 bits
  readonly timeQuality?: number // 8 bits
  readonly body: Uint8Array // everything between FRACSEC and CHK
}

/** One frame with its FRAMESIZE and CHK filled in. */
export function encodeC37Frame(fields: C37FrameFields): Buffer {
  const frame = Buffer.alloc(HEADER_BYTES + fields.body.length + CHK_BYTES)
  frame[0] = SYNC_BYTE
  frame[1] = (fields.type << 4) | (fields.version ?? 1)
  frame.writeUInt16BE(frame.length, 2)
  frame.writeUInt16BE(fields.idcode, 4)
  frame.writeUInt32BE(fields.soc, 6)
  frame.writeUInt32BE((((fields.timeQuality ?? 0) << 24) | (fields.fraction & TIME_BASE_MASK)) >>> 0, 10)
  Buffer.from(fields.body).copy(frame, HEADER_BYTES)
  frame.writeUInt16BE(crcCcitt(frame, 0, frame.length - CHK_BYTES), frame.length - CHK_BYTES)
  return frame
}

/** A CFG-2 frame declaring `timeBase` for `idcode`, with no PMU (NUM_PMU 0) unless `pmuBytes` are given. */
export function encodeC37Cfg2(idcode: number, soc: number, timeBase: number, options: { numPmu?: number; pmuBytes?: Uint8Array; dataRate?: number } = {}): Buffer {
  const pmuBytes = options.pmuBytes ?? new Uint8Array(0)
  const body = Buffer.alloc(4 + 2 + pmuBytes.length + 2)
  body.writeUInt32BE(timeBase & TIME_BASE_MASK, 0)
  body.writeUInt16BE(options.numPmu ?? 0, 4)
  Buffer.from(pmuBytes).copy(body, 6)
  body.writeInt16BE(options.dataRate ?? 30, 6 + pmuBytes.length)
  return encodeC37Frame({ type: C37_FRAME.cfg2, idcode, soc, fraction: 0, body })
}

/** A data frame for `idcode` at SOC + fraction / TIME_BASE, carrying `body` (STAT, phasors, ...). */
export function encodeC37Data(idcode: number, soc: number, fraction: number, body: Uint8Array = new Uint8Array(2)): Buffer {
  return encodeC37Frame({ type: C37_FRAME.data, idcode, soc, fraction, body })
}
