// Worker-thread entry for the replication bench: the fs bench's tasks (bench/fs/tasks.ts) plus
// small files with each one's create+write+close timed.

import fs from 'node:fs'
import path from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { runTask, type Task } from '../fs/tasks.js'

export interface TimedFilesTask {
  kind: 'smallFilesTimed'
  dir: string
  count: number
  bytes: number
}

export interface TimedFiles {
  count: number
  seconds: number
  closeUs: number[] // per file: open(O_CREAT|O_TRUNC) + write + close, in µs, in order
}

function smallFilesTimed(t: TimedFilesTask): TimedFiles {
  fs.mkdirSync(t.dir, { recursive: true })
  const data = Buffer.alloc(t.bytes, 0x61)
  const closeUs: number[] = []
  const start = performance.now()
  for (let i = 0; i < t.count; i++) {
    const began = process.hrtime.bigint()
    const fd = fs.openSync(path.join(t.dir, `f${i}`), 'w')
    fs.writeSync(fd, data, 0, data.length, 0)
    fs.closeSync(fd) // returns once the version is durable at every member of the view
    closeUs.push(Number(process.hrtime.bigint() - began) / 1000)
  }
  return { count: t.count, seconds: (performance.now() - start) / 1000, closeUs }
}

try {
  const task = workerData as Task | TimedFilesTask
  parentPort!.postMessage({ ok: true, value: task.kind === 'smallFilesTimed' ? smallFilesTimed(task) : runTask(task) })
} catch (err) {
  parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) })
}
