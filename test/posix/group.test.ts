// The POSIX conformance suite on a mount of a 3-replica group; links, FIFOs, device nodes and
// attributes on a sharded group, where namespace and contents live on different shards.

import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRunningGroup, type ClusterMount, type TestGroup } from '../helpers/cluster.js'
import { posixSuite } from './suite.js'

const execFileP = promisify(execFile)

posixSuite('a 3-replica group mount', true, async () => {
  const group = await startRunningGroup(3)
  const mount = await group.mount('mnt')
  await fsp.chmod(group.root, 0o755) // the test's temp dir: other users must reach the mount
  const dir = mount.p('posix')
  await fsp.mkdir(dir)
  return { dir, close: () => group.cleanup() }
})

describe('a sharded group (a meta shard and 2 data shards)', () => {
  let group: TestGroup
  let mount: ClusterMount
  beforeAll(async () => {
    group = await startRunningGroup(3, { shards: 2 })
    mount = await group.mount('mnt')
  })
  afterAll(async () => {
    await group?.cleanup()
  })

  it('hard links share one inode and its contents; a FIFO carries data between two processes', async () => {
    await fsp.writeFile(mount.p('a'), 'on a data shard')
    await fsp.link(mount.p('a'), mount.p('b'))
    const [a, b] = await Promise.all([fsp.stat(mount.p('a')), fsp.stat(mount.p('b'))])
    expect([a.ino === b.ino, a.nlink, b.nlink]).toEqual([true, 2, 2])
    await fsp.appendFile(mount.p('b'), ', appended through b')
    await fsp.unlink(mount.p('a'))
    expect(await fsp.readFile(mount.p('b'), 'utf8')).toBe('on a data shard, appended through b')
    expect((await fsp.stat(mount.p('b'))).nlink).toBe(1)

    await execFileP('mkfifo', ['-m', '0600', mount.p('pipe')])
    await execFileP('mknod', [mount.p('null'), 'c', '1', '3'])
    const reader = execFileP('cat', [mount.p('pipe')], { timeout: 20_000 })
    await execFileP('sh', ['-c', `echo through the pipe > '${mount.p('pipe')}'`], { timeout: 20_000 })
    expect((await reader).stdout).toBe('through the pipe\n')
    const [pipe, nul] = await Promise.all([fsp.stat(mount.p('pipe')), fsp.stat(mount.p('null'))])
    expect([pipe.isFIFO(), pipe.mode & 0o7777, nul.isCharacterDevice(), nul.rdev]).toEqual([true, 0o600, true, (1 << 8) | 3])
    await fsp.chmod(mount.p('b'), 0o4755)
    await fsp.utimes(mount.p('b'), 1_000_000, 1_500_000) // times of a file live on its data shard, the mode on the meta shard
    const st = await fsp.stat(mount.p('b'))
    expect([st.mode & 0o7777, st.mtimeMs, st.nlink]).toEqual([0o4755, 1_500_000_000, 1])
  })
})
