// A retention policy: how long history is kept, and what is kept beyond that.
//
//   keepAllFor   every version is kept until it has been superseded this long (platform time:
//                the history floor is the stamp of the record that moves it, minus keepAllFor);
//   tiers        beyond keepAllFor, the tree as it was at one instant per interval: `every` 1h
//                keeps every whole hour (UTC) from `after` on, until the next tier's `after`,
//                whose interval is a multiple of it (so what a coarser tier keeps, the finer one
//                kept too); the first tier starts at keepAllFor;
//   minVersions  the newest N versions of each file as of the floor, readable by version (P@vN).
//
// The newest version of a live file is never dropped (it is what a read at the floor sees). A
// keepAllFor below SAFETY_FLOOR_MS is refused unless `force` is set: dropping recent history by
// a typo in a unit would be unrecoverable.

import { errors } from '../../errors.js'
import { DURATION_SYNTAX, formatDurationMs, parseDurationMs } from '../../temporal/duration.js'

export const SAFETY_FLOOR_MS = 3_600_000
const TIER_EVERY_MIN_MS = 1000
const LAST_TIER_EVERY_MIN_MS = 60_000 // the last tier goes on for ever: at most one instant a minute
const TIER_INSTANTS_MAX = 100_000 // instants one bounded tier may keep

export interface RetentionTier {
  readonly afterMs: number
  readonly everyMs: number
}

/** A validated policy, as records carry it. */
export interface RetentionPolicy {
  readonly keepAllForMs: number
  readonly tiers: readonly RetentionTier[]
  readonly minVersions: number
  readonly forced: boolean // keepAllFor below the safety floor was asked for explicitly
}

/** `retention` of a group config: durations as text. */
export interface RetentionConfig {
  readonly keepAllFor: string
  readonly tiers?: ReadonlyArray<{ readonly after?: string; readonly every: string }>
  readonly minVersions?: number
  readonly force?: boolean
}

/** Names a field in an error (`keepAllFor`, `tiers[1].every`; '' the whole policy): `config retention.keepAllFor`, `--keep-all-for`. */
export type FieldName = (field: string) => string

/** Validates a policy given as config JSON (unknown keys and bad values are EINVAL naming the field). */
export function parseRetention(raw: unknown, name: FieldName): RetentionPolicy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw errors.invalid(`${name('')}: ${JSON.stringify(raw)} is not an object`)
  const known = ['keepAllFor', 'tiers', 'minVersions', 'force']
  for (const key of Object.keys(raw)) if (!known.includes(key)) throw errors.invalid(`${name(key)}: unknown field (known: ${known.join(', ')})`)
  const r = raw as Record<string, unknown>
  const keepAllForMs = duration(r.keepAllFor, name('keepAllFor'))
  if (r.force !== undefined && typeof r.force !== 'boolean') throw errors.invalid(`${name('force')}: ${JSON.stringify(r.force)} is not true or false`)
  if (r.minVersions !== undefined && !(typeof r.minVersions === 'number' && Number.isSafeInteger(r.minVersions) && r.minVersions >= 0)) {
    throw errors.invalid(`${name('minVersions')}: ${JSON.stringify(r.minVersions)} is not a non-negative integer`)
  }
  if (r.tiers !== undefined && !Array.isArray(r.tiers)) throw errors.invalid(`${name('tiers')}: ${JSON.stringify(r.tiers)} is not a list`)
  const tiers = ((r.tiers ?? []) as unknown[]).map((t, i): RetentionTier => {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw errors.invalid(`${name(`tiers[${i}]`)}: ${JSON.stringify(t)} is not an object`)
    for (const key of Object.keys(t)) if (key !== 'after' && key !== 'every') throw errors.invalid(`${name(`tiers[${i}].${key}`)}: unknown field (known: after, every)`)
    const tier = t as Record<string, unknown>
    const afterMs = tier.after === undefined && i === 0 ? keepAllForMs : duration(tier.after, name(`tiers[${i}].after`))
    return { afterMs, everyMs: duration(tier.every, name(`tiers[${i}].every`)) }
  })
  return checkPolicy({ keepAllForMs, tiers, minVersions: (r.minVersions as number | undefined) ?? 0, forced: r.force === true }, name)
}

