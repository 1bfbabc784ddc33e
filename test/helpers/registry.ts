// Runs the real CNCF distribution registry (Debian docker-registry 2.8.2) on 127.0.0.1 with TLS from a
// test CA, in one of three auth modes. Each instance gets its own port, storage and config in a temp
// dir; close() kills the process and removes the dir. A process 'exit' hook kills any registry a
// crashed test forgot, so no orphan keeps a port or a temp dir.
import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { Agent, request } from 'undici'
import { freePort } from './fake-server.js'
import type { TestCA } from './pki.js'
import { requireRegistryBinary } from './registry-binary.js'
import type { TokenServer } from './token-server.js'

export { requireRegistryBinary }

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; tokenServer: TokenServer }
export interface RunningRegistry {
  host: string
  origin: string
  caPem: string
  /** With `accessLog`: each request the registry served, as its access log wrote it, with when the line arrived. */
  requests(): RegistryRequest[]
  close(): Promise<void>
}
export interface RegistryRequest {
  method: string
  path: string
  status: number
  at: number
}

// The access log's combined-format request line: `"HEAD /v2/team/api/manifests/1.0 HTTP/1.1" 200`.
const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/

// The registry starts in well under a second; 10 s covers a loaded CI box without hiding a hang.
const START_TIMEOUT_MS = 10_000
const POLL_INTERVAL_MS = 50
// After SIGTERM the registry shuts down its HTTP server (drain timeout 0); give it this long.
const KILL_GRACE_MS = 3_000
// Bound the stderr kept for error messages: enough for the fatal line and its context.
const MAX_LOG_CHARS = 16_384
// The port picked by listening on 0 can be taken again before the registry binds it.
const PORT_ATTEMPTS = 3
// Cheap bcrypt cost: htpasswd hashes are made per test and checked on every request.
const BCRYPT_ROUNDS = 4

const live = new Set<{ child: ChildProcess; dir: string }>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const r of live) {
      r.child.kill('SIGKILL')
      rmSync(r.dir, { recursive: true, force: true })
    }
  })
}

// JSON strings are valid YAML double-quoted scalars, so every value goes through JSON.stringify.
function configYaml(
  dir: string,
  port: number,
  auth: RegistryAuth,
  accessLog: boolean,
  proxy: string | undefined,
  schema1: boolean,
): string {
  const q = JSON.stringify
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    `    disabled: ${!accessLog}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(join(dir, 'storage'))}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    '  secret: "pullguard-test-secret"',
    '  tls:',
    `    certificate: ${q(join(dir, 'tls.pem'))}`,
    `    key: ${q(join(dir, 'tls-key.pem'))}`,
  ]
  // A pull-through cache of another registry (distribution's proxy mode): read-only, it stores what it serves.
  if (proxy !== undefined) lines.push('proxy:', `  remoteurl: ${q(proxy)}`)
  // distribution 2.8 refuses a schema 1 PUT unless this is on (registry/handlers/app.go adds
  // storage.EnableSchema1; otherwise v1unsupportedhandler.go fails it, 500 UNKNOWN). Reads work either way.
  if (schema1) lines.push('compatibility:', '  schema1:', '    enabled: true')
  if (auth.kind === 'htpasswd') {
    lines.push('auth:', '  htpasswd:', '    realm: "pullguard-test"', `    path: ${q(join(dir, 'htpasswd'))}`)
  } else if (auth.kind === 'token') {
    const ts = auth.tokenServer
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${q(ts.realm)}`,
      `    service: ${q(ts.service)}`,
      `    issuer: ${q(ts.issuer)}`,
      `    rootcertbundle: ${q(ts.rootCertBundlePath)}`,
    )
  }
  return `${lines.join('\n')}\n`
}

function htpasswd(users: Record<string, string>): string {
  return Object.entries(users)
    .map(([u, p]) => `${u}:${bcrypt.hashSync(p, BCRYPT_ROUNDS)}\n`)
    .join('')
}

