// Deterministic simulation of a replication group: one GroupCore per member over the
// simulated network, each with an in-memory "disk" (delivered records become durable after a
// random virtual delay; a crash loses what was not yet durable). Workload and faults come from
// the seed, so a failing schedule is replayed by its seed alone. The invariants the protocol
// promises are checked after every step and at the end (`check`), and every violation names
// the seed.

import { GroupCore, type CoreAction, type View } from '../replication/core/group.js'
import { groupSchema } from '../replication/core/schema.js'
import { SimulatedNetwork } from '../replication/transport/simulated.js'
import type { HlcStamp } from '../temporal/hlc.js'
import type { Prng } from './prng.js'

export interface GroupSimOptions {
  readonly seed: number
  readonly memberCount: number
  readonly virtualMs: number // how long the workload and faults run
  readonly submitsPerMs: number // offered load, spread over live members
  readonly crashes: number // members crashed at random instants (a minority at most is enforced by the caller)
  readonly partition: boolean // one random minority/majority split, healed later
  readonly largeChance: number // fraction of submissions above the small-message limit
  readonly slowPacketChance?: number
}

interface Delivered {
  readonly stamp: HlcStamp
  readonly id: string // the payload's text: "rank:requestId"
}

interface SimMember {
  readonly rank: number
  core: GroupCore
  alive: boolean
  excluded: boolean
  readonly delivered: Delivered[]
  durableCount: number // delivered[0..durableCount) are on disk
  readonly views: View[]
  readonly trims: Array<{ vid: number; trim: readonly number[] }>
  lastStable: HlcStamp
  /** Frozen-cut promises: at some point this member said everything ≤ stamp is here, `count` records. */
  readonly stableSnapshots: Array<{ stamp: HlcStamp; count: number }>
  requestNext: number
  readonly acked: Map<number, HlcStamp> // requestId -> stamp
  readonly rejected: Set<number>
}

const SMALL_MESSAGE_MAX_BYTES = 256
const TICK_MS = 5

export class GroupSim {
  readonly net: SimulatedNetwork
  readonly members: SimMember[]
  readonly violations: string[] = []
  private readonly options: GroupSimOptions
  private readonly workload: Prng
  private readonly viewsById = new Map<number, string>()
  private readonly canonical: Delivered[] = [] // the delivery order every member must follow

  constructor(options: GroupSimOptions) {
    this.options = options
    const n = options.memberCount
    this.net = new SimulatedNetwork({
      seed: options.seed,
      memberCount: n,
      schema: groupSchema(n),
      delayMsMin: 1,
      delayMsMax: 8,
      heartbeatIntervalMs: 20,
      suspectTimeoutMs: 120,
      smcSlotSizeBytes: SMALL_MESSAGE_MAX_BYTES + 64,
      smcWindowSlots: 16,
      rdmcBlockSizeBytes: 512,
      slowPacketChance: options.slowPacketChance ?? 0,
      slowPacketDelayMsMax: 60,
      traceEnabled: false,
    })
    this.workload = this.net.workload
    const view: View = { vid: 1, members: Array.from({ length: n }, (_, r) => r) }
    this.members = Array.from({ length: n }, (_, rank) => {
      const transport = this.net.transport(rank)
      const member: SimMember = {
        rank,
        core: new GroupCore({ selfRank: rank, epochSize: n, view, sst: transport.sst, lastStamp: 0n, nowUs: this.nowUs(rank), smallMessageMaxBytes: SMALL_MESSAGE_MAX_BYTES }),
        alive: true,
        excluded: false,
        delivered: [],
        durableCount: 0,
        views: [view],
        trims: [],
        lastStable: 0n,
        stableSnapshots: [],
        requestNext: 1,
        acked: new Map(),
        rejected: new Set(),
      }
      transport.on('rows', () => this.feed(member, { kind: 'rows' }))
      transport.on('small', (from, _seq, bytes) => this.feed(member, { kind: 'message', fromRank: from, bytes }))
      transport.on('large', (from, _seq, bytes) => this.feed(member, { kind: 'message', fromRank: from, bytes }))
      transport.on('suspected', (from) => this.feed(member, { kind: 'suspect', rank: from }))
      return member
    })
  }

  /** Member clocks are skewed by a few ms, as real ones are. */
  private nowUs(rank: number): number {
    return 1_700_000_000_000_000 + Math.round(this.net.nowMs * 1000) + rank * 1700
  }

  async start(): Promise<void> {
    await this.net.startAll()
    for (const member of this.members) this.execute(member, member.core.start())
    for (const member of this.members) this.scheduleTick(member)
    this.scheduleWorkload()
    this.scheduleFaults()
  }

