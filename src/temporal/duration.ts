// Durations as people write them: `7d`, `12h`, `1h30m`, `90s`, `250ms`, `2w` (units w d h m s
// ms, largest first, each at most once); a relative time spec is one after a minus (`-2h30m`, spec.ts).

const DURATION_FORM = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/
const UNITS = [
  { name: 'w', ms: 7 * 86_400_000 },
  { name: 'd', ms: 86_400_000 },
  { name: 'h', ms: 3_600_000 },
  { name: 'm', ms: 60_000 },
  { name: 's', ms: 1000 },
  { name: 'ms', ms: 1 },
] as const

/** The duration `text` names, in ms; null when it is not one. */
export function parseDurationMs(text: string): number | null {
  const match = DURATION_FORM.exec(text)
  if (match === null || match.slice(1).every((part) => part === undefined)) return null
  let ms = 0
  match.slice(1).forEach((part, i) => {
    if (part !== undefined) ms += Number(part) * UNITS[i]!.ms
  })
  return Number.isSafeInteger(ms) ? ms : null
}

/** A duration in the form parseDurationMs reads, days the largest unit (`14d12h`; `0s` for none). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s'
  let rest = ms
  let out = ''
  for (const unit of UNITS.slice(1)) {
    const n = Math.floor(rest / unit.ms)
    if (n > 0) out += `${n}${unit.name}`
    rest -= n * unit.ms
  }
  return out
}

export const DURATION_SYNTAX = 'a duration: <n><unit>... with units w, d, h, m, s, ms, largest first (7d, 1h30m, 90s)'
