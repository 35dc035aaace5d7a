// The POSIX conformance suite on an embedded fffs mount (one process, no replication).

import { promises as fsp } from 'node:fs'
import { startMount } from '../helpers/mount.js'
import { posixSuite } from './suite.js'

posixSuite('an embedded mount', true, async () => {
  const m = await startMount()
  await fsp.chmod(m.root, 0o755) // the test's temp dir: other users must reach the mount
  const dir = m.p('posix')
  await fsp.mkdir(dir)
  return { dir, close: () => m.cleanup() }
})
