// Scripted scenarios of a replication group in the simulated world (simWorld.ts), read and
// written as transcripts in the style of etcd raft's datadriven tests: a file of commands, each
// followed by `----` and what happened while it ran (what the members did and logged, what the
// clients were answered, the state asked for), checked against the file; FFFS_REWRITE=1
// rewrites the file with what happened (review the diff). The world checks its invariants
// throughout; a violation is printed where it happened.
//
// Commands (member ids are numbers; `all`: every member):
//   world members=3 seed=1 [batch=BYTES]   a world of that many machines (the first command)
//   start 0 1 2 | restart 2                processes start on those machines
//   crash 2 | power-loss 2                 the process dies (a power loss also drops what was not synced)
//   partition 2 [3]                        those members are cut off from the others; `heal` ends it
//   submit 0 [file|small|medium|large] [xN]  a client of member 0 writes: new files, or bytes
//   run ms=N                               lets N virtual ms pass
//   until running 0 1 2 | until answered | until view=N 0 1   runs until it holds (at most 10 s virtual)
//   status                                 each member's phase, view, log and stability frontier
//   log 0 1                                the records each holds, in order
//   check                                  every machine loses power; every store must hold the order

import type { CoreAction } from '../replication/core/group.js'
import type { EpochAction } from '../replication/member/epochs.js'
import type { HlcStamp } from '../temporal/hlc.js'
import { formatStamp, SimWorld, type WriteKind } from './simWorld.js'

export interface TranscriptCase {
  readonly command: string
  readonly expected: string
  readonly comment: string // the lines before the command (documentation)
}

const SEPARATOR = '----'
const UNTIL_MAX_MS = 10_000

/** The cases of a transcript file. */
export function parseTranscript(text: string): TranscriptCase[] {
  const cases: TranscriptCase[] = []
  const lines = text.split('\n')
  let comment: string[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith('#') || line.trim() === '') {
      comment.push(line)
      continue
    }
    if (lines[i + 1] !== SEPARATOR) throw new Error(`line ${i + 1}: '${line}' is not followed by '${SEPARATOR}'`)
    const expected: string[] = []
    for (i += 2; i < lines.length && lines[i] !== ''; i++) expected.push(lines[i]!)
    cases.push({ command: line, expected: expected.join('\n'), comment: comment.join('\n') })
    comment = []
  }
  return cases
}

/** A transcript file with these outputs in place of the expected ones. */
export function formatTranscript(cases: readonly TranscriptCase[], outputs: readonly string[]): string {
  return cases.map((c, i) => `${c.comment === '' ? '' : `${c.comment}\n`}${c.command}\n${SEPARATOR}\n${outputs[i] === '' ? 'ok' : outputs[i]}\n`).join('\n')
}

/** Runs every command of a transcript; returns what each printed. */
export async function runTranscript(cases: readonly TranscriptCase[]): Promise<string[]> {
  const runner = new TranscriptRunner()
  const outputs: string[] = []
  for (const c of cases) outputs.push(await runner.run(c.command))
  return outputs
}

class TranscriptRunner {
  private world: SimWorld | null = null
  private out: string[] = []
  private violationsShown = 0

  async run(command: string): Promise<string> {
    this.out = []
    const [verb, ...args] = command.trim().split(/\s+/)
    try {
      await this.execute(verb!, args)
    } catch (err) {
      this.print(`error: ${(err as Error).message}`)
    }
    const world = this.world
    if (world !== null) for (; this.violationsShown < world.violations.length; this.violationsShown++) this.print(`VIOLATION ${world.violations[this.violationsShown]}`)
    return this.out.length === 0 ? 'ok' : this.out.join('\n')
  }

  private print(line: string): void {
    this.out.push(line)
  }

  private async execute(verb: string, args: string[]): Promise<void> {
    if (verb === 'world') {
      const options = keyValues(args)
      this.world = new SimWorld({
        seed: Number(options['seed'] ?? '1'),
        memberCount: Number(options['members'] ?? '3'),
        ...(options['batch'] !== undefined ? { transferBatchBytes: Number(options['batch']) } : {}),
        trace: (line) => this.memberLine(line),
        observe: (id) => ({ epochAction: (action) => this.epochAction(id, action), coreAction: (action) => this.coreAction(id, action) }),
        answered: (id, key, outcome) => this.print('stamp' in outcome ? `${id}: ${key} acknowledged at ${formatStamp(outcome.stamp)}` : `${id}: ${key} refused: ${outcome.error.message}`),
      })
      return
    }
    const world = this.world
    if (world === null) throw new Error('the first command must be `world`')
    const ids = (from: string[]): number[] => (from.includes('all') ? world.machines.map((m) => m.id) : from.filter((a) => /^\d+$/.test(a)).map(Number))
    switch (verb) {
      case 'start':
      case 'restart':
        for (const id of ids(args)) world.start(id)
        return
      case 'crash':
      case 'power-loss':
        for (const id of ids(args)) world.crash(id, verb === 'power-loss')
        return
      case 'partition':
        world.setPartition(new Set(ids(args)))
        return
      case 'heal':
        world.setPartition(new Set())
        return
      case 'submit': {
        const [id, kind = 'file', times = 'x1'] = args
        const count = Number(times.replace(/^x/, ''))
        const keys: string[] = []
        for (let i = 0; i < count; i++) keys.push(world.submit(Number(id), kind as WriteKind) ?? 'nothing (member down)')
        this.print(`${id}: submits ${keys.join(', ')}`)
        return
      }
      case 'run': {
        const ms = Number(keyValues(args)['ms'] ?? '0')
        await world.runUntil(() => false, world.nowMs + ms)
        return
      }
      case 'until':
        await this.until(world, args)
        return
      case 'status':
        for (const machine of world.machines) this.print(this.status(world, machine.id))
        return
      case 'log':
        for (const id of ids(args)) this.print(`${id}: ${world.machines[id]!.log.map((r) => r.key).join(' ') || '(empty)'}`)
        return
      case 'check': {
        const before = world.violations.length
        await world.checkEnd(false)
        if (world.violations.length === before) this.print(`every store holds the order (${world.canonical.length} records), with every acknowledged write (${world.acked.size})`)
        return
      }
      default:
        throw new Error(`unknown command '${verb}'`)
    }
  }

