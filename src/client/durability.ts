// When a client acknowledges a close or a metadata operation: a group's config
// (GroupConfig.durability) and an embedded mount's `--durability` name the same two modes. In a
// file of their own, so the CLI shows them in its help without loading the config code.

/**
 * When a close (a version) or a metadata operation is acknowledged: 'write-on-close' once its
 * record is ordered and written to the log of every replica of the view, or to an embedded
 * mount's own log (fsync then waits for the sync); 'sync-on-close' once it is synced there.
 */
export const DURABILITY_MODES = ['write-on-close', 'sync-on-close'] as const
export type Durability = (typeof DURABILITY_MODES)[number]
export const DURABILITY_DEFAULT: Durability = 'write-on-close'
