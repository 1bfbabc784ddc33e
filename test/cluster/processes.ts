// Child processes of the end-to-end tests (etcd, kube-apiserver, pullguard): their output kept
// (bounded) for failure messages, stopped with SIGTERM then SIGKILL, and killed by an exit hook if a
// crashed test forgot them, so no orphan keeps a port or a data folder.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Enough of the end of a process's output for the fatal line and its context. */
const MAX_LOG_CHARS = 64_000
/** kube-apiserver drains for a while after SIGTERM; nothing in a test needs its graceful end. */
const KILL_GRACE_MS = 3_000
/** How often a lock held by a live process is looked at again. */
const LOCK_POLL_MS = 250

export interface Child {
  readonly process: ChildProcess
  /** The last MAX_LOG_CHARS of stdout and stderr, interleaved. */
  log(): string
  /** Called with each complete stdout line. */
  onLine(listener: (line: string) => void): void
  readonly exited: Promise<number | null>
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()
let hooked = false

/**
 * `discard`: read stdout and drop it (as a container runtime drains a pipe), without keeping or
 * splitting it: the benchmarks must not spend the load generator's CPU on pullguard's log lines.
 * `logFile`: stdout and stderr are also appended, whole, to this file (a shared control plane's
 * API server, whose log the test files read; shared-control-plane.ts).
 */
export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions & { discard?: boolean; logFile?: string } = {},
): Child {
  if (!hooked) {
    hooked = true
    const killAll = (): void => {
      for (const c of live) c.kill('SIGKILL')
    }
    process.once('exit', killAll)
    // tap ends a test file that runs past its timeout with SIGTERM, which skips 'exit' handlers.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        killAll()
        process.exit(128 + (signal === 'SIGTERM' ? 15 : 2))
      })
    }
  }
  const { discard: _, logFile: __, ...spawnOptions } = options
  const child = spawn(command, [...args], { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let text = ''
  let partial = ''
  const listeners: Array<(line: string) => void> = []
  if (options.logFile !== undefined) {
    const file = createWriteStream(options.logFile, { flags: 'a' })
    file.on('error', () => {})
    child.stdout?.on('data', (c: Buffer) => file.write(c))
    child.stderr?.on('data', (c: Buffer) => file.write(c))
    child.once('close', () => file.end())
  }
  if (options.discard === true) child.stdout?.resume()
  else
    child.stdout?.on('data', (c: Buffer) => {
      const s = c.toString('utf8')
      text = (text + s).slice(-MAX_LOG_CHARS)
      partial += s
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) for (const l of listeners) l(line)
    })
  child.stderr?.on('data', (c: Buffer) => {
    text = (text + c.toString('utf8')).slice(-MAX_LOG_CHARS)
  })
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      text += `\n${name}: ${err.message}`
      live.delete(child)
      resolve(null)
    })
    child.once('exit', (code) => {
      live.delete(child)
      resolve(code)
    })
  })
  return {
    process: child,
    log: () => text,
    onLine: (l) => listeners.push(l),
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Polls `probe` until it returns true, or fails with `describe()` after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await probe().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms\n${describe()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Removes `paths` (folders of this process's children, a lock) if this process exits before it did
 * so itself (a crash, Ctrl-C, tap's timeout); the function returned cancels that.
 */
export function removeOnExit(paths: readonly string[]): () => void {
  const remove = (): void => {
    for (const path of paths) {
      try {
        rmSync(path, { recursive: true, force: true })
      } catch {
        // An exit hook must not throw: the ones after it (killing the children) still have to run.
      }
    }
  }
  process.once('exit', remove)
  return () => {
    process.off('exit', remove)
  }
}

/** Whether a process (a lock's owner) still runs: signal 0 checks without sending; EPERM means it runs as another user. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the lock folder `dir` (mkdir is atomic: whoever creates it owns it, and writes its pid
 * there); a lock whose owner has died is taken over, a live one waited for, up to `waitMs`
 * (then `timeout()` is thrown). Resolves with the function that releases it.
 */
export async function takeLock(dir: string, waitMs: number, timeout: () => Error): Promise<() => void> {
  const started = Date.now()
  for (;;) {
    try {
      mkdirSync(dir)
      writeFileSync(join(dir, 'pid'), String(process.pid))
      return () => rmSync(dir, { recursive: true, force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let owner = Number.NaN
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8'))
      } catch {
        // the owner is between mkdir and writing its pid
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        rmSync(dir, { recursive: true, force: true })
        continue
      }
      if (Date.now() - started > waitMs) throw timeout()
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS))
    }
  }
}
