// Before an epoch's transport connects, every member of its plan holds the records up to the
// plan's start: the donor has them, the others fetch them (state transfer). The transport's
// connect timeout bounds a connection, not a transfer, so the members wait here for each other
// first, as long as every member not yet ready makes progress (its transfer moves on, or it is
// still opening, reporting, starting); one that makes none for `stallMs`, or that went on to
// another plan, ends the wait and the plan (the member recovers again).

import { sleep, type Clock } from './clock.js'
import type { EpochPlan, MemberReport } from './recovery.js'

export interface PlanBarrierOptions {
  readonly selfId: number
  /** A member's report (`member.hello`); null: no answer. */
  readonly ask: (id: number) => Promise<MemberReport | null>
  /** Tells a member that is still recovering about the plan (it may have missed it; idempotent). */
  readonly tell: (id: number) => void
  readonly stallMs: number
  readonly pollMs: number
  readonly clock: Clock
  /** The waiting member gave up on the plan itself (stopped, or left it). */
  readonly abandoned: () => boolean
}

/** Resolves once every member of `plan` is ready to connect; throws on a stalled or departed member. */
export async function waitForPlanMembers(plan: EpochPlan, options: PlanBarrierOptions): Promise<void> {
  const clock = options.clock
  const waiting = new Map<number, { progress: string; sinceMs: number }>()
  for (const id of plan.memberIds) if (id !== options.selfId) waiting.set(id, { progress: '', sinceMs: clock.nowMs() })
  while (waiting.size > 0) {
    if (options.abandoned()) throw new Error(`left view ${plan.vid} before it started`)
    await Promise.all(
      [...waiting].map(async ([id, state]) => {
        const report = await options.ask(id)
        const verdict = readiness(report, plan)
        if (verdict === 'ready') return void waiting.delete(id)
        if (verdict === 'gone') throw new Error(`member ${id} left view ${plan.vid} before it started (${describe(report)})`)
        if (report?.phase === 'recovering') options.tell(id)
        const progress = progressOf(report)
        if (progress !== state.progress) {
          state.progress = progress
          state.sinceMs = clock.nowMs()
        } else if (clock.nowMs() - state.sinceMs >= options.stallMs) {
          throw new Error(`member ${id} made no progress towards view ${plan.vid} for ${options.stallMs} ms (${describe(report)})`)
        }
      }),
    )
    if (waiting.size > 0) await sleep(clock, options.pollMs)
  }
}

/** Whether a member's report says it is ready for `plan`, still on its way, or gone to another plan. */
export function readiness(report: MemberReport | null, plan: EpochPlan): 'ready' | 'waiting' | 'gone' {
  if (report === null) return 'waiting'
  if (report.phase === 'stopped') return 'gone'
  // Running an earlier view: still in the epoch this plan follows (members leave it once each
  // saw the reconfigure delivered everywhere, not all at once). A later one: gone to another plan.
  if (report.phase === 'running') return report.lastVid === plan.vid ? 'ready' : report.lastVid < plan.vid ? 'waiting' : 'gone'
  if (report.phase === 'starting' && report.starting !== undefined) {
    if (report.starting.vid > plan.vid) return 'gone'
    if (report.starting.vid === plan.vid) return report.starting.ready ? 'ready' : 'waiting'
  }
  return report.lastVid > plan.vid ? 'gone' : 'waiting'
}

/** What changes while a member moves towards a plan: its phase, its transfer, its log. */
function progressOf(report: MemberReport | null): string {
  if (report === null) return 'no answer'
  return `${report.phase} ${report.starting?.vid ?? ''} ${report.lastStamp} ${report.transfer?.doneBytes ?? ''}`
}

function describe(report: MemberReport | null): string {
  if (report === null) return 'no answer'
  return `${report.phase}, last view ${report.lastVid}${report.transfer !== undefined ? `, transferred ${report.transfer.doneBytes} bytes` : ''}`
}
