// The CRC worker: checksums of shared buffers computed off the JS thread equal crc32c; plain
// buffers are checksummed in place; a terminated worker's debts are paid on this thread.

import { afterEach, describe, expect, it } from 'vitest'
import { crc32c } from '../../src/store/crc32c.js'
import { CrcWorker } from '../../src/store/crcWorker.js'

const workers: CrcWorker[] = []
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.close()
})

function filled(bytes: Buffer, seed: number): Buffer {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (Math.imul(i + seed, 2654435761) >>> 24) & 0xff
  return bytes
}

describe('CrcWorker', () => {
  it('checksums shared buffers on the worker and plain ones in place, each equal to crc32c', async () => {
    const worker = new CrcWorker()
    workers.push(worker)
    const shared = filled(CrcWorker.allocShared(3 * 1024 * 1024), 1)
    const plain = filled(Buffer.allocUnsafe(100_000), 2)
    const parts = [shared.subarray(0, 1000), shared.subarray(1000), shared, plain]
    const crcs = await Promise.all(parts.map((part) => worker.crcOf(part)))
    expect(crcs).toEqual(parts.map((part) => crc32c(part)))
  })

  it('pays what it owes on this thread once the worker is gone', async () => {
    const worker = new CrcWorker()
    workers.push(worker)
    const shared = filled(CrcWorker.allocShared(8 * 1024 * 1024), 3)
    const owed = worker.crcOf(shared)
    await worker.close()
    expect(await owed).toBe(crc32c(shared))
    expect(await worker.crcOf(shared)).toBe(crc32c(shared)) // and computes later ones here
  })
})
