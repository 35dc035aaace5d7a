// A bench's results as sections of rows, so one set of rows is printed as text by the bench
// and written as Markdown into docs/benchmarks.md by report.ts.

export interface Section {
  readonly heading: string
  readonly rows: readonly (readonly string[])[] // the first row is the header
  readonly after: readonly string[] // lines under the table (totals, verdicts)
}

/** Columns padded to their widest cell; the first left-aligned, the others right-aligned. */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n')
}

/** Text safe inside a Markdown table cell or line: no HTML tags, no column breaks. */
export function markdownText(text: string): string {
  return text.replaceAll('<', '&lt;').replaceAll('|', '\\|')
}

export function markdownTable(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows
  return [head!, head!.map(() => '---'), ...body].map((r) => `| ${r.map(markdownText).join(' | ')} |`).join('\n')
}

/** What a bench prints: each section's `== heading ==`, its table and the lines under it, a blank line between sections. */
export function renderText(sections: readonly Section[]): string {
  return sections.map((s) => [`== ${s.heading} ==`, textTable(s.rows), ...s.after].join('\n')).join('\n\n')
}