/** The policy of an embedded mount's flags (`--keep-all-for 7d --tier 7d:1h --min-versions 3`). */
export function retentionOfFlags(flags: { keepAllFor?: string; tier?: readonly string[]; minVersions?: number; forceRetention?: boolean }): RetentionPolicy | null {
  if (flags.keepAllFor === undefined) {
    const stray = flags.tier !== undefined && flags.tier.length > 0 ? '--tier' : flags.minVersions !== undefined ? '--min-versions' : flags.forceRetention === true ? '--force-retention' : null
    if (stray !== null) throw errors.invalid(`${stray} needs --keep-all-for (a retention policy starts with how long every version is kept)`)
    return null
  }
  const tierTexts = flags.tier ?? []
  const flagName: FieldName = (field) => {
    const tier = /^tiers\[(\d+)\]/.exec(field)
    if (tier !== null) return `--tier ${tierTexts[Number(tier[1])]}`
    return field === 'minVersions' ? '--min-versions' : field === 'force' ? '--force-retention' : '--keep-all-for'
  }
  const tiers = tierTexts.map((text) => {
    const [after, every, ...rest] = text.split(':')
    if (every === undefined || rest.length > 0) throw errors.invalid(`--tier ${text}: expected AFTER:EVERY (7d:1h: one instant an hour is kept from 7 days on)`)
    return { after: after!, every }
  })
  return parseRetention(
    { keepAllFor: flags.keepAllFor, ...(tiers.length > 0 ? { tiers } : {}), ...(flags.minVersions !== undefined ? { minVersions: flags.minVersions } : {}), ...(flags.forceRetention === true ? { force: true } : {}) },
    flagName,
  )
}

/** Checks a policy's shape and the safety floor (a record's policy is checked again where it applies). */
export function checkPolicy(policy: RetentionPolicy, name: FieldName): RetentionPolicy {
  const { keepAllForMs, tiers } = policy
  if (keepAllForMs < SAFETY_FLOOR_MS && !policy.forced) {
    throw errors.invalid(`${name('keepAllFor')}: ${formatDurationMs(keepAllForMs)} is below the safety floor of ${formatDurationMs(SAFETY_FLOOR_MS)}: history that young is compacted only when forced (${name('force')})`)
  }
  tiers.forEach((tier, i) => {
    const previous = i === 0 ? null : tiers[i - 1]!
    if (i === 0 && tier.afterMs !== keepAllForMs) {
      throw errors.invalid(`${name('tiers[0].after')}: ${formatDurationMs(tier.afterMs)} must equal keepAllFor (${formatDurationMs(keepAllForMs)}): versions between the two would be dropped with no tier keeping any`)
    }
    if (previous !== null && tier.afterMs <= previous.afterMs) throw errors.invalid(`${name(`tiers[${i}].after`)}: ${formatDurationMs(tier.afterMs)} must be later than the tier before's (${formatDurationMs(previous.afterMs)})`)
    if (tier.everyMs < TIER_EVERY_MIN_MS) throw errors.invalid(`${name(`tiers[${i}].every`)}: ${formatDurationMs(tier.everyMs)} is shorter than ${formatDurationMs(TIER_EVERY_MIN_MS)}`)
    if (previous !== null && tier.everyMs % previous.everyMs !== 0) {
      throw errors.invalid(`${name(`tiers[${i}].every`)}: ${formatDurationMs(tier.everyMs)} is not a multiple of the tier before's ${formatDurationMs(previous.everyMs)} (an instant a coarser tier keeps must have been kept by the finer one)`)
    }
    const next = tiers[i + 1]
    if (next === undefined && tier.everyMs < LAST_TIER_EVERY_MIN_MS) throw errors.invalid(`${name(`tiers[${i}].every`)}: ${formatDurationMs(tier.everyMs)}: the last tier lasts for ever, so it keeps at most one instant a minute`)
    if (next !== undefined && (next.afterMs - tier.afterMs) / tier.everyMs > TIER_INSTANTS_MAX) {
      throw errors.invalid(`${name(`tiers[${i}].every`)}: ${formatDurationMs(tier.everyMs)} from ${formatDurationMs(tier.afterMs)} to ${formatDurationMs(next.afterMs)} keeps more than ${TIER_INSTANTS_MAX} instants`)
    }
  })
  return policy
}

