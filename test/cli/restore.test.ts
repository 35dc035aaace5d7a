// `fffs restore` and `fffs diff` on a real mount, through the CLI as a child process: a tree
// changed in every way a tree changes (bytes, removals, additions, permission bits, a file
// turned directory, a symlink), then compared across cuts and brought back, in place and as
// a copy outside the mount.

import { promises as fsp } from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instantNow, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
let T: string // the cut everything is restored to
const outside = mkdtempSync(path.join(os.tmpdir(), 'fffs-restore-out-'))

/** Every entry below `dir`: relative path -> 'dir MODE', 'file MODE BYTES' or 'link TARGET'. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (relative: string): Promise<void> => {
    for (const entry of (await fsp.readdir(path.join(dir, relative), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`
      const full = path.join(dir, rel)
      const st = await fsp.lstat(full)
      const mode = (st.mode & 0o777).toString(8)
      if (entry.isDirectory()) {
        out[rel] = `dir ${mode}`
        await walk(rel)
      } else if (entry.isSymbolicLink()) {
        out[rel] = `link ${await fsp.readlink(full)}`
      } else {
        out[rel] = `file ${mode} ${await fsp.readFile(full, 'utf8')}`
      }
    }
  }
  await walk('')
  return out
}

const AT_T: Record<string, string> = {
  'a.txt': 'file 644 one\n',
  link: 'link a.txt',
  'mode.txt': 'file 600 private\n',
  sub: 'dir 755',
  'sub/k.txt': 'file 644 keep\n',
  'turns-dir': 'file 644 a file at T\n',
}

beforeAll(async () => {
  m = await startMount()
  const t = m.p('t')
  await fsp.mkdir(path.join(t, 'sub'), { recursive: true })
  await fsp.writeFile(path.join(t, 'a.txt'), 'one\n')
  await fsp.writeFile(path.join(t, 'sub', 'k.txt'), 'keep\n')
  await fsp.writeFile(path.join(t, 'mode.txt'), 'private\n', { mode: 0o600 })
  await fsp.chmod(path.join(t, 'mode.txt'), 0o600)
  await fsp.writeFile(path.join(t, 'turns-dir'), 'a file at T\n')
  await fsp.symlink('a.txt', path.join(t, 'link'))
  T = await instantNow()
  // After T: every kind of change.
  await fsp.appendFile(path.join(t, 'a.txt'), 'two\n')
  await fsp.rm(path.join(t, 'sub', 'k.txt'))
  await fsp.writeFile(path.join(t, 'new.txt'), 'new\n')
  await fsp.mkdir(path.join(t, 'newdir'))
  await fsp.writeFile(path.join(t, 'newdir', 'x'), 'x\n')
  await fsp.chmod(path.join(t, 'mode.txt'), 0o644)
  await fsp.rm(path.join(t, 'turns-dir'))
  await fsp.mkdir(path.join(t, 'turns-dir'))
  await fsp.rm(path.join(t, 'link'))
  await fsp.symlink('new.txt', path.join(t, 'link'))
})

afterAll(async () => {
  await m?.cleanup()
  rmSync(outside, { recursive: true, force: true })
})

describe('fffs diff', () => {
  it('lists what was added, removed and changed between a cut and now', () => {
    const result = runCli(['diff', m.p(`t@${T}`), m.p('t')])
    expect(result.status, result.stderr).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^\/t@\S+ -> \/t: 3 added, 1 removed, 4 changed$/)
    expect(lines.slice(1).map((l) => l.replace(/\s+/g, ' '))).toEqual([
      expect.stringMatching(/^M a\.txt v\d+ -> v\d+, 4 -> 8 bytes$/),
      expect.stringMatching(/^M link v\d+ -> v\d+, 5 -> 7 bytes$/),
      expect.stringMatching(/^M mode\.txt v\d+ -> v\d+, mode 600 -> 644$/),
      'A new.txt file, 4 bytes',
      'A newdir/ dir, 0 bytes',
      'A newdir/x file, 2 bytes',
      'D sub/k.txt file, 5 bytes',
      expect.stringMatching(/^M turns-dir\/ file -> dir$/),
    ])
    const json = JSON.parse(runCli(['diff', '--json', m.p(`t@${T}`), m.p('t')]).stdout) as { added: Array<{ path: string }>; removed: Array<{ path: string }>; changed: Array<{ path: string }> }
    expect(json.added.map((e) => e.path).sort()).toEqual(['new.txt', 'newdir/', 'newdir/x'])
    expect(json.removed.map((e) => e.path)).toEqual(['sub/k.txt'])
    expect(json.changed.map((e) => e.path).sort()).toEqual(['a.txt', 'link', 'mode.txt', 'turns-dir/'])
  })

  it('shows a line diff of one file between two versions (the system diff)', () => {
    const result = runCli(['diff', m.p('t/a.txt@v2'), m.p('t/a.txt')])
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toBe('--- /t/a.txt@v2\n+++ /t/a.txt\n@@ -1 +1,2 @@\n one\n+two\n')
    expect(runCli(['diff', m.p('t/a.txt@v2'), m.p(`t/a.txt@${T}`)])).toMatchObject({ status: 0, stdout: '' }) // the same version
  })
})

describe('fffs restore', () => {
  it('copies a tree as it was to a new path outside the mount', async () => {
    const dest = path.join(outside, 'copy')
    const result = runCli(['restore', m.p(`t@${T}`), '--to', dest])
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^copied \/t@\S+ to \/.*\/copy: 4 files written \(\d+ B\), 2 directories made, 1 symlink made\n$/)
    expect(await snapshot(dest)).toEqual(AT_T)
    // --to never overwrites.
    expect(runCli(['restore', m.p(`t@${T}`), '--to', dest])).toMatchObject({ status: 1, stderr: `fffs: already exists: ${dest}: --to makes a new path and never overwrites one\n` })
  })

  it('brings the tree back in place as new versions, and then has nothing left to do', async () => {
    const versionsBefore = (JSON.parse(runCli(['log', '--json', m.p('t/a.txt')]).stdout) as unknown[]).length
    const result = runCli(['restore', m.p(`t@${T}`)])
    expect(result.status, result.stderr).toBe(0)
    expect(await snapshot(m.p('t'))).toEqual(AT_T)
    expect(await snapshot(m.p(`t@${T}`))).toEqual(AT_T)
    // a.txt's old bytes came back as a new version (history kept), not by rewinding.
    const versions = JSON.parse(runCli(['log', '--json', m.p('t/a.txt')]).stdout) as Array<{ sizeBytes: number }>
    expect(versions.length).toBe(versionsBefore + 1)
    expect(versions.at(-1)!.sizeBytes).toBe(4)
    expect(runCli(['diff', m.p(`t@${T}`), m.p('t')]).stdout).toMatch(/: 0 added, 0 removed, 0 changed\n$/)
    expect(runCli(['restore', m.p(`t@${T}`)]).stdout).toMatch(/: 0 files written \(0 B\), 7 unchanged\n$/) // the root and its 6 entries
  })

  it('restores one file, also one deleted since', async () => {
    await fsp.writeFile(m.p('t', 'a.txt'), 'changed again\n')
    expect(runCli(['restore', m.p('t/a.txt@v2')]).status).toBe(0)
    expect(await fsp.readFile(m.p('t', 'a.txt'), 'utf8')).toBe('one\n')
    await fsp.rm(m.p('t', 'sub'), { recursive: true })
    // Components above the @ resolve live: sub is gone, so the cut goes on t.
    expect(runCli(['restore', m.p(`t/sub/k.txt@${T}`)])).toMatchObject({ status: 1, stderr: expect.stringContaining('nothing there at this cut') })
    expect(runCli(['restore', m.p(`t@${T}/sub/k.txt`)]).status).toBe(0)
    expect(await fsp.readFile(m.p('t', 'sub', 'k.txt'), 'utf8')).toBe('keep\n')
  })

  it('refuses what it cannot do with one line and a non-zero exit', () => {
    expect(runCli(['restore', m.p('t')])).toMatchObject({ status: 2, stderr: expect.stringMatching(/^fffs: .*name the cut to restore from/) })
    expect(runCli(['restore', m.p('t/never@v1')])).toMatchObject({ status: 1, stderr: expect.stringMatching(/^fffs: no such file or directory: \/t\/never@v1: nothing there at this cut.*\n$/) })
    expect(runCli(['restore', m.p('t@2026-13-01T00:00:00Z')])).toMatchObject({ status: 2 })
  })
})
