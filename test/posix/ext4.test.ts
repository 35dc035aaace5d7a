// The POSIX conformance suite on a plain directory of the machine's own file system (ext4
// here): the proof that the suite's checks are right. FFFS_POSIX_DIR=DIR runs it on any
// directory instead (it must be empty and reachable by every user).

import { promises as fsp } from 'node:fs'
import { plainTarget, posixSuite } from './suite.js'

posixSuite('a plain directory', false, async () => {
  const dir = process.env['FFFS_POSIX_DIR']
  if (dir === undefined) return plainTarget()
  await fsp.chmod(dir, 0o755)
  return { dir, close: async () => undefined }
})
