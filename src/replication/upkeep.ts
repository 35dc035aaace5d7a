// A member's upkeep of its store: history retention (the group's policy; the member leading
// its view proposes the `retain` and `compact` records, every member collects its own log
// segments) and the disk it is on.
//
// A full disk: a member whose disk falls below its reserve orders a `space` record saying so,
// and another once it has room again. While any member of the group is short of space, every
// member refuses writes that add data (ENOSPC): at the member a mount writes through, before
// ordering, and in `apply` for a record ordered before the refusal was known (deterministic:
// every replica refuses it alike). Deletes, truncations and retention go on, so space can be
// freed from inside. A member whose log write fails anyway (its disk filled by something else)
// fails and leaves the view, and rejoins once restarted (see decisions.md, Full disk).

import { describeDisk, DiskGuard, noSpace, type DiskState } from '../store/diskSpace.js'
import type { Mutation } from '../store/records.js'
import { describePolicy } from '../store/retention/policy.js'
import { RetentionRunner } from '../store/retention/runner.js'
import { addsData, type Store } from '../store/store.js'
import { hlcToIso } from '../temporal/hlc.js'
import type { GroupConfig } from './config.js'
import { describeCollect, describeRun, type HistoryState } from './history.js'

const SPACE_CHECK_MS = 1000

export interface UpkeepOptions {
  readonly store: Store
  readonly config: GroupConfig
  readonly memberId: number
  /** The disk the store is on, measured before it opened (measureDisk). */
  readonly disk: DiskGuard
  /** Orders a mutation through the group (the same path a mount's submits take). */
  readonly submit: (mutation: Mutation) => Promise<void>
  /** Whether this member proposes retention now (it runs, and leads its view). */
  readonly leads: () => boolean
  /** Whether this member runs in a group (a `space` record can be ordered). */
  readonly running: () => boolean
  readonly log: (line: string) => void
}

export class MemberUpkeep {
  private readonly options: UpkeepOptions
  private readonly disk: DiskGuard
  private readonly retention: RetentionRunner
  private timer: NodeJS.Timeout | null = null
  private told: boolean | null = null // what this member last ordered about its own disk
  private ordering = false

  constructor(options: UpkeepOptions) {
    this.options = options
    this.disk = options.disk
    const { store, config, log, memberId } = options
    this.retention = new RetentionRunner({
      store,
      policy: config.retention,
      submit: options.submit,
      proposes: options.leads,
      onRun: (report) => log(`fffs: member ${memberId}: retention: ${describeRun(report)}`),
      onCollect: (victims) => log(`fffs: member ${memberId}: retention: collecting ${describeCollect(victims)}`),
      onError: (err) => log(`fffs: member ${memberId}: retention: ${err.message}`),
      ...(config.gcBudgetMiBs !== null ? { copyBytesPerSecond: config.gcBudgetMiBs * 1024 * 1024 } : {}),
    })
  }

  /** Measures the disk a store is on (giving its reserve file back on a full one: call before the store opens). */
  static async measureDisk(dataDir: string): Promise<DiskGuard> {
    const disk = new DiskGuard(dataDir)
    await disk.start()
    return disk
  }

  get lastDisk(): DiskState {
    return this.disk.last
  }

  start(): void {
    this.retention.start()
    this.timer = setInterval(() => void this.checkSpace(), SPACE_CHECK_MS)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.retention.stop()
  }

  /** Refuses (ENOSPC) a mutation that adds data while this member's disk, or any member's, is short of space. */
  refuse(mutation: Mutation | 'write'): void {
    if (mutation !== 'write' && !addsData(mutation)) return
    const what = mutation === 'write' ? 'write' : mutation.type
    this.disk.refuseWhenFull(what)
    const short = this.options.store.membersShortOfSpace()
    if (short.length > 0) throw noSpace(`${what} refused: member${short.length > 1 ? 's' : ''} ${short.join(', ')} of the group ${short.length > 1 ? 'are' : 'is'} short of disk space; delete files or let retention free space`)
  }

  /** Bytes about to be written here (counted against the last measure of the disk). */
  appended(bytes: number): void {
    this.disk.appended(bytes)
  }

  diskState(): Promise<DiskState> {
    return this.disk.current()
  }

  state(): HistoryState {
    const { store } = this.options
    const policy = this.retention.policy
    return { member: this.options.memberId, floor: store.floor.stamp === 0n ? null : hlcToIso(store.floor.stamp), floorStamp: store.floor.stamp.toString(), policy: policy === null ? null : describePolicy(policy), logBase: store.logBase.toString(), compacting: store.compactionCursor() !== null }
  }

  run(dryRun: boolean): ReturnType<RetentionRunner['run']> {
    return this.retention.run({ dryRun })
  }

  /** Orders a `space` record when this member's disk crosses its reserve (either way). */
  private async checkSpace(): Promise<void> {
    if (this.ordering || !this.options.running()) return
    const state = await this.disk.refresh().catch(() => null)
    if (state === null) return
    const known = this.options.store.membersShortOfSpace().includes(this.options.memberId)
    if (state.full === known && this.told !== null) return
    if (state.full === known) {
      this.told = known
      return
    }
    this.ordering = true
    try {
      await this.options.submit({ type: 'space', member: this.options.memberId, full: state.full })
      this.told = state.full
      this.options.log(`fffs: member ${this.options.memberId}: ${state.full ? `disk short of space (${describeDisk(state)}): the group refuses new data until it is freed` : 'disk has room again: the group takes new data'}`)
    } catch (err) {
      this.options.log(`fffs: member ${this.options.memberId}: could not order the state of its disk: ${(err as Error).message}`)
    } finally {
      this.ordering = false
    }
  }
}
