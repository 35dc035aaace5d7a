// A mount beside its member reads file bytes from the member's log files itself, where the
// member says they lie (Store.locate): one small round trip instead of the bytes through the
// socket, and the disk read with O_DIRECT where the bytes are whole aligned pages, as the
// member reads them. A file is read only if it is the very one the member named (Disk.fileId:
// device, inode, birth time); one collected by segment GC, or a store discarded since, is gone
// from its path or is another file there, and the read goes through the member instead. Log
// files are only appended to, never rewritten in place, so the file the member named holds
// those bytes as long as it can be opened, and a handle kept open reads them even once the
// file is deleted. Where a version's bytes lie never changes either, so a sequential reader asks
// once per window of 16 MiB (LocatedWindows), not once per read.

import { constants as fsConstants, promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { fileIdOf } from '../store/disk.js'
import { PAGE_BYTES, type PageOffsetOf } from '../store/segmentLog.js'
import type { Attr } from '../store/records.js'
import type { LocatedBytes } from '../store/store.js'

/** Log files kept open (the oldest is closed past it). */
const OPEN_FILES_MAX = 32
/** How much of a version one question for where its bytes lie covers: a read inside a window asked of before asks nothing. */
const LOCATE_WINDOW_BYTES = 16 * 1024 * 1024
/** Versions whose windows are kept (the oldest goes first). */
const LOCATED_VERSIONS_MAX = 16

interface OpenLogFile {
  readonly id: string
  /** Buffered, and O_DIRECT (null where the file system refuses it). */
  readonly handles: Promise<{ buffered: FileHandle; direct: FileHandle | null }>
}

export class LocalLogReader {
  private readonly files = new Map<string, OpenLogFile>() // by path; in the order opened
  /** `pageOffsetOf`: where a buffer starts within its page (O_DIRECT needs page-aligned memory); absent: no direct reads. */
  constructor(private readonly pageOffsetOf?: PageOffsetOf) {}

  /** Reads what `located` names into `into` (zeros where no piece is); the bytes read, or null when a file is not the one named (read through the member then). */
  async read(located: LocatedBytes, into: Buffer): Promise<number | null> {
    const opened = await Promise.all(located.files.map(({ file, id }) => this.open(file, id)))
    if (opened.some((handles) => handles === null)) return null
    into.fill(0, 0, located.sizeBytes)
    await Promise.all(
      located.pieces.map(async (piece) => {
        const { buffered, direct } = opened[piece.fileIndex]!
        const target = into.subarray(piece.intoOffset, piece.intoOffset + piece.lengthBytes)
        const aligned = direct !== null && piece.offset % PAGE_BYTES === 0 && piece.lengthBytes % PAGE_BYTES === 0 && this.pageOffsetOf?.(target) === 0
        await readFully(aligned ? direct : buffered, target, piece.offset)
      }),
    )
    return located.sizeBytes
  }

  /** Closes every file kept open. */
  async close(): Promise<void> {
    const all = [...this.files.values()]
    this.files.clear()
    await Promise.all(all.map((f) => closeAll(f.handles)))
  }

  private async open(file: string, id: string): Promise<{ buffered: FileHandle; direct: FileHandle | null } | null> {
    const known = this.files.get(file)
    if (known !== undefined && known.id === id) return known.handles.catch(() => null)
    if (known !== undefined) {
      this.files.delete(file)
      void closeAll(known.handles)
    }
    const handles = openChecked(file, id)
    this.files.set(file, { id, handles })
    handles.catch(() => {
      if (this.files.get(file)?.handles === handles) this.files.delete(file)
    })
    for (const [oldest, kept] of this.files) {
      if (this.files.size <= OPEN_FILES_MAX) break
      this.files.delete(oldest)
      void closeAll(kept.handles)
    }
    return handles.catch(() => null)
  }
}

/** Opens `file` twice, buffered and O_DIRECT; fails unless it is the file `id` names. */
async function openChecked(file: string, id: string): Promise<{ buffered: FileHandle; direct: FileHandle | null }> {
  const buffered = await fsp.open(file, 'r')
  try {
    if (fileIdOf(await buffered.stat({ bigint: true })) !== id) throw new Error(`${file} is another file now`)
    let direct = await fsp.open(file, fsConstants.O_RDONLY | fsConstants.O_DIRECT).catch(() => null)
    if (direct !== null && fileIdOf(await direct.stat({ bigint: true })) !== id) {
      await direct.close()
      direct = null // replaced between the two opens: buffered reads of the first
    }
    return { buffered, direct }
  } catch (err) {
    await buffered.close()
    throw err
  }
}

async function closeAll(handles: OpenLogFile['handles']): Promise<void> {
  const { buffered, direct } = await handles.catch(() => ({ buffered: null, direct: null }))
  await Promise.all([buffered?.close(), direct?.close()].map((p) => p?.catch(() => undefined)))
}

async function readFully(handle: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done)
    if (bytesRead === 0) throw new Error(`a log file ends before byte ${position + into.length}`)
    done += bytesRead
  }
}

