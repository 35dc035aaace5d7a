// The transport a replication group rides on: one shared state table (SST), small-message
// multicast (SMC) and large-object multicast (RDMC) among a fixed set of members. Two
// implementations share this interface and one compliance suite: the native libfabric
// transport (native/, ./native.ts) and the seeded in-process simulation (./simulated.ts).
//
// A Transport instance is one group (for fffs: one shard, or the whole top-level group).
// Membership changes are the replication layer's business: it builds a new Transport for
// the next view.

/** A column of the SST. Counters are monotonic by convention of their users (not enforced here). */
export type SstColumn =
  | { name: string; kind: 'u64' } // 64-bit unsigned counter or value
  | { name: string; kind: 'bool' }
  | { name: string; kind: 'u64[]'; length: number } // fixed array, e.g. per-sender num_received
  | { name: string; kind: 'bool[]'; length: number } // fixed array, e.g. suspected[]

export interface SstSchema {
  readonly columns: readonly SstColumn[]
}

export interface MemberAddress {
  readonly id: number // stable member id, unique in the group
  readonly host: string
  readonly port: number // bootstrap TCP port; the provider's own ports are derived or ephemeral
}

export interface TransportConfig {
  readonly selfId: number
  readonly members: readonly MemberAddress[] // rank = index in this list
  readonly schema: SstSchema
  readonly provider: string // 'tcp' (default here), 'verbs' on RDMA NICs
  readonly iface?: string // network interface / domain name hint for the provider
  readonly smcSlotSizeBytes: number // largest small message (default 10 KiB)
  readonly smcWindowSlots: number // slots per sender ring
  readonly rdmcBlockSizeBytes: number // pipeline block (default 1 MiB)
  readonly heartbeatIntervalMs: number
  readonly suspectTimeoutMs: number // silence (or a completion error) longer than this -> suspected
  readonly connectTimeoutMs: number
  // Native only: SMC slots announce themselves by remote CQ data even on tcp, where by default
  // the receiver finds them by their trailer. Verbs always works this way; tests select it here.
  readonly smcCqData?: boolean
  // Native only: after sending or receiving small messages or rows, the event loop keeps
  // polling without sleeping this long (µs), so a reply arriving within it costs no wake-up.
  // 0: the loop sleeps at once.
  readonly latencySpinUs?: number
}

export const TRANSPORT_DEFAULTS = {
  provider: 'tcp',
  smcSlotSizeBytes: 10 * 1024,
  smcWindowSlots: 64,
  rdmcBlockSizeBytes: 1024 * 1024,
  heartbeatIntervalMs: 100,
  suspectTimeoutMs: 1000,
  connectTimeoutMs: 10_000,
  latencySpinUs: 50,
} as const

/** The longest latencySpinUs accepted: beyond a second it is no longer "right after traffic". */
export const LATENCY_SPIN_MAX_US = 1_000_000

/** Read access to every row of the table; rows are indexed by rank. No copies: views over the table memory. */
export interface SstView {
  readonly rowCount: number
  u64(rank: number, column: string, index?: number): bigint
  bool(rank: number, column: string, index?: number): boolean
}

export interface TransportEvents {
  /** Remote rows changed; ranks whose rows changed since the last batch (coalesced). */
  rows: (ranks: readonly number[]) => void
  /** A small message, in per-sender order; seq counts that sender's messages from 0. */
  small: (senderRank: number, seq: number, payload: Uint8Array) => void
  /** A large object, in per-sender order; the buffer is owned by the receiver from now on. */
  large: (senderRank: number, seq: number, payload: Uint8Array) => void
  /** A peer missed heartbeats or failed a completion. Reported once per peer. */
  suspected: (rank: number, reason: string) => void
}

export interface LargeSendOptions {
  readonly handOver?: boolean
}

export interface Transport {
  readonly selfRank: number
  readonly sst: SstView
  start(): Promise<void> // connects to every peer (bounded by connectTimeoutMs)
  stop(): Promise<void>
  /** Set a cell of this member's own row (local only until pushed). */
  setU64(column: string, value: bigint, index?: number): void
  setBool(column: string, value: boolean, index?: number): void
  /** Write the named columns (all when omitted) of the own row to every live peer; arrives in order per writer. */
  push(columns?: readonly string[]): void
  /** Multicast to every member including self (self delivery is immediate). Blocks (resolves) when the ring is full. */
  sendSmall(payload: Uint8Array): Promise<void>
  /**
   * Multicast a large object to every member including self. The buffer must stay unchanged
   * until the promise resolves. With `handOver` the caller gives it up for good (never changes
   * it again): the transport may then deliver this very buffer to the sender itself instead of
   * a copy (the native transport does: one copy less per object at the sender).
   */
  sendLarge(payload: Uint8Array, options?: LargeSendOptions): Promise<void>
  /**
   * Optional: the receiver is done with a delivered large payload and with every view of its
   * buffer. The transport may reuse the memory; views of it become empty (detached), so nothing
   * can read reused bytes. A buffer the transport did not lend is left alone.
   */
  recycle?(payload: Uint8Array): void
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): void
}
