// The simulated transport's copy of the shared state table: one row per member, each row a
// BigUint64Array of cells laid out from the schema (a bool is a 0/1 cell, an array is
// `length` consecutive cells). Every member holds its own SimTable: its own row is written
// locally and pushed; the other rows change only when a push from their owner arrives.

import { checkedColumns } from '../replication/transport/sstSchema.js'
import type { SstColumn, SstSchema, SstView } from '../replication/transport/types.js'

const U64_MAX = (1n << 64n) - 1n

export interface ColumnLayout {
  readonly column: SstColumn
  readonly offset: number // first cell
  readonly length: number // cells (1 for scalars)
  readonly isArray: boolean
  readonly isBool: boolean
}

export class SimTableLayout {
  readonly cellCount: number
  private readonly byName = new Map<string, ColumnLayout>()

  constructor(schema: SstSchema) {
    let offset = 0
    for (const { column, length, isArray, isBool } of checkedColumns(schema)) {
      this.byName.set(column.name, { column, offset, length, isArray, isBool })
      offset += length
    }
    this.cellCount = offset
  }

  /** The cell of (column, index); throws on unknown columns, wrong kinds and out-of-range indexes (bugs). */
  cell(name: string, index: number | undefined, wantBool: boolean): number {
    const layout = this.column(name)
    if (layout.isBool !== wantBool) {
      throw new TypeError(`sst: column '${name}' is ${layout.column.kind}, accessed as ${wantBool ? 'bool' : 'u64'}`)
    }
    if (layout.isArray) {
      if (index === undefined || !Number.isSafeInteger(index) || index < 0 || index >= layout.length) {
        throw new RangeError(`sst: column '${name}' index ${String(index)} outside [0, ${layout.length})`)
      }
      return layout.offset + index
    }
    if (index !== undefined && index !== 0) throw new RangeError(`sst: scalar column '${name}' given index ${index}`)
    return layout.offset
  }

  column(name: string): ColumnLayout {
    const layout = this.byName.get(name)
    if (layout === undefined) throw new TypeError(`sst: unknown column '${name}'`)
    return layout
  }

  /** Cells of the named columns (all cells when omitted), ascending, no duplicates. */
  cellsOf(names: readonly string[] | undefined): Uint32Array {
    if (names === undefined) return Uint32Array.from({ length: this.cellCount }, (_, i) => i)
    const cells = new Set<number>()
    for (const name of names) {
      const layout = this.column(name)
      for (let i = 0; i < layout.length; i++) cells.add(layout.offset + i)
    }
    return Uint32Array.from([...cells].sort((x, y) => x - y))
  }
}

export class SimTable implements SstView {
  readonly rows: BigUint64Array[]

  constructor(
    readonly layout: SimTableLayout,
    readonly rowCount: number,
  ) {
    this.rows = Array.from({ length: rowCount }, () => new BigUint64Array(layout.cellCount))
  }

  u64(rank: number, column: string, index?: number): bigint {
    return this.row(rank)[this.layout.cell(column, index, false)]!
  }

  bool(rank: number, column: string, index?: number): boolean {
    return this.row(rank)[this.layout.cell(column, index, true)]! !== 0n
  }

  setU64(rank: number, column: string, value: bigint, index?: number): void {
    if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
      throw new RangeError(`sst: value ${String(value)} for '${column}' is not a u64`)
    }
    this.row(rank)[this.layout.cell(column, index, false)] = value
  }

  setBool(rank: number, column: string, value: boolean, index?: number): void {
    this.row(rank)[this.layout.cell(column, index, true)] = value ? 1n : 0n
  }

  private row(rank: number): BigUint64Array {
    const row = this.rows[rank]
    if (row === undefined) throw new RangeError(`sst: rank ${rank} outside [0, ${this.rowCount})`)
    return row
  }
}