/** The policy as a record carries it, checked where a record is applied (no safety-floor wording: it was forced or not when made). */
export function isPolicy(value: unknown): value is RetentionPolicy {
  if (typeof value !== 'object' || value === null) return false
  const p = value as Record<string, unknown>
  const ms = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  return ms(p.keepAllForMs) && ms(p.minVersions) && typeof p.forced === 'boolean' && Array.isArray(p.tiers) && p.tiers.every((t: unknown) => typeof t === 'object' && t !== null && ms((t as RetentionTier).afterMs) && ms((t as RetentionTier).everyMs) && (t as RetentionTier).everyMs > 0)
}

/** One line: `keepAllFor 7d, one per 1h after 7d, one per 1d after 30d, minVersions 3`. */
export function describePolicy(policy: RetentionPolicy): string {
  const parts = [`keepAllFor ${formatDurationMs(policy.keepAllForMs)}`]
  for (const tier of policy.tiers) parts.push(`one per ${formatDurationMs(tier.everyMs)} after ${formatDurationMs(tier.afterMs)}`)
  if (policy.minVersions > 0) parts.push(`minVersions ${policy.minVersions}`)
  return parts.join(', ')
}

/** The tier that applies at `ageMs` (how long before the floor's record an instant lies), or null. */
export function tierAt(policy: RetentionPolicy, ageMs: number): RetentionTier | null {
  let found: RetentionTier | null = null
  for (const tier of policy.tiers) if (ageMs >= tier.afterMs) found = tier
  return found
}

/** Whether the instant `timeUs` is one its tier keeps, at `nowUs` (the record moving the floor). */
export function tierKeeps(policy: RetentionPolicy, nowUs: number, timeUs: number): boolean {
  const tier = tierAt(policy, (nowUs - timeUs) / 1000)
  return tier !== null && timeUs % (tier.everyMs * 1000) === 0
}

/** The instants in [fromUs, toUs) the tiers keep at `nowUs`, oldest first. */
export function tierInstants(policy: RetentionPolicy, nowUs: number, fromUs: number, toUs: number): number[] {
  const out: number[] = []
  policy.tiers.forEach((tier, i) => {
    const next = policy.tiers[i + 1]
    // Ages in [after, next.after): instants in (now − next.after, now − after].
    const newestUs = Math.min(toUs - 1, nowUs - tier.afterMs * 1000)
    const oldestUs = Math.max(fromUs, next === undefined ? fromUs : nowUs - next.afterMs * 1000 + 1)
    const everyUs = tier.everyMs * 1000
    for (let t = Math.ceil(oldestUs / everyUs) * everyUs; t <= newestUs; t += everyUs) out.push(t)
  })
  return out.sort((a, b) => a - b)
}

/** Parses a duration field. */
function duration(value: unknown, field: string): number {
  if (typeof value !== 'string') throw errors.invalid(`${field}: ${JSON.stringify(value) ?? 'missing'} is not ${DURATION_SYNTAX}`)
  const ms = parseDurationMs(value)
  if (ms === null) throw errors.invalid(`${field}: '${value}' is not ${DURATION_SYNTAX}`)
  return ms
}
