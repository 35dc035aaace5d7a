// The changes a group applies, pushed to the mounts connected to its members, so a mount's
// kernel may cache the live tree for as long as it is not told otherwise: each member, as it
// applies a record, tells every mount watching it what the record changed (a ChangeNote: names,
// attributes, contents, snapshots), except the mount that made the change (its kernel saw it).
// A mount watches on the connection it sends its requests on (remoteClient.ts, the protocol's
// watchChanges and `changed`): a reply it gets after a note was read after the change the
// note tells of.

import type { Mutation } from '../store/records.js'
import type { ChangeNote } from '../client/client.js'
import { changeNoteOf } from '../client/changes.js'
import { messages, send } from './protocol.js'
import type { Connection } from './wire.js'

/** A member's applied changes, to the mounts watching it. */
export class ChangeFeed {
  private readonly watchers = new Set<{ readonly clientId: string | null; readonly tell: (note: ChangeNote) => void }>()

  /** What to tell of each record applied from now on; null while no mount watches. */
  listener(): ((mutation: Mutation, by: string | undefined) => void) | null {
    return this.watchers.size === 0 ? null : this.publish
  }

  /** A record applied; `by`: the client that submitted it (its own watch is not told). */
  private readonly publish = (mutation: Mutation, by: string | undefined): void => {
    const note = changeNoteOf(mutation)
    for (const watcher of this.watchers) if (watcher.clientId !== by) watcher.tell(note)
  }

  /** Serves a watch on `connection` for the client `clientId` (null: unnamed, told of every change) until it closes. */
  serve(connection: Connection, clientId: string | null): void {
    const watcher = { clientId, tell: (note: ChangeNote) => void send(connection, messages.changed, note).catch(() => undefined) }
    this.watchers.add(watcher)
    connection.onClose(() => this.watchers.delete(watcher))
  }
}
