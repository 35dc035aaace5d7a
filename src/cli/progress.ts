// Progress of long work (restore, benches, the wave demo, catching up): on a terminal one line
// redrawn in place (a bar, the rate, the time left); otherwise a timestamped line now and then,
// so a log shows the work moving without a line per step.

import { formatBytes, formatDuration } from './output.js'

const REDRAW_PERIOD_MS = 100
const LINE_PERIOD_MS_DEFAULT = 5_000
const BAR_WIDTH = 24

export interface ProgressOptions {
  /** Where to write (default stderr); a TTY gets the redrawn line. */
  readonly stream?: NodeJS.WriteStream
  /** How often the line is written (default: redrawn every 100 ms on a TTY, a new line every 5 s otherwise). */
  readonly periodMs?: number
  /** `bytes` prints sizes with binary units and a rate, `ms` durations; any other word is printed after the counts. */
  readonly unit?: string
}

export class Progress {
  private readonly stream: NodeJS.WriteStream
  private readonly tty: boolean
  private readonly periodMs: number
  private readonly unit: string
  private readonly startedMs = Date.now()
  private lastWriteMs = 0
  private done = 0
  private note = ''
  private shown = false // a progress line was written

  /** `total`: the amount the work ends at, or null when unknown (no bar, no time left). */
  constructor(
    private readonly label: string,
    private total: number | null,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr
    this.tty = this.stream.isTTY === true
    this.periodMs = options.periodMs ?? (this.tty ? REDRAW_PERIOD_MS : LINE_PERIOD_MS_DEFAULT)
    this.unit = options.unit ?? 'bytes'
    this.lastWriteMs = this.startedMs
  }

  /** The amount done so far (and a short note: `12/40 files`). Writes only when its period is up. */
  update(done: number, note = this.note, total: number | null = this.total): void {
    this.done = done
    this.note = note
    this.total = total
    const nowMs = Date.now()
    if (nowMs - this.lastWriteMs < this.periodMs) return
    this.lastWriteMs = nowMs
    this.shown = true
    this.write(this.describe(nowMs))
  }

  /** The final line: what was done in how long (`onlyIfShown`: only after a progress line, when the work was long enough to show one). */
  finish(note = this.note, options: { onlyIfShown?: boolean } = {}): void {
    if (options.onlyIfShown === true && !this.shown) return
    this.note = note
    const elapsedMs = Date.now() - this.startedMs
    const what = this.unit === 'ms' ? '' : ` ${this.amount(this.done)}${this.note === '' ? '' : ` (${this.note})`}`
    const rate = this.unit === 'bytes' && elapsedMs > 0 && this.done > 0 ? `, ${this.amount((this.done * 1000) / elapsedMs)}/s` : ''
    this.write(`${this.label}: done${what} in ${formatDuration(elapsedMs)}${rate}`, true)
  }

  /** Progress of work that takes about `expectedMs`: the elapsed time, updated by a timer until `work` settles. */
  static async timed<T>(label: string, expectedMs: number, work: Promise<T>, options: Omit<ProgressOptions, 'unit'> = {}): Promise<T> {
    const progress = new Progress(label, expectedMs, { ...options, unit: 'ms' })
    const timer = setInterval(() => progress.update(Math.min(Date.now() - progress.startedMs, expectedMs)), REDRAW_PERIOD_MS)
    try {
      return await work
    } finally {
      clearInterval(timer)
      progress.finish()
    }
  }

  private describe(nowMs: number): string {
    const elapsedMs = nowMs - this.startedMs
    const ratePerS = elapsedMs > 0 ? (this.done * 1000) / elapsedMs : 0
    const parts: string[] = []
    if (this.total !== null && this.total > 0) {
      const fraction = Math.min(1, this.done / this.total)
      const bar = this.tty ? `[${'#'.repeat(Math.round(fraction * BAR_WIDTH)).padEnd(BAR_WIDTH)}] ` : ''
      parts.push(`${bar}${Math.floor(fraction * 100)}% ${this.unit === 'bytes' ? 'of' : 'done:'} ${this.unit === 'bytes' ? this.amount(this.total) : `${this.amount(this.done)} of ${this.amount(this.total)}`}`)
    } else {
      parts.push(this.amount(this.done))
    }
    if (this.note !== '') parts.push(this.note)
    if (this.unit === 'bytes' && ratePerS > 0) parts.push(`${this.amount(ratePerS)}/s`)
    if (this.total !== null && ratePerS > 0 && this.done < this.total) parts.push(`about ${formatDuration(((this.total - this.done) / ratePerS) * 1000)} left`)
    return `${this.label}: ${parts.join(', ')}`
  }

  private amount(value: number): string {
    if (this.unit === 'bytes') return formatBytes(Math.round(value))
    if (this.unit === 'ms') return formatDuration(value)
    return `${Number.isInteger(value) ? value : value.toFixed(1)} ${this.unit}`
  }

  private write(text: string, final = false): void {
    if (this.tty) this.stream.write(`\r${text}\x1b[K${final ? '\n' : ''}`)
    else this.stream.write(`${new Date().toISOString()} ${text}\n`)
  }
}
