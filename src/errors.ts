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

export class FffsError extends Error {
  readonly code: FffsErrorCode
  constructor(code: FffsErrorCode, message: string) {
    super(message)
    this.name = 'FffsError'
    this.code = code
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
  malformedSpec: (spec: string, why: string) => new FffsError('EINVAL', `${MALFORMED_SPEC} '${spec}': ${why}`),
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
  lateSensorWrite: (what: string) => new FffsError('EINVAL', `${LATE_SENSOR_WRITE} ${what}`),
  malformedRecord: (what: string) => new FffsError('EINVAL', `malformed record ${what}`),
  /** Opening a store whose index is ahead of its log (a machine crash) when the log's start was collected: it cannot be rebuilt from its own log. */
  indexAheadOfCompactedLog: (why: string) => new FffsError('EIO', `${INDEX_AHEAD_OF_COMPACTED_LOG} ${why}`),
  /** A read below the history floor at a cut nothing pins: the versions it needs were dropped by retention. */
  compacted: (floorIso: string, policy: string) => new FffsError('ERANGE', `${COMPACTED} ${floorIso} was compacted (policy ${policy})`),
}

// Only code and message cross the wire (remote clients), so a late-write refusal is known by its message.
const LATE_SENSOR_WRITE = 'late sensor write:'
const MALFORMED_SPEC = 'malformed time spec'
const COMPACTED = 'history before'
const INDEX_AHEAD_OF_COMPACTED_LOG = 'store needs a full state transfer:'

/** A path or argument whose time spec does not parse: the mount logs why (the errno alone says only EINVAL). */
export function isMalformedSpec(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'EINVAL' && err.message.startsWith(MALFORMED_SPEC)
}

/** A member's store that must be refetched whole (its log cannot rebuild its index). */
export function isIndexAheadOfCompactedLog(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'EIO' && err.message.startsWith(INDEX_AHEAD_OF_COMPACTED_LOG)
}

/** A read below the history floor (the mount logs the floor: the errno alone says only ERANGE). */
export function isCompacted(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'ERANGE' && err.message.startsWith(COMPACTED)
}

export function isLateSensorWrite(err: unknown): boolean {
  return err instanceof FffsError && err.code === 'EINVAL' && err.message.startsWith(LATE_SENSOR_WRITE)
}

export function isFffsError(err: unknown): err is FffsError {
  return err instanceof FffsError
}
