// The experiment's file I/O: real system calls on the mount, made by a python3 helper
// process. Why python: in the default stamp mode a writer stamps each version by setting the
// xattr `user.fffs.sensor_time` on the open file before its commit point, and node has no
// setxattr (the other mode, `--stamp path`, opens `tile@sensor:T` for writing). The tests
// already drive xattrs this way.
//
// Protocol: one JSON object per line each way, answered by id, in any order; the helper runs
// each request on a thread of its own (bounded pool), so blocking reads at unstable cuts and
// fsyncs overlap. Times are CLOCK_REALTIME in µs, comparable with platform (HLC) time.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'

const XATTR_SENSOR_TIME = 'user.fffs.sensor_time'
const EXIT_TIMEOUT_MS = 10_000

const HELPER = String.raw`
import base64, errno, json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

ATTR = sys.argv[1]
pool = ThreadPoolExecutor(max_workers=int(sys.argv[2]))
out_lock = threading.Lock()
writers = {}  # path -> fd held open for the whole run: one version per fsync

def now_us():
    return time.time_ns() // 1000

def reply(obj):
    line = json.dumps(obj, separators=(',', ':')) + '\n'
    with out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()

def failed(rid, step, err):
    return {'id': rid, 'ok': False, 'step': step, 'errno': err.errno or 0, 'error': err.strerror or str(err)}

def timed(rid, started, err=None):
    res = failed(rid, err[0], err[1]) if err else {'id': rid, 'ok': True}
    res['startUs'] = started
    res['endUs'] = now_us()
    return res

def open_writer(req):
    writers[req['path']] = os.open(req['path'], os.O_WRONLY)
    return {'id': req['id'], 'ok': True}

def close_writer(req):
    os.close(writers.pop(req['path']))
    return {'id': req['id'], 'ok': True}

def write(req):
    fd = writers[req['path']]
    started = now_us()
    step = 'setxattr'
    try:
        os.setxattr(fd, ATTR, req['sensor'].encode())
        step = 'write'
        os.pwrite(fd, base64.b64decode(req['data']), 0)
        step = 'fsync'  # the commit point: returns once the version is durable on its shard
        os.fsync(fd)
    except OSError as err:
        return timed(req['id'], started, (step, err))
    return timed(req['id'], started)

def write_at(req):
    # A version of its own: open P@sensor:T for writing, write, close (the commit point).
    started = now_us()
    step = 'open'
    try:
        fd = os.open(req['path'], os.O_WRONLY)
        try:
            step = 'write'
            os.pwrite(fd, base64.b64decode(req['data']), 0)
        finally:
            step = 'close'
            os.close(fd)
    except OSError as err:
        return timed(req['id'], started, (step, err))
    return timed(req['id'], started)

def read_one(path):
    started = now_us()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        return {'ok': False, 'step': 'open', 'errno': err.errno or 0, 'error': err.strerror or str(err), 'startUs': started, 'openedUs': now_us(), 'endUs': now_us()}
    opened = now_us()
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        data = b''.join(chunks)
    except OSError as err:
        return {'ok': False, 'step': 'read', 'errno': err.errno or 0, 'error': err.strerror or str(err), 'startUs': started, 'openedUs': opened, 'endUs': now_us()}
    finally:
        os.close(fd)
    return {'ok': True, 'data': base64.b64encode(data).decode(), 'startUs': started, 'openedUs': opened, 'endUs': now_us()}

def read_frame(req):
    # One after another, as a program looping over the files would read a frame. A cut
    # that stayed unstable for the mount's whole --max-wait (EAGAIN) ends the frame.
    reads = []
    for path in req['paths']:
        if reads and not reads[-1]['ok'] and reads[-1]['errno'] == errno.EAGAIN:
            at = now_us()
            reads.append({'ok': False, 'step': 'skipped', 'errno': errno.EAGAIN, 'error': 'frame abandoned', 'startUs': at, 'openedUs': at, 'endUs': at})
        else:
            reads.append(read_one(path))
    return {'id': req['id'], 'ok': True, 'reads': reads}

OPS = {'openWriter': open_writer, 'closeWriter': close_writer, 'write': write, 'writeAt': write_at, 'readFrame': read_frame}

def run(req):
    try:
        reply(OPS[req['op']](req))
    except OSError as err:
        reply(failed(req['id'], req['op'], err))
    except Exception as err:
        reply({'id': req['id'], 'ok': False, 'step': req.get('op', '?'), 'errno': 0, 'error': repr(err)})

for line in sys.stdin:
    if line.strip():
        pool.submit(run, json.loads(line))
pool.shutdown(wait=True)
for fd in writers.values():
    os.close(fd)
`

