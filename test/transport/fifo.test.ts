import { describe, expect, it } from 'vitest'
import { Fifo } from '../../src/replication/transport/fifo.js'

describe('Fifo', () => {
  it('keeps order across compactions, interleaving pushes and shifts', () => {
    const q = new Fifo<number>()
    let pushed = 0
    let shifted = 0
    // Grow past the compaction threshold several times, with the front and back both moving.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 700; i++) q.push(pushed++)
      for (let i = 0; i < 500; i++) expect(q.shift()).toBe(shifted++)
      expect(q.length).toBe(pushed - shifted)
      expect(q.peek()).toBe(shifted)
    }
    while (q.length > 0) expect(q.shift()).toBe(shifted++)
    expect(shifted).toBe(pushed)
    expect(q.shift()).toBeUndefined()
    expect(q.peek()).toBeUndefined()
  })

  it('takeAll returns what is left, oldest first, and empties the queue', () => {
    const q = new Fifo<string>()
    for (const s of ['a', 'b', 'c', 'd']) q.push(s)
    q.shift()
    expect(q.takeAll()).toEqual(['b', 'c', 'd'])
    expect(q.length).toBe(0)
    q.push('e')
    expect(q.shift()).toBe('e')
  })
})
