// One error type for every operating condition fffs reports. Each condition has a stable
// `code` and an errno; the errno is applied only at the FUSE boundary (src/fs), the code
// and message at the CLI and the control socket. Bugs are not FffsErrors: they are thrown
// as-is and crash loudly.

export type FffsErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EINVAL'
  | 'EROFS'
  | 'EAGAIN'
  | 'EBADF'
  | 'ENODATA'
  | 'ERANGE'
  | 'EPERM'
  | 'EACCES'
  | 'EMLINK'
  | 'ENAMETOOLONG'
  | 'EXDEV'
  | 'EIO'
  | 'EBUSY'
  | 'ENOTSUP'
  | 'ENOSPC'

export const ERRNO: Readonly<Record<FffsErrorCode, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  ENOSPC: 28,
  EISDIR: 21,
  EINVAL: 22,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ENOTSUP: 95,
}

/**
 * Conditions a caller tells apart within one code, carried as data wherever an error travels
 * (apply results, the wire, the control socket), never recognised by its message:
 * - `behind`: a member does not hold the cut asked for yet; another member may (EAGAIN);
 * - `lateSensorWrite`: a sensor time older than now − Δ (EINVAL);
 * - `malformedSpec`: a time spec that does not parse (EINVAL);
 * - `compacted`: a read below the history floor at a cut nothing pins (ERANGE);
 * - `indexAheadOfCompactedLog`: a store whose index is ahead of a log whose start segment GC
 *   deleted: it cannot be rebuilt from its own log (EIO).
 */
export type FffsReason = 'behind' | 'lateSensorWrite' | 'malformedSpec' | 'compacted' | 'indexAheadOfCompactedLog'

export const REASONS: ReadonlySet<string> = new Set<FffsReason>(['behind', 'lateSensorWrite', 'malformedSpec', 'compacted', 'indexAheadOfCompactedLog'])

export class FffsError extends Error {
  readonly code: FffsErrorCode
  readonly reason: FffsReason | undefined
  constructor(code: FffsErrorCode, message: string, reason?: FffsReason) {
    super(message)
    this.name = 'FffsError'
    this.code = code
    this.reason = reason
  }
  get errno(): number {
    return ERRNO[this.code]
  }
}

export const errors = {
  notFound: (what: string) => new FffsError('ENOENT', `no such file or directory: ${what}`),
  exists: (what: string) => new FffsError('EEXIST', `already exists: ${what}`),
  notDir: (what: string) => new FffsError('ENOTDIR', `not a directory: ${what}`),
  isDir: (what: string) => new FffsError('EISDIR', `is a directory: ${what}`),
  notEmpty: (what: string) => new FffsError('ENOTEMPTY', `directory not empty: ${what}`),
  invalid: (why: string) => new FffsError('EINVAL', why),
  malformedSpec: (spec: string, why: string) => new FffsError('EINVAL', `malformed time spec '${spec}': ${why}`, 'malformedSpec'),
  readOnlyTimePath: (what: string) => new FffsError('EROFS', `time-addressed path is read-only: ${what}`),
  notStable: (what: string, waitedMs: number) => new FffsError('EAGAIN', `cut not stable yet after ${waitedMs} ms: ${what}`),
  badHandle: (fd: number) => new FffsError('EBADF', `bad file handle ${fd}`),
  noAttr: (name: string) => new FffsError('ENODATA', `no such attribute: ${name}`),
  busy: (why: string) => new FffsError('EBUSY', why),
  notPermitted: (why: string) => new FffsError('EPERM', why),
  tooManyLinks: (what: string) => new FffsError('EMLINK', `too many links: ${what}`),
  notSupported: (what: string) => new FffsError('ENOTSUP', `not supported: ${what}`),
  nameTooLong: (name: string) => new FffsError('ENAMETOOLONG', `name too long: ${name.slice(0, 32)}...`),
  corrupt: (why: string) => new FffsError('EIO', `data corruption detected: ${why}`),
  /** A sensor time older than now − Δ: never ordered into a past a reader may already have frozen. */
  lateSensorWrite: (what: string) => new FffsError('EINVAL', `late sensor write: ${what}`, 'lateSensorWrite'),
  malformedRecord: (what: string) => new FffsError('EINVAL', `malformed record ${what}`),
  /** Opening a store whose index is ahead of its log (a machine crash) when the log's start was collected: it cannot be rebuilt from its own log. */
  indexAheadOfCompactedLog: (why: string) => new FffsError('EIO', `store needs a full state transfer: ${why}`, 'indexAheadOfCompactedLog'),
  /** A read below the history floor at a cut nothing pins: the versions it needs were dropped by retention. */
  compacted: (floorIso: string, policy: string) => new FffsError('ERANGE', `history before ${floorIso} was compacted (policy ${policy})`, 'compacted'),
}

/** A path or argument whose time spec does not parse: the mount logs why (the errno alone says only EINVAL). */
export function isMalformedSpec(err: unknown): boolean {
  return err instanceof FffsError && err.reason === 'malformedSpec'
}

/** A member's store that must be refetched whole (its log cannot rebuild its index). */
export function isIndexAheadOfCompactedLog(err: unknown): boolean {
  return err instanceof FffsError && err.reason === 'indexAheadOfCompactedLog'
}

/** A read below the history floor (the mount logs the floor: the errno alone says only ERANGE). */
export function isCompacted(err: unknown): boolean {
  return err instanceof FffsError && err.reason === 'compacted'
}

export function isLateSensorWrite(err: unknown): boolean {
  return err instanceof FffsError && err.reason === 'lateSensorWrite'
}

/** The code named by `value` if it is one (what arrived over a wire), else EIO. */
export function codeOf(value: unknown): FffsErrorCode {
  return typeof value === 'string' && value in ERRNO ? (value as FffsErrorCode) : 'EIO'
}

/** The reason named by `value` if it is one (what arrived over a wire), else undefined. */
export function reasonOf(value: unknown): FffsReason | undefined {
  return typeof value === 'string' && REASONS.has(value) ? (value as FffsReason) : undefined
}

export function isFffsError(err: unknown): err is FffsError {
  return err instanceof FffsError
}
