// The client API: everything the FUSE front end and the control socket need from the layers
// below. The embedded client runs the store and a local orderer in-process; a cluster client
// (replication) implements the same interface against a group of `fffs serve` processes.

import { FffsError } from '../errors.js'
import type { ApplyResult, Attr, Ino, Mutation, Snapshot } from '../store/records.js'
import { Store } from '../store/store.js'
import type { LogPosition } from '../store/segmentLog.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { LocalOrderer, type Orderer } from './orderer.js'

export interface Client {
  walk(components: readonly string[], cut: HlcStamp): Promise<Attr>
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null>
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null>
  readdir(dir: Ino, cut: HlcStamp): Promise<Array<{ name: string; ino: Ino }>>
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number>
  versions(ino: Ino): Promise<Attr[]>
  stampOfVersion(ino: Ino, version: number): HlcStamp | null
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null>
  snapshots(): Promise<Snapshot[]>
  snapshot(name: string): Snapshot | null
  /** Hands file bytes to the data path; a 'version' mutation then refers to the position. */
  appendData(bytes: Uint8Array): { position: LogPosition; written: Promise<void> }
  /** Orders, persists and applies a mutation; throws the FffsError of a failed apply. */
  submit(mutation: Mutation): Promise<{ stamp: HlcStamp; ino?: Ino }>
  stableFrontier(): HlcStamp
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void>
  close(): Promise<void>
}

export class EmbeddedClient implements Client {
  private readonly store: Store
  private readonly orderer: Orderer

  private constructor(store: Store, orderer: Orderer) {
    this.store = store
    this.orderer = orderer
  }

  static async open(dataDir: string): Promise<{ client: EmbeddedClient; replayedRecords: number; truncatedBytes: number }> {
    const store = new Store(dataDir)
    const { replayedRecords, truncatedBytes } = await store.open()
    return { client: new EmbeddedClient(store, new LocalOrderer(store)), replayedRecords, truncatedBytes }
  }

  walk(components: readonly string[], cut: HlcStamp): Promise<Attr> {
    return this.store.walk(components, cut)
  }
  attr(ino: Ino, cut: HlcStamp): Promise<Attr | null> {
    return this.store.attr(ino, cut)
  }
  lookup(dir: Ino, name: string, cut: HlcStamp): Promise<Ino | null> {
    return this.store.lookup(dir, name, cut)
  }
  readdir(dir: Ino, cut: HlcStamp): Promise<Array<{ name: string; ino: Ino }>> {
    return this.store.readdir(dir, cut)
  }
  read(attr: Attr, offset: number, into: Buffer, lengthBytes: number): Promise<number> {
    return this.store.read(attr, offset, into, lengthBytes)
  }
  versions(ino: Ino): Promise<Attr[]> {
    return this.store.versions(ino)
  }
  stampOfVersion(ino: Ino, version: number): HlcStamp | null {
    return this.store.stampOfVersion(ino, version)
  }
  stampAtSensorTime(ino: Ino, sensorUs: number): Promise<HlcStamp | null> {
    return this.store.stampAtSensorTime(ino, sensorUs)
  }
  snapshots(): Promise<Snapshot[]> {
    return this.store.snapshots()
  }
  snapshot(name: string): Snapshot | null {
    return this.store.snapshot(name)
  }
  appendData(bytes: Uint8Array): { position: LogPosition; written: Promise<void> } {
    return this.store.appendData(bytes)
  }

  async submit(mutation: Mutation): Promise<{ stamp: HlcStamp; ino?: Ino }> {
    const { stamp, result } = await this.orderer.submit(mutation)
    return { stamp, ...unwrap(result) }
  }

  stableFrontier(): HlcStamp {
    return this.orderer.stableFrontier()
  }
  waitStable(cut: HlcStamp, maxWaitMs: number): Promise<void> {
    return this.orderer.waitStable(cut, maxWaitMs)
  }

  async close(): Promise<void> {
    await this.orderer.close()
    await this.store.close()
  }
}

function unwrap(result: ApplyResult): { ino?: Ino } {
  if (!result.ok) throw new FffsError(result.code, result.message)
  return result.ino === undefined ? {} : { ino: result.ino }
}
