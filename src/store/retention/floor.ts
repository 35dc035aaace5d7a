// The history floor of a store and the cuts kept below it: what decides whether a read of the
// past can be answered. Every cut at or above the floor reads exactly what it always read; a cut
// below it only when something pins it (a named snapshot, an instant a tier keeps), else
// ERANGE. The floor and the pins change only by records (Store.apply), so every replica
// answers the same at the same point of the log.
//
// Pins live in the index (`P stamp -> Pin`): a snapshot adds its name to the pin of its cut; a
// `retain` record adds the instants its tiers keep as the floor passes them and takes off the
// ones an older, coarser tier no longer keeps.

import type { IndexDb } from '../disk.js'
import { errors, type FffsError } from '../../errors.js'
import { hlcCeilingOfUs, hlcPhysicalUs, hlcToIso, type HlcStamp } from '../../temporal/hlc.js'
import { keys, prefixEnd, stampOfKey } from '../keys.js'
import { describePolicy, isPolicy, tierInstants, tierKeeps, type RetentionPolicy } from './policy.js'

/** The rule the last `retain` record set: its floor, the policy and the instant it was applied at. */
export interface HistoryRule {
  readonly floor: HlcStamp
  readonly policy: RetentionPolicy
  readonly nowUs: number // platform time of the record that set it
  readonly stamp: HlcStamp // that record's
}

/** What keeps a cut below the floor: named snapshots at it, and whether a tier keeps its instant. */
export interface Pin {
  readonly snapshots: readonly string[]
  readonly tier: boolean
}

export type BatchPut = (key: Buffer, value: Buffer) => void
export type BatchDel = (key: Buffer) => void

const RULE_KEY = keys.meta('historyRule')

interface EncodedRule {
  readonly floor: string
  readonly policy: RetentionPolicy
  readonly nowUs: number
  readonly stamp: string
}

export class HistoryFloor {
  private readonly db: IndexDb
  private current: HistoryRule | null = null

  constructor(db: IndexDb) {
    this.db = db
  }

  /** Reads the rule from the index (at open). */
  load(): void {
    const value = this.db.getSync(RULE_KEY)
    if (value === undefined) {
      this.current = null
      return
    }
    const rule = JSON.parse(value.toString()) as EncodedRule
    this.current = { floor: BigInt(rule.floor), policy: rule.policy, nowUs: rule.nowUs, stamp: BigInt(rule.stamp) }
  }

  get rule(): HistoryRule | null {
    return this.current
  }

  /** The floor: every cut at or above it is exact (0n: nothing was ever compacted). */
  get stamp(): HlcStamp {
    return this.current?.floor ?? 0n
  }

  pin(cut: HlcStamp): Pin | null {
    const value = this.db.getSync(keys.pin(cut))
    return value === undefined ? null : (JSON.parse(value.toString()) as Pin)
  }

  /** Whether a read at `cut` is answered from what the store holds: at or above the floor, or at a pinned cut. */
  readable(cut: HlcStamp): boolean {
    return cut >= this.stamp || this.pin(cut) !== null
  }

  /** Throws ERANGE for a cut below the floor that nothing pins. */
  check(cut: HlcStamp): void {
    if (!this.readable(cut)) throw this.compacted()
  }

  compacted(): FffsError {
    const rule = this.current!
    return errors.compacted(hlcToIso(rule.floor), describePolicy(rule.policy))
  }

  /** The pinned cuts below the floor, oldest first. */
  async pinsBelowFloor(): Promise<HlcStamp[]> {
    const entries = await this.db.keys({ gte: keys.pinPrefix(), lt: keys.pin(this.stamp) }).all()
    return entries.map(stampOfKey)
  }

  /**
   * Applies a `retain` record at `stamp`: the floor moves to its platform time − keepAllFor
   * (never back: history once dropped stays dropped), the instants the tiers keep between the
   * old floor and the new one are pinned, and tier pins an older, coarser tier no longer keeps
   * are taken off. `firstStamp`: the store's oldest record (where the first floor's tiers begin).
   * Returns the new rule (set in memory by `adopt` once the batch is written).
   */
  async retain(stamp: HlcStamp, policy: unknown, firstStamp: HlcStamp, put: BatchPut, del: BatchDel): Promise<{ rule: HistoryRule; pinsAdded: number; pinsRemoved: number }> {
    if (!isPolicy(policy)) throw errors.invalid(`retain: ${JSON.stringify(policy)} is not a retention policy`)
    const nowUs = hlcPhysicalUs(stamp)
    const previous = this.current
    const wanted = hlcCeilingOfUs(Math.max(0, nowUs - policy.keepAllForMs * 1000))
    const floor = previous !== null && previous.floor > wanted ? previous.floor : wanted
    let pinsAdded = 0
    let pinsRemoved = 0
    // Tier pins already below the floor that their tier, older now, no longer keeps.
    for await (const [key, value] of this.db.iterator({ gte: keys.pinPrefix(), lt: prefixEnd(keys.pinPrefix()) })) {
      const pin = JSON.parse(value.toString()) as Pin
      if (!pin.tier || tierKeeps(policy, nowUs, hlcPhysicalUs(stampOfKey(key)))) continue
      pinsRemoved++
      if (pin.snapshots.length === 0) del(key)
      else put(key, encodePin({ ...pin, tier: false }))
    }
    // Instants the floor passes now, kept by their tier.
    const fromUs = hlcPhysicalUs(previous?.floor ?? firstStamp)
    for (const instantUs of tierInstants(policy, nowUs, fromUs, hlcPhysicalUs(floor) + 1)) {
      const cut = hlcCeilingOfUs(instantUs)
      if (cut >= floor || (previous !== null && cut < previous.floor)) continue
      const pin = this.pin(cut)
      if (pin?.tier === true) continue
      pinsAdded++
      put(keys.pin(cut), encodePin({ snapshots: pin?.snapshots ?? [], tier: true }))
    }
    const rule: HistoryRule = { floor, policy, nowUs, stamp }
    const encoded: EncodedRule = { floor: floor.toString(), policy, nowUs, stamp: stamp.toString() }
    put(RULE_KEY, Buffer.from(JSON.stringify(encoded)))
    return { rule, pinsAdded, pinsRemoved }
  }

  /** The rule a `retain` computed, once its batch is in the index. */
  adopt(rule: HistoryRule): void {
    this.current = rule
  }

  /** A snapshot at `cut` is made (`add`) or removed: its name joins or leaves the cut's pin. */
  snapshotPin(cut: HlcStamp, name: string, add: boolean, put: BatchPut, del: BatchDel): void {
    const pin = this.pin(cut) ?? { snapshots: [], tier: false }
    const snapshots = add ? [...pin.snapshots.filter((n) => n !== name), name] : pin.snapshots.filter((n) => n !== name)
    if (snapshots.length === 0 && !pin.tier) del(keys.pin(cut))
    else put(keys.pin(cut), encodePin({ snapshots, tier: pin.tier }))
  }
}

function encodePin(pin: Pin): Buffer {
  return Buffer.from(JSON.stringify(pin))
}
