// Where each ordered record sits in the log, by stamp: `R stamp -> segment | offset | size` in
// the LevelDB index, written in the same batch as the record's apply. A replica's "where am I"
// (the record at its last stamp) and a donor's "the records after stamp S" are then a get and a
// seek, never a scan of the log: recovery costs what is missing, not what is stored.
//
// Durability is the index's own: batches are written without sync and carry `M applied`, so
// after a crash the store replays the log past it and the replay writes these entries again.
// A store written before the index existed is indexed once, by one scan, at its first open.

import type { HlcStamp } from '../temporal/hlc.js'
import type { IndexDb, IndexOp } from './disk.js'
import { keys, stampOfKey } from './keys.js'
import { decodeRecord } from './records.js'
import { EntryKind, type LogPosition, type SegmentLog } from './segmentLog.js'

/** A record's entry in the log: its payload's position and size. */
export interface RecordAt {
  readonly position: LogPosition
  readonly sizeBytes: number
}

/** A located record, as `after` lists them. */
export interface IndexedRecord extends RecordAt {
  readonly stamp: HlcStamp
}

/** Set once every record of the log is indexed (a new store, or an old one after its one scan). */
const COMPLETE_KEY = keys.meta('recordIndex')

function encodeRecordAt(at: RecordAt): Buffer {
  const value = Buffer.allocUnsafe(12)
  value.writeUInt32BE(at.position.segment, 0)
  value.writeUInt32BE(at.position.offset, 4)
  value.writeUInt32BE(at.sizeBytes, 8)
  return value
}

function decodeRecordAt(value: Buffer): RecordAt {
  return { position: { segment: value.readUInt32BE(0), offset: value.readUInt32BE(4) }, sizeBytes: value.readUInt32BE(8) }
}

export class RecordIndex {
  private readonly db: IndexDb

  constructor(db: IndexDb) {
    this.db = db
  }

  /** The put that indexes a record appended at `position`, its entry ending at `next` (an entry never spans segments). */
  static entry(stamp: HlcStamp, position: LogPosition, next: LogPosition): { key: Buffer; value: Buffer } {
    if (next.segment !== position.segment || next.offset <= position.offset) throw new Error(`invariant: record entry at ${position.segment}:${position.offset} ends at ${next.segment}:${next.offset}`)
    return { key: keys.record(stamp), value: encodeRecordAt({ position, sizeBytes: next.offset - position.offset }) }
  }

  /** The put that marks a new (empty) store as fully indexed. */
  static completeMark(): { key: Buffer; value: Buffer } {
    return { key: COMPLETE_KEY, value: Buffer.from('1') }
  }

  /** The record stamped exactly `stamp`, or null. */
  at(stamp: HlcStamp): RecordAt | null {
    const value = this.db.getSync(keys.record(stamp))
    return value === undefined ? null : decodeRecordAt(value)
  }

  /** Up to `limit` records stamped in (after, upto], in stamp order (= log order). */
  async after(after: HlcStamp, upto: HlcStamp, limit: number): Promise<IndexedRecord[]> {
    if (upto <= after) return []
    const entries = await this.db.iterator({ gt: keys.record(after), lte: keys.record(upto), limit }).all()
    return entries.map(([key, value]) => ({ stamp: stampOfKey(key), ...decodeRecordAt(value) }))
  }

  /** The last indexed record at or before `stamp`, or null. */
  async atOrBefore(stamp: HlcStamp): Promise<IndexedRecord | null> {
    const [entry] = await this.db.iterator({ gte: keys.recordPrefix(), lte: keys.record(stamp), reverse: true, limit: 1 }).all()
    return entry === undefined ? null : { stamp: stampOfKey(entry[0]), ...decodeRecordAt(entry[1]) }
  }

  /**
   * Indexes every record of a log written before this index existed, by one scan of the
   * whole log; afterwards `at` and `after` answer for every record. Returns the records indexed
   * (0: the index was complete already).
   */
  async completeFrom(log: SegmentLog): Promise<number> {
    if (this.db.getSync(COMPLETE_KEY) !== undefined) return 0
    let count = 0
    let batch: IndexOp[] = []
    await log.scan({ segment: 0, offset: 0 }, async (entry) => {
      if (entry.kind !== EntryKind.Record) return true
      const { stamp } = decodeRecord(entry.payload)
      batch.push({ type: 'put', ...RecordIndex.entry(stamp, entry.position, entry.next) })
      count++
      if (batch.length >= 1024) {
        await this.db.batch(batch)
        batch = []
      }
      return true
    })
    batch.push({ type: 'put', ...RecordIndex.completeMark() })
    await this.db.batch(batch)
    return count
  }
}