  private scheduleTick(member: SimMember): void {
    this.net.scheduler.after(TICK_MS, () => {
      if (!member.alive) return
      this.feed(member, { kind: 'tick' })
      this.scheduleTick(member)
    }, { background: true })
  }

  private scheduleWorkload(): void {
    const { virtualMs, submitsPerMs } = this.options
    const count = Math.round(virtualMs * submitsPerMs)
    for (let i = 0; i < count; i++) {
      const atMs = this.workload.int(0, virtualMs)
      const rank = this.workload.int(0, this.options.memberCount - 1)
      const large = this.workload.chance(this.options.largeChance)
      this.net.scheduler.at(atMs, () => this.submit(rank, large))
    }
  }

  private scheduleFaults(): void {
    const n = this.options.memberCount
    const minority = Math.floor((n - 1) / 2)
    // Crashed plus partitioned-away members stay a minority, so a majority can always go on.
    const ranks = this.workload.shuffle(Array.from({ length: n }, (_, r) => r))
    const crashCount = Math.min(this.options.crashes, minority)
    const victims = ranks.slice(0, crashCount)
    for (const rank of victims) {
      this.net.scheduler.at(this.workload.int(0, this.options.virtualMs), () => this.crash(rank))
    }
    const sideSize = minority - crashCount
    if (this.options.partition && sideSize > 0) {
      const side = ranks.slice(crashCount, crashCount + sideSize)
      const fromMs = this.workload.int(0, this.options.virtualMs)
      const lengthMs = this.workload.int(10, 400)
      this.net.scheduler.at(fromMs, () => this.net.partition(side))
      this.net.scheduler.at(fromMs + lengthMs, () => this.net.heal())
    }
  }

  submit(rank: number, large: boolean): void {
    const member = this.members[rank]!
    if (!member.alive || member.excluded) return
    const requestId = member.requestNext++
    const text = `${rank}:${requestId}`
    const padding = large ? 'x'.repeat(SMALL_MESSAGE_MAX_BYTES + this.workload.int(1, 2000)) : ''
    this.feed(member, { kind: 'submit', requestId, payload: new TextEncoder().encode(text + '|' + padding) })
  }

  crash(rank: number): void {
    const member = this.members[rank]!
    if (!member.alive) return
    member.alive = false
    member.delivered.length = member.durableCount // what was not on disk is gone
    this.net.crash(rank)
  }

  private feed(member: SimMember, event: Parameters<GroupCore['handle']>[0]): void {
    if (!member.alive) return
    this.execute(member, member.core.handle(event, this.nowUs(member.rank)))
    this.checkStep(member)
  }

  private execute(member: SimMember, actions: readonly CoreAction[]): void {
    const transport = this.net.transport(member.rank)
    for (const action of actions) {
      switch (action.kind) {
        case 'setU64':
          transport.setU64(action.column, action.value, action.index)
          break
        case 'setBool':
          transport.setBool(action.column, action.value, action.index)
          break
        case 'push':
          transport.push()
          break
        case 'send': {
          const sent = action.large ? transport.sendLarge(action.bytes) : transport.sendSmall(action.bytes)
          sent.catch(() => undefined) // a stopped or crashed sender: the protocol handles the loss
          break
        }
        case 'deliver': {
          const text = new TextDecoder().decode(action.payload)
          const record = { stamp: action.stamp, id: text.slice(0, text.indexOf('|')) }
          this.checkOrder(member, member.delivered.length, record)
          member.delivered.push(record)
          this.scheduleDurable(member, member.delivered.length, action.stamp)
          break
        }
        case 'persistTrim':
          member.trims.push({ vid: action.vid, trim: action.trim })
          break
        case 'installView': {
          member.views.push(action.view)
          const key = action.view.members.join(',')
          const seen = this.viewsById.get(action.view.vid)
          if (seen !== undefined && seen !== key) this.violation(`two views with id ${action.view.vid}: [${seen}] and [${key}]`)
          this.viewsById.set(action.view.vid, key)
          break
        }
        case 'reply':
          member.acked.set(action.requestId, action.stamp)
          break
        case 'reject':
          member.rejected.add(action.requestId)
          break
        case 'excluded':
          member.excluded = true
          break
      }
    }
  }

  /** The disk writes in order: a record becomes durable after every earlier one. */
  private scheduleDurable(member: SimMember, count: number, stamp: HlcStamp): void {
    const delayMs = this.workload.int(0, 6)
    this.net.scheduler.after(delayMs, () => {
      if (!member.alive || member.durableCount >= count) return
      member.durableCount = count
      this.feed(member, { kind: 'persisted', stamp })
    })
  }

  private violation(text: string): void {
    if (this.violations.length < 20) this.violations.push(`seed ${this.options.seed} at ${this.net.nowMs} ms: ${text}`)
  }

