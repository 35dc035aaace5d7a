// Free space on the disk a store lives on, and the reserve that keeps a full disk workable.
//
// Writes that add data (file bytes, new names, attributes) are refused with ENOSPC once free
// space falls below the reserve, as ext4 keeps blocks back and ZFS keeps its slop space: the
// records that free space (unlink, rmdir, truncation, snapshot deletion, retention and
// compaction) and the index's own work (LevelDB) always have room. A reserve file, part of the
// reserve, is given back when the disk is found completely full (filled by something else, or
// at a start on a full disk), so that the store can open and free space; it is taken again once
// there is room.

import path from 'node:path'
import { FffsError } from '../errors.js'
import { nodeDisk, type Disk } from './disk.js'

const REFRESH_MS = 250
const RESERVE_BYTES_MIN = 8 * 1024 * 1024
const RESERVE_BYTES_MAX = 1024 * 1024 * 1024
const RESERVE_SHARE = 0.02 // of the disk
const RESERVE_FILE = 'reserve'
const RESERVE_FILE_BYTES_MAX = 32 * 1024 * 1024

export interface DiskState {
  readonly totalBytes: number
  readonly freeBytes: number // available to this process (statfs bavail)
  readonly reserveBytes: number
  /** Below the reserve: writes that add data are refused (ENOSPC) until space is freed. */
  readonly full: boolean
}

/** 2% of the disk, from 8 MiB to 1 GiB. */
export function reserveForDisk(totalBytes: number): number {
  return Math.min(RESERVE_BYTES_MAX, Math.max(RESERVE_BYTES_MIN, Math.round(totalBytes * RESERVE_SHARE)))
}

export function noSpace(what: string): FffsError {
  return new FffsError('ENOSPC', `no space left on device: ${what}`)
}

export class DiskGuard {
  private readonly dir: string
  private readonly disk: Disk
  private state: DiskState = { totalBytes: 0, freeBytes: 0, reserveBytes: RESERVE_BYTES_MIN, full: false }
  private refreshedMs = 0
  private refreshing: Promise<DiskState> | null = null
  private reserveFileBytes = 0
  /** Bytes appended since the last measure: a burst of writes between measures must not run past the reserve. */
  private appendedBytes = 0

  constructor(dir: string, disk: Disk = nodeDisk) {
    this.dir = dir
    this.disk = disk
  }

  /** Measures the disk, gives the reserve file back if the disk is full, and makes it where there is room. */
  async start(): Promise<DiskState> {
    await this.disk.mkdirp(this.dir)
    this.reserveFileBytes = (await this.disk.sizeOf(this.reserveFile)) ?? 0
    const state = await this.refresh()
    if (state.freeBytes < RESERVE_BYTES_MIN) await this.release()
    else await this.takeReserve()
    return this.refresh()
  }

  get last(): DiskState {
    return this.state
  }

  /** The state, measured again if the last measure is older than REFRESH_MS (never waits on a measure in flight twice). */
  async current(): Promise<DiskState> {
    if (Date.now() - this.refreshedMs < REFRESH_MS) return this.state
    return this.refresh()
  }

  refresh(): Promise<DiskState> {
    this.refreshing ??= (async () => {
      try {
        const { totalBytes, availableBytes: freeBytes } = await this.disk.space(this.dir)
        const reserveBytes = reserveForDisk(totalBytes)
        this.appendedBytes = 0
        this.state = { totalBytes, freeBytes, reserveBytes, full: freeBytes < reserveBytes }
        this.refreshedMs = Date.now()
        if (!this.state.full && this.reserveFileBytes === 0 && freeBytes > 2 * reserveBytes) void this.takeReserve()
        return this.state
      } finally {
        this.refreshing = null
      }
    })()
    return this.refreshing
  }

  /**
   * Throws ENOSPC when the disk is below the reserve: as last measured, less what was appended
   * since (measured again in the background).
   */
  refuseWhenFull(what: string): void {
    if (Date.now() - this.refreshedMs >= REFRESH_MS) void this.refresh().catch(() => undefined)
    if (this.state.full || this.state.freeBytes - this.appendedBytes < this.state.reserveBytes) {
      throw noSpace(`${what} refused: ${describeDisk(this.state)}; delete files or let retention free space`)
    }
  }

  /** `bytes` more are being written to the disk (counted against the last measure). */
  appended(bytes: number): void {
    this.appendedBytes += bytes
  }

  /** The disk filled up completely: give the reserve file back, for the writes that free space. */
  async release(): Promise<void> {
    if (this.reserveFileBytes === 0) return
    await this.disk.remove(this.reserveFile)
    this.reserveFileBytes = 0
    this.refreshedMs = 0
  }

  private get reserveFile(): string {
    return path.join(this.dir, RESERVE_FILE)
  }

  private async takeReserve(): Promise<void> {
    if (this.reserveFileBytes > 0) return
    const bytes = Math.min(RESERVE_FILE_BYTES_MAX, Math.floor(this.state.reserveBytes / 4))
    try {
      await this.disk.allocate(this.reserveFile, bytes)
      this.reserveFileBytes = bytes
    } catch {
      await this.disk.remove(this.reserveFile).catch(() => undefined) // no room for it now: later
    }
  }
}

export function describeDisk(state: DiskState): string {
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${mib(state.freeBytes)} free of ${mib(state.totalBytes)}, ${mib(state.reserveBytes)} kept in reserve`
}
