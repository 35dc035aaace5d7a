// Copying trees out of the mount and back with the tools people use: `cp -a` of a frozen tree
// and `rsync -aX` of the copy into the mount. The user's own extended attributes travel with
// the files; fffs's (the version facts, the record format) are readable by name but not
// listed, so no copy carries them and no restore tries to set them. Proved on a plain
// directory first.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { python, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
let scratch = ''
beforeAll(async () => {
  m = await startMount()
  scratch = mkdtempSync(path.join(os.tmpdir(), 'fffs-copy-'))
})
afterAll(async () => {
  await m?.cleanup()
  rmSync(scratch, { recursive: true, force: true })
})

function run(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Every listed extended attribute of every file below `dir`, with its value: { 'a.txt': { 'user.color': 'blue' } }. */
function xattrsBelow(dir: string): Record<string, Record<string, string>> {
  return JSON.parse(
    python(
      `
import json, os, sys
root, out = sys.argv[1], {}
for d, _, files in os.walk(root):
    for name in sorted(files):
        p = os.path.join(d, name)
        out[os.path.relpath(p, root)] = {a: os.getxattr(p, a).decode() for a in os.listxattr(p)}
print(json.dumps(out, sort_keys=True))
`,
      dir,
    ),
  ) as Record<string, Record<string, string>>
}

/** A small tree with a user attribute, as it was: a.txt "one" (user.color=blue), sub/b.txt "two". */
async function writeTree(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'sub'), { recursive: true })
  await fsp.writeFile(path.join(dir, 'a.txt'), 'one')
  await fsp.writeFile(path.join(dir, 'sub', 'b.txt'), 'two')
  python('import os, sys; os.setxattr(sys.argv[1], "user.color", b"blue")', path.join(dir, 'a.txt'))
}

const TREE_XATTRS = { 'a.txt': { 'user.color': 'blue' }, 'sub/b.txt': {} }

describe('cp -a out, rsync -aX back', () => {
  it('on a plain directory (proves the commands)', async () => {
    const data = path.join(scratch, 'plain-data')
    await writeTree(data)
    run('cp', '-a', data, path.join(scratch, 'plain-out'))
    run('rsync', '-aX', path.join(scratch, 'plain-out') + '/', path.join(scratch, 'plain-restore') + '/')
    expect(xattrsBelow(path.join(scratch, 'plain-restore'))).toEqual(TREE_XATTRS)
  })

  it('a frozen tree copied out carries the user attributes only, and rsync -aX restores it into the mount', async () => {
    await writeTree(m.p('data'))
    await new Promise((r) => setTimeout(r, 5))
    const atMs = Date.now()
    await new Promise((r) => setTimeout(r, 5))
    await fsp.writeFile(m.p('data', 'a.txt'), 'changed later')
    // The facts are there by name, on the live file and at the cut...
    const facts = python('import os, sys; print(os.getxattr(sys.argv[1], "user.fffs.version").decode(), "user.fffs.version" in os.listxattr(sys.argv[1]))', m.p(`data@${atMs}ms`, 'a.txt'))
    expect(facts.trim()).toBe('3 False') // create, write, setxattr; not listed
    // ...but a copy does not carry them.
    const out = path.join(scratch, 'out')
    run('cp', '-a', m.p(`data@${atMs}ms`), out)
    expect(await fsp.readFile(path.join(out, 'a.txt'), 'utf8')).toBe('one')
    expect(xattrsBelow(out)).toEqual(TREE_XATTRS)
    // A restore into the mount: rsync -X sets each listed attribute and removes the ones not in the source.
    run('rsync', '-aX', out + '/', m.p('restore') + '/')
    expect(await fsp.readFile(m.p('restore', 'a.txt'), 'utf8')).toBe('one')
    expect(await fsp.readFile(m.p('restore', 'sub', 'b.txt'), 'utf8')).toBe('two')
    expect(xattrsBelow(m.p('restore'))).toEqual(TREE_XATTRS)
    // And straight from the frozen tree to a live one, within the mount.
    run('rsync', '-aX', m.p(`data@${atMs}ms`) + '/', m.p('restore-direct') + '/')
    expect(xattrsBelow(m.p('restore-direct'))).toEqual(TREE_XATTRS)
  })

  it('a record-format directory copies out and back as plain files (the format is fffs\'s, not listed)', async () => {
    await fsp.mkdir(m.p('pmu'))
    python('import os, sys; os.setxattr(sys.argv[1], "user.fffs.record_format", b"jsonl:ts")', m.p('pmu'))
    await fsp.writeFile(m.p('pmu', 'a.jsonl'), `{"ts":"${new Date().toISOString()}","v":1}\n`)
    const out = path.join(scratch, 'pmu-out')
    run('cp', '-a', m.p('pmu'), out)
    run('rsync', '-aX', out + '/', m.p('pmu-restore') + '/')
    expect(await fsp.readFile(m.p('pmu-restore', 'a.jsonl'), 'utf8')).toBe(await fsp.readFile(m.p('pmu', 'a.jsonl'), 'utf8'))
    const format = python('import os, sys; print(os.getxattr(sys.argv[1], "user.fffs.record_format").decode(), os.listxattr(sys.argv[1]))', m.p('pmu'))
    expect(format.trim()).toBe('jsonl:ts []')
  })
})
