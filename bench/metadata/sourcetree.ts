// The source tree the `git clone`-like row unpacks: the first N regular files (by path, bytes
// ≤ 256 KiB) of this machine's /usr/include — C headers, a real tree of small source files —
// packed by GNU tar with fixed owner, mode bits as installed and one mtime, so the same
// installed headers give the same tarball (its SHA-256 is in the bench's JSON).

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export const TREE_SOURCE = '/usr/include'
const FILE_BYTES_MAX = 256 * 1024
const MTIME = '@1700000000' // any fixed instant: the tarball must not depend on when it is made

export interface SourceTree {
  readonly tarball: string
  readonly source: string
  readonly files: number
  readonly bytes: number
  readonly sha256: string
}

function regularFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...regularFiles(full))
    else if (entry.isFile()) out.push(full)
  }
  return out
}

export async function buildSourceTree(tarball: string, fileCount: number): Promise<SourceTree> {
  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
  const picked = regularFiles(TREE_SOURCE)
    .sort(byteOrder)
    .filter((f) => fs.statSync(f).size <= FILE_BYTES_MAX)
    .slice(0, fileCount)
  if (picked.length < fileCount) throw new Error(`source tree: ${TREE_SOURCE} has only ${picked.length} regular files of at most ${FILE_BYTES_MAX} B, ${fileCount} wanted`)
  const list = `${tarball}.list`
  fs.writeFileSync(list, picked.map((f) => path.relative('/', f)).join('\n') + '\n')
  await execFileP('tar', ['--create', '--file', tarball, '--format=gnu', '--owner=0', '--group=0', '--numeric-owner', `--mtime=${MTIME}`, '--no-recursion', '--directory=/', '--files-from', list], { timeout: 300_000 })
  fs.rmSync(list)
  return {
    tarball,
    source: `the first ${fileCount} regular files (by path, ≤ ${FILE_BYTES_MAX / 1024} KiB) of ${TREE_SOURCE}`,
    files: picked.length,
    bytes: picked.reduce((sum, f) => sum + fs.statSync(f).size, 0),
    sha256: createHash('sha256').update(fs.readFileSync(tarball)).digest('hex'),
  }
}
