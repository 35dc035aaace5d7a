// Many requests in flight: several processes create, write and close, rename and unlink at the
// same time, in one shared directory and each in a directory of its own, while one process
// replaces a name by rename over and over as another creates beside it. Afterwards every
// directory lists exactly the names the programs' own order leaves, and every file holds the
// bytes of its last close: on a plain directory (the workload itself), an embedded mount, and a
// 3-replica group read back through a mount on each member. No timing is asserted.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRunningGroup, type TestGroup } from '../helpers/cluster.js'
import { startMount, type TestMount } from '../helpers/mount.js'

const execFileP = promisify(execFile)

const PROCS = 4
const FILES = 24 // per process, in the shared directory and in its own
const RACE_ROUNDS = 30
const WORKLOAD_TIMEOUT_MS = 240_000

// Each process p works through its files in order; the processes run at once (released by a
// barrier). What a file holds names who wrote it and which write it was, so a version lost,
// applied out of order or read from another file shows.
const WORKLOAD = String.raw`
import multiprocessing, os, sys
root, procs, files, race_rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
shared = os.path.join(root, "shared")

def put(path, text, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    fd = os.open(path, flags, 0o644)
    os.write(fd, text.encode())
    os.close(fd)

def worker(p, barrier):
    own = os.path.join(root, f"own{p}")
    barrier.wait()
    for i in range(files):
        for d, name in ((shared, f"p{p}-{i}"), (own, f"f{i}")):
            put(os.path.join(d, name), f"{name} v1 " + "x" * (i * 97 % 4096))
            if i % 4 == 1:  # a second version through a new open: the later close wins
                put(os.path.join(d, name), f"{name} v2", os.O_WRONLY | os.O_TRUNC)
            if i % 4 == 2:
                os.rename(os.path.join(d, name), os.path.join(d, name + ".moved"))
            if i % 4 == 3:
                os.unlink(os.path.join(d, name))

def racer(barrier):
    # Replaces one name by rename, again and again, while the workers create beside it.
    barrier.wait()
    for j in range(race_rounds):
        tmp = os.path.join(shared, f"race.tmp{j}")
        put(tmp, f"race {j}")
        os.rename(tmp, os.path.join(shared, "race"))

os.makedirs(shared)
for p in range(procs):
    os.makedirs(os.path.join(root, f"own{p}"))
context = multiprocessing.get_context("fork")
barrier = context.Barrier(procs + 1)
children = [context.Process(target=worker, args=(p, barrier)) for p in range(procs)] + [context.Process(target=racer, args=(barrier,))]
for c in children:
    c.start()
for c in children:
    c.join()
    if c.exitcode != 0:
        sys.exit(f"a workload process exited with {c.exitcode}")
`

/** Every directory's sorted names and every file's content, as the programs' order leaves them. */
function expectedTree(): Map<string, Map<string, string>> {
  const tree = new Map<string, Map<string, string>>()
  const shared = new Map<string, string>([['race', `race ${RACE_ROUNDS - 1}`]])
  tree.set('shared', shared)
  for (let p = 0; p < PROCS; p++) {
    const own = new Map<string, string>()
    tree.set(`own${p}`, own)
    for (let i = 0; i < FILES; i++) {
      for (const [dir, name] of [[shared, `p${p}-${i}`], [own, `f${i}`]] as const) {
        const v1 = `${name} v1 ` + 'x'.repeat((i * 97) % 4096)
        if (i % 4 === 0) dir.set(name, v1)
        if (i % 4 === 1) dir.set(name, `${name} v2`)
        if (i % 4 === 2) dir.set(`${name}.moved`, v1)
      }
    }
  }
  return tree
}

async function runWorkload(root: string): Promise<void> {
  await execFileP('python3', ['-c', WORKLOAD, root, String(PROCS), String(FILES), String(RACE_ROUNDS)], { timeout: WORKLOAD_TIMEOUT_MS })
}

/** The tree under `root` as read with ordinary calls: names per directory, each file's content. */
function readTree(root: string): Map<string, Map<string, string>> {
  const tree = new Map<string, Map<string, string>>()
  for (const dir of readdirSync(root).sort()) {
    const files = new Map<string, string>()
    for (const name of readdirSync(path.join(root, dir))) files.set(name, readFileSync(path.join(root, dir, name), 'utf8'))
    tree.set(dir, files)
  }
  return tree
}

function expectTree(actual: Map<string, Map<string, string>>, where: string): void {
  const expected = expectedTree()
  expect([...actual.keys()].sort(), `${where}: directories`).toEqual([...expected.keys()].sort())
  for (const [dir, files] of expected) {
    const got = actual.get(dir)!
    expect([...got.keys()].sort(), `${where}: names in ${dir}`).toEqual([...files.keys()].sort())
    for (const [name, content] of files) expect(got.get(name), `${where}: ${dir}/${name}`).toBe(content)
  }
}

describe('many operations in flight from several processes', () => {
  it('on a plain directory, the workload leaves exactly the expected tree (the test itself)', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'fffs-concurrent-'))
    try {
      await runWorkload(path.join(root, 'w'))
      expectTree(readTree(path.join(root, 'w')), 'plain directory')
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  describe('embedded mount', () => {
    let mount: TestMount
    beforeAll(async () => {
      mount = await startMount()
    })
    afterAll(async () => {
      await mount?.cleanup()
    })

    it('every name and every file is as the programs left them, also after a restart', async () => {
      await runWorkload(mount.p('w'))
      expectTree(readTree(mount.p('w')), 'embedded mount')
      await mount.kill9()
      await mount.restart()
      expectTree(readTree(mount.p('w')), 'embedded mount after kill -9 and restart')
    })
  })

  describe('3-replica group', () => {
    let group: TestGroup
    beforeAll(async () => {
      group = await startRunningGroup(3)
    }, 90_000)
    afterAll(async () => {
      await group?.cleanup()
    })

    it('every member holds every name and every file as the programs left them', async () => {
      const writer = await group.mount('mnt-writer')
      await runWorkload(writer.p('w'))
      expectTree(readTree(writer.p('w')), 'the writing mount')
      // A fresh mount on each member reads that member's own store.
      for (const id of [0, 1, 2]) {
        const reader = await group.mount(`mnt-member${id}`, await group.writeClientConfig(`client-member${id}.json`, id))
        expectTree(readTree(reader.p('w')), `a mount on member ${id}`)
        await reader.stop()
      }
    }, WORKLOAD_TIMEOUT_MS + 60_000)
  })
})
