// The POSIX conformance suite: the rules a file system shared by every user of a machine must
// keep (permissions and ownership, set-ID bits, sticky and set-group-ID directories, hard
// links, FIFOs, sockets and device nodes, name length), checked with the system calls and
// tools people use, as the users the rules are about. It runs against any directory: on a
// plain temp dir (ext4, which proves the checks), on an fffs mount and on a group mount. The
// checks of time paths run where the target has them (fffs).
//
// Needs root (it acts as other users), python3, cp, rsync and git.

import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALICE, BOB, errnoOf, OTHER_GID, resultOf, ROOT, runAs, type User } from './users.js'

const execFileP = promisify(execFile)
const TOOL_TIMEOUT_MS = 60_000

export interface PosixTarget {
  /** An empty directory on the file system under test. */
  readonly dir: string
  close(): Promise<void>
}

interface Stat {
  mode: number // permission and set-ID bits (0o7777)
  type: string // 'reg', 'dir', 'fifo', 'sock', 'chr', 'blk', 'lnk'
  uid: number
  gid: number
  nlink: number
  ino: number
  rdev: number
  size: number
  mtimeUs: number
  atimeUs: number
}

const STAT_CODE = `
s = os.lstat(p)
kinds = [(stat.S_ISREG, 'reg'), (stat.S_ISDIR, 'dir'), (stat.S_ISFIFO, 'fifo'), (stat.S_ISSOCK, 'sock'), (stat.S_ISCHR, 'chr'), (stat.S_ISBLK, 'blk'), (stat.S_ISLNK, 'lnk')]
result = dict(mode=s.st_mode & 0o7777, type=[k for f, k in kinds if f(s.st_mode)][0], uid=s.st_uid, gid=s.st_gid, nlink=s.st_nlink,
              ino=s.st_ino, rdev=s.st_rdev, size=s.st_size, mtimeUs=s.st_mtime_ns // 1000, atimeUs=s.st_atime_ns // 1000)
`

/** A Python string literal. */
const q = (text: string): string => JSON.stringify(text)

/** An instant after everything done so far and before anything done next, as a time spec. */
async function instantBetween(): Promise<string> {
  const atMs = Date.now() + 2
  while (Date.now() <= atMs + 2) await new Promise((resolve) => setTimeout(resolve, 2))
  return new Date(atMs).toISOString()
}