// REGISTRY_* variables override the config file (distribution's configuration parser); a developer's
// shell must not change the test registry, so they are dropped.
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))), ...extra }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
  await exited
  clearTimeout(timer)
}

// Polls GET /v2/ until the registry answers 200 (no auth) or 401 (auth on); both mean it is serving.
async function waitReady(child: ChildProcess, origin: string, caPem: string, log: () => string): Promise<void> {
  const agent = new Agent({ connect: { ca: caPem, timeout: 1_000 } })
  const deadline = Date.now() + START_TIMEOUT_MS
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new ExitedEarly(
          `docker-registry exited (${child.exitCode ?? child.signalCode}) before serving:\n${log()}`,
        )
      }
      try {
        const res = await request(`${origin}/v2/`, { dispatcher: agent, headersTimeout: 1_000, bodyTimeout: 1_000 })
        await res.body.dump()
        if (res.statusCode === 200 || res.statusCode === 401) return
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS))
    }
    throw new Error(`docker-registry not ready after ${START_TIMEOUT_MS} ms:\n${log()}`)
  } finally {
    await agent.close()
  }
}
class ExitedEarly extends Error {}

/**
 * `proxy`: run as a pull-through cache of that registry (it must be serving: distribution reads it at
 * start). distribution trusts only the system's CAs for it, so SSL_CERT_FILE names the test CA.
 * `schema1`: accept pushes of Docker schema 1 manifests (test/helpers/schema1.ts).
 */
export async function startRegistry(opts: {
  ca: TestCA
  auth: RegistryAuth
  accessLog?: boolean
  proxy?: RunningRegistry
  schema1?: boolean
}): Promise<RunningRegistry> {
  const binary = requireRegistryBinary()
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-registry-'))
  try {
    const tls = await opts.ca.issue('pullguard test registry', { dns: ['localhost'], ips: ['127.0.0.1'] })
    await mkdir(join(dir, 'storage'))
    await writeFile(join(dir, 'tls.pem'), tls.certPem)
    await writeFile(join(dir, 'tls-key.pem'), tls.keyPem, { mode: 0o600 })
    if (opts.auth.kind === 'htpasswd') await writeFile(join(dir, 'htpasswd'), htpasswd(opts.auth.users))
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      const configPath = join(dir, 'config.yml')
      await writeFile(
        configPath,
        configYaml(dir, port, opts.auth, opts.accessLog === true, opts.proxy?.origin, opts.schema1 === true),
      )
      let log = ''
      const served: RegistryRequest[] = []
      let partial = ''
      const child = spawn(binary, ['serve', configPath], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv(opts.proxy === undefined ? {} : { SSL_CERT_FILE: opts.ca.caPath }),
      })
      const keep = (chunk: Buffer): void => {
        const text = chunk.toString('utf8')
        log = (log + text).slice(-MAX_LOG_CHARS)
        if (opts.accessLog !== true) return
        const lines = (partial + text).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          const m = ACCESS_LINE.exec(line)
          if (m !== null) served.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), at: Date.now() })
        }
      }
      child.stdout?.on('data', keep)
      child.stderr?.on('data', keep)
      const entry = { child, dir }
      live.add(entry)
      installExitHook()
      const origin = `https://127.0.0.1:${port}`
      try {
        await waitReady(child, origin, opts.ca.caPem, () => log)
      } catch (err) {
        await stop(child)
        live.delete(entry)
        if (err instanceof ExitedEarly && /address already in use/.test(log) && attempt < PORT_ATTEMPTS) continue
        throw err
      }
      let closing: Promise<void> | undefined
      return {
        host: `127.0.0.1:${port}`,
        origin,
        caPem: opts.ca.caPem,
        requests: () => [...served],
        close: () =>
          (closing ??= (async () => {
            await stop(child)
            live.delete(entry)
            await rm(dir, { recursive: true, force: true })
          })()),
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
