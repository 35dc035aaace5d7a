// The CLI side of the control socket: finds the fffs mount holding a path and sends requests.

import net from 'node:net'
import path from 'node:path'
import { codeOf, errors, FffsError, reasonOf } from '../errors.js'
import { fffsMounts } from '../fs/mountTable.js'
import { controlSocketPath, type ControlRequest, type ControlResponse } from './protocol.js'

const REQUEST_TIMEOUT_MS = 30_000

/** The mount holding `target` and the path inside it ('/...'). */
export function locate(target: string): { mountpoint: string; inner: string } {
  const absolute = path.resolve(target)
  const mount = fffsMounts()
    .filter((m) => absolute === m || absolute.startsWith(m.endsWith('/') ? m : m + '/'))
    .sort((a, b) => b.length - a.length)[0]
  if (mount === undefined) throw errors.notFound(`${target} is not inside an fffs mount`)
  const inner = '/' + path.relative(mount, absolute)
  return { mountpoint: mount, inner: inner === '/.' ? '/' : inner }
}

/** The mount to use when a command names none: the one holding the cwd, else the only one. */
export function defaultMount(explicit: string | undefined): string {
  if (explicit !== undefined) return locate(explicit).mountpoint
  try {
    return locate(process.cwd()).mountpoint
  } catch {
    const mounts = fffsMounts()
    if (mounts.length === 1) return mounts[0]!
    throw errors.invalid(mounts.length === 0 ? 'no fffs mount is running' : `several fffs mounts are running (${mounts.join(', ')}): pass --mount DIR`)
  }
}

export async function request<T>(mountpoint: string, body: ControlRequest | (ControlRequest & Record<string, unknown>), timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  const socketPath = controlSocketPath(mountpoint)
  const response = await new Promise<ControlResponse>((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    let buffered = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(errors.invalid(`no answer from the mount at ${mountpoint} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(JSON.stringify(body) + '\n'))
    socket.on('data', (text: string) => {
      buffered += text
      const newline = buffered.indexOf('\n')
      if (newline < 0) return
      clearTimeout(timer)
      socket.end()
      try {
        resolve(JSON.parse(buffered.slice(0, newline)) as ControlResponse)
      } catch {
        reject(errors.invalid('malformed answer from the mount'))
      }
    })
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(errors.invalid(`cannot reach the mount at ${mountpoint} (${err.message})`))
    })
  })
  if (!response.ok) throw new FffsError(codeOf(response.code), response.message, reasonOf(response.reason))
  return response.result as T
}

/** The pid of the process serving the fffs mount at `mountpoint`, or null when it does not answer. */
export async function mountOwner(mountpoint: string, timeoutMs = 2_000): Promise<number | null> {
  try {
    const { pid } = await request<{ pid?: unknown }>(mountpoint, { op: 'ping' }, timeoutMs)
    return typeof pid === 'number' ? pid : null
  } catch {
    return null
  }
}
