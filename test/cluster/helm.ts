// helm (v4, built by binaries.ts) with no configuration of its own: its cache, config and data in a
// fresh folder per call, and only the kubeconfig given (never the developer's own).
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A chart of a few objects installs in a second or two; two minutes means something hangs. */
const HELM_TIMEOUT_MS = 120_000

export interface HelmRun {
  status: number | null
  stdout: string
  stderr: string
}

export async function runHelm(
  binary: string,
  args: readonly string[],
  options: { input?: string; kubeconfig?: string; cwd?: string } = {},
): Promise<HelmRun> {
  const home = await mkdtemp(join(tmpdir(), 'pullguard-helm-'))
  try {
    return await new Promise<HelmRun>((resolve, reject) => {
      const child = spawn(binary, [...args], {
        cwd: options.cwd,
        env: {
          PATH: process.env['PATH'] ?? '',
          HOME: home,
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_DATA_HOME: join(home, 'data'),
          // No kubeconfig given: one that does not exist, so nothing reaches a real cluster.
          KUBECONFIG: options.kubeconfig ?? join(home, 'no-kubeconfig'),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: HELM_TIMEOUT_MS,
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
      child.on('error', reject)
      child.on('close', (status) => resolve({ status, stdout, stderr }))
      // A command that exits without reading its input closes the pipe first: EPIPE, not a test failure.
      child.stdin.on('error', () => {})
      child.stdin.end(options.input ?? '')
    })
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}