  private async until(world: SimWorld, args: string[]): Promise<void> {
    const [what, ...rest] = args
    const ids = rest.filter((a) => /^\d+$/.test(a)).map(Number)
    let condition: () => boolean
    if (what === 'running') condition = () => ids.every((id) => world.machines[id]!.member?.phase === 'running')
    else if (what === 'answered') condition = () => world.pendingRequests === 0
    else if (what?.startsWith('view=') === true) condition = () => ids.every((id) => world.machines[id]!.member?.views.current().vid === Number(what.slice(5)) && world.machines[id]!.member?.phase === 'running')
    else throw new Error(`until what? (${args.join(' ')})`)
    const deadlineMs = world.nowMs + UNTIL_MAX_MS
    if (!(await world.runUntil(condition, deadlineMs))) this.print(`error: not so after ${UNTIL_MAX_MS} virtual ms`)
  }

  private status(world: SimWorld, id: number): string {
    const machine = world.machines[id]!
    const member = machine.member
    if (member === null) return `${id}: ${machine.up ? 'opening' : 'down'}; log ${machine.log.length}`
    const view = member.views.current()
    const last = machine.log[machine.log.length - 1]
    const core = member.status().core
    const messages = core === null ? '' : `; messages received per sender rank [${core.received.join(',')}], delivered ${core.delivered}`
    return `${id}: ${member.phase} in view ${view.vid} [${view.memberIds.join(',')}]${messages}; log ${machine.log.length}${last === undefined ? '' : ` up to ${last.key}@${formatStamp(last.stamp)}`}; stable ${formatStamp(member.stableStamp())}`
  }

  /** A line a member logged (or the world traced): printed without its prefix, stamps as virtual times. */
  private memberLine(line: string): void {
    const text = line.replace(/^\d+(\.\d+)? ms: /, '').replace(/^fffs: member (\d+): /, '$1: ')
    if (/^epoch \d+ runs /.test(text) || /^start \d+ \(incarnation/.test(text) || /^(crash|power loss|partition|heal)/.test(text)) return // the script says so
    this.print(stamps(text))
  }

  private epochAction(id: number, action: EpochAction): void {
    switch (action.kind) {
      case 'preJoin':
        return this.print(`${id}: catches up from member ${action.donorId} before joining`)
      case 'askJoin':
        return this.print(`${id}: asks member ${action.viaId} to let it join`)
      case 'prepare':
        return this.print(`${id}: prepares view ${action.plan.vid} [${action.plan.memberIds.join(',')}] from ${formatStamp(BigInt(action.plan.startStamp))}${action.plan.donorId === id ? ' (the donor)' : action.catchUp ? ` (${action.plan.catchUpIds?.includes(id) === true ? 'a joiner, ' : ''}catching up from member ${action.plan.donorId})` : ''}`)
      case 'leave':
        return this.print(`${id}: leaves its epoch${action.next === null ? '' : ` for view ${action.next.vid}`}`)
      case 'orderJoin':
        return this.print(`${id}: orders a reconfigure adding member ${action.id}`)
      default:
        return // the rest is said by the member's own log lines, or is routine (asking for reports, persisting)
    }
  }

  private coreAction(id: number, action: CoreAction): void {
    if (action.kind === 'persistAccepted') this.print(`${id}: accepts view ${action.vid + 1} = ranks [${action.members.join(',')}] at ballot ${action.ballot}`)
    else if (action.kind === 'persistTrim') this.print(`${id}: view ${action.vid} ends at the ragged trim [${action.trim.join(',')}] (messages delivered per sender rank)`)
    else if (action.kind === 'excluded') this.print(`${id}: excluded: ${action.reason}`)
  }
}

function keyValues(args: readonly string[]): Record<string, string> {
  return Object.fromEntries(args.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]))
}

/** HLC stamps (19-digit numbers) in a line, as virtual times. */
function stamps(text: string): string {
  return text.replace(/\b\d{18,20}\b/g, (digits) => formatStamp(BigInt(digits) as HlcStamp))
}
