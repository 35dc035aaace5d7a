// The SST row layout, derived from the TypeScript schema alone so every member computes the
// same offsets: columns in declaration order, 64-bit cells 8-byte aligned, booleans one byte.
// The native side appends its own system area (heartbeat, SMC and RDMC counters) after it.
import { createHash } from 'node:crypto'
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

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
const ARRAY_LENGTH_MAX = 4096

export function layoutRow(schema: SstSchema): RowLayout {
  const columns = new Map<string, ColumnLayout>()
  let offsetBytes = 0
  for (const column of schema.columns) {
    if (!NAME_RE.test(column.name)) throw new RangeError(`SST column name '${column.name}' must match ${NAME_RE}`)
    if (columns.has(column.name)) throw new RangeError(`SST column '${column.name}' declared twice`)
    const length = column.kind === 'u64[]' || column.kind === 'bool[]' ? column.length : 1
    if (!Number.isInteger(length) || length < 1 || length > ARRAY_LENGTH_MAX) {
      throw new RangeError(`SST column '${column.name}': length must be an integer in 1..${ARRAY_LENGTH_MAX}`)
    }
    const cellBytes = column.kind === 'u64' || column.kind === 'u64[]' ? 8 : 1
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
