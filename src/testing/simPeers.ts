// The member-to-member requests in the simulation: what `WirePeers` sends over TCP, here carried
// through the world with a network delay each way, as JSON (the codecs of protocol.ts run at
// both ends, as on the wire), into the target member's own peer service. A request across a
// partition, or to a member that is down, gets no reply: the caller's timeout ends it.

import { FffsError, isFffsError } from '../errors.js'
import type { PeerNetwork } from '../replication/member/peers.js'
import { peerMethods, serveMethods, type Method, type Service } from '../replication/protocol.js'
import { errorFromWire, errorToWire } from '../replication/wire.js'
import type { SimClock } from './simClock.js'

/** What the world tells the peer network. */
export interface PeerWorld {
  /** Member `id`'s peer service, if its process is up and serving; else null. */
  service(id: number): Service<typeof peerMethods> | null
  reachable(fromId: number, toId: number): boolean
  /** One way's delay, virtual ms. */
  delayMs(): number
  /** A handler threw something that is not an FffsError: a bug. */
  handlerBug(method: string, err: unknown): void
}

export class SimPeers implements PeerNetwork {
  private readonly world: PeerWorld
  private readonly selfId: number
  private readonly clock: SimClock

  constructor(world: PeerWorld, selfId: number, clock: SimClock) {
    this.world = world
    this.selfId = selfId
    this.clock = clock
  }

  call<A, R>(id: number, m: Method<A, R>, args: A, timeoutMs: number): Promise<{ result: R; body: Buffer }> {
    const wireArgs: unknown = JSON.parse(JSON.stringify(m.args.encode(args) ?? null))
    return new Promise((resolve, reject) => {
      let settled = false
      const settle = (run: () => void): void => {
        if (settled) return
        settled = true
        timeout.cancel()
        run()
      }
      const timeout = this.clock.setTimer(timeoutMs, () => settle(() => reject(new FffsError('EIO', `no reply to ${m.name} from member ${id} within ${timeoutMs} ms`))))
      this.clock.setTimer(this.world.delayMs(), () => {
        const service = this.world.service(id)
        if (service === null || !this.world.reachable(this.selfId, id)) return // no reply: the timeout ends it
        const handled = serveMethods(peerMethods, service)({ method: m.name, args: wireArgs, body: Buffer.alloc(0) })
        if (handled === undefined) throw new Error(`invariant: ${m.name} is not a peer method`)
        handled.then(
          (reply) => {
            const result: unknown = JSON.parse(JSON.stringify(reply.result ?? null))
            const body = reply.body === undefined ? Buffer.alloc(0) : Buffer.from(reply.body)
            this.back(id, () => settle(() => resolve({ result: m.result.decode(result, `${m.name} reply`), body })))
          },
          (err: unknown) => {
            if (!isFffsError(err)) this.world.handlerBug(m.name, err)
            const error = errorFromWire(errorToWire(m.name, err)) // as the wire carries it
            this.back(id, () => settle(() => reject(error)))
          },
        )
      })
    })
  }

  /** A reply from `id` travels back (if the network lets it). */
  private back(id: number, arrive: () => void): void {
    this.clock.setTimer(this.world.delayMs(), () => {
      if (this.world.reachable(id, this.selfId)) arrive()
    })
  }

  close(): void {}
}