/** `timePaths`: `P@T` names P as it was at T (fffs), so the checks of frozen trees run (else they are skipped). */
export function posixSuite(label: string, timePaths: boolean, open: () => Promise<PosixTarget>): void {
  describe(`POSIX conformance: ${label}`, () => {
    let target: PosixTarget
    let serial = 0

    beforeAll(async () => {
      target = await open()
    })
    afterAll(async () => {
      await target?.close()
    })

    /** A fresh directory for one check, open to every user (0777) unless `mode` says otherwise. */
    const workDir = async (mode = 0o777): Promise<string> => {
      const dir = path.join(target.dir, `check-${++serial}`)
      await fsp.mkdir(dir)
      await fsp.chmod(dir, mode)
      return dir
    }
    const statOf = (user: User, cwd: string, p: string): Promise<Stat> => resultOf<Stat>(user, cwd, `p = ${q(p)}\n${STAT_CODE}`)
    const writeAs = (user: User, cwd: string, p: string, text: string, mode = 0o644): Promise<string> =>
      errnoOf(user, cwd, `fd = os.open(${q(p)}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ${mode})\nos.write(fd, ${q(text)}.encode())\nos.close(fd)`)
    /** The file's text, or the errno name reading it failed with. */
    const readAs = async (user: User, cwd: string, p: string): Promise<string> => {
      const outcome = await runAs(user, cwd, `result = open(${q(p)}).read()`)
      return outcome.ok ? (outcome.result as string) : outcome.errno
    }
    /** A file made by root with exactly `mode` (no umask), owned by `owner`. */
    const fileOf = async (dir: string, name: string, mode: number, owner: User = ROOT, text = ''): Promise<string> => {
      await resultOf(ROOT, dir, `open(${q(name)}, 'w').write(${q(text)})\nos.chown(${q(name)}, ${owner.uid ?? 0}, ${owner.gid})\nos.chmod(${q(name)}, ${mode})`)
      return name
    }

    // ------------------------------------------------ every user of the machine

    it('other users use the mount: read, list and create where the modes allow (allow_other)', async () => {
      const dir = await workDir(0o755)
      await fileOf(dir, 'notes.txt', 0o644, ROOT, 'hello')
      await fsp.mkdir(path.join(dir, 'shared'))
      await fsp.chmod(path.join(dir, 'shared'), 0o777) // no umask
      expect(await readAs(ALICE, dir, 'notes.txt')).toBe('hello')
      expect(await resultOf(BOB, dir, `result = sorted(os.listdir('.'))`)).toEqual(['notes.txt', 'shared'])
      expect(await writeAs(ALICE, dir, 'shared/from-alice.txt', 'hi')).toBe('OK')
      const made = await statOf(ROOT, dir, 'shared/from-alice.txt')
      expect([made.uid, made.gid, made.mode]).toEqual([ALICE.uid, ALICE.gid, 0o644])
    })

    it('the kernel checks each caller against the owner, group and mode (default_permissions)', async () => {
      const dir = await workDir(0o755)
      await fileOf(dir, 'secret', 0o600, ROOT, 'root only')
      await fileOf(dir, 'readonly', 0o644, ROOT, 'read me')
      await fileOf(dir, 'team', 0o640, { ...ROOT, gid: 5003 }, 'group 5003')
      await fsp.mkdir(path.join(dir, 'closed'), { mode: 0o700 })
      expect(await readAs(ALICE, dir, 'secret')).toBe('EACCES')
      expect(await errnoOf(ALICE, dir, `os.open('readonly', os.O_WRONLY)`)).toBe('EACCES')
      expect(await writeAs(ALICE, dir, 'new-file', 'x')).toBe('EACCES') // dir is 0755, root's
      expect(await errnoOf(ALICE, dir, `os.listdir('closed')`)).toBe('EACCES')
      expect(await readAs(ALICE, dir, 'team')).toBe('group 5003') // a supplementary group
      expect(await readAs(BOB, dir, 'team')).toBe('EACCES')
      expect(await readAs(ROOT, dir, 'secret')).toBe('root only')
    })

    it('only root changes the owner of a file', async () => {
      const dir = await workDir()
      expect(await writeAs(ALICE, dir, 'mine', 'a')).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.chown('mine', ${BOB.uid}, -1)`)).toBe('EPERM')
      expect(await errnoOf(BOB, dir, `os.chown('mine', ${BOB.uid}, -1)`)).toBe('EPERM')
      expect((await statOf(ROOT, dir, 'mine')).uid).toBe(ALICE.uid)
      expect(await errnoOf(ROOT, dir, `os.chown('mine', ${BOB.uid}, ${BOB.gid})`)).toBe('OK')
      const st = await statOf(ROOT, dir, 'mine')
      expect([st.uid, st.gid]).toEqual([BOB.uid, BOB.gid])
    })

    it('the owner changes the group only to one of its own groups', async () => {
      const dir = await workDir()
      expect(await writeAs(ALICE, dir, 'mine', 'a')).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.chown('mine', -1, 5003)`)).toBe('OK') // supplementary
      expect((await statOf(ROOT, dir, 'mine')).gid).toBe(5003)
      expect(await errnoOf(ALICE, dir, `os.chown('mine', -1, ${OTHER_GID})`)).toBe('EPERM')
      expect(await errnoOf(BOB, dir, `os.chown('mine', -1, ${BOB.gid})`)).toBe('EPERM') // not the owner
      expect(await errnoOf(ALICE, dir, `os.chown('mine', ${ALICE.uid}, ${ALICE.gid})`)).toBe('OK') // "to itself" is allowed
      expect((await statOf(ROOT, dir, 'mine')).gid).toBe(ALICE.gid)
    })

    it('chown clears set-user-ID and set-group-ID of a file', async () => {
      const dir = await workDir()
      expect(await writeAs(ALICE, dir, 'tool', '#!/bin/sh\n', 0o755)).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.chmod('tool', 0o6755)`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'tool')).mode).toBe(0o6755)
      expect(await errnoOf(ALICE, dir, `os.chown('tool', -1, 5003)`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'tool')).mode).toBe(0o755)
      await fileOf(dir, 'root-tool', 0o6755)
      expect(await errnoOf(ROOT, dir, `os.chown('root-tool', ${ALICE.uid}, ${ALICE.gid})`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'root-tool')).mode).toBe(0o755) // by root too (Linux)
    })

    it('a write by another user clears set-user-ID and set-group-ID; the owner root keeps them', async () => {
      const dir = await workDir()
      await fileOf(dir, 'suid', 0o4777)
      await fileOf(dir, 'sgid', 0o2777)
      // Set-group-ID without group execute marks mandatory locking: a writer in the file's group keeps it.
      await fileOf(dir, 'lockmark', 0o2767, { ...ROOT, gid: 5003 })
      for (const name of ['suid', 'sgid', 'lockmark']) expect(await errnoOf(ALICE, dir, `fd = os.open(${q(name)}, os.O_WRONLY)\nos.write(fd, b'x')\nos.write(fd, b'y')\nos.close(fd)`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'suid')).mode).toBe(0o777)
      expect((await statOf(ROOT, dir, 'sgid')).mode).toBe(0o777)
      expect((await statOf(ROOT, dir, 'lockmark')).mode).toBe(0o2767)
      await fileOf(dir, 'kept', 0o6777)
      expect(await errnoOf(ROOT, dir, `fd = os.open('kept', os.O_WRONLY)\nos.write(fd, b'x')\nos.close(fd)`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'kept')).mode).toBe(0o6777) // root has CAP_FSETID
      expect(await readAs(ROOT, dir, 'suid')).toBe('xy')
    })

    it('a truncation by another user clears them: truncate(2), ftruncate(2) and an O_TRUNC open', async () => {
      const dir = await workDir()
      for (const name of ['by-truncate', 'by-ftruncate', 'by-open']) await fileOf(dir, name, 0o4777, ROOT, 'contents')
      expect(await errnoOf(ALICE, dir, `os.truncate('by-truncate', 2)`)).toBe('OK')
      expect(await errnoOf(ALICE, dir, `fd = os.open('by-ftruncate', os.O_WRONLY)\nos.ftruncate(fd, 3)\nos.close(fd)`)).toBe('OK')
      expect(await errnoOf(ALICE, dir, `fd = os.open('by-open', os.O_WRONLY | os.O_TRUNC)\nos.close(fd)`)).toBe('OK')
      for (const [name, size] of [['by-truncate', 2], ['by-ftruncate', 3], ['by-open', 0]] as const) {
        const st = await statOf(ROOT, dir, name)
        expect([name, st.mode, st.size]).toEqual([name, 0o777, size])
      }
    })

    it('in a sticky directory only the owner of a file or of the directory (or root) removes or renames it', async () => {
      const dir = await workDir()
      await fsp.mkdir(path.join(dir, 'tmp'))
      await fsp.chmod(path.join(dir, 'tmp'), 0o1777)
      expect(await writeAs(ALICE, dir, 'tmp/alice.txt', 'a')).toBe('OK')
      expect(await writeAs(BOB, dir, 'tmp/bob.txt', 'b')).toBe('OK')
      expect(await errnoOf(BOB, dir, `os.unlink('tmp/alice.txt')`)).toBe('EPERM')
      expect(await errnoOf(BOB, dir, `os.rename('tmp/alice.txt', 'tmp/taken.txt')`)).toBe('EPERM')
      expect(await errnoOf(BOB, dir, `os.rename('tmp/bob.txt', 'tmp/alice.txt')`)).toBe('EPERM') // replacing it is removing it
      expect(await errnoOf(ALICE, dir, `os.rename('tmp/alice.txt', 'tmp/alice2.txt')`)).toBe('OK')
      expect(await errnoOf(ROOT, dir, `os.unlink('tmp/bob.txt')`)).toBe('OK')
      // The directory's owner may remove what others made in it.
      expect(await errnoOf(ALICE, dir, `os.mkdir('alice-tmp')\nos.chmod('alice-tmp', 0o1777)`)).toBe('OK')
      expect(await writeAs(BOB, dir, 'alice-tmp/bob.txt', 'b')).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.unlink('alice-tmp/bob.txt')`)).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.unlink('tmp/alice2.txt')`)).toBe('OK')
    })

    it('utimensat: explicit times by the owner only (EPERM), now by anyone who may write (else EACCES)', async () => {
      const dir = await workDir()
      expect(await writeAs(ALICE, dir, 'open.txt', 'x', 0o666)).toBe('OK')
      expect(await errnoOf(ALICE, dir, `os.chmod('open.txt', 0o666)`)).toBe('OK')
      expect(await writeAs(ALICE, dir, 'closed.txt', 'x', 0o644)).toBe('OK')
      const explicitUs = 1_500_000_000_123_000 // whole milliseconds
      const times = (atimeUs: number, mtimeUs: number): string => `ns=(${atimeUs} * 1000, ${mtimeUs} * 1000)`
      expect(await errnoOf(BOB, dir, `os.utime('open.txt', ${times(explicitUs, explicitUs)})`)).toBe('EPERM')
      expect(await errnoOf(BOB, dir, `os.utime('open.txt')`)).toBe('OK') // UTIME_NOW: write access is enough
      expect(await errnoOf(BOB, dir, `os.utime('closed.txt')`)).toBe('EACCES')
      expect(await errnoOf(ALICE, dir, `os.utime('closed.txt', ${times(explicitUs, explicitUs + 1000)})`)).toBe('OK')
      const st = await statOf(ROOT, dir, 'closed.txt')
      expect([st.atimeUs, st.mtimeUs]).toEqual([explicitUs, explicitUs + 1000])
      const earlierUs = (Date.now() - 60_000) * 1000
      expect(await errnoOf(ALICE, dir, `os.utime('open.txt', ${times(explicitUs, explicitUs)})`)).toBe('OK')
      expect(await errnoOf(BOB, dir, `os.utime('open.txt')`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'open.txt')).mtimeUs).toBeGreaterThan(earlierUs)
    })

    it('a set-group-ID directory gives new nodes its group, and new directories its bit', async () => {
      const dir = await workDir()
      await fsp.mkdir(path.join(dir, 'project'))
      await fsp.chown(path.join(dir, 'project'), 0, 5003)
      await fsp.chmod(path.join(dir, 'project'), 0o2777)
      expect(await writeAs(ALICE, dir, 'project/report.txt', 'r')).toBe('OK')
      expect(await errnoOf(BOB, dir, `os.mkdir('project/sub', 0o755)\nos.mkfifo('project/pipe')\nos.symlink('report.txt', 'project/link')`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'project/report.txt')).gid).toBe(5003)
      expect((await statOf(ROOT, dir, 'project/pipe')).gid).toBe(5003)
      const sub = await statOf(ROOT, dir, 'project/sub')
      expect([sub.gid, sub.mode, sub.uid]).toEqual([5003, 0o2755, BOB.uid])
      expect(await errnoOf(ALICE, dir, `os.mkdir('project/mine')\nopen('project/mine/deeper.txt', 'w').close()`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'project/mine')).mode).toBe(0o2755)
      expect((await statOf(ROOT, dir, 'project/mine/deeper.txt')).gid).toBe(5003)
      expect(await writeAs(ALICE, dir, 'plain.txt', 'p')).toBe('OK') // outside: the creator's group
      expect((await statOf(ROOT, dir, 'plain.txt')).gid).toBe(ALICE.gid)
    })

    it("a directory's link count is 2 and one per subdirectory", async () => {
      const dir = await workDir()
      await fsp.mkdir(path.join(dir, 'd'))
      expect((await fsp.stat(path.join(dir, 'd'))).nlink).toBe(2)
      await fsp.mkdir(path.join(dir, 'd', 'a'))
      await fsp.mkdir(path.join(dir, 'd', 'b'))
      await fsp.writeFile(path.join(dir, 'd', 'f'), 'not a directory')
      expect((await fsp.stat(path.join(dir, 'd'))).nlink).toBe(4)
      await fsp.rename(path.join(dir, 'd', 'b'), path.join(dir, 'b'))
      expect((await fsp.stat(path.join(dir, 'd'))).nlink).toBe(3)
      await fsp.rmdir(path.join(dir, 'd', 'a'))
      expect((await fsp.stat(path.join(dir, 'd'))).nlink).toBe(2)
    })

    // ------------------------------------------------ hard links

    it('link(): two names of one inode, one link count, one set of attributes', async () => {
      const dir = await workDir()
      const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')]
      await fsp.writeFile(a, 'one')
      await fsp.link(a, b)
      const [sa, sb] = await Promise.all([fsp.stat(a), fsp.stat(b)])
      expect([sa.ino === sb.ino, sa.nlink, sb.nlink]).toEqual([true, 2, 2])
      await fsp.writeFile(b, 'two through b')
      expect(await fsp.readFile(a, 'utf8')).toBe('two through b')
      await fsp.chmod(b, 0o600)
      expect(((await fsp.stat(a)).mode & 0o7777).toString(8)).toBe('600')
      await fsp.link(b, path.join(dir, 'c'))
      expect((await fsp.stat(a)).nlink).toBe(3)
      await fsp.unlink(a)
      expect(await fsp.readFile(b, 'utf8')).toBe('two through b')
      expect((await fsp.stat(b)).nlink).toBe(2)
      await fsp.rename(b, path.join(dir, 'c')) // two names of one inode: nothing happens
      expect((await fsp.stat(b)).nlink).toBe(2)
      await fsp.mkdir(path.join(dir, 'sub'))
      expect(await errnoOf(ROOT, dir, `os.link('sub', 'sub2')`)).toBe('EPERM')
      expect(await errnoOf(ROOT, dir, `os.link('b', 'c')`)).toBe('EEXIST')
      expect(await errnoOf(ROOT, dir, `os.link('missing', 'd')`)).toBe('ENOENT')
      expect(await errnoOf(ROOT, dir, `os.mkfifo('fifo')\nos.link('fifo', 'fifo2')`)).toBe('OK')
      expect((await statOf(ROOT, dir, 'fifo2'))).toMatchObject({ type: 'fifo', nlink: 2 })
    })

    it('an unlinked open file keeps its data, and fstat says no name is left', async () => {
      const dir = await workDir()
      const code = `
fd = os.open('doomed', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'still here')
os.link('doomed', 'other')
os.unlink('doomed')
n1 = os.fstat(fd).st_nlink
os.unlink('other')
n0 = os.fstat(fd).st_nlink
result = [n1, n0, os.pread(fd, 100, 0).decode()]
os.close(fd)
`
      expect(await resultOf(ROOT, dir, code)).toEqual([1, 0, 'still here'])
    })

    it('cp -al makes a tree of links, which outlives the original', async () => {
      const dir = await workDir()
      await fsp.mkdir(path.join(dir, 'src', 'sub'), { recursive: true })
      await fsp.writeFile(path.join(dir, 'src', 'x'), 'x data')
      await fsp.writeFile(path.join(dir, 'src', 'sub', 'y'), 'y data')
      await execFileP('cp', ['-al', 'src', 'dst'], { cwd: dir, timeout: TOOL_TIMEOUT_MS })
      const [x, dx] = await Promise.all([fsp.stat(path.join(dir, 'src', 'x')), fsp.stat(path.join(dir, 'dst', 'x'))])
      expect([x.ino === dx.ino, dx.nlink]).toEqual([true, 2])
      await fsp.rm(path.join(dir, 'src'), { recursive: true })
      expect(await fsp.readFile(path.join(dir, 'dst', 'sub', 'y'), 'utf8')).toBe('y data')
      expect((await fsp.stat(path.join(dir, 'dst', 'x'))).nlink).toBe(1)
    })

    it('rsync -aH keeps hard links, into the file system and out of it', async () => {
      const dir = await workDir()
      const outside = await fsp.mkdtemp(path.join(os.tmpdir(), 'fffs-posix-rsync-'))
      try {
        await fsp.mkdir(path.join(outside, 'src'))
        await fsp.writeFile(path.join(outside, 'src', 'one'), 'linked')
        await fsp.link(path.join(outside, 'src', 'one'), path.join(outside, 'src', 'two'))
        await fsp.writeFile(path.join(outside, 'src', 'alone'), 'single')
        await execFileP('rsync', ['-aH', `${outside}/src/`, `${dir}/copy/`], { timeout: TOOL_TIMEOUT_MS })
        const [one, two, alone] = await Promise.all(['one', 'two', 'alone'].map((n) => fsp.stat(path.join(dir, 'copy', n))))
        expect([one!.ino === two!.ino, one!.nlink, alone!.nlink]).toEqual([true, 2, 1])
        await execFileP('rsync', ['-aH', `${dir}/copy/`, `${outside}/back/`], { timeout: TOOL_TIMEOUT_MS })
        const [bOne, bTwo] = await Promise.all(['one', 'two'].map((n) => fsp.stat(path.join(outside, 'back', n))))
        expect([bOne!.ino === bTwo!.ino, bOne!.nlink]).toEqual([true, 2])
        expect(await fsp.readFile(path.join(outside, 'back', 'two'), 'utf8')).toBe('linked')
      } finally {
        await fsp.rm(outside, { recursive: true, force: true })
      }
    })

    it('git: commit, gc and fsck in a repository, and a local clone that hard-links its objects', async () => {
      const dir = await workDir()
      const git = (args: string[], cwd: string): Promise<{ stdout: string }> =>
        execFileP('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', '-c', 'init.defaultBranch=main', ...args], { cwd, timeout: TOOL_TIMEOUT_MS })
      const repo = path.join(dir, 'repo')
      await git(['init', '-q', 'repo'], dir)
      for (let i = 0; i < 5; i++) await fsp.writeFile(path.join(repo, `file${i}.txt`), `contents ${i}\n`.repeat(50))
      await git(['add', '.'], repo)
      await git(['commit', '-q', '-m', 'first'], repo)
      await fsp.writeFile(path.join(repo, 'file0.txt'), 'changed\n')
      await git(['commit', '-q', '-am', 'second'], repo)
      await git(['gc', '-q'], repo)
      await git(['fsck', '--strict'], repo)
      expect((await git(['log', '--format=%s'], repo)).stdout.trim().split('\n')).toEqual(['second', 'first'])
      // --local without --no-hardlinks: git links the object files, and fails if it cannot.
      await git(['clone', '-q', '--local', 'repo', 'clone'], dir)
      const pack = (await fsp.readdir(path.join(dir, 'clone', '.git', 'objects', 'pack'))).find((n) => n.endsWith('.pack'))!
      expect((await fsp.stat(path.join(dir, 'clone', '.git', 'objects', 'pack', pack))).nlink).toBe(2)
      expect((await git(['log', '--format=%s'], path.join(dir, 'clone'))).stdout.trim()).toBe('second\nfirst')
    })

    // ------------------------------------------------ FIFOs, sockets, device nodes

    it('mkfifo: a reader and a writer in two processes meet through the FIFO', async () => {
      const dir = await workDir()
      expect(await errnoOf(ROOT, dir, `os.mkfifo('pipe', 0o666)`)).toBe('OK')
      expect(await statOf(ROOT, dir, 'pipe')).toMatchObject({ type: 'fifo', mode: 0o644 }) // umask 022
      await fsp.chmod(path.join(dir, 'pipe'), 0o666)
      const reader = resultOf<string>(ALICE, dir, `result = open('pipe').read()`)
      expect(await errnoOf(BOB, dir, `f = open('pipe', 'w')\nf.write('through the kernel\\n')\nf.close()`)).toBe('OK')
      expect(await reader).toBe('through the kernel\n')
    })

    it('bind(): a unix socket server and a client talk through a path', async () => {
      const dir = await workDir()
      const server = resultOf<string>(ROOT, dir, `
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('server.sock')
os.chmod('server.sock', 0o777)
s.listen(1)
open('ready', 'w').close()
conn, _ = s.accept()
result = conn.recv(100).decode()
conn.sendall(b'pong')
conn.close()
`)
      const deadline = Date.now() + 20_000
      while (!(await fsp.stat(path.join(dir, 'ready')).then(() => true, () => false))) {
        if (Date.now() > deadline) throw new Error('the socket server did not start')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(await statOf(ROOT, dir, 'server.sock')).toMatchObject({ type: 'sock' })
      const reply = await resultOf<string>(ALICE, dir, `
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect('server.sock')
c.sendall(b'ping')
result = c.recv(100).decode()
`)
      expect([await server, reply]).toEqual(['ping', 'pong'])
    })

    it('mknod: character and block devices by root (EPERM for others), and regular files', async () => {
      const dir = await workDir()
      const code = `
os.mknod('null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))
os.mknod('disk', 0o660 | stat.S_IFBLK, os.makedev(8, 1))
os.mknod('plain', 0o644 | stat.S_IFREG)
`
      expect(await errnoOf(ROOT, dir, code)).toBe('OK')
      const [nul, disk, plain] = await Promise.all(['null', 'disk', 'plain'].map((n) => statOf(ROOT, dir, n)))
      expect(nul).toMatchObject({ type: 'chr', mode: 0o644, rdev: Number(await resultOf(ROOT, dir, 'result = os.makedev(1, 3)')) })
      expect(disk).toMatchObject({ type: 'blk', mode: 0o640, rdev: Number(await resultOf(ROOT, dir, 'result = os.makedev(8, 1)')) })
      expect(plain).toMatchObject({ type: 'reg', size: 0 })
      expect(await errnoOf(ALICE, dir, `os.mknod('mine', 0o600 | stat.S_IFCHR, os.makedev(1, 3))`)).toBe('EPERM')
      expect(await errnoOf(ALICE, dir, `os.mknod('fifo', 0o600 | stat.S_IFIFO)`)).toBe('OK') // a FIFO needs no privilege
    })

    // ------------------------------------------------ names

    it('a name longer than 255 bytes is ENAMETOOLONG for lookups too, not ENOENT', async () => {
      const dir = await workDir()
      const long = 'n'.repeat(256)
      expect(await errnoOf(ROOT, dir, `os.stat(${q(long)})`)).toBe('ENAMETOOLONG')
      expect(await errnoOf(ROOT, dir, `os.truncate(${q(long)}, 0)`)).toBe('ENAMETOOLONG')
      expect(await errnoOf(ROOT, dir, `os.unlink(${q(long)})`)).toBe('ENAMETOOLONG')
      expect(await errnoOf(ROOT, dir, `open(${q(long)}, 'w')`)).toBe('ENAMETOOLONG')
      expect(await errnoOf(ROOT, dir, `open('short', 'w').close()\nos.link('short', ${q(long)})`)).toBe('ENAMETOOLONG')
      expect(await errnoOf(ROOT, dir, `open(${q('é'.repeat(127) + 'x')}, 'w').close()`)).toBe('OK') // 255 bytes
      expect(await errnoOf(ROOT, dir, `os.stat(${q('é'.repeat(128))})`)).toBe('ENAMETOOLONG') // 256 bytes, 128 characters
    })

    // ------------------------------------------------ frozen trees (fffs)

    it.runIf(timePaths)('frozen trees keep the owner and mode each version had, and the kernel checks them the same way', async () => {
      const dir = await workDir()
      await fileOf(dir, 'report', 0o600, ROOT, 'draft')
      await fsp.mkdir(path.join(dir, 'private'), { mode: 0o700 })
      await fsp.writeFile(path.join(dir, 'private', 'inside'), 'in')
      const t = await instantBetween()
      await fsp.chmod(path.join(dir, 'report'), 0o644)
      await fsp.chown(path.join(dir, 'report'), ALICE.uid!, ALICE.gid)
      await fsp.chmod(path.join(dir, 'private'), 0o755)
      expect(await readAs(ALICE, dir, 'report')).toBe('draft')
      expect(await readAs(ALICE, dir, `report@${t}`)).toBe('EACCES')
      expect(await statOf(ALICE, dir, `report@${t}`)).toMatchObject({ mode: 0o600, uid: 0 })
      expect(await readAs(ROOT, dir, `report@${t}`)).toBe('draft')
      expect(await errnoOf(ALICE, dir, `os.listdir('private@${t}')`)).toBe('EACCES')
      expect(await resultOf(ALICE, dir, `result = os.listdir('private')`)).toEqual(['inside'])
      expect(await errnoOf(ROOT, dir, `os.chmod('report@${t}', 0o777)`)).toBe('EROFS')
    })

    it.runIf(timePaths)('f@T of either name of a hard link reads the inode as it was at T', async () => {
      const dir = await workDir()
      await fsp.writeFile(path.join(dir, 'a'), 'v1')
      const beforeLink = await instantBetween()
      await fsp.link(path.join(dir, 'a'), path.join(dir, 'b'))
      const linked = await instantBetween()
      await fsp.writeFile(path.join(dir, 'b'), 'v2 through b')
      await fsp.unlink(path.join(dir, 'a'))
      expect(await fsp.readFile(path.join(dir, `a@${linked}`), 'utf8')).toBe('v1')
      expect(await fsp.readFile(path.join(dir, `b@${linked}`), 'utf8')).toBe('v1')
      expect((await fsp.stat(path.join(dir, `b@${linked}`))).nlink).toBe(2)
      expect(await errnoOf(ROOT, dir, `os.stat('b@${beforeLink}')`)).toBe('ENOENT') // that name did not exist yet
      expect(await fsp.readFile(path.join(dir, 'b'), 'utf8')).toBe('v2 through b')
      // A past version is another object: not the live inode, so copying it back over the file works.
      const [live, past] = await Promise.all([fsp.stat(path.join(dir, 'b')), fsp.stat(path.join(dir, `b@${linked}`))])
      expect(live.ino === past.ino).toBe(false)
      await execFileP('cp', [`b@${linked}`, 'b'], { cwd: dir, timeout: TOOL_TIMEOUT_MS })
      expect(await fsp.readFile(path.join(dir, 'b'), 'utf8')).toBe('v1')
    })

    it.runIf(timePaths)('FIFOs, sockets and device nodes are versioned like any other metadata', async () => {
      const dir = await workDir()
      const before = await instantBetween()
      expect(await errnoOf(ROOT, dir, `os.mkfifo('pipe', 0o600)\nos.mknod('null', 0o600 | stat.S_IFCHR, os.makedev(1, 3))`)).toBe('OK')
      const made = await instantBetween()
      await fsp.chmod(path.join(dir, 'pipe'), 0o640)
      await fsp.unlink(path.join(dir, 'null'))
      expect(await statOf(ROOT, dir, `pipe@${made}`)).toMatchObject({ type: 'fifo', mode: 0o600 })
      expect(await statOf(ROOT, dir, 'pipe')).toMatchObject({ type: 'fifo', mode: 0o640 })
      expect(await statOf(ROOT, dir, `null@${made}`)).toMatchObject({ type: 'chr', rdev: Number(await resultOf(ROOT, dir, 'result = os.makedev(1, 3)')) })
      expect(await errnoOf(ROOT, dir, `os.stat('pipe@${before}')`)).toBe('ENOENT')
      expect(await resultOf(ROOT, dir, `result = sorted(os.listdir('../${path.basename(dir)}@${made}'))`)).toEqual(['null', 'pipe'])
    })
  })
}

/** A plain temp directory as a target (the suite's proof on the machine's own file system), reachable by every user. */
export async function plainTarget(): Promise<PosixTarget> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'fffs-posix-'))
  await fsp.chmod(dir, 0o755)
  return { dir, close: () => fsp.rm(dir, { recursive: true, force: true }) }
}
