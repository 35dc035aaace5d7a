// How a member talks to the others outside the transport (recovery, joins, state transfer): the
// peer methods of protocol.ts on the others' client ports. `WirePeers` is the real network (one
// authenticated connection per peer, made on first use); the simulation has its own
// (src/testing/simPeers.ts) with delays, partitions and crashes.

import type { GroupConfig } from '../config.js'
import { request, type Method } from '../protocol.js'
import { connect, type Connection } from '../wire.js'

export interface PeerNetwork {
  /** One request to member `id`; rejects on a refusal (EACCES), a lost connection, or no reply within `timeoutMs` (EIO). */
  call<A, R>(id: number, m: Method<A, R>, args: A, timeoutMs: number): Promise<{ result: R; body: Buffer }>
  /** Closes every connection. */
  close(): void
}

/** The others' client ports, over wire.ts. */
export class WirePeers implements PeerNetwork {
  private readonly config: GroupConfig
  private readonly log: (line: string) => void
  private readonly connectTimeoutMs: number
  private readonly peers = new Map<number, Promise<Connection>>()

  constructor(config: GroupConfig, options: { log: (line: string) => void; connectTimeoutMs: number }) {
    this.config = config
    this.log = options.log
    this.connectTimeoutMs = options.connectTimeoutMs
  }

  async call<A, R>(id: number, m: Method<A, R>, args: A, timeoutMs: number): Promise<{ result: R; body: Buffer }> {
    let connecting = this.peers.get(id)
    if (connecting === undefined) {
      const peer = this.config.members.find((member) => member.id === id)
      if (peer === undefined) throw new Error(`invariant: no member ${id} in the config`)
      connecting = connect(peer.host, peer.clientPort, this.config.key, this.connectTimeoutMs, {
        heartbeatIntervalMs: this.config.clients.heartbeatIntervalMs,
        deadPeerMs: this.config.clients.deadPeerMs,
        onRefused: (address, reason) => this.log(`refused by ${address}: ${reason}`),
      })
      this.peers.set(id, connecting)
      connecting.then(
        (connection) => connection.onClose(() => this.peers.delete(id)),
        () => this.peers.delete(id),
      )
    }
    return request(await connecting, m, args, { timeoutMs })
  }

  close(): void {
    for (const connecting of this.peers.values()) void connecting.then((c) => c.close(), () => undefined)
    this.peers.clear()
  }
}
