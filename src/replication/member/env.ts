// Everything a member touches outside itself, injected (member.ts): `fffs serve` passes the
// real clock, disk, transport and network (nativeEnv.ts), the simulation its own.

import type { Clock } from '../clock.js'
import type { CoreAction } from '../core/group.js'
import type { EpochPlan } from '../recovery.js'
import type { Transport } from '../transport/types.js'
import type { Disk } from '../../store/disk.js'
import type { Store } from '../../store/store.js'
import type { LogObserver } from './delivery.js'
import type { EpochAction } from './epochs.js'
import type { PeerNetwork } from './peers.js'

/** The runtime's cadences and bounds (the simulation shortens them with its virtual network). */
export interface MemberTiming {
  readonly tickMs: number // the core's tick (and the epoch machine's)
  readonly recoveryPollMs: number
  readonly recoveryGraceMs: number // wait this long for every member before forming a group of a majority
  readonly joinAskMs: number
  readonly peerRequestTimeoutMs: number
  readonly planPollMs: number // how often a member starting an epoch asks the others whether they are ready
  readonly holdWhileRecoveringMs: number // a write waits this long for a running group, then EROFS
  readonly catchUpWaitMaxMs: number // a read at a cut this member does not hold yet waits this long, then goes elsewhere
}

export const MEMBER_TIMING: MemberTiming = {
  tickMs: 20,
  recoveryPollMs: 300,
  recoveryGraceMs: 2_000,
  joinAskMs: 1_000,
  peerRequestTimeoutMs: 5_000,
  planPollMs: 200,
  holdWhileRecoveringMs: 5_000,
  catchUpWaitMaxMs: 1_000,
}

/** Everything a member touches outside itself. */
export interface MemberEnv {
  readonly clock: Clock
  readonly disk: Disk
  /** The transport of an epoch (its members, rank = index). */
  readonly newTransport: (plan: EpochPlan) => Transport
  readonly peers: PeerNetwork
  /** Names this process in blob ids (its pid). */
  readonly instance: string
  /** After a fatal error, once the member stopped. */
  readonly exit: (code: number) => void
  readonly timing: MemberTiming
  /** Store settings for this host (the page cache, O_DIRECT). */
  readonly tuneStore?: (store: Store) => void
  /** About this many bytes of file data per state-transfer batch this member serves (default 8 MiB). */
  readonly transferBatchBytes?: number
  /** Told of what this member does (the simulation's checks and transcripts; the runtime does not depend on it). */
  readonly observer?: MemberObserver
}

/** What the simulation watches of a member: its log, and the actions of its two machines. */
export interface MemberObserver extends LogObserver {
  epochAction?(action: EpochAction): void
  coreAction?(action: CoreAction): void
}
