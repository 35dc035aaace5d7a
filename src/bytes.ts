// Byte counts as disk and network rates are quoted (retention runs, state transfers, status).

/** Decimal units (kB = 10^3 B, MB = 10^6 B), as disk and network rates are quoted. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = n / 1000
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}
