// Headroom: bytes in front of a view that whoever holds the view may overwrite, as in a
// network stack's buffer headroom. The data path uses it to put headers in front of file
// bytes without copying them: a wire frame's body has its own frame header in front (parsed,
// dead), room enough for the member's data header and then the core's message header, so the
// bytes a mount sent reach the transport in the buffer they were read into.
//
// Headroom is granted once per view and consumed by the first prepend, which passes what is
// left on to the wider view: two prepends can never claim the same bytes.

const granted = new WeakMap<Uint8Array, number>()

/** `bytes` in front of `view` (in its ArrayBuffer) belong to whoever holds `view` and may be overwritten. */
export function grantHeadroom(view: Uint8Array, bytes: number): void {
  if (bytes > 0 && bytes <= view.byteOffset) granted.set(view, bytes)
}

/**
 * A view `prefixBytes` longer at the front, over the same memory (the prefix holds whatever
 * was there: the caller writes it), when `view` was granted that much headroom; else null
 * (copy instead). Consumes the grant.
 */
export function prependInPlace(view: Uint8Array, prefixBytes: number): Uint8Array | null {
  const room = granted.get(view)
  if (room === undefined || room < prefixBytes) return null
  granted.delete(view)
  const wider = new Uint8Array(view.buffer, view.byteOffset - prefixBytes, view.byteLength + prefixBytes)
  grantHeadroom(wider, room - prefixBytes)
  return wider
}
