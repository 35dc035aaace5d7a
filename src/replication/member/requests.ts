// The requests this member orders for the mounts connected to it: each waits in the table from
// its submit until the group has it durable at every member (the core's reply), across epoch
// changes. Records submitted in one turn of the event loop leave as one ordered message (group
// commit upstream of the log): one message, one row update and one reply per batch instead of
// per record. A batch stays on the small-message channel; a record that alone exceeds it goes
// alone.

import { FffsError } from '../../errors.js'
import type { ApplyResult } from '../../store/records.js'
import type { HlcStamp } from '../../temporal/hlc.js'
import type { Clock } from '../clock.js'
import { BATCH_HEADER_BYTES, BATCH_RECORDS_MAX } from '../core/message.js'
import { BATCH_PART_PREFIX_BYTES, BATCH_PAYLOAD_HEADER_BYTES, encodeBatchPayload } from '../payload.js'
import { TRANSPORT_DEFAULTS } from '../transport/types.js'

const BATCH_BYTES_MAX = TRANSPORT_DEFAULTS.smcSlotSizeBytes - 64 - BATCH_HEADER_BYTES

/** An ordered message's first stamp and the results of its records (one, or a batch's, in order). */
export interface Ordered {
  readonly stamp: HlcStamp
  readonly results: ApplyResult[]
}

interface Request {
  readonly payload: Uint8Array
  readonly after?: HlcStamp // the submitting client's clock (HLC piggybacking)
  readonly records: number // stamps the payload takes: > 1 for a PAYLOAD_BATCH
  readonly resolve: (value: Ordered) => void
  readonly reject: (err: Error) => void
  delivered?: { readonly stamp: HlcStamp; readonly results: Promise<ApplyResult[]> | ApplyResult[] }
}

/** A record waiting for the end of this turn of the event loop to be ordered in a batch. */
interface Queued {
  readonly payload: Uint8Array
  readonly after?: HlcStamp
  readonly resolve: (value: { stamp: HlcStamp; result: ApplyResult }) => void
  readonly reject: (err: Error) => void
}

export interface RequestTableOptions {
  readonly memberId: number
  readonly clock: Clock
  /** A write waits this long for a running group, then EROFS. */
  readonly holdWhileRecoveringMs: number
  /** Why a new request is refused now (a failed or stopping member), or null. */
  readonly refusal: () => Error | null
  /** Whether the member runs in a group (requests go to its core at once). */
  readonly running: () => boolean
  /** Hands a request to the running core. */
  readonly submit: (requestId: number, payload: Uint8Array, after: HlcStamp | undefined, records: number) => void
}

export class RequestTable {
  private readonly options: RequestTableOptions
  private readonly requests = new Map<number, Request>()
  private readonly submittedIds = new Set<number>() // handed to a core (possibly ordered): never refused locally
  private batchQueue: Queued[] = []
  private requestNext = 1

  constructor(options: RequestTableOptions) {
    this.options = options
  }

  get size(): number {
    return this.requests.size
  }

  /** Multicasts a message in the group's total order; resolves with its stamp once durable at every member. */
  order(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return this.orderMessage(payload, after, 1).then(({ stamp, results }) => ({ stamp, result: results[0]! }))
  }

  /**
   * Orders a record (a PAYLOAD_RECORD or _INLINE payload) in a batch with the others submitted
   * in this turn of the event loop; resolves with its own stamp and result once its batch is
   * durable at every member (the same guarantee as `order`). Submission order is kept: batches
   * go to the core in queue order, and the core keeps one sender's messages in order.
   */
  orderRecord(payload: Uint8Array, after?: HlcStamp): Promise<{ stamp: HlcStamp; result: ApplyResult }> {
    return new Promise((resolve, reject) => {
      if (this.batchQueue.length === 0) this.options.clock.defer(() => this.flushBatches())
      this.batchQueue.push({ payload, ...(after !== undefined ? { after } : {}), resolve, reject })
    })
  }

