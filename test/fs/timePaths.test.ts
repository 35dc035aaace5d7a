// Writes through time paths: a sensor-time write through `P@sensor:T` never waits for a cut
// (bash, Python, a C open(2)), every other mutation under a time path or a snapshot is EROFS,
// and a snapshot of the future is refused. Through a real mount, with the tools themselves.

import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errCode, instantNow, python, runCli, startMount, type TestMount } from '../helpers/mount.js'

// Δ = 5 s (the default): a lookup that waited for the sensor cut T + Δ + 2δ would find T late.
let m: TestMount
beforeAll(async () => {
  m = await startMount(['--sensor-lag-max', '5000', '--clock-skew-max', '10', '--max-wait', '20000'])
})
afterAll(async () => {
  await m?.cleanup()
})

function bash(script: string, ...args: string[]): string {
  return execFileSync('bash', ['-euo', 'pipefail', '-c', script, 'bash', ...args], { cwd: m.mountpoint, encoding: 'utf8', timeout: 60_000 })
}

/** The sensor time fffs recorded for the latest version of a file (`fffs log --json`). */
function loggedSensorTime(file: string): string | null {
  const log = runCli(['log', '--json', file])
  expect(log.status, log.stderr).toBe(0)
  const rows = JSON.parse(log.stdout) as Array<{ sensorTime: string | null }>
  return rows[rows.length - 1]!.sensorTime
}

/** A sensor time a fraction of a second in the past, as collectors write it (ISO, µs). */
function justSampled(): string {
  return new Date(Date.now() - 200).toISOString().replace('Z', '000Z')
}

describe('a sensor-time write through the path never waits for a cut', () => {
  it('bash: echo > "P@sensor:T" for a new P, an existing P, and a new file in a new directory', () => {
    const t1 = justSampled()
    bash('echo 42 > "new.dat@sensor:$1"', t1)
    expect(bash('cat new.dat')).toBe('42\n')
    expect(loggedSensorTime(m.p('new.dat'))).toBe(t1)
    const t2 = justSampled()
    bash('echo 43 > "new.dat@sensor:$1"', t2)
    expect(bash('cat new.dat')).toBe('43\n')
    expect(loggedSensorTime(m.p('new.dat'))).toBe(t2)
    const t3 = justSampled()
    bash('mkdir -p station/pmu7 && echo 44 > "station/pmu7/freq.dat@sensor:$1"', t3)
    expect(bash('cat station/pmu7/freq.dat')).toBe('44\n')
    expect(loggedSensorTime(m.p('station', 'pmu7', 'freq.dat'))).toBe(t3)
  })

  it('Python open(P@sensor:T, "wb"), new and existing, with the basic ISO form too', () => {
    const write = 'import sys\nwith open(sys.argv[1], "wb") as f: f.write(sys.argv[2].encode())'
    const t1 = justSampled()
    python(write, m.p(`py.dat@sensor:${t1}`), 'one')
    expect(python('import sys; print(open(sys.argv[1]).read())', m.p('py.dat'))).toBe('one\n')
    expect(loggedSensorTime(m.p('py.dat'))).toBe(t1)
    const t2 = justSampled()
    python(write, m.p(`py.dat@sensor:${t2.replace(/[-:]/g, '')}`), 'two')
    expect(python('import sys; print(open(sys.argv[1]).read())', m.p('py.dat'))).toBe('two\n')
    expect(loggedSensorTime(m.p('py.dat'))).toBe(t2)
  })

  it('a plain open(2) with O_CREAT from C, in a directory made just before', async () => {
    const source = path.join(m.root, 'sensor_open.c')
    const binary = path.join(m.root, 'sensor_open')
    await fsp.writeFile(
      source,
      [
        '#include <fcntl.h>',
        '#include <stdio.h>',
        '#include <string.h>',
        '#include <unistd.h>',
        'int main(int argc, char **argv) {',
        '  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);',
        '  if (fd < 0) { perror("open"); return 1; }',
        '  if (write(fd, argv[2], strlen(argv[2])) < 0) { perror("write"); return 1; }',
        '  if (close(fd) < 0) { perror("close"); return 1; }',
        '  return 0;',
        '}',
      ].join('\n'),
    )
    execFileSync('cc', ['-o', binary, source], { timeout: 60_000 })
    await fsp.mkdir(m.p('c-dir'))
    const t = justSampled()
    execFileSync(binary, [m.p('c-dir', `c.dat@sensor:${t}`), 'from C'], { timeout: 60_000 })
    expect(await fsp.readFile(m.p('c-dir', 'c.dat'), 'utf8')).toBe('from C')
    expect(loggedSensorTime(m.p('c-dir', 'c.dat'))).toBe(t)
  })

  it('a sensor time older than now − Δ is still refused (EINVAL), at once', async () => {
    const late = new Date(Date.now() - 60_000).toISOString()
    expect(await errCode(fsp.writeFile(m.p(`late.dat@sensor:${late}`), 'x'))).toBe('EINVAL')
  })
})