export interface WriteResult {
  readonly ok: boolean
  readonly startUs: number
  readonly endUs: number
  readonly step?: string // where it failed: setxattr, write, fsync
  readonly errno?: number
  readonly error?: string
}

export interface ReadResult {
  readonly ok: boolean
  readonly data?: Buffer
  readonly startUs: number
  readonly openedUs: number // after open: for a path at a cut, after the wait for the cut to be stable
  readonly endUs: number
  readonly step?: string
  readonly errno?: number
  readonly error?: string
}

interface Reply {
  id: number
  ok: boolean
  step?: string
  errno?: number
  error?: string
  startUs?: number
  endUs?: number
  reads?: Array<{ ok: boolean; data?: string; startUs: number; openedUs: number; endUs: number; step?: string; errno?: number; error?: string }>
}

function writeResult(reply: Reply): WriteResult {
  return {
    ok: reply.ok,
    startUs: reply.startUs ?? 0,
    endUs: reply.endUs ?? 0,
    ...(reply.ok ? {} : { step: reply.step ?? '?', errno: reply.errno ?? 0, error: reply.error ?? '?' }),
  }
}

export class FileIo {
  private readonly child: ChildProcessWithoutNullStreams
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>()
  private nextId = 1
  private exited = false
  private stderr = ''

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child
    let buffered = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (text: string) => {
      buffered += text
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const reply = JSON.parse(buffered.slice(0, newline)) as Reply
        buffered = buffered.slice(newline + 1)
        const waiter = this.pending.get(reply.id)
        if (waiter === undefined) continue
        this.pending.delete(reply.id)
        clearTimeout(waiter.timer)
        waiter.resolve(reply)
      }
    })
    child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)))
    child.on('exit', (code, signal) => this.gone(`exited (${code ?? signal})`))
    child.on('error', (err) => this.gone(`could not run python3: ${err.message}`)) // no exit event follows a failed spawn
  }

  private gone(why: string): void {
    this.exited = true
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer)
      waiter.reject(new Error(`file I/O helper ${why}: ${this.stderr.trim()}`))
    }
    this.pending.clear()
  }

  /** Starts the helper with a pool of `threads` (at least one per writer plus the frame readers). */
  static start(threads: number): FileIo {
    const child = spawn('python3', ['-c', HELPER, XATTR_SENSOR_TIME, String(threads)], { stdio: ['pipe', 'pipe', 'pipe'] })
    return new FileIo(child)
  }

  private call(body: Record<string, unknown>, timeoutMs: number): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`file I/O helper is not running: ${this.stderr.trim()}`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`file I/O helper: no answer to ${String(body.op)} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.child.stdin.write(JSON.stringify({ id, ...body }) + '\n')
    })
  }

  async openWriter(path: string, timeoutMs: number): Promise<void> {
    const reply = await this.call({ op: 'openWriter', path }, timeoutMs)
    if (!reply.ok) throw new Error(`open ${path} for writing: ${reply.error ?? '?'} (errno ${reply.errno ?? '?'})`)
  }

  async closeWriter(path: string, timeoutMs: number): Promise<void> {
    const reply = await this.call({ op: 'closeWriter', path }, timeoutMs)
    if (!reply.ok) throw new Error(`close ${path}: ${reply.error ?? '?'} (errno ${reply.errno ?? '?'})`)
  }

  /** One version of an open tile: set its sensor time, write `data` over it, fsync. */
  async write(path: string, sensorSpec: string, data: Buffer, timeoutMs: number): Promise<WriteResult> {
    return writeResult(await this.call({ op: 'write', path, sensor: sensorSpec, data: data.toString('base64') }, timeoutMs))
  }

  /** One version through a path of its own (`P@sensor:T`): open for writing, write `data` over the file, close. */
  async writeAt(path: string, data: Buffer, timeoutMs: number): Promise<WriteResult> {
    return writeResult(await this.call({ op: 'writeAt', path, data: data.toString('base64') }, timeoutMs))
  }

  /** Reads each path whole, one after another, on one helper thread. */
  async readFrame(paths: readonly string[], timeoutMs: number): Promise<ReadResult[]> {
    const reply = await this.call({ op: 'readFrame', paths }, timeoutMs)
    if (!reply.ok || reply.reads === undefined) throw new Error(`read frame: ${reply.error ?? '?'}`)
    return reply.reads.map((r) => ({
      ok: r.ok,
      startUs: r.startUs,
      openedUs: r.openedUs,
      endUs: r.endUs,
      ...(r.data !== undefined ? { data: Buffer.from(r.data, 'base64') } : {}),
      ...(r.ok ? {} : { step: r.step ?? '?', errno: r.errno ?? 0, error: r.error ?? '?' }),
    }))
  }

  /** Ends the helper: it finishes queued requests and closes its files; killed if it does not exit in time. */
  async stop(): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
}