  private flushBatches(): void {
    const queue = this.batchQueue
    this.batchQueue = []
    for (let start = 0; start < queue.length; ) {
      let end = start + 1
      let sizeBytes = BATCH_PAYLOAD_HEADER_BYTES + BATCH_PART_PREFIX_BYTES + queue[start]!.payload.byteLength
      while (end < queue.length && end - start < BATCH_RECORDS_MAX && sizeBytes + BATCH_PART_PREFIX_BYTES + queue[end]!.payload.byteLength <= BATCH_BYTES_MAX) {
        sizeBytes += BATCH_PART_PREFIX_BYTES + queue[end]!.payload.byteLength
        end++
      }
      const batch = queue.slice(start, end)
      start = end
      let after: HlcStamp | undefined
      for (const q of batch) if (q.after !== undefined && (after === undefined || q.after > after)) after = q.after
      const payload = batch.length === 1 ? batch[0]!.payload : encodeBatchPayload(batch.map((q) => q.payload))
      this.orderMessage(payload, after, batch.length).then(
        ({ stamp, results }) => batch.forEach((q, i) => q.resolve({ stamp: stamp + BigInt(i), result: results[i]! })),
        (err: Error) => batch.forEach((q) => q.reject(err)),
      )
    }
  }

  private orderMessage(payload: Uint8Array, after: HlcStamp | undefined, records: number): Promise<Ordered> {
    const refusal = this.options.refusal()
    if (refusal !== null) return Promise.reject(refusal)
    const requestId = this.requestNext++
    return new Promise((resolve, reject) => {
      this.requests.set(requestId, { payload, ...(after !== undefined ? { after } : {}), records, resolve, reject })
      if (this.options.running()) {
        this.submit(requestId)
        return
      }
      // Between epochs: held until one starts (resume), but not for ever. It was never
      // ordered, so refusing it is safe.
      this.options.clock.setTimer(this.options.holdWhileRecoveringMs, () => {
        const request = this.requests.get(requestId)
        if (request === undefined || this.submittedIds.has(requestId)) return
        this.requests.delete(requestId)
        request.reject(new FffsError('EROFS', `member ${this.options.memberId} is not in a running group (rejoining): write refused after ${this.options.holdWhileRecoveringMs} ms`))
      })
    })
  }

  private submit(requestId: number): void {
    const request = this.requests.get(requestId)!
    this.submittedIds.add(requestId)
    this.options.submit(requestId, request.payload, request.after, request.records)
  }

  /** Request `requestId` (if it is this member's) was delivered at `stamp` with these results. */
  delivered(requestId: number | undefined, stamp: HlcStamp, results: Promise<ApplyResult[]> | ApplyResult[]): void {
    if (requestId === undefined) return
    const request = this.requests.get(requestId)
    if (request !== undefined) request.delivered = { stamp, results }
  }

  /** Durable everywhere (every record of the message, a batch's last too): the requester gets the first stamp and every record's result. */
  replied(requestId: number): void {
    const request = this.requests.get(requestId)
    this.requests.delete(requestId)
    this.submittedIds.delete(requestId)
    if (request === undefined) return
    if (request.delivered === undefined) {
      request.reject(new Error(`invariant: reply to request ${requestId} before its delivery`))
      return
    }
    const { stamp: first, results } = request.delivered
    Promise.resolve(results).then((r) => request.resolve({ stamp: first, results: r }), request.reject)
  }

  rejected(requestId: number, err: Error): void {
    const request = this.requests.get(requestId)
    this.requests.delete(requestId)
    this.submittedIds.delete(requestId)
    request?.reject(err)
  }

  /** After an epoch change: requests delivered before it are durable everywhere; the rest go again. */
  resume(): void {
    for (const [requestId, request] of this.requests) {
      if (request.delivered !== undefined) this.replied(requestId)
      else this.submit(requestId)
    }
  }

  /** The log holding these requests' deliveries was discarded: their outcome is unknown. */
  rejectDelivered(err: () => Error): void {
    for (const [requestId, request] of this.requests) {
      if (request.delivered === undefined) continue
      this.requests.delete(requestId)
      this.submittedIds.delete(requestId)
      request.reject(err())
    }
  }

  rejectAll(err: Error): void {
    for (const request of this.requests.values()) request.reject(err)
    this.requests.clear()
    this.submittedIds.clear()
  }
}
