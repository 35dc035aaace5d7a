// Test helper for the store's own tests: feeds a store records at stamps of a clock the test
// moves (a millisecond apart), writes whole-file versions, and sums a file up at a cut so that
// reads before and after compaction or GC can be compared.

import { FffsError } from '../../src/errors.js'
import type { Mutation, VersionOp } from '../../src/store/records.js'
import type { Store } from '../../src/store/store.js'
import { hlcOf, type HlcStamp } from '../../src/temporal/hlc.js'

export class StoreWriter {
  timeUs = Date.UTC(2026, 0, 1) * 1000

  /** `syncEachRecord`: each record is synced before it applies (as a member's are: a power loss keeps what applied). */
  constructor(
    public store: Store,
    private readonly options: { readonly syncEachRecord?: boolean } = {},
  ) {}

  async apply(mutation: Mutation): Promise<{ stamp: HlcStamp; ino?: number }> {
    this.timeUs += 1000
    const stamp = hlcOf(this.timeUs, 0)
    const logged = this.store.appendRecord(stamp, mutation)
    if (this.options.syncEachRecord === true) await this.store.sync()
    const result = await this.store.apply(stamp, mutation, logged)
    if (!result.ok) throw new FffsError(result.code, result.message)
    return { stamp, ...(result.ino !== undefined ? { ino: result.ino } : {}) }
  }

  /** A write op putting `bytes` at `offset` (its data appended to the log now). */
  writeOp(offset: number, bytes: Buffer): VersionOp {
    return { op: 'write', offset, sizeBytes: bytes.length, data: this.store.appendData(bytes).position }
  }

  /** A version of `ino` that is `sizeBytes` bytes of `fill`. */
  async write(ino: number, fill: number, sizeBytes: number): Promise<HlcStamp> {
    const data = this.store.appendData(Buffer.alloc(sizeBytes, fill))
    await data.written
    return (await this.apply({ type: 'version', ino, ops: [{ op: 'write', offset: 0, sizeBytes, data: data.position }, { op: 'truncate', sizeBytes }] })).stamp
  }
}

/** `version:size:first byte:last byte` of `ino` at `cut`. */
export async function contentSummary(store: Store, ino: number, cut: HlcStamp): Promise<string> {
  const attr = (await store.attr(ino, cut))!
  const into = Buffer.alloc(attr.sizeBytes)
  await store.read(attr, 0, into, attr.sizeBytes)
  return `${attr.version}:${into.length}:${into[0] ?? '-'}:${into[into.length - 1] ?? '-'}`
}
