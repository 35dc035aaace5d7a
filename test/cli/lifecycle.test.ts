// Starting and stopping fffs as people do, through the real CLI (child processes, exit codes
// and output checked): a second start over a live mount or a data dir in use, a mount on a file
// or a non-empty directory, an unmount from outside, the CLI before a build, usage errors, and
// a mount and unmount by a user other than root.

import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { READY_PREFIX } from '../../src/cli/output.js'
import { fffsMounts } from '../../src/fs/mountTable.js'
import { spawnFffs, type Proc } from '../helpers/cluster.js'
import { FFFS_BIN, fusermountLazy, REPO, runCli, startMount, type TestMount } from '../helpers/mount.js'

const EXIT_TIMEOUT_MS = 10_000
const READY_TIMEOUT_MS = 20_000

const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-lifecycle-'))
const cleanups: Array<() => Promise<void> | void> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** `fffs ARGS` as a child process in a process group of its own (a test can send it a terminal's Ctrl-C); always cleaned up. */
function fffs(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Proc {
  const proc = spawnFffs(args, options.prefix ?? [], { cwd: root, detached: true, ...(options.env !== undefined ? { env: options.env } : {}) })
  const pid = proc.child.pid!
  cleanups.push(async () => {
    if (!proc.exited()) {
      process.kill(-pid, 'SIGTERM')
      if (!(await proc.waitExit(EXIT_TIMEOUT_MS))) process.kill(-pid, 'SIGKILL')
      await proc.waitExit(EXIT_TIMEOUT_MS)
    }
  })
  return proc
}

async function ready(proc: Proc, what: string): Promise<void> {
  for (const deadlineMs = Date.now() + READY_TIMEOUT_MS; !proc.output().includes(READY_PREFIX); ) {
    if (proc.exited()) throw new Error(`${what} exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output()}`)
    if (Date.now() > deadlineMs) throw new Error(`${what} not ready within ${READY_TIMEOUT_MS} ms: ${proc.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function mounted(): Promise<TestMount> {
  const m = await startMount()
  cleanups.push(() => m.cleanup())
  return m
}

function dir(name: string): string {
  const made = path.join(root, name)
  mkdirSync(made, { recursive: true })
  return made
}

describe('fffs mount at the edges', () => {
  it('a second mount over a live one exits at once, naming the running process and how to stop it', async () => {
    const m = await mounted()
    const second = fffs(['mount', m.mountpoint, '--data-dir', path.join(root, 'other-data')])
    expect(await second.waitExit(EXIT_TIMEOUT_MS)).toBe(true)
    expect(second.child.exitCode).toBe(1)
    const pid = (JSON.parse(runCli(['status', '--mount', m.mountpoint, '--json']).stdout) as { pid: number }).pid
    expect(second.output()).toMatch(new RegExp(`is mounted already by fffs \\(pid ${pid}\\): stop it with Ctrl-C where it runs, \`fffs unmount .*\` or \`kill ${pid}\``))
    expect(existsSync(path.join(root, 'other-data'))).toBe(false) // nothing opened for it
  })

  it('a second mount of a data dir in use names the process that holds it', async () => {
    const m = await mounted()
    const result = runCli(['mount', path.join(root, 'second-mnt'), '--data-dir', m.dataDir])
    expect(result.status).toBe(1)
    const pid = (JSON.parse(runCli(['status', '--mount', m.mountpoint, '--json']).stdout) as { pid: number }).pid
    expect(result.stderr).toMatch(new RegExp(`^fffs: ${m.dataDir} is in use by pid ${pid} \\(fffs mount ${m.mountpoint} --data-dir ${m.dataDir}\\)`))
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(existsSync(path.join(root, 'second-mnt'))).toBe(false)
  })

  it('a mount on a plain file fails with one line and leaves nothing behind', () => {
    const file = path.join(root, 'plain-file')
    writeFileSync(file, 'not a directory\n')
    const xdg = dir('xdg-plain')
    const env = { ...process.env, XDG_DATA_HOME: xdg }
    const result = spawnSync(process.execPath, [FFFS_BIN, 'mount', file], { cwd: root, env, encoding: 'utf8', timeout: 30_000 })
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(`fffs: cannot mount on ./plain-file: not a directory\n`)
    expect(readFileSync(file, 'utf8')).toBe('not a directory\n')
    expect(readdirSync(xdg)).toEqual([]) // no default data dir made
  })

  it('a mount over a non-empty directory warns that its entries are hidden', async () => {
    const mountpoint = dir('full')
    writeFileSync(path.join(mountpoint, 'a'), 'a')
    writeFileSync(path.join(mountpoint, 'b'), 'b')
    const m = fffs(['mount', mountpoint, '--data-dir', path.join(root, 'full-data')])
    cleanups.push(() => fusermountLazy(mountpoint))
    await ready(m, 'the mount')
    expect(m.output()).toMatch(/fffs: warning: \.\/full is not empty: its 2 entries are hidden while fffs is mounted there/)
  })

  it('a mount unmounted from outside (fusermount -u) stops its process', async () => {
    const mountpoint = path.join(root, 'outside')
    const m = fffs(['mount', mountpoint, '--data-dir', path.join(root, 'outside-data')])
    cleanups.push(() => fusermountLazy(mountpoint))
    await ready(m, 'the mount')
    execFileSync(existsSync('/usr/bin/fusermount3') ? 'fusermount3' : 'fusermount', ['-u', mountpoint])
    expect(await m.waitExit(EXIT_TIMEOUT_MS)).toBe(true)
    expect(m.child.exitCode).toBe(0)
    expect(m.output()).toMatch(/fffs: \.\/outside was unmounted from outside \(fusermount -u\); stopping/)
    expect(fffsMounts()).not.toContain(mountpoint)
  })

  it('`fffs unmount` returns once the mount is gone and its process has stopped', async () => {
    const mountpoint = path.join(root, 'unmount-me')
    const m = fffs(['mount', mountpoint, '--data-dir', path.join(root, 'unmount-data')])
    cleanups.push(() => fusermountLazy(mountpoint))
    await ready(m, 'the mount')
    expect(runCli(['unmount', mountpoint])).toMatchObject({ status: 0, stdout: `unmounted ${mountpoint}\n` })
    expect(fffsMounts()).not.toContain(mountpoint)
    expect(await m.waitExit(EXIT_TIMEOUT_MS)).toBe(true)
    expect(m.output()).not.toMatch(/error|lost|failing/i)
    expect(runCli(['unmount', mountpoint])).toMatchObject({ status: 1, stderr: `fffs: ${mountpoint} is not an fffs mount\n` })
  })
})

