// Hard links through the mount as `fffs log` shows them: each name leads to the one inode's
// history, whose versions say how many names the file had and which change made them.

import { promises as fsp } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount
beforeAll(async () => {
  m = await startMount()
})
afterAll(async () => {
  await m?.cleanup()
})

interface Row {
  version: number
  sizeBytes: number
  links: number
  change: string
}

describe('fffs log of a hard-linked file', () => {
  it('lists the same history under either name, with the links each version had', async () => {
    await fsp.writeFile(m.p('report.txt'), 'draft')
    await fsp.link(m.p('report.txt'), m.p('report-copy.txt'))
    await fsp.writeFile(m.p('report-copy.txt'), 'final')
    await fsp.unlink(m.p('report.txt'))
    const log = runCli(['log', '--json', m.p('report-copy.txt')])
    expect(log.status).toBe(0)
    const rows = (JSON.parse(log.stdout) as Row[]).map((r) => [r.version, r.sizeBytes, r.links, r.change])
    expect(rows).toEqual([
      [1, 0, 1, 'create'],
      [2, 5, 1, 'version'],
      [3, 5, 2, 'link'],
      [4, 5, 2, 'version'],
      [5, 5, 1, 'unlink'],
    ])
    expect(runCli(['log', m.p('report-copy.txt')]).stdout).toMatch(/^VERSION\s+TIME\s+SENSOR_TIME\s+SIZE\s+LINKS\s+CHANGE\n/)
  })
})
