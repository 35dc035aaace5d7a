// The README's tour runs as written: its commands, taken from README.md, run in one bash
// against a real `fffs up` group (3 replicas, as `npm start` makes), from a directory laid out
// as the repository is (`mnt/`, `bin/fffs`), and print what the README shows. Instants differ
// from run to run, so ISO-8601 times compare as a placeholder; everything else compares as is.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/cluster.js'
import { FFFS_BIN, fusermountLazy, REPO, runCli } from '../helpers/mount.js'

const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 15_000
const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z/g

interface Step {
  readonly command: string
  readonly expected: string
}

/** The `$ command` lines of the README's tour (its first sh block) and the lines each prints. */
function tourSteps(readme: string): Step[] {
  const section = readme.slice(readme.indexOf('## A short tour'))
  const block = /```sh\n([\s\S]*?)```/.exec(section)
  if (block === null) throw new Error('README.md: no ```sh block in "## A short tour"')
  const steps: Array<{ command: string; expected: string[] }> = []
  for (const line of block[1]!.trimEnd().split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] })
    else if (steps.length === 0) throw new Error(`README.md tour: output before any command: ${line}`)
    else steps[steps.length - 1]!.expected.push(line)
  }
  return steps.map((s) => ({ command: s.command, expected: s.expected.map((l) => l + '\n').join('') }))
}

const normalized = (text: string): string => text.replace(ISO_TIME, '<TIME>')

let root: string
let up: ChildProcess | null = null
let upLog = ''

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'fffs-tour-'))
  symlinkSync(path.join(REPO, 'bin'), path.join(root, 'bin')) // the tour runs ../bin/fffs from mnt/
  // Its own process group, so that a failed run can stop the members `fffs up` started with it.
  up = spawn(process.execPath, [FFFS_BIN, 'up', path.join(root, 'mnt'), '--group-dir', path.join(root, 'group')], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  up.stdout!.on('data', (chunk: Buffer) => (upLog += chunk.toString()))
  up.stderr!.on('data', (chunk: Buffer) => (upLog += chunk.toString()))
  await waitFor(`fffs up serving ${root}/mnt\n${upLog}`, START_TIMEOUT_MS, () => (runCli(['status', '--mount', path.join(root, 'mnt')]).status === 0 ? true : undefined), 200)
})

afterAll(async () => {
  const proc = up
  if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGINT') // Ctrl-C: unmounts and stops the replicas
    const timer = new Promise<void>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS))
    await Promise.race([exited, timer])
    if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, 'SIGKILL')
  }
  if (root !== undefined) {
    fusermountLazy(path.join(root, 'mnt'))
    rmSync(root, { recursive: true, force: true })
  }
})

describe('README tour', () => {
  it('runs as written against a local group and prints what the README shows', () => {
    for (const tool of ['setfattr', 'python3']) expect(spawnSync('bash', ['-c', `command -v ${tool}`]).status, `the README tour uses ${tool} (setfattr: apt-get install attr)`).toBe(0)
    const steps = tourSteps(readFileSync(path.join(REPO, 'README.md'), 'utf8'))
    expect(steps.length).toBeGreaterThan(10)
    // One shell, so `cd` and variables carry from step to step as in a terminal; a marker line before each step.
    const marker = (i: number): string => `@@fffs-tour-step-${i}@@`
    const script = ['exec 2>&1', ...steps.flatMap((step, i) => [`echo '${marker(i)}'`, step.command]), `echo '${marker(steps.length)}'`].join('\n')
    const output = execFileSync('bash', ['-c', script], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TZ: 'UTC' } })
    steps.forEach((step, i) => {
      const from = output.indexOf(marker(i) + '\n') + marker(i).length + 1
      const printed = output.slice(from, output.indexOf(marker(i + 1) + '\n'))
      expect(normalized(printed), `$ ${step.command}\n(fffs up said:\n${upLog})`).toBe(normalized(step.expected))
    })
  })
})