describe('the CLI itself', () => {
  it('before a build says to build, in one line', () => {
    const clone = dir('unbuilt')
    mkdirSync(path.join(clone, 'bin'))
    copyFileSync(FFFS_BIN, path.join(clone, 'bin', 'fffs'))
    const result = spawnSync(process.execPath, [path.join(clone, 'bin', 'fffs'), 'status'], { encoding: 'utf8', timeout: 30_000 })
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(`fffs: not built yet: run \`npm run build\` (or \`npm start\`) in ${clone}\n`)
  })

  it('prints its version, and exits 2 for every usage error and bad value', () => {
    const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version
    expect(runCli(['--version'])).toMatchObject({ status: 0, stdout: `${version}\n` })
    for (const args of [['bogus'], ['mount'], ['up', 'x', '--replicas', '0'], ['watch', 'x', '--period', 'soon'], ['cut', '2026-13-01T00:00:00Z'], ['init']]) {
      const result = runCli(args)
      expect(result.status, `fffs ${args.join(' ')}: ${result.stderr}`).toBe(2)
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1)
    }
  })
})

const fusermount3 = spawnSync('sh', ['-c', 'command -v fusermount3']).status === 0
const isRoot = process.getuid?.() === 0

describe.skipIf(!fusermount3 || !isRoot)('a user other than root', () => {
  it('mounts, writes, reads and unmounts (through fusermount3)', async () => {
    // libfuse opens /dev/fuse itself before it asks fusermount3 to mount. Debian's udev makes the
    // device 0666; a container may leave it 0600 (this one): opened up for the test, then put back.
    const devModeBefore = statSync('/dev/fuse').mode & 0o777
    if ((devModeBefore & 0o006) !== 0o006) {
      chmodSync('/dev/fuse', 0o666)
      cleanups.push(() => chmodSync('/dev/fuse', devModeBefore))
    }
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    const home = mkdtempSync(path.join(os.tmpdir(), 'fffs-nobody-')) // its own: the test's root is root's alone (0700)
    chownSync(home, 65534, 65534)
    cleanups.push(() => rmSync(home, { recursive: true, force: true }))
    const mountpoint = path.join(home, 'mnt')
    const m = fffs(['mount', mountpoint, '--data-dir', path.join(home, 'data')], { prefix: nobody })
    cleanups.push(() => fusermountLazy(mountpoint))
    await ready(m, "nobody's mount")
    const entry = readFileSync('/proc/mounts', 'utf8').split('\n').find((line) => line.split(' ')[1] === mountpoint)
    expect(entry).toMatch(/ fuse\.fffs .*user_id=65534,group_id=65534/)
    const asNobody = (script: string): string => execFileSync(nobody[0]!, [...nobody.slice(1), 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 })
    expect(asNobody(`echo hello > ${mountpoint}/f && cat ${mountpoint}/f && stat -c %u ${mountpoint}/f`)).toBe('hello\n65534\n')
    expect(asNobody(`${process.execPath} ${FFFS_BIN} unmount ${mountpoint}`)).toBe(`unmounted ${mountpoint}\n`)
    expect(await m.waitExit(EXIT_TIMEOUT_MS)).toBe(true)
    expect(m.child.exitCode).toBe(0)
    expect(fffsMounts()).not.toContain(mountpoint)
  })
})
