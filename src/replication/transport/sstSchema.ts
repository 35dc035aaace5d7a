// The rules every transport holds an SST schema to (names, no column twice, array lengths), so
// that a schema the simulated transport accepts is one the native transport accepts too.
import type { SstColumn, SstSchema } from './types.js'

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
const ARRAY_LENGTH_MAX = 4096

export interface CheckedColumn {
  readonly column: SstColumn
  readonly length: number // cells (1 for scalars)
  readonly isArray: boolean
  readonly isBool: boolean
}

/** The schema's columns in declaration order, checked; RangeError on a schema no transport accepts. */
export function checkedColumns(schema: SstSchema): CheckedColumn[] {
  const seen = new Set<string>()
  return schema.columns.map((column) => {
    if (typeof column.name !== 'string' || !NAME_RE.test(column.name)) {
      throw new RangeError(`SST column name '${String(column.name)}' must match ${NAME_RE}`)
    }
    if (seen.has(column.name)) throw new RangeError(`SST column '${column.name}' declared twice`)
    seen.add(column.name)
    const isArray = column.kind === 'u64[]' || column.kind === 'bool[]'
    const length = isArray ? column.length : 1
    if (!Number.isSafeInteger(length) || length < 1 || length > ARRAY_LENGTH_MAX) {
      throw new RangeError(`SST column '${column.name}': length must be an integer in 1..${ARRAY_LENGTH_MAX}`)
    }
    return { column, length, isArray, isBool: column.kind === 'bool' || column.kind === 'bool[]' }
  })
}
