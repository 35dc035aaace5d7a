// A mount follows the group's views. Each member pushes its view (and its phase) to every
// client that watches it; a RemoteClient watches every member of its group over connections of
// their own. When the running members install a view without the member the mount talks to,
// the mount learns it from them and fails over at once: a member that hangs (SIGSTOP, a stuck
// host, a cut cable) costs the members' suspect timeout plus a round trip, not the client's
// own dead-peer timeout, which such a member's open socket would otherwise run to the end.

import { FffsError } from '../errors.js'
import type { GroupConfig, GroupMember } from './config.js'
import { clientMethods, messageArgs, messages, request, send, type MemberView } from './protocol.js'
import { connect, type Connection } from './wire.js'

/** What a member offers watchers (the member runtime). */
export interface ViewSource {
  current(): MemberView
  /** Calls `listener` with every later view or phase change; returns the unsubscribe. */
  subscribe(listener: (view: MemberView) => void): () => void
}

/** Serves a watch on `connection`: the view now (the reply), every change as a `view` message, until it closes. */
export function serveViewWatch(connection: Connection, source: ViewSource): MemberView {
  const unsubscribe = source.subscribe((view) => void send(connection, messages.view, view).catch(() => undefined))
  connection.onClose(unsubscribe)
  return source.current()
}

const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 5_000

/** Watches every member of a group; `onView` gets each member's view as it changes. */
export class ViewWatch {
  private readonly config: GroupConfig
  private readonly onView: (view: MemberView) => void
  private readonly connections = new Set<Connection>()
  private closed = false

  constructor(config: GroupConfig, onView: (view: MemberView) => void) {
    this.config = config
    this.onView = onView
  }

  start(): void {
    for (const member of this.config.members) void this.watch(member)
  }

  close(): void {
    this.closed = true
    for (const connection of this.connections) connection.close()
    this.connections.clear()
  }

  /** Keeps a watch on one member open, reconnecting with backoff while it is unreachable. */
  private async watch(member: GroupMember): Promise<void> {
    const clients = this.config.clients
    for (let delayMs = RETRY_MIN_MS; !this.closed; delayMs = Math.min(RETRY_MAX_MS, delayMs * 2)) {
      let connection: Connection | null = null
      try {
        connection = await connect(member.host, member.clientPort, this.config.key, clients.handshakeTimeoutMs, {
          heartbeatIntervalMs: clients.heartbeatIntervalMs,
          deadPeerMs: clients.deadPeerMs,
          handshakeTimeoutMs: clients.handshakeTimeoutMs,
          onMessage: (message) => {
            const view = messageArgs(messages.view, message)
            if (view !== undefined && !this.closed) this.onView(view)
          },
        })
        const open = connection
        this.connections.add(open)
        const closed = new Promise<void>((resolve) => open.onClose(() => resolve()))
        if (this.closed) open.close()
        const { result } = await request(open, clientMethods.watchViews, undefined, { timeoutMs: clients.requestTimeoutMs })
        if (!this.closed) this.onView(result)
        delayMs = RETRY_MIN_MS
        await closed
        this.connections.delete(open)
      } catch (err) {
        if (connection !== null) {
          this.connections.delete(connection)
          connection.close()
        }
        if (err instanceof FffsError && (err.code === 'ENOTSUP' || err.code === 'EACCES')) return // a server without views, or a key it refuses: the client's own connection says so
      }
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, delayMs).unref())
    }
  }
}
