// What the CLI and the mount show people: durations as durations, the same mount-relative
// paths from `fffs watch` in text and JSON, help for every snapshot subcommand, and times that
// are real (the root and /.snapshot not 1970; mtimes with the µs of the version's HLC stamp).

import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatDuration } from '../../src/cli/output.js'
import { Progress } from '../../src/cli/progress.js'
import { cli } from '../helpers/cluster.js'
import { instantNow, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount

beforeAll(async () => {
  m = await startMount()
})

afterAll(async () => {
  await m?.cleanup()
})

describe('durations', () => {
  it('reads as people read them', () => {
    expect(formatDuration(350)).toBe('350 ms')
    expect(formatDuration(4_200)).toBe('4.2 s')
    expect(formatDuration(42_000)).toBe('42 s')
    expect(formatDuration(192_000)).toBe('3m 12s')
    expect(formatDuration(3_600_000)).toBe('1h')
    expect(formatDuration((3 * 365.25 + 4) * 86_400_000 + 5_000)).toBe('3y 4d')
  })

  it('`fffs cut` of a future instant says how long until it is stable, not raw ms', () => {
    const future = new Date(Date.now() + 2 * 86_400_000 + 3 * 3_600_000).toISOString()
    const text = runCli(['cut', future, '--mount', m.mountpoint])
    expect(text.status, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/not stable yet \(stable in about 2d (2|3)h\)/)
    expect(text.stdout).toMatch(/^all\s+\S+Z\s+in 2d (2|3)h$/m)
    const json = JSON.parse(runCli(['cut', future, '--mount', m.mountpoint, '--json']).stdout) as { shards: Array<{ untilStableMs: number }> }
    expect(json.shards[0]!.untilStableMs).toBeGreaterThan(2 * 86_400_000)
  })
})

describe('progress', () => {
  const sink = (tty: boolean): { stream: NodeJS.WriteStream; text: () => string } => {
    let text = ''
    const stream = { isTTY: tty, write: (chunk: string) => ((text += chunk), true) } as unknown as NodeJS.WriteStream
    return { stream, text: () => text }
  }

  it('without a terminal: timestamped lines with the share done, the rate and the time left', async () => {
    const out = sink(false)
    const progress = new Progress('restoring /t@T', 4 * 1024 * 1024, { stream: out.stream, periodMs: 0 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    progress.update(1024 * 1024, '1/4 files')
    progress.finish('4 files', { onlyIfShown: true })
    const lines = out.text().trimEnd().split('\n')
    expect(lines[0]).toMatch(/^\S+Z restoring \/t@T: 25% of 4\.0 MiB, 1\/4 files, [\d.]+ \S+\/s, about .+ left$/)
    expect(lines[1]).toMatch(/^\S+Z restoring \/t@T: done 1\.0 MiB \(4 files\) in .+, [\d.]+ \S+\/s$/)
  })

  it('on a terminal: one line redrawn with a bar; nothing at the end when nothing was shown', () => {
    const out = sink(true)
    const progress = new Progress('wave', 10, { stream: out.stream, unit: 'frames' })
    progress.finish('', { onlyIfShown: true })
    expect(out.text()).toBe('')
    const shown = new Progress('wave', 10, { stream: out.stream, unit: 'frames', periodMs: 0 })
    shown.update(5)
    expect(out.text()).toMatch(/^\rwave: \[#{12} {12}\] 50% done: 5 frames of 10 frames\x1b\[K$/)
  })
})

describe('fffs watch', () => {
  it('prints the same mount-relative path in text and JSON', async () => {
    const since = await instantNow()
    await fsp.mkdir(m.p('w'))
    await fsp.writeFile(m.p('w', 'x.txt'), 'x\n')
    const [text, json] = await Promise.all([cli(['watch', m.p('w/*'), '--since', since, '--count', '1']), cli(['watch', m.p('w/*'), '--since', since, '--count', '1', '--json'])])
    expect(text.status, text.stderr).toBe(0)
    const change = JSON.parse(json.stdout) as { path: string; version: number }
    expect(change.path).toBe('/w/x.txt')
    expect(text.stdout).toMatch(new RegExp(`^\\S+Z  /w/x\\.txt  v${change.version}  `))
  })
})

describe('help', () => {
  it('describes each snapshot subcommand', () => {
    const help = runCli(['snapshot', '--help']).stdout
    expect(help).toMatch(/create \[options\] <name>\s+pin a cut under a name/)
    expect(help).toMatch(/list \[options\]\s+list the snapshots/)
    expect(help).toMatch(/delete \[options\] <name>\s+remove a snapshot name/)
  })
})

describe('times in the mount', () => {
  it('the root and /.snapshot of a new mount are not 1970', async () => {
    const yearOf = async (p: string): Promise<number> => (await fsp.stat(p)).mtime.getUTCFullYear()
    expect(await yearOf(m.mountpoint)).toBeGreaterThanOrEqual(2025)
    expect(await yearOf(m.p('.snapshot'))).toBeGreaterThanOrEqual(2025)
  })

  it("a file's mtime is its version's HLC time, to the µs", async () => {
    await fsp.writeFile(m.p('us.txt'), 'µs\n')
    const versions = JSON.parse(runCli(['log', m.p('us.txt'), '--json']).stdout) as Array<{ time: string }>
    const { mtimeNs } = await fsp.stat(m.p('us.txt'), { bigint: true })
    const iso = versions.at(-1)!.time // 2026-11-21T14:52:14.935359Z
    const us = BigInt(Date.parse(iso.slice(0, 23) + 'Z')) * 1000n + BigInt(iso.slice(23, 26))
    expect(mtimeNs).toBe(us * 1000n)
  })
})
