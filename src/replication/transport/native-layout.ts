// The SST row layout, derived from the TypeScript schema alone so every member computes the
// same offsets: columns in declaration order, 64-bit cells 8-byte aligned, booleans one byte.
// The native side appends its own system area (heartbeat, SMC and RDMC counters) after it.
import { createHash } from 'node:crypto'
import { checkedColumns } from './sstSchema.js'
import type { SstColumn, SstSchema } from './types.js'

export interface ColumnLayout {
  readonly column: SstColumn
  readonly offsetBytes: number // within the row
  readonly length: number // cells (1 for scalars)
  readonly cellBytes: 1 | 8
}

export interface RowLayout {
  readonly columns: ReadonlyMap<string, ColumnLayout>
  readonly userRowBytes: number // multiple of 8
}

export function layoutRow(schema: SstSchema): RowLayout {
  const columns = new Map<string, ColumnLayout>()
  let offsetBytes = 0
  for (const { column, length, isBool } of checkedColumns(schema)) {
    const cellBytes = isBool ? 1 : 8
    if (cellBytes === 8) offsetBytes = Math.ceil(offsetBytes / 8) * 8
    columns.set(column.name, { column, offsetBytes, length, cellBytes })
    offsetBytes += cellBytes * length
  }
  return { columns, userRowBytes: Math.max(8, Math.ceil(offsetBytes / 8) * 8) }
}

/** A short, stable description of the schema: exchanged at bootstrap and shown in mismatch errors. */
export function describeSchema(schema: SstSchema): string {
  return schema.columns
    .map((c) => (c.kind === 'u64[]' || c.kind === 'bool[]' ? `${c.name}:${c.kind.slice(0, -2)}[${c.length}]` : `${c.name}:${c.kind}`))
    .join(',')
}

export function schemaHash(schema: SstSchema): string {
  return createHash('sha256').update(describeSchema(schema)).digest('hex').slice(0, 16)
}
