/**
 * Runs one credential provider plugin as the kubelet does (plugin.go execPlugin.ExecPlugin): the
 * binary itself (no shell) with the configured args, the request on stdin, the process's own
 * environment plus the configured `env` entries (a later entry wins, as Go's os/exec keeps the last),
 * and the answer on stdout. Where pullguard is stricter than the kubelet, it is for the webhook's sake:
 * - the time limit is the caller's (never more than the kubelet's minute), and on expiry the whole
 *   process group is killed, so a grandchild holding stdout open cannot keep the review waiting;
 * - stdout is bounded; a plugin that says more than MAX_STDOUT_BYTES has failed;
 * - stderr is read and dropped: a plugin may print secrets there, and it never reaches a log line or
 *   a message (the kubelet appends it to its error log).
 */
import { spawn } from 'node:child_process'

/** The kubelet's own limit (plugin.go: context.WithTimeout(ctx, 1*time.Minute)). */
export const MAX_PLUGIN_TIME_MS = 60_000
/** A response holds a few auth entries; 1 MiB is far beyond any real plugin's answer. */
export const MAX_STDOUT_BYTES = 1024 * 1024

export type ExecProblemCode = 'PluginStartFailed' | 'PluginExited' | 'PluginTimedOut' | 'PluginOutputTooLarge'

export type ExecResult = { ok: true; stdout: string } | { ok: false; code: ExecProblemCode; problem: string }

export interface ExecSpec {
  /** For messages: the provider's name. */
  name: string
  binary: string
  args: readonly string[]
  env: ReadonlyArray<{ name: string; value: string }>
}

export function runPlugin(
  spec: ExecSpec,
  stdin: string,
  options: { baseEnv: Readonly<Record<string, string | undefined>>; timeoutMs: number },
): Promise<ExecResult> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(options.baseEnv)) if (v !== undefined) env[k] = v
  for (const { name, value } of spec.env) env[name] = value
  return new Promise((resolve) => {
    let settled = false
    const done = (result: ExecResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(result)
    }
    // detached: its own process group, so a timeout can end everything it started.
    const child = spawn(spec.binary, [...spec.args], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }
    const timer = setTimeout(
      () => {
        killGroup()
        done({
          ok: false,
          code: 'PluginTimedOut',
          problem: `credential provider plugin ${spec.name} did not answer within ${Math.min(options.timeoutMs, MAX_PLUGIN_TIME_MS)} ms`,
        })
      },
      Math.min(options.timeoutMs, MAX_PLUGIN_TIME_MS),
    )
    timer.unref()
    const chunks: Buffer[] = []
    let size = 0
    child.stdout.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_STDOUT_BYTES) {
        killGroup()
        done({
          ok: false,
          code: 'PluginOutputTooLarge',
          problem: `credential provider plugin ${spec.name} wrote more than ${MAX_STDOUT_BYTES} bytes`,
        })
        return
      }
      chunks.push(c)
    })
    child.stderr.resume()
    child.on('error', (err: NodeJS.ErrnoException) =>
      done({
        ok: false,
        code: 'PluginStartFailed',
        problem: `credential provider plugin ${spec.name} could not be started (${err.code ?? 'error'})`,
      }),
    )
    child.on('close', (code, signal) => {
      if (code === 0) done({ ok: true, stdout: Buffer.concat(chunks).toString('utf8') })
      else
        done({
          ok: false,
          code: 'PluginExited',
          problem: `credential provider plugin ${spec.name} ${signal === null ? `exited with status ${code}` : `was killed by ${signal}`}`,
        })
    })
    // A plugin that exits without reading its stdin must not turn into an EPIPE crash.
    child.stdin.on('error', () => {})
    child.stdin.end(stdin)
  })
}
