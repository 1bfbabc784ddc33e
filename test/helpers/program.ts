// Runs a program to its end and collects what it printed: pullguard's CLI (cli.ts) and the real
// tools the tests drive (pre-commit, krew, kubectl, git, npm, bash) the way a user's shell would.
import { spawn } from 'node:child_process'

export interface ProgramRun {
  code: number | null
  stdout: string
  stderr: string
}

export function runProgram(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string } = {},
): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: options.env ?? process.env,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    if (child.stdin !== null) {
      // A command that exits without reading its input closes the pipe first: EPIPE, not a test failure.
      child.stdin.on('error', () => {})
      child.stdin.end(options.stdin ?? '')
    }
  })
}

/** Exit status, and stdout then stderr in one text, for output read as a whole (a tool's log). */
export async function runLogged(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string }> {
  const r = await runProgram(command, args, { cwd, env })
  return { code: r.code, out: r.stdout + r.stderr }
}
