// What the kernel caches of a group's live tree: names and attributes for as long as the mount
// is told of every change it does not make itself. A change made through a second mount of
// the same group (contents, size, names, deletes, a directory's entries) reaches a reader on
// the first as soon as the member it talks to has applied it, however long the kernel may
// otherwise keep what it cached. Each wait is bounded; none asserts a time.

import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, promises as fsp, readdirSync, readFileSync, statSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRunningGroup, waitFor, type ClusterMount, type TestGroup } from '../helpers/cluster.js'

const SEEN_WITHIN_MS = 10_000 // a bound for a shared machine, not a measure: the note arrives one hop after the change applies

describe('a mount of a 3-replica group, changed through another mount', () => {
  let group: TestGroup
  let reader: ClusterMount // served by member 0
  let writer: ClusterMount // served by member 1
  beforeAll(async () => {
    group = await startRunningGroup(3)
    reader = await group.mount('mnt-reader')
    writer = await group.mount('mnt-writer', await group.writeClientConfig('client-writer.json', 1))
  })
  afterAll(async () => {
    await group?.cleanup()
  })

  /** Waits until the reader's view of something equals `expected`; each look is a fresh system call on the reader's mount. */
  async function readerSees<T>(what: string, look: () => T, expected: T): Promise<void> {
    await waitFor(`the reader sees ${what}`, SEEN_WITHIN_MS, () => {
      const seen = look()
      return JSON.stringify(seen) === JSON.stringify(expected) ? true : undefined
    })
  }

  it('sees new contents of a file it holds open and has read (its cached pages go)', async () => {
    await fsp.writeFile(writer.p('contents.txt'), 'version one')
    await readerSees('the first version', () => readFileSync(reader.p('contents.txt'), 'utf8'), 'version one')
    const held = await fsp.open(reader.p('contents.txt'), 'r')
    try {
      const read = async (): Promise<string> => {
        const buffer = Buffer.alloc(64)
        const { bytesRead } = await held.read(buffer, 0, 64, 0)
        return buffer.subarray(0, bytesRead).toString()
      }
      expect(await read()).toBe('version one')
      await fsp.writeFile(writer.p('contents.txt'), 'version two') // the same size: only the contents differ
      await waitFor('the reader reads the second version through its open handle', SEEN_WITHIN_MS, async () => ((await read()) === 'version two' ? true : undefined))
    } finally {
      await held.close()
    }
  })

  it('sees new contents of a file it wrote itself and keeps cached (its pages go)', async () => {
    await fsp.writeFile(reader.p('own.txt'), 'written by the reader') // its bytes become the reader's cached pages at the next open
    expect(readFileSync(reader.p('own.txt'), 'utf8')).toBe('written by the reader')
    expect(readFileSync(reader.p('own.txt'), 'utf8')).toBe('written by the reader') // from those pages, kept across opens
    await waitFor('the writer sees the file', SEEN_WITHIN_MS, () => (readFileSync(writer.p('own.txt'), 'utf8') === 'written by the reader' ? true : undefined))
    await fsp.writeFile(writer.p('own.txt'), 'rewritten by writer!') // the same size: only the contents differ
    await readerSees('the rewrite', () => readFileSync(reader.p('own.txt'), 'utf8'), 'rewritten by writer!')
  })

  it('sees the new size of a file it has stat-ed', async () => {
    await fsp.writeFile(writer.p('grows.log'), 'one\n')
    await readerSees('the first size', () => statSync(reader.p('grows.log')).size, 4)
    await fsp.appendFile(writer.p('grows.log'), 'two\n')
    await readerSees('the appended size', () => statSync(reader.p('grows.log')).size, 8)
    await readerSees('the appended bytes', () => readFileSync(reader.p('grows.log'), 'utf8'), 'one\ntwo\n')
  })

  it('sees a name rebound: a file renamed over one it has read', async () => {
    await fsp.writeFile(writer.p('doc.txt'), 'old document')
    await readerSees('the old document', () => readFileSync(reader.p('doc.txt'), 'utf8'), 'old document')
    await fsp.writeFile(writer.p('.doc.tmp'), 'new document')
    await fsp.rename(writer.p('.doc.tmp'), writer.p('doc.txt'))
    await readerSees('the new document under the old name', () => readFileSync(reader.p('doc.txt'), 'utf8'), 'new document')
    await readerSees('the temporary name gone', () => existsSync(reader.p('.doc.tmp')), false)
  })

  it('sees a file deleted, and a directory gone, that it had looked up', async () => {
    await fsp.mkdir(writer.p('gone'))
    await fsp.writeFile(writer.p('gone', 'file'), 'x')
    await readerSees('the file', () => existsSync(reader.p('gone', 'file')), true)
    await fsp.unlink(writer.p('gone', 'file'))
    await readerSees('the file deleted', () => existsSync(reader.p('gone', 'file')), false)
    await fsp.rmdir(writer.p('gone'))
    await readerSees('the directory deleted', () => existsSync(reader.p('gone')), false)
  })

  it('sees the new size of a file it wrote and stat-ed itself (the attributes its own commit left are not kept past a change told)', async () => {
    await fsp.writeFile(reader.p('mine.log'), 'one\n')
    expect(statSync(reader.p('mine.log')).size).toBe(4) // answered from what the reader's commit left
    await waitFor('the writer sees the file', SEEN_WITHIN_MS, () => (existsSync(writer.p('mine.log')) ? true : undefined))
    await fsp.appendFile(writer.p('mine.log'), 'two\n')
    await readerSees('the appended size', () => statSync(reader.p('mine.log')).size, 8)
    await readerSees('the appended bytes', () => readFileSync(reader.p('mine.log'), 'utf8'), 'one\ntwo\n')
  })

  it('lists the sizes and modes another mount set on files it has stat-ed (ls -l: readdirplus)', async () => {
    await fsp.mkdir(reader.p('sized'))
    await fsp.writeFile(reader.p('sized', 'a'), 'a')
    await fsp.writeFile(reader.p('sized', 'b'), 'bb')
    const listing = (): string[] => execFileSync('ls', ['-ln', reader.p('sized')], { encoding: 'utf8' }).split('\n').filter((l) => / [ab]$/.test(l)).map((l) => { const f = l.split(/\s+/); return `${f[0]} ${f[4]} ${f[8]}` })
    expect(listing()).toEqual(['-rw-r--r-- 1 a', '-rw-r--r-- 2 b'])
    await waitFor('the writer sees both files', SEEN_WITHIN_MS, () => (existsSync(writer.p('sized', 'b')) ? true : undefined))
    await fsp.appendFile(writer.p('sized', 'a'), 'aaa')
    await fsp.chmod(writer.p('sized', 'b'), 0o600)
    await readerSees('the new size and mode in ls -l', listing, ['-rw-r--r-- 4 a', '-rw------- 2 b'])
  })

  it('lists the names it made, removed and renamed itself as a listing fetched afresh shows them, in the same order', async () => {
    /** The names in the order getdents returns them, as `ls -U` prints them (node's readdir sorts). */
    const inDirectoryOrder = (dir: string): string[] => execFileSync('ls', ['-1U', dir], { encoding: 'utf8' }).split('\n').filter((n) => n !== '')
    await fsp.mkdir(reader.p('own-listing'))
    for (const name of ['B', 'a0']) await fsp.writeFile(reader.p('own-listing', name), name)
    await fsp.unlink(reader.p('own-listing', 'a0'))
    await fsp.rename(reader.p('own-listing', 'B'), reader.p('own-listing', 'C'))
    expect(inDirectoryOrder(reader.p('own-listing'))).toEqual(['C'])
    for (const name of ['b', 'ä', 'a']) await fsp.writeFile(reader.p('own-listing', name), name)
    await fsp.mkdir(reader.p('own-listing', 'sub'))
    await fsp.symlink('a', reader.p('own-listing', 'link'))
    const expected = ['C', 'a', 'b', 'link', 'sub', 'ä'] // the store's order: by the bytes of the names
    expect(inDirectoryOrder(reader.p('own-listing'))).toEqual(expected)
    expect(inDirectoryOrder(reader.p('own-listing', 'sub'))).toEqual([])
    await readerSees('the same listing on the other mount', () => (existsSync(writer.p('own-listing', 'ä')) ? inDirectoryOrder(writer.p('own-listing')) : []), expected)
    expect(['a0', 'B', 'C', 'a'].map((name) => existsSync(reader.p('own-listing', name)))).toEqual([false, false, true, true])
    expect(existsSync(reader.p('own-listing', 'sub', 'x'))).toBe(false)
    await fsp.writeFile(writer.p('own-listing', 'sub', 'x'), 'x')
    await readerSees("the other mount's file in the directory it made, by name", () => existsSync(reader.p('own-listing', 'sub', 'x')), true)
    await readerSees("the other mount's file in the directory it made, listed", () => inDirectoryOrder(reader.p('own-listing', 'sub')), ['x'])
  })

  it('its own unlink of one name of a hard-linked file shows the other name with one link less', async () => {
    await fsp.writeFile(reader.p('linked'), 'x')
    await fsp.link(reader.p('linked'), reader.p('linked-too'))
    expect(lstatSync(reader.p('linked')).nlink).toBe(2)
    await fsp.unlink(reader.p('linked-too'))
    expect(lstatSync(reader.p('linked')).nlink).toBe(1)
  })

  it("sees a directory's entries change in a listing it has read", async () => {
    await fsp.mkdir(writer.p('listed'))
    await fsp.writeFile(writer.p('listed', 'a'), 'a')
    await readerSees('one entry', () => readdirSync(reader.p('listed')), ['a'])
    await fsp.writeFile(writer.p('listed', 'b'), 'b')
    await readerSees('two entries', () => readdirSync(reader.p('listed')).sort(), ['a', 'b'])
    await fsp.chmod(writer.p('listed', 'a'), 0o600)
    await readerSees("a's new mode", () => statSync(reader.p('listed', 'a')).mode & 0o777, 0o600)
  })
})