describe('every mutation under a time path or a snapshot is EROFS', () => {
  it('creating, removing, renaming, linking and changing attributes of frozen nodes, from the tools', async () => {
    await fsp.mkdir(m.p('data', 'sub'), { recursive: true })
    await fsp.writeFile(m.p('data', 'f'), 'frozen')
    const t = await instantNow()
    expect(bash('mkdir .snapshot/s && ls .snapshot')).toBe('s\n')
    const frozen = [`data@${t}`, '.snapshot/s/data', `.at/${t}/data`]
    for (const dir of frozen) {
      const shellErrors = bash(
        [
          'for cmd in "touch $1/new.txt" "echo x > $1/new.txt" "mkdir $1/x" "rm $1/f" "rmdir $1/sub" "mv $1/f $1/g" "mv $1/f moved" ' +
            '"ln -s f $1/l" "chmod 600 $1/f" "chown 1:1 $1/f" "touch -d 2020-01-01 $1/f" "truncate -s 0 $1/f" "echo more >> $1/f" ' +
            '"setfattr -n user.x -v 1 $1/f" "setfattr -x user.x $1/f" "ln $1/f hard-from-frozen" "ln data/f $1/hard-into-frozen" "mkfifo $1/fifo"; do',
          '  out=$(eval "$cmd" 2>&1 || true)',
          '  case "$out" in *"Read-only file system"*) echo EROFS ;; *) echo "not EROFS: $cmd: $out" ;; esac',
          'done',
        ].join('\n'),
        dir,
      )
      expect(shellErrors, dir).toBe('EROFS\n'.repeat(18))
      expect(await errCode(fsp.rename(m.p('data', 'f'), m.p(dir, 'in')))).toBe('EROFS')
    }
    expect(await errCode(fsp.mkdir(m.p('.snapshot', 's', 'x')))).toBe('EROFS')
    expect(await errCode(fsp.writeFile(m.p(`data@${t}`, 'new.txt'), 'x'))).toBe('EROFS')
    expect(await errCode(fsp.open(m.p('data', `f@${t}`), 'r+'))).toBe('EROFS')
    expect(await errCode(fsp.open(m.p('data', 'f@v1'), 'w'))).toBe('EROFS')
    // nothing changed
    expect(await fsp.readFile(m.p('data', 'f'), 'utf8')).toBe('frozen')
    expect((await fsp.readdir(m.p('data'))).sort()).toEqual(['f', 'sub'])
  })
})

describe('a snapshot of the future is refused', () => {
  it('by the CLI with one line and a non-zero exit, and by mkdir .snapshot/NAME@SPEC with EINVAL', async () => {
    const cli = runCli(['snapshot', 'create', 'tomorrow', '--at', '2030-01-01T00:00:00Z', '--mount', m.mountpoint])
    expect(cli.status).not.toBe(0)
    expect(cli.stderr.trim().split('\n')).toHaveLength(1)
    expect(cli.stderr).toMatch(/^fffs: snapshot tomorrow at 2030-01-01T00:00:00.000000Z is in the future/)
    expect(await errCode(fsp.mkdir(m.p('.snapshot', 'later@2030-01-01T00:00:00Z')))).toBe('EINVAL')
    expect(await fsp.readdir(m.p('.snapshot'))).not.toContain('tomorrow')
    // a past instant, relative or absolute, is pinned
    await fsp.mkdir(m.p('.snapshot', 'hour-ago@-1h'))
    const pinned = runCli(['snapshot', 'create', 'minute-ago', '--at', '-1m', '--mount', m.mountpoint])
    expect(pinned.status, pinned.stderr).toBe(0)
    expect(pinned.stderr).toMatch(/^fffs: --at -1m is /)
    expect((await fsp.readdir(m.p('.snapshot'))).sort()).toEqual(expect.arrayContaining(['hour-ago', 'minute-ago']))
    expect(await fsp.readdir(m.p('.snapshot', 'hour-ago'))).toEqual([])
  })
})
