// A bench's progress on stderr: each step a timestamped line, and at each round the time left
// for the rounds, from the pace of the rounds already run (the tables go to stdout).

import { formatDuration, timestamped } from '../src/cli/output.js'

export class BenchProgress {
  private roundsStartedMs = 0

  constructor(private readonly name: string) {}

  step(text: string): void {
    process.stderr.write(timestamped(`bench ${this.name}: ${text}`) + '\n')
  }

  /** Round `index` (from 0) of `rounds` starts. */
  round(index: number, rounds: number): void {
    if (index === 0) this.roundsStartedMs = Date.now()
    const left = index === 0 ? '' : `, about ${formatDuration(((Date.now() - this.roundsStartedMs) / index) * (rounds - index))} left for the rounds`
    this.step(`round ${index + 1} of ${rounds}${left}`)
  }
}
