// Worker-thread entry: runs one task from tasks.ts and posts its result.

import { parentPort, workerData } from 'node:worker_threads'
import { runTask, type Task } from './tasks.js'

try {
  parentPort!.postMessage({ ok: true, value: runTask(workerData as Task) })
} catch (err) {
  parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) })
}
