// The null file system of jsloop-null.c, answered in JS: any name with an `@` in the root is a
// fresh 4 KiB file of zeros (as bench/fs/nullfs.ts serves them), created files discard their
// writes. Each reply waits one microtask, as fffs's async handlers do. Prints
// "jsloop-null: mounted DIR" when ready; SIGTERM unmounts.
//
//   node bench/fs/floor/jsloop-null.mjs ADDON.node MOUNTPOINT NOFLUSH(0|1)

import { createRequire } from 'node:module'

const [addonPath, mountpoint, noflush] = process.argv.slice(2)
if (addonPath === undefined || mountpoint === undefined) {
  process.stderr.write('usage: node jsloop-null.mjs ADDON.node MOUNTPOINT NOFLUSH(0|1)\n')
  process.exit(2)
}
const fuse = createRequire(import.meta.url)(addonPath)
const ROOT_INO = 1
const CREATED_INO = 1_000_000
const ENOENT = 2
const ENODATA = 61
let nextIno = 2

function answer(op, req, ino, name, sizeBytes) {
  switch (op) {
    case 'lookup':
      return ino === ROOT_INO && name.includes('@') ? fuse.reply('entry', req, nextIno++) : fuse.reply('err', req, ENOENT)
    case 'getattr':
      return fuse.reply('attr', req, ino)
    case 'open':
      return fuse.reply('open', req, 0)
    case 'create':
      return fuse.reply('create', req, CREATED_INO)
    case 'read':
      return fuse.reply('read', req, Math.min(sizeBytes, 4096))
    case 'write':
      return fuse.reply('write', req, sizeBytes)
    case 'getxattr':
      return fuse.reply('err', req, ENODATA) // as fffs answers security.capability before each write(2)
    default: // flush, release
      return fuse.reply('err', req, 0)
  }
}

fuse.start(mountpoint, Number(noflush ?? 0), (...request) => void Promise.resolve().then(() => answer(...request)))
process.stdout.write(`jsloop-null: mounted ${mountpoint}\n`)
process.on('SIGTERM', () => {
  fuse.stop()
  process.exit(0)
})
