// scripts/setup.sh on this host, through apt's own simulation (`apt-get -s`, which changes
// nothing): whatever set-up would install must never cost an installed package. libfuse 3's
// `fuse3` and libfuse 2's `fuse` replace each other, so which case runs depends on the host.

import { execFileSync, spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers/mount.js'

const SETUP = path.join(REPO, 'scripts', 'setup.sh')
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']

function installed(pkg: string): boolean {
  const status = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' })
  return status.status === 0 && status.stdout.includes('install ok installed')
}

/** `bash scripts/setup.sh ARGS`, as root or (with `asNobody`) as an unprivileged user. */
function setup(args: string[], asNobody = false): { status: number; out: string } {
  const command = asNobody ? ['setpriv', ...NOBODY, 'bash', SETUP, ...args] : ['bash', SETUP, ...args]
  const run = spawnSync(command[0]!, command.slice(1), { cwd: '/', encoding: 'utf8', timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } })
  return { status: run.status ?? 1, out: `${run.stdout}${run.stderr}` }
}

const hasApt = spawnSync('apt-get', ['--version']).status === 0

describe.skipIf(!hasApt)('scripts/setup.sh', () => {
  it('lists what it checks for: libfuse 3 (fuse3), never libfuse 2 fuse package', () => {
    const { status, out } = setup(['--packages'])
    expect(status).toBe(0)
    const packages = out.trim().split('\n')
    expect(packages).toEqual(expect.arrayContaining(['fuse3', 'libfuse3-dev', 'libfabric-dev', 'libfuse2']))
    expect(packages).not.toContain('fuse')
  })

  it.skipIf(!installed('fuse3'))('with fuse3 installed, asks apt for nothing that removes a package', () => {
    // Every package set-up may ever ask for, on this host: apt's plan removes nothing.
    const packages = setup(['--packages']).out.trim().split('\n')
    const plan = execFileSync('apt-get', ['-s', 'install', '--no-install-recommends', ...packages], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    expect(plan).not.toMatch(/^Remv /m)
    // And what it would do now, as root (the bench's needs included) and as another user.
    for (const asNobody of [false, true]) {
      const { status, out } = setup(asNobody ? ['--dry-run'] : ['--bench', '--dry-run'], asNobody)
      expect(status, out).toBe(0)
      expect(out).not.toMatch(/^Remv /m)
      expect(out).not.toContain('not installing')
    }
  })

  it.skipIf(!installed('fuse'))("with libfuse 2's fuse installed, leaves it: fuse3 is not installed over it", () => {
    // As root, libfuse 2's fusermount is enough (root mounts without a helper); another user
    // needs fusermount3, which set-up refuses to install because apt would remove fuse.
    const { status, out } = setup(['--dry-run'], true)
    expect(status, out).toBe(0)
    expect(out).toMatch(/not installing fuse3 .*apt would remove fuse /)
    expect(out).not.toMatch(/^Remv /m)
  })
})
