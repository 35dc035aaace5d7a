// The disk addon (native/src/disk.cpp, fffs_disk.node): what the log needs of the host's disk
// that node cannot do, dropping synced pages from the page cache and aligning buffers for
// O_DIRECT. It links nothing but libc, so an embedded mount and a member load it whether or
// not the transport's libfabric is there; without it (not built) the log does without both.

import { createRequire } from 'node:module'
import { findNativeAddon } from '../nativeAddons.js'
import type { PageCacheDrop, PageOffsetOf } from './segmentLog.js'

interface DiskAddon {
  dropPageCache: PageCacheDrop
  pageOffsetOf: PageOffsetOf
}

const ADDON_FILE = 'fffs_disk.node'

let addon: DiskAddon | null | undefined // null: not built, or it would not load
function loadAddon(): DiskAddon | null {
  if (addon !== undefined) return addon
  const path = findNativeAddon(ADDON_FILE)
  try {
    addon = path === undefined ? null : (createRequire(import.meta.url)(path) as DiskAddon)
  } catch {
    addon = null
  }
  return addon
}

/** posix_fadvise(DONTNEED): drops clean (already synced) pages of a file range from the page cache (SegmentLog.dropSyncedPages). Null without the addon. */
export function pageCacheDropper(): PageCacheDrop | null {
  return loadAddon()?.dropPageCache ?? null
}

/** A view's address modulo the page size: O_DIRECT writes need page-aligned memory (SegmentLog.writeLargePayloadsDirect). Null without the addon. */
export function pageOffsetFinder(): PageOffsetOf | null {
  return loadAddon()?.pageOffsetOf ?? null
}
