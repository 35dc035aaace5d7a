// What each kind of record changes, as the caches of a mount see it: the kernel's (names,
// attributes, pages) and the mount's own (src/fs/knownNodes.ts). A group's members tell it to
// the mounts that did not make a change (replication/changeFeed.ts); a mount reads it of its own
// changes to forget no more than they touch.

import type { Ino, Mutation } from '../store/records.js'
import type { ChangeNote, Submitted } from './client.js'

/** What a record changed. */
export function changeNoteOf(mutation: Mutation): ChangeNote {
  switch (mutation.type) {
    case 'mknod':
      return { entries: [[mutation.parent, mutation.name]], nodes: [mutation.parent] }
    case 'link':
      return { entries: [[mutation.parent, mutation.name]], nodes: [mutation.parent, mutation.ino] }
    case 'unlink':
    case 'rmdir':
      return { entries: [[mutation.parent, mutation.name]], nodes: [mutation.parent] }
    case 'rename':
      return {
        entries: [
          [mutation.fromParent, mutation.fromName],
          [mutation.toParent, mutation.toName],
        ],
        nodes: mutation.fromParent === mutation.toParent ? [mutation.fromParent] : [mutation.fromParent, mutation.toParent],
      }
    case 'setattr':
    case 'setxattr':
    case 'removexattr':
      return { nodes: [mutation.ino] }
    case 'version':
      return { contents: [mutation.ino] }
    case 'snapshot':
    case 'unsnapshot':
    case 'hold':
    case 'release':
      return { snapshots: [mutation.name] }
    case 'retain':
    case 'compact':
    case 'space':
      return {} // the live tree is as it was; reads below the floor are checked by the store
  }
}

/**
 * The nodes whose attributes a record may change, when it names them all; null when it may
 * change one it does not name: the node an unlink, rmdir or rename takes a name from (its link
 * count and ctime move), which only the store knows.
 */
export function nodesChangedBy(mutation: Mutation): Ino[] | null {
  if (mutation.type === 'unlink' || mutation.type === 'rmdir' || mutation.type === 'rename') return null
  const note = changeNoteOf(mutation)
  return [...(note.nodes ?? []), ...(note.contents ?? [])]
}

/** The name a record made and the node it names, from the record and what its submit returned (a create, mkdir, symlink, mknod or link); undefined for any other. */
export function entryMadeBy(mutation: Mutation, submitted: Submitted): { dir: Ino; name: string; ino: Ino } | undefined {
  if (mutation.type === 'link') return { dir: mutation.parent, name: mutation.name, ino: mutation.ino }
  if (mutation.type === 'mknod' && submitted.ino !== undefined) return { dir: mutation.parent, name: mutation.name, ino: submitted.ino }
  return undefined
}
