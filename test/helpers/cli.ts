// Runs the built CLI (dist/src/cli.js) as a child process, as a user or CI job would, and collects
// its exit status and output. The environment is only what the test passes: never the developer's.
import { runProgram } from './program.js'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<CliRun> {
  return runProgram(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin ?? '',
  })
}