/**
 * Where versions' bytes lie, a window at a time: the first read in a window asks for all of it
 * (clipped at the version's end), the others take their part of that answer. A version is named
 * by its inode and stamp, and its bytes never move within the files named (log files are only
 * appended to; one collected is gone, which the reader notices).
 */
export class LocatedWindows {
  private readonly byVersion = new Map<string, Map<number, Promise<LocatedBytes | null>>>() // in the order first asked
  constructor(private readonly windowBytes = LOCATE_WINDOW_BYTES) {}

  /** Where bytes [offset, offset + lengthBytes) of `attr` lie (`ask`: where a range lies, asked of the member); null when the member cannot say. */
  async locate(attr: Attr, offset: number, lengthBytes: number, ask: (offset: number, lengthBytes: number) => Promise<LocatedBytes | null>): Promise<LocatedBytes | null> {
    const window = Math.floor(offset / this.windowBytes)
    const start = window * this.windowBytes
    if (offset + lengthBytes > start + this.windowBytes) return ask(offset, lengthBytes) // across windows: asked as it is
    const key = `${attr.ino}@${attr.stamp}`
    let windows = this.byVersion.get(key)
    if (windows === undefined) {
      windows = new Map()
      this.byVersion.set(key, windows)
      for (const oldest of this.byVersion.keys()) {
        if (this.byVersion.size <= LOCATED_VERSIONS_MAX) break
        this.byVersion.delete(oldest)
      }
    }
    let located = windows.get(window)
    if (located === undefined) {
      located = ask(start, Math.min(this.windowBytes, Math.max(0, attr.sizeBytes - start)))
      windows.set(window, located)
      located.then(
        (found) => found === null && windows.delete(window),
        () => windows.delete(window), // asked again by the next read
      )
    }
    const found = await located
    return found === null ? null : within(found, offset - start, lengthBytes)
  }

  /** A window's answer named a file that is not the one it was: the version's windows are asked again. */
  forget(attr: Attr): void {
    this.byVersion.delete(`${attr.ino}@${attr.stamp}`)
  }
}

/** The part of `located` (bytes [0, sizeBytes) of a range) at [from, from + lengthBytes), as if that had been asked. */
function within(located: LocatedBytes, from: number, lengthBytes: number): LocatedBytes {
  const end = Math.min(located.sizeBytes, from + lengthBytes)
  const pieces: Array<LocatedBytes['pieces'][number]> = []
  const fileIndexes = new Map<number, number>() // in located.files → in the part's files
  for (const piece of located.pieces) {
    const pieceFrom = Math.max(from, piece.intoOffset)
    const pieceTo = Math.min(end, piece.intoOffset + piece.lengthBytes)
    if (pieceFrom >= pieceTo) continue
    if (!fileIndexes.has(piece.fileIndex)) fileIndexes.set(piece.fileIndex, fileIndexes.size)
    pieces.push({ intoOffset: pieceFrom - from, lengthBytes: pieceTo - pieceFrom, fileIndex: fileIndexes.get(piece.fileIndex)!, offset: piece.offset + (pieceFrom - piece.intoOffset) })
  }
  return { sizeBytes: Math.max(0, end - from), files: [...fileIndexes.keys()].map((i) => located.files[i]!), pieces }
}
