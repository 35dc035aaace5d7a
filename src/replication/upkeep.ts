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
// fails and leaves the view, and rejoins once restarted (see decisions.md, Full disk). A member
// that left the view while short of space holds the group's writes no longer: the leader orders
// it off the list (it says so again if it comes back still short).

import type { Disk } from '../store/disk.js'
import { describeDisk, DiskGuard, noSpace, type DiskState } from '../store/diskSpace.js'
import type { Mutation } from '../store/records.js'
import { describePolicy } from '../store/retention/policy.js'
import { RetentionRunner } from '../store/retention/runner.js'
import { addsData, type Store } from '../store/store.js'
import { hlcToIso } from '../temporal/hlc.js'
import type { Clock, Timer } from './clock.js'
import type { GroupConfig } from './config.js'
import { describeCollect, describeRun, type HistoryState } from '../client/history.js'

const SPACE_CHECK_MS = 1000

export interface UpkeepOptions {
  readonly store: Store
  readonly config: GroupConfig
  readonly memberId: number
  readonly clock: Clock
  /** The disk the store is on, measured before it opened (measureDisk). */
  readonly disk: DiskGuard
  /** Orders a mutation through the group (the same path a mount's submits take). */
  readonly submit: (mutation: Mutation) => Promise<void>
  /** Whether this member proposes retention now (it runs, and leads its view). */
  readonly leads: () => boolean
  /** Whether this member runs in a group (a `space` record can be ordered). */
  readonly running: () => boolean
  /** The members of the view this member runs in. */
  readonly viewIds: () => readonly number[]
  readonly log: (line: string) => void
}

export class MemberUpkeep {
  private readonly options: UpkeepOptions
  private readonly disk: DiskGuard
  private readonly retention: RetentionRunner
  private timer: Timer | null = null
  private told: boolean | null = null // what this member last ordered about its own disk
  private ordering = false
  private deliveredSinceCheckBytes = 0

  constructor(options: UpkeepOptions) {
    this.options = options
    this.disk = options.disk
    const { store, config, log } = options
    this.retention = new RetentionRunner({
      store,
      policy: config.retention,
      submit: options.submit,
      proposes: options.leads,
      onRun: (report) => log(`retention: ${describeRun(report)}`),
      onCollect: (victims) => log(`retention: collecting ${describeCollect(victims)}`),
      onError: (err) => log(`retention: ${err.message}`),
      ...(config.gcBudgetMiBs !== null ? { copyBytesPerSecond: config.gcBudgetMiBs * 1024 * 1024 } : {}),
      setTimer: (delayMs, run) => options.clock.setTimer(delayMs, run),
    })
  }

  /** Measures the disk a store is on (giving its reserve file back on a full one: call before the store opens). */
  static async measureDisk(dataDir: string, on: Disk): Promise<DiskGuard> {
    const disk = new DiskGuard(dataDir, on)
    await disk.start()
    return disk
  }

  get lastDisk(): DiskState {
    return this.disk.last
  }

  start(): void {
    this.retention.start()
    const next = (): void => {
      this.timer = this.options.clock.setTimer(SPACE_CHECK_MS, () => void this.checkSpace().finally(() => this.timer !== null && next()))
    }
    next()
  }

  async stop(): Promise<void> {
    this.timer?.cancel()
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

  /**
   * Bytes this member's log took (every delivered message, whoever wrote it): counted against
   * the last measure, and the disk is measured again once they could have eaten a quarter of the
   * reserve, so a burst of writes meets the reserve before it meets the end of the disk.
   */
  delivered(bytes: number): void {
    this.disk.appended(bytes)
    this.deliveredSinceCheckBytes += bytes
    if (this.deliveredSinceCheckBytes < this.disk.last.reserveBytes / 4) return
    this.deliveredSinceCheckBytes = 0
    void this.checkSpace()
  }

  diskState(): Promise<DiskState> {
    return this.disk.current()
  }

  state(): HistoryState {
    const { store } = this.options
    const policy = this.retention.policy
    return { member: this.options.memberId, floor: store.floor.stamp === 0n ? null : hlcToIso(store.floor.stamp), floorStamp: store.floor.stamp.toString(), policy: policy === null ? null : describePolicy(policy), logBase: store.logBase.toString(), compacting: store.compactionCursor() !== null }
  }

  /** A run now; `propose`: this member orders the records that move the group's floor (an on-demand run), whether or not it leads. */
  run(options: { dryRun: boolean; propose: boolean }): ReturnType<RetentionRunner['run']> {
    return this.retention.run({ dryRun: options.dryRun, propose: options.propose })
  }

  /** Orders a `space` record when this member's disk crosses its reserve (either way), or (the leader) for a member gone from the view. */
  private async checkSpace(): Promise<void> {
    if (this.ordering || !this.options.running()) return
    if (this.options.leads()) {
      const gone = this.options.store.membersShortOfSpace().filter((id) => !this.options.viewIds().includes(id))
      for (const member of gone) await this.order({ type: 'space', member, full: false }, `member ${member} left the view short of disk space: the group takes new data again`)
    }
    const state = await this.disk.refresh().catch(() => null)
    if (state === null) return
    const known = this.options.store.membersShortOfSpace().includes(this.options.memberId)
    if (state.full === known && this.told !== null) return
    if (state.full === known) {
      this.told = known
      return
    }
    if (await this.order({ type: 'space', member: this.options.memberId, full: state.full }, state.full ? `disk short of space (${describeDisk(state)}): the group refuses new data until it is freed` : 'disk has room again: the group takes new data')) this.told = state.full
  }

  private async order(mutation: Mutation, line: string): Promise<boolean> {
    this.ordering = true
    try {
      await this.options.submit(mutation)
      this.options.log(line)
      return true
    } catch (err) {
      this.options.log(`could not order the state of a disk: ${(err as Error).message}`)
      return false
    } finally {
      this.ordering = false
    }
  }
}
