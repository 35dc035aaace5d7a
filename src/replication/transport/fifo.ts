// A first-in, first-out queue whose shift costs O(1) at any length. Array.prototype.shift does
// only while V8 can trim an array in place; past ~16k entries (large-object space) every shift
// moves the whole rest: 20,000 queued sendSmall calls spent a quarter of the sender's CPU there.

export class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  /** The oldest item, left in the queue. */
  peek(): T | undefined {
    return this.items[this.head]
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined // no reference kept to what left
    // Compacted once the dead front outweighs the rest: each item is copied O(1) times overall.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Empties the queue; returns what it held, oldest first. */
  takeAll(): T[] {
    const rest = this.items.slice(this.head) as T[]
    this.items = []
    this.head = 0
    return rest
  }
}
