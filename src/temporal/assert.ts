// Invariant checks for the time layer. A failed invariant is a bug, not an operating
// condition, so it throws a plain Error (never an FffsError) and is meant to crash loudly.

export function invariant(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`temporal invariant broken: ${what}`)
}
