// Which closes end a version, under the tools that close files in every way there is: bash
// redirections (a descriptor dup2'd onto stdout, inherited by children), Python (threads,
// subprocesses), make. A version is what one open file description wrote between its own
// commit points (fsync, a close by a process that wrote through it, its last close); the
// truncation an O_TRUNC open asks for belongs to the version that open writes.

import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Writers } from '../../src/fs/commitPoints.js'
import { python, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount()
})
afterAll(async () => {
  await m?.cleanup()
})

function bash(script: string): string {
  return execFileSync('bash', ['-c', script], { cwd: m.mountpoint, encoding: 'utf8', timeout: 30_000 })
}

/** The sizes of a file's versions, oldest first, as `fffs log` lists them. */
function versionSizes(name: string): number[] {
  const { status, stdout, stderr } = runCli(['log', m.p(name), '--json'])
  if (status !== 0) throw new Error(`fffs log ${name}: ${stderr}`)
  return (JSON.parse(stdout) as Array<{ sizeBytes: number }>).map((v) => v.sizeBytes)
}

describe('a close by a process that wrote nothing through the file is no commit point', () => {
  it('bash: { printf a; sleep; printf b; } > f is one version, though sleep inherits the descriptor and closes it at exit', async () => {
    bash('{ printf first-half-; sleep 0.2; printf second-half; } > halves.txt')
    expect(await fsp.readFile(m.p('halves.txt'), 'utf8')).toBe('first-half-second-half')
    expect(versionSizes('halves.txt')).toEqual([0, 22]) // the create, then the one version
  })

  it('Python: a subprocess started mid-write does not split the version; the writes of its threads are its own', async () => {
    python(
      `
import subprocess, sys, threading
f = open(sys.argv[1], 'w')
f.write('first-'); f.flush()
subprocess.run(['true'], check=True)  # the child closes its inherited copy (close_fds) and exits
t = threading.Thread(target=lambda: (f.write('thread-'), f.flush()))
t.start(); t.join()
f.write('last'); f.close()
`,
      m.p('python.txt'),
    )
    expect(await fsp.readFile(m.p('python.txt'), 'utf8')).toBe('first-thread-last')
    expect(versionSizes('python.txt')).toEqual([0, 17])
  })

  it('make > build.log is one version however many children make runs', async () => {
    await fsp.writeFile(m.p('Makefile'), 'all: a b c\na b c:\n\ttrue $@\n')
    await fsp.writeFile(m.p('build.log'), 'the previous build\n')
    bash('make > build.log')
    expect(await fsp.readFile(m.p('build.log'), 'utf8')).toBe('true a\ntrue b\ntrue c\n')
    expect(versionSizes('build.log')).toEqual([0, 19, 21]) // create, the previous build, this one (its O_TRUNC included)
  })

  it('a child that writes through the inherited descriptor commits at its exit: a close by a process that wrote', async () => {
    bash("{ printf a; sh -c 'printf b'; printf c; } > child.txt")
    expect(await fsp.readFile(m.p('child.txt'), 'utf8')).toBe('abc')
    expect(versionSizes('child.txt')).toEqual([0, 2, 3])
  })
})

describe("an O_TRUNC open's truncation belongs to the version that open writes", () => {
  it('echo a > f; echo bb > f: versions a and bb, never an empty one between them', async () => {
    bash('echo a > echo.txt; echo bb > echo.txt; /bin/echo ccc > echo.txt')
    expect(versionSizes('echo.txt')).toEqual([0, 2, 3, 4])
    expect(await fsp.readFile(m.p('echo.txt@v2'), 'utf8')).toBe('a\n')
    expect(await fsp.readFile(m.p('echo.txt@v3'), 'utf8')).toBe('bb\n')
  })

  it(': > f and Python open(f, "w").close() empty the file durably when close returns', async () => {
    await fsp.writeFile(m.p('colon.txt'), 'content')
    await fsp.writeFile(m.p('py-empty.txt'), 'content')
    bash(': > colon.txt')
    python('import sys; open(sys.argv[1], "w").close()', m.p('py-empty.txt'))
    expect(versionSizes('colon.txt')).toEqual([0, 7, 0])
    expect(versionSizes('py-empty.txt')).toEqual([0, 7, 0])
    // Durable when close returned: the empty versions survive a crash of the mount right after.
    await m.kill9()
    await m.restart()
    expect(await fsp.readFile(m.p('colon.txt'), 'utf8')).toBe('')
    expect(await fsp.readFile(m.p('py-empty.txt'), 'utf8')).toBe('')
  })
})

describe('the rule, with the processes given (no /proc)', () => {
  // Threads 100 and 101 are process 100; 200 is a child process; 300 is a thread /proc no longer knows.
  const processOf = (tid: number): number | null => ({ 100: 100, 101: 100, 200: 200 })[tid] ?? null
  const never = (): boolean => {
    throw new Error('not asked')
  }

  it('a close by any thread of a process that wrote commits; by a process that did not, not', () => {
    const writers = new Writers(processOf)
    writers.changed(101)
    expect(writers.isCommitPoint(200, never)).toBe(false)
    expect(writers.isCommitPoint(100, never)).toBe(true)
    writers.committed()
    writers.changed(200)
    expect(writers.isCommitPoint(100, () => false)).toBe(false)
    expect(writers.isCommitPoint(200, never)).toBe(true)
  })

  it('a writer or a closer that cannot be placed: every close commits', () => {
    const unplacedWriter = new Writers(processOf)
    unplacedWriter.changed(300)
    expect(unplacedWriter.isCommitPoint(200, never)).toBe(true)
    const unplacedCloser = new Writers(processOf)
    unplacedCloser.changed(100)
    expect(unplacedCloser.isCommitPoint(0, never)).toBe(true)
  })

  it("an O_TRUNC open's truncation alone commits at the opener's last close, and not once anyone wrote", () => {
    const writers = new Writers(processOf)
    writers.openedTruncating(100)
    expect(writers.isCommitPoint(200, never)).toBe(false) // not the opener
    expect(writers.isCommitPoint(101, () => true)).toBe(false) // the opener still holds the file (dup2 onto stdout)
    expect(writers.isCommitPoint(101, () => false)).toBe(true) // its last descriptor
    const written = new Writers(processOf)
    written.openedTruncating(100)
    written.changed(200)
    expect(written.isCommitPoint(100, () => false)).toBe(false) // the child's close commits what it wrote, truncation included
    expect(written.isCommitPoint(200, never)).toBe(true)
  })
})
