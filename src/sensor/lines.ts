// Line-oriented formats (jsonl, csv): a record is one line ending in '\n' ('\r\n' works too).
// Only complete lines count; an unterminated last line waits for more bytes. A line longer
// than RECORD_BYTES_MAX is malformed, and so is the rest of it up to its '\n' (`skipping`).

import { RECORD_BYTES_MAX, type MalformedRecord } from './format.js'

const NEWLINE = 0x0a
const decoder = new TextDecoder('utf-8', { fatal: true })

export type Line =
  | { readonly kind: 'text'; readonly offset: number; readonly endOffset: number; readonly text: string } // without the line ending
  | { readonly kind: 'malformed'; readonly malformed: MalformedRecord }

export interface Lines {
  readonly lines: Line[]
  readonly endOffset: number // after the last complete line (or malformed run)
  readonly skipping: boolean // endOffset is inside an over-long line
}

/** Splits `bytes` (at file offset `startOffset`) into complete lines, decoded as strict UTF-8. */
export function splitLines(bytes: Uint8Array, startOffset: number, skipping: boolean): Lines {
  const lines: Line[] = []
  let at = 0
  if (skipping) {
    // The rest of an over-long line already reported malformed: dropped through its '\n'.
    const newline = bytes.indexOf(NEWLINE)
    if (newline < 0) return { lines, endOffset: startOffset + bytes.length, skipping: true }
    at = newline + 1
  }
  for (let steps = 0; at < bytes.length; steps++) {
    if (steps > bytes.length) throw new Error('splitLines: no progress')
    const newline = bytes.indexOf(NEWLINE, at)
    const lineEnd = newline < 0 ? bytes.length : newline
    if (lineEnd - at > RECORD_BYTES_MAX) {
      const end = newline < 0 ? bytes.length : newline + 1
      lines.push({ kind: 'malformed', malformed: { offset: startOffset + at, endOffset: startOffset + end, reason: `line longer than ${RECORD_BYTES_MAX} bytes` } })
      if (newline < 0) return { lines, endOffset: startOffset + end, skipping: true }
      at = end
      continue
    }
    if (newline < 0) break // incomplete tail
    const contentEnd = newline > at && bytes[newline - 1] === 0x0d ? newline - 1 : newline
    let text: string
    try {
      text = decoder.decode(bytes.subarray(at, contentEnd))
    } catch {
      lines.push({ kind: 'malformed', malformed: { offset: startOffset + at, endOffset: startOffset + newline + 1, reason: 'not UTF-8' } })
      at = newline + 1
      continue
    }
    lines.push({ kind: 'text', offset: startOffset + at, endOffset: startOffset + newline + 1, text })
    at = newline + 1
  }
  return { lines, endOffset: startOffset + at, skipping: false }
}

/** Blank lines separate nothing and stamp nothing: their bytes go with the next record. */
export function isBlank(text: string): boolean {
  return text.trim().length === 0
}