  /** Identical delivery order, checked at each delivery: position i holds the same record everywhere. */
  private checkOrder(member: SimMember, position: number, record: Delivered): void {
    const canonical = this.canonical[position]
    if (canonical === undefined) {
      if (position !== this.canonical.length) this.violation(`rank ${member.rank} delivered #${position} with a gap`)
      this.canonical.push(record)
    } else if (canonical.id !== record.id || canonical.stamp !== record.stamp) {
      this.violation(`rank ${member.rank} delivered #${position} ${record.id}@${record.stamp}, another member ${canonical.id}@${canonical.stamp}`)
    }
  }

  private checkStep(member: SimMember): void {
    const stable = member.core.stableStamp()
    if (stable < member.lastStable) this.violation(`rank ${member.rank}: stability frontier went back from ${member.lastStable} to ${stable}`)
    if (stable > member.lastStable) {
      member.lastStable = stable
      let count = member.delivered.length
      while (count > 0 && member.delivered[count - 1]!.stamp > stable) count--
      member.stableSnapshots.push({ stamp: stable, count })
    }
  }

  /** Runs the workload, then lets the group settle; returns the violations found. */
  async run(): Promise<string[]> {
    await this.start()
    const settleMs = 1500
    const endMs = this.options.virtualMs + settleMs
    let steps = 0
    while (this.net.nowMs < endMs) {
      if (!this.net.step()) break
      if (++steps > 5_000_000) {
        this.violation('more than 5M steps: livelock')
        break
      }
    }
    this.checkEnd()
    return this.violations
  }

  /** The end-of-run invariants. */
  checkEnd(): void {
    const live = this.members.filter((m) => m.alive && !m.excluded)
    const majority = Math.floor(this.options.memberCount / 2) + 1
    if (live.length < majority) return // nothing more to promise than safety, checked below
    // 1. Identical delivery order: every member's sequence is a prefix of the longest.
    const longest = this.members.reduce((a, b) => (b.delivered.length > a.delivered.length ? b : a))
    for (const member of this.members) {
      for (let i = 0; i < member.delivered.length; i++) {
        const mine = member.delivered[i]!
        const theirs = longest.delivered[i]!
        if (mine.id !== theirs.id || mine.stamp !== theirs.stamp) {
          this.violation(`rank ${member.rank} delivered #${i} ${mine.id}@${mine.stamp}, rank ${longest.rank} ${theirs.id}@${theirs.stamp}`)
          break
        }
      }
    }
    // 2. Live members converge: they all delivered the same records.
    for (const member of live) {
      if (member.delivered.length !== longest.delivered.length) {
        this.violation(`rank ${member.rank} delivered ${member.delivered.length} records, rank ${longest.rank} ${longest.delivered.length}`)
      }
    }
    // 3. Stamps strictly increase.
    for (let i = 1; i < longest.delivered.length; i++) {
      if (longest.delivered[i]!.stamp <= longest.delivered[i - 1]!.stamp) this.violation(`stamps not increasing at #${i}`)
    }
    // 4. Every acknowledged request was delivered, exactly once, at its stamp, and is durable at every live member.
    const position = new Map<string, number>()
    longest.delivered.forEach((d, i) => {
      if (position.has(d.id)) this.violation(`${d.id} delivered twice`)
      position.set(d.id, i)
    })
    for (const member of this.members) {
      for (const [requestId, stamp] of member.acked) {
        const id = `${member.rank}:${requestId}`
        const at = position.get(id)
        if (at === undefined) this.violation(`acknowledged ${id} was lost`)
        else if (longest.delivered[at]!.stamp !== stamp) this.violation(`acknowledged ${id} at ${stamp}, delivered at ${longest.delivered[at]!.stamp}`)
        for (const other of live) if (at !== undefined && other.durableCount <= at) this.violation(`acknowledged ${id} not durable at rank ${other.rank}`)
      }
    }
    // 5. Frozen cuts: whenever a member called a stamp stable, the records at or below it were final.
    for (const member of this.members) {
      for (const { stamp, count } of member.stableSnapshots) {
        let finalCount = 0
        while (finalCount < longest.delivered.length && longest.delivered[finalCount]!.stamp <= stamp) finalCount++
        if (finalCount !== count) {
          this.violation(`rank ${member.rank} called ${stamp} stable with ${count} records at or below it; finally there are ${finalCount}`)
          break
        }
      }
    }
    // 6. Liveness after the faults: pending requests at live members were answered or rejected.
    for (const member of live) {
      const open = member.core.status().pendingRequests
      if (open > 0) this.violation(`rank ${member.rank} still has ${open} requests pending after settling`)
    }
  }
}
