// The SPEC grammar through a real mount and the CLI: names people use stay names, a malformed
// spec is EINVAL with a line saying why, ISO-8601 basic format survives rsync, the mount root
// at a cut through /.at/SPEC/, relative times. Shell tools, Python and the CLI as a child process.

import { execFileSync } from 'node:child_process'
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
let scratch: string
beforeAll(async () => {
  m = await startMount(['--sensor-lag-max', '1000', '--clock-skew-max', '10'])
  scratch = mkdtempSync(path.join(os.tmpdir(), 'fffs-names-'))
})
afterAll(async () => {
  await m?.cleanup()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

function sh(script: string, cwd: string): string {
  return execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', timeout: 30_000 })
}

/** ISO-8601 extended UTC -> basic (no '-' or ':'): 2026-12-07T06:00:00.123Z -> 20261207T060000.123Z. */
function basicIso(iso: string): string {
  return iso.replace(/-/g, '').replace(/:/g, '')
}

describe('names people use stay names', () => {
  const tools = [
    'mkdir -p src/python@3/lib src/node@18 dst',
    'echo py > src/python@3/lib/site.py',
    'echo js > src/node@18/index.js',
    'echo build > src/build@123s && echo xv > src/x@v2 && echo au > src/a@u1 && echo icon > src/icon@2x',
    'cd dst && cp -r ../src/python@3 . && cp -r ../src/node@18 . && cp ../src/build@123s ../src/x@v2 ../src/a@u1 ../src/icon@2x .',
    'cat python@3/lib/site.py node@18/index.js build@123s x@v2 a@u1 icon@2x',
    'ls -1',
  ].join('\n')

  it('python@3, node@18, build@123s, x@v2, a@u1 are created, copied (cp -r python@3 .) and read as on ext4', async () => {
    const onExt4 = sh(tools, scratch)
    expect(onExt4).toBe('py\njs\nbuild\nxv\nau\nicon\na@u1\nbuild@123s\nicon@2x\nnode@18\npython@3\nx@v2\n')
    await fsp.mkdir(m.p('tools'))
    expect(sh(tools, m.p('tools'))).toBe(onExt4)
    expect(python('import os,sys; print(sorted(os.listdir(sys.argv[1])))', m.p('tools', 'dst'))).toBe("['a@u1', 'build@123s', 'icon@2x', 'node@18', 'python@3', 'x@v2']\n")
  })

  it('NAME@vN is version N of NAME, unless an entry of that exact name exists: then it is that entry', async () => {
    await fsp.mkdir(m.p('ver'))
    await fsp.writeFile(m.p('ver', 'x'), 'one') // rows 1 (create, empty) and 2
    await fsp.writeFile(m.p('ver', 'x'), 'two')
    expect(await fsp.readFile(m.p('ver', 'x@v2'), 'utf8')).toBe('one')
    expect(runCli(['cat', m.p('ver', 'x@v2')]).stdout).toBe('one')
    // y has no version 2, so y@v2 can be created; from then on the name wins
    await fsp.writeFile(m.p('ver', 'y'), 'why')
    await fsp.writeFile(m.p('ver', 'y@v9'), 'a file called y@v9')
    expect(await fsp.readFile(m.p('ver', 'y@v9'), 'utf8')).toBe('a file called y@v9')
    expect(runCli(['cat', m.p('ver', 'y@v9')]).stdout).toBe('a file called y@v9')
    expect((await fsp.readdir(m.p('ver'))).sort()).toEqual(['x', 'y', 'y@v9'])
    // x@v2 names x's version 2, so writing it is writing a frozen version
    expect(await errCode(fsp.writeFile(m.p('ver', 'x@v2'), 'no'))).toBe('EROFS')
    // a rename over the version name makes it a name
    await fsp.rename(m.p('ver', 'y'), m.p('ver', 'x@v2'))
    expect(await fsp.readFile(m.p('ver', 'x@v2'), 'utf8')).toBe('why')
  })
})

describe('a malformed spec is EINVAL, with a line saying why', () => {
  it.each([
    ['f@2026-13-45', /malformed time spec '2026-13-45': month 13/],
    ['f@v-1', /malformed time spec 'v-1': versions are numbered from v1/],
    ['f@v0', /malformed time spec 'v0'/],
    ['f@sensor:nope', /malformed time spec 'sensor:nope'/],
    ['f@-5x', /malformed time spec '-5x': a relative time/],
    ['f@20261207T06:00:00Z', /malformed time spec '20261207T06:00:00Z'/],
    ['.at/yesterday-ish', /malformed time spec 'yesterday-ish': not a time spec/],
  ])('%s', async (name, why) => {
    await fsp.writeFile(m.p('f'), 'f')
    expect(await errCode(fsp.stat(m.p(name)))).toBe('EINVAL')
    expect(await errCode(fsp.readFile(m.p(name)))).toBe('EINVAL')
    expect(await m.outputMatching(why)).toMatch(new RegExp(`fffs: EINVAL: ${why.source}`))
    const cli = runCli(['cat', m.p(name)])
    expect(cli.status).not.toBe(0)
    expect(cli.stderr.trim().split('\n')).toHaveLength(1)
    expect(cli.stderr).toMatch(why)
  })

  it('two specs in one path or one name are EINVAL; a name ending in @@x is a name', async () => {
    await fsp.writeFile(m.p('g'), 'g')
    await fsp.mkdir(m.p('d'))
    const t = await instantNow()
    expect(await errCode(fsp.readFile(m.p('g@v2@v1')))).toBe('EINVAL')
    expect(await m.outputMatching(/'g@v2@v1': more than one @SPEC/)).toMatch(/fffs: EINVAL: malformed time spec 'g@v2@v1': more than one @SPEC/)
    expect(await errCode(fsp.readdir(m.p(`d@${t}`, 'sub@v1')))).toBe('EINVAL')
    expect(runCli(['cat', m.p('g@v2@v1')]).stderr).toMatch(/more than one @SPEC/)
    expect(await errCode(fsp.stat(m.p('g@@x')))).toBe('ENOENT')
    await fsp.writeFile(m.p('g@@x'), 'at-at')
    expect(await fsp.readFile(m.p('g@@x'), 'utf8')).toBe('at-at')
  })

  it('a date alone is 00:00:00 UTC of that day', async () => {
    await fsp.writeFile(m.p('dated'), 'now') // created today, after midnight UTC
    const today = new Date().toISOString().slice(0, 10)
    expect(await errCode(fsp.stat(m.p(`dated@${today}`)))).toBe('ENOENT') // did not exist at 00:00 UTC
    const cut = runCli(['cut', today, '--mount', m.mountpoint, '--json'])
    expect(cut.status, cut.stderr).toBe(0)
    expect((JSON.parse(cut.stdout) as { time: string }).time).toBe(`${today}T00:00:00.000000Z`)
  })

  it('the CLI refuses a SPEC argument that is not one, naming the grammar', () => {
    for (const spec of ['123', 'python', '2026-13-45', 'v0']) {
      const cut = runCli(['cut', spec, '--mount', m.mountpoint])
      expect(cut.status).not.toBe(0)
      expect(cut.stderr.trim().split('\n')).toHaveLength(1)
      expect(cut.stderr).toMatch(/^fffs: malformed time spec/)
    }
  })
})

describe('ISO-8601 basic format (no colons)', () => {
  it('reads like the extended form, and real rsync copies "dir@BASIC/" as it was', async () => {
    await fsp.mkdir(m.p('data', 'sub'), { recursive: true })
    await fsp.writeFile(m.p('data', 'a'), 'one')
    await fsp.writeFile(m.p('data', 'sub', 'b'), 'bee')
    const t = await instantNow()
    await fsp.writeFile(m.p('data', 'a'), 'two')
    await fsp.writeFile(m.p('data', 'c'), 'later')
    const basic = basicIso(t.replace('Z', '000Z')) // µs: 20261207T060000.123000Z
    expect(basic).toMatch(/^\d{8}T\d{6}\.\d{6}Z$/)
    expect(await fsp.readFile(m.p(`data@${basic}`, 'a'), 'utf8')).toBe('one')
    expect(await fsp.readFile(m.p('data', `a@${basicIso(t)}`), 'utf8')).toBe('one')
    const out = path.join(scratch, 'rsync-out')
    execFileSync('rsync', ['-a', `${m.p(`data@${basic}`)}/`, `${out}/`], { cwd: m.mountpoint, timeout: 30_000 })
    expect(sh('find . -type f | sort | xargs -n1 sh -c \'echo "$0: $(cat "$0")"\'', out)).toBe('./a: one\n./sub/b: bee\n')
    // the same with a relative source path, as typed in a shell inside the mount
    const out2 = path.join(scratch, 'rsync-out2')
    execFileSync('rsync', ['-a', `data@${basic}/`, `${out2}/`], { cwd: m.mountpoint, timeout: 30_000 })
    expect((await fsp.readdir(out2)).sort()).toEqual(['a', 'sub'])
  })
})

describe('the mount root at a cut: /.at/SPEC/', () => {
  it('reaches the whole tree at the cut, is hidden from the listing, and is read-only', async () => {
    await fsp.mkdir(m.p('attop'))
    await fsp.writeFile(m.p('attop', 'top.txt'), 'v1')
    const t = await instantNow()
    await fsp.writeFile(m.p('attop', 'top.txt'), 'v2')
    await fsp.writeFile(m.p('late.txt'), 'late')
    expect(await fsp.readFile(m.p('.at', t, 'attop', 'top.txt'), 'utf8')).toBe('v1')
    expect(await fsp.readFile(m.p('.at', basicIso(t), 'attop', 'top.txt'), 'utf8')).toBe('v1')
    const atRoot = await fsp.readdir(m.p('.at', t))
    expect(atRoot).toContain('attop')
    expect(atRoot).not.toContain('late.txt')
    expect(await fsp.readdir(m.p())).not.toContain('.at')
    expect((await fsp.stat(m.p('.at'))).isDirectory()).toBe(true)
    expect(await fsp.readdir(m.p('.at'))).toEqual([])
    expect(sh(`ls ".at/${t}/attop"`, m.mountpoint)).toBe('top.txt\n')
    expect(await errCode(fsp.writeFile(m.p('.at', t, 'attop', 'new.txt'), 'x'))).toBe('EROFS')
    expect(await errCode(fsp.mkdir(m.p('.at', t, 'newdir')))).toBe('EROFS')
    expect(await errCode(fsp.readFile(m.p('.at', t, 'attop', 'top.txt@v1')))).toBe('EINVAL') // a second spec
    // .at/vN: the mount root's own row N (its first version is the empty root)
    expect(await fsp.readdir(m.p('.at', 'v1'))).toEqual([])
  })
})

describe('relative and human times', () => {
  it('at the mount: f@-1h is before a new file existed, f@-0s and f@now read it, .at/-1h/ is the tree an hour ago', async () => {
    await fsp.writeFile(m.p('rel.txt'), 'relative')
    expect(await errCode(fsp.stat(m.p('rel.txt@-1h')))).toBe('ENOENT')
    expect(await fsp.readFile(m.p('rel.txt@-0s'), 'utf8')).toBe('relative')
    expect(await fsp.readFile(m.p('rel.txt@now'), 'utf8')).toBe('relative')
    expect(await errCode(fsp.stat(m.p('rel.txt@today')))).toBe('ENOENT') // 00:00 UTC today: before this mount
    expect(await fsp.readdir(m.p('.at', '-1h'))).toEqual([])
  })

  it('the CLI resolves a relative spec at the call and says to what', async () => {
    await fsp.writeFile(m.p('cli-rel.txt'), 'first')
    await new Promise((r) => setTimeout(r, 50))
    const beforeMs = Date.now()
    const cat = runCli(['cat', m.p('cli-rel.txt@-0s')])
    const afterMs = Date.now()
    expect(cat.status, cat.stderr).toBe(0)
    expect(cat.stdout).toBe('first')
    const said = /^fffs: .*cli-rel\.txt@-0s is .*cli-rel\.txt@(\S+)$/m.exec(cat.stderr)
    expect(said, cat.stderr).not.toBeNull()
    const resolvedMs = Date.parse(said![1]!)
    expect(resolvedMs).toBeGreaterThanOrEqual(beforeMs - 1)
    expect(resolvedMs).toBeLessThanOrEqual(afterMs)
    const log = runCli(['log', '--since', '-1h', m.p('cli-rel.txt')])
    expect(log.status, log.stderr).toBe(0)
    expect(log.stderr).toMatch(/^fffs: --since -1h is \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/m)
    const cut = runCli(['cut', '-5m', '--mount', m.mountpoint])
    expect(cut.status, cut.stderr).toBe(0)
    expect(cut.stderr).toMatch(/^fffs: cut -5m is /)
    expect(cut.stdout).toMatch(/· stable/)
  })
})
