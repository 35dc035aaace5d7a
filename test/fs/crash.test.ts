// Crash safety: kill -9 of the mount process mid-stream, restart, and every version that a
// close had acknowledged is there, byte-identical; a torn log tail is dropped, never served.

import { createHash } from 'node:crypto'
import { promises as fsp, readdirSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startMount, type TestMount } from '../helpers/mount.js'

let m: TestMount | null = null
afterEach(async () => {
  await m?.cleanup()
  m = null
})

function content(i: number): Buffer {
  // From 1 KB to ~300 KB, some spanning log chunks; every fifth ~3 MiB, whose chunks of 1 MiB and
  // more the log writes with O_DIRECT.
  const size = i % 5 === 4 ? 3 * 1024 * 1024 + ((i * 7919) % 100_000) : 1000 + ((i * 7919) % 300_000)
  const out = Buffer.alloc(size)
  const seed = createHash('sha256').update(String(i)).digest()
  for (let k = 0; k < size; k++) out[k] = seed[k % 32]! ^ (k & 0xff)
  return out
}

describe('kill -9', () => {
  it('keeps every acknowledged version, byte-identical, and drops a torn tail', async () => {
    m = await startMount()
    const mount = m
    const acked: number[] = []
    const ackedVersions: Buffer[] = []
    await fsp.writeFile(mount.p('stream.log'), '')
    let stop = false
    const writer = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          await fsp.writeFile(mount.p(`f${i}.bin`), content(i))
          acked.push(i)
          await fsp.writeFile(mount.p('stream.log'), content(i))
          ackedVersions.push(content(i))
        } catch {
          return // the mount died under us
        }
      }
    })()
    await new Promise((r) => setTimeout(r, 1500))
    await mount.kill9()
    stop = true
    await writer
    expect(acked.length).toBeGreaterThan(5)

    // Garbage after the last entry, as a crash mid-append leaves it.
    const segments = readdirSync(path.join(mount.dataDir, 'segments')).sort()
    await fsp.appendFile(path.join(mount.dataDir, 'segments', segments[segments.length - 1]!), Buffer.from('FFS1 torn entry that never finished'))

    await mount.restart()
    expect(mount.output()).toMatch(/dropped [1-9]\d* torn bytes/)
    for (const i of acked) expect((await fsp.readFile(mount.p(`f${i}.bin`))).equals(content(i))).toBe(true)
    // stream.log: v1 is the create (writing no bytes adds no version), then one version per acknowledged close
    for (let k = 0; k < ackedVersions.length; k++) {
      expect((await fsp.readFile(mount.p(`stream.log@v${k + 2}`))).equals(ackedVersions[k]!)).toBe(true)
    }
    // and the file system still takes writes after recovery
    await fsp.writeFile(mount.p('after.txt'), 'alive')
    expect(await fsp.readFile(mount.p('after.txt'), 'utf8')).toBe('alive')
  })
})
