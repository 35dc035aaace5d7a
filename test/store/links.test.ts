// Link counts in the store: a store written before they were kept opens as it was (its nodes
// have none: files count 1, directories "not counted"), and from then on links, unlinks and
// directories made in it keep exact counts, at every cut.

import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { EmbeddedClient } from '../../src/client/embedded.js'
import { HLC_MAX } from '../../src/temporal/hlc.js'

/**
 * An embedded store as fffs wrote it before link counts (commit a990657): /docs with a
 * subdirectory `sub`, a file `a.txt` holding 'written before links', and `gone.txt` made and
 * unlinked. Opened from a copy: opening writes to it.
 */
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/store-before-link-counts')

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function openCopy(): Promise<EmbeddedClient> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fffs-links-'))
  cpSync(FIXTURE, dir, { recursive: true })
  const { client } = await EmbeddedClient.open(dir)
  cleanups.push(async () => {
    await client.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return client
}

describe('a store written before link counts', () => {
  it('opens with its nodes as they were, and counts links from then on', async () => {
    const client = await openCopy()
    const docs = await client.walk(['docs'], HLC_MAX)
    const file = await client.walk(['docs', 'a.txt'], HLC_MAX)
    expect([docs.nlink, file.nlink]).toEqual([undefined, undefined]) // reported as 1: "not counted" for a directory
    const into = Buffer.alloc(64)
    expect(into.subarray(0, await client.read(file, 0, into, 64)).toString()).toBe('written before links')

    const { stamp: linked } = await client.submit({ type: 'link', ino: file.ino, parent: docs.ino, name: 'b.txt' })
    expect((await client.walk(['docs', 'b.txt'], HLC_MAX)).nlink).toBe(2)
    const { ino: made } = await client.submit({ type: 'mknod', parent: docs.ino, name: 'new', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
    await client.submit({ type: 'mknod', parent: made!, name: 'inner', kind: 'dir', mode: 0o755, uid: 0, gid: 0 })
    expect((await client.attr(made!, HLC_MAX))?.nlink).toBe(3)
    expect((await client.walk(['docs'], HLC_MAX)).nlink).toBeUndefined() // an uncounted directory is never counted wrong
    await client.submit({ type: 'unlink', parent: docs.ino, name: 'a.txt' })
    expect((await client.attr(file.ino, HLC_MAX))?.nlink).toBe(1)
    expect((await client.attr(file.ino, linked))?.nlink).toBe(2) // the count each version had
    await client.submit({ type: 'unlink', parent: docs.ino, name: 'b.txt' })
    expect((await client.attr(file.ino, HLC_MAX))?.nlink).toBe(0)
  })

  it('refuses a link to a directory, to a node with no name left, and onto a name in use', async () => {
    const client = await openCopy()
    const docs = await client.walk(['docs'], HLC_MAX)
    const sub = await client.walk(['docs', 'sub'], HLC_MAX)
    const file = await client.walk(['docs', 'a.txt'], HLC_MAX)
    const refused = (mutation: Parameters<EmbeddedClient['submit']>[0]): Promise<string> => client.submit(mutation).then(() => 'applied', (err: { code: string }) => err.code)
    expect(await refused({ type: 'link', ino: sub.ino, parent: docs.ino, name: 'sub2' })).toBe('EPERM')
    expect(await refused({ type: 'link', ino: file.ino, parent: docs.ino, name: 'sub' })).toBe('EEXIST')
    expect(await refused({ type: 'link', ino: file.ino, parent: file.ino, name: 'x' })).toBe('ENOTDIR')
    await client.submit({ type: 'unlink', parent: docs.ino, name: 'a.txt' })
    expect(await refused({ type: 'link', ino: file.ino, parent: docs.ino, name: 'back' })).toBe('ENOENT')
  })
})
