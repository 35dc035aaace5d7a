// The Client a member serves to the mounts connected to it (and, in the simulation, to its
// simulated clients): reads from the local replica, writes through the group's total order.

import { FffsError } from '../../errors.js'
import type { ApplyResult, Attr, DataRef, DirPage, Ino, Mutation, NameBinding, SensorPick, Snapshot, StampPage, VersionRange } from '../../store/records.js'
import type { LocatedBytes, Store } from '../../store/store.js'
import { HLC_MAX, hlcPhysicalUs, hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import { unwrap, type Client, type SubmitOptions, type Submitted } from '../../client/client.js'
import type { Clock } from '../clock.js'
import type { GroupConfig } from '../config.js'
import { encodeDataPayload, encodeRecordPayload, type RecordPayload } from '../payload.js'

// Blobs up to this size are not ordered on their own: the member holds them until the version
// naming them is submitted and sends them inside that record's message (one ordered message,
// one round of ordering and persistence per small version instead of two in sequence).
const INLINE_DATA_MAX_BYTES = 4096

/** What the client asks of its member. */
export interface ReplicaAccess {
  readonly id: number
  readonly config: GroupConfig
  readonly clock: Clock
  /** Names this process in blob ids (its pid). */
  readonly instance: string
  /** Waits (briefly) until the member holds every record at or below `stamp`; MemberBehindError if it does not. */
  holdStamp(stamp: HlcStamp): Promise<void>
  /** Runs a read of the local store (MemberBehindError while it is being replaced). */
  read<T>(read: (store: Store) => Promise<T> | T): Promise<T>
  /** A buffer the local store's read fills fastest (Store.readBuffer). */
  readBuffer(lengthBytes: number): Buffer
  stableStamp(): HlcStamp
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  /** Waits until every record at or below `stamp` is synced at every member of the view. */
  waitSynced(stamp: HlcStamp, maxWaitMs: number): Promise<void>
  order(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }>
  orderRecord(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }>
  /** Throws ENOSPC for what adds data while this member's disk, or any member's, is short of space (upkeep.ts). */
  refuseWhenFull(mutation: Mutation | 'write'): void
}

/**
 * How far a submitting client's clock (HLC piggybacking) may be ahead of this member's. Stamps a
 * client saw come from members, so a larger gap means skewed member clocks or a bad client; as
 * HLC implementations do, refuse it rather than let one clock push the whole group's ahead.
 */
const CLIENT_CLOCK_AHEAD_MAX_US = 1_000_000

/**
 * Δ is the group's (config `time.sensorLagMaxMs`), whatever the mount sent: the store refuses a
 * version or a creation stamped older than its HLC stamp − Δ, and a mount that sent a larger Δ
 * (or none) could otherwise add to a sensor cut another mount had already read as frozen.
 */
function withGroupSensorLag(mutation: Mutation, sensorLagMaxUs: number): Mutation {
  return mutation.type === 'version' || mutation.type === 'mknod' ? { ...mutation, sensorLagMaxUs } : mutation
}

export class ReplicaClient implements Client {
  private readonly member: ReplicaAccess
  private readonly inlineHeld = new Map<string, Uint8Array>() // small blobs a mount sent, held for the record that names them
  private blobNext = 1
  private acknowledgedStamp: HlcStamp = 0n // the newest stamp a submit through this client returned (every mount it serves: syncing them all is a superset)

  constructor(member: ReplicaAccess) {
    this.member = member
  }

  /** A read at `cut`: a past cut only once this member holds it (holdStamp); the live cut (HLC_MAX) at once. */
  private async atCut<T>(cut: HlcStamp, read: (store: Store) => Promise<T> | T): Promise<T> {
    if (cut !== HLC_MAX) await this.member.holdStamp(cut)
    return this.member.read(read)
  }

  walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.atCut(cut, (store) => store.walk(components, cut))
  }
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    return this.atCut(cut, (store) => store.attr(ino, cut))
  }
  attrs(inos: readonly Ino[], cut: HlcStamp): Promise<Array<Attr | null>> {
    return this.atCut(cut, (store) => Promise.all(inos.map((ino) => store.attr(ino, cut))))
  }
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.atCut(cut, (store) => store.lookup(dir, name, cut))
  }
  child(dir: Ino, name: string, cut: HlcStamp): Promise<Attr | null> {
    return this.atCut(cut, (store) => store.child(dir, name, cut))
  }
  readdir(dir: Ino, cut: HlcStamp, page?: DirPage): Promise<Array<{ name: string; ino: Ino }>> {
    return this.atCut(cut, (store) => store.readdir(dir, cut, page))
  }
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    // The version `attr` names (read on this or another member) must be applied here.
    return this.atCut(BigInt(attr.stamp), (store) => store.read(attr, offset, into, lengthBytes))
  }
  readBuffer(lengthBytes: number): Buffer {
    return this.member.readBuffer(lengthBytes)
  }
  locate(attr: Attr, offset: number, lengthBytes: number): Promise<LocatedBytes | null> {
    return this.atCut(BigInt(attr.stamp), (store) => store.locate(attr, offset, lengthBytes))
  }
  versions(ino: Ino, range?: VersionRange): Promise<Attr[]> {
    return this.member.read((store) => store.versions(ino, range))
  }
  nameHistory(dir: Ino, name: string, page?: StampPage): Promise<NameBinding[]> {
    return this.member.read((store) => store.nameHistory(dir, name, page))
  }
  stampOfVersion(ino: Ino, version: number): Promise<HlcStamp | null> {
    return this.member.read((store) => store.stampOfVersion(ino, version))
  }
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return this.member.read((store) => store.stampAtSensorTime(ino, sensorUs))
  }
  sensorPick(ino: Ino, sensorUs: number): Promise<SensorPick | null> {
    return this.member.read((store) => store.sensorPick(ino, sensorUs))
  }
  snapshots(page?: DirPage): Promise<Snapshot[]> {
    return this.member.read((store) => store.snapshots(page))
  }
  snapshot(name: string): Promise<Snapshot | null> {
    return this.member.read((store) => store.snapshot(name))
  }

  /** Small bytes wait for the version naming them and travel inside its record (one ordered
   * message and one round of persistence, not two in sequence); larger ones go into the total
   * order now (the bulk path), the version naming them follows. */
  appendData(_ino: Ino, bytes: Uint8Array): { ref: DataRef; written: Promise<void> } {
    try {
      this.member.refuseWhenFull('write')
    } catch (err) {
      // Refused as the submit naming it will learn (a blob arrives as a message: nothing to throw to).
      const refused = Promise.reject(err as Error)
      refused.catch(() => undefined)
      return { ref: { blob: this.nextBlobId(), offset: 0 }, written: refused }
    }
    if (bytes.byteLength <= INLINE_DATA_MAX_BYTES) return { ref: { blob: this.holdInline(bytes), offset: 0 }, written: Promise.resolve() }
    const blob = this.nextBlobId()
    const ordered = this.member.order(encodeDataPayload(blob, bytes))
    return { ref: { blob, offset: 0 }, written: ordered.then(() => undefined) }
  }

  /** Forgets a blob no version will name (its connection closed first). */
  releaseData(ref: DataRef): void {
    if ('blob' in ref) this.takeInline(ref.blob)
  }

  private nextBlobId(): string {
    return `${this.member.id}.${this.member.instance}.${this.member.clock.nowMs().toString(36)}.${this.blobNext++}`
  }

  /** Holds a small blob (a copy) for the record that will name it; returns its id. */
  private holdInline(bytes: Uint8Array): string {
    const blob = this.nextBlobId()
    this.inlineHeld.set(blob, Uint8Array.prototype.slice.call(bytes))
    return blob
  }

  /** Takes the held bytes of `blob` (undefined: not held here, so ordered on its own). */
  private takeInline(blob: string): Uint8Array | undefined {
    const bytes = this.inlineHeld.get(blob)
    this.inlineHeld.delete(blob)
    return bytes
  }

  async submit(mutation: Mutation, options: SubmitOptions = {}): Promise<Submitted> {
    this.member.refuseWhenFull(mutation)
    // Taken first: whatever happens to this submit, the held bytes are not needed again.
    const inline: Array<readonly [string, number]> = []
    const inlineBytes: Uint8Array[] = []
    if (mutation.type === 'version') {
      for (const op of mutation.ops) {
        if (op.op !== 'write' || !('blob' in op.data)) continue
        const bytes = this.takeInline(op.data.blob)
        if (bytes === undefined) continue // ordered on its own, or named twice (taken by the first op)
        inline.push([op.data.blob, bytes.byteLength])
        inlineBytes.push(bytes)
      }
    }
    if (options.after !== undefined && hlcPhysicalUs(options.after) > this.member.clock.wallClockUs() + CLIENT_CLOCK_AHEAD_MAX_US) {
      throw new FffsError('EINVAL', `${mutation.type}: the client's clock (${hlcToIso(options.after)}) is more than ${CLIENT_CLOCK_AHEAD_MAX_US / 1000} ms ahead of member ${this.member.id}'s; refused, or it would drag the group's clock and every later cut with it`)
    }
    const bounded = withGroupSensorLag(mutation, this.member.config.time.sensorLagMaxMs * 1000)
    const record: RecordPayload = { mutation: bounded, ...(options.id !== undefined ? { submit: options.id } : {}), ...(inline.length > 0 ? { inline } : {}) }
    const { stamp, result } = await this.member.orderRecord(encodeRecordPayload(record, inlineBytes), options.after)
    const submitted = { stamp, ...unwrap(result) }
    if (stamp > this.acknowledgedStamp) this.acknowledgedStamp = stamp
    return submitted
  }

  refuseWhenFull(): void {
    this.member.refuseWhenFull('write')
  }

  async stableFrontier(): Promise<HlcStamp> {
    return this.member.stableStamp()
  }
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    return this.member.waitStable(cut, maxWaitMs)
  }
  /** For the mounts this member serves (the protocol's waitSynced): they name the stamp. */
  waitSynced(stamp: HlcStamp, maxWaitMs: number): Promise<void> {
    return this.member.waitSynced(stamp, maxWaitMs)
  }
  async syncAcknowledged(maxWaitMs: number): Promise<void> {
    if (this.acknowledgedStamp > 0n) await this.member.waitSynced(this.acknowledgedStamp, maxWaitMs)
  }
  async close(): Promise<void> {
    // The member outlives the connections it serves.
  }
}
