// containers-image's own answers (go.podman.io/image/v5, the library CRI-O pulls with), from
// containers-image-ref (containers-image/main.go, built by binaries.ts), for the tests that compare
// pullguard's CRI-O answers with them. Each call is one run of the CLI, which prints one JSON
// object: an answer, or `{"error": …}` when containers-image's answer is an error.
import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureToolsets } from './binaries.js'

/** A resolution or a policy check of a registry on 127.0.0.1 takes well under a second; a minute means a hang. */
const RUN_TIMEOUT_MS = 60_000
/** One JSON object of a few candidates or pull sources: far below this. */
const MAX_OUTPUT_BYTES = 1024 * 1024

/** One run of containers-image-ref: its JSON answer, or an error carrying its stderr (a usage error, or no JSON). */
export async function containersImageRef(args: readonly string[]): Promise<unknown> {
  const { containersImage } = await ensureToolsets(['containersImage'])
  const binary = join(containersImage, 'containers-image-ref')
  // Only PATH and TMPDIR: no proxy, DOCKER_CONFIG or XDG_* variable of the developer's shell reaches it.
  const env = { PATH: process.env['PATH'] ?? '', TMPDIR: tmpdir() }
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(
      binary,
      [...args],
      { env, timeout: RUN_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' },
      (err, stdout, stderr) => {
        // Not err.message: it repeats the command line, password included.
        const how = err?.killed === true ? `killed after ${RUN_TIMEOUT_MS / 1000} s` : `exited with ${err?.code}`
        if (err !== null) reject(new Error(`containers-image-ref ${shown(args)} ${how}:\n${stderr}`))
        else resolve({ stdout, stderr })
      },
    )
  })
  try {
    return JSON.parse(stdout) as unknown
  } catch {
    throw new Error(`containers-image-ref ${shown(args)} printed no JSON: ${JSON.stringify(stdout)}\n${stderr}`)
  }
}

/** The arguments for an error message, the password's value left out. */
function shown(args: readonly string[]): string {
  return args.map((arg, i) => (args[i - 1] === '--password' ? '<redacted>' : arg)).join(' ')
}

export type ShortNameMode = 'enforcing' | 'disabled' | 'permissive'

export interface ResolveOptions {
  registriesConf: string
  registriesConfDir?: string
  /** The user's short-name-aliases.conf; containers-image creates `<file>.lock` beside it. */
  aliasesConf?: string
  mode: ShortNameMode
}

/** shortnames.Resolve: the candidates in order (`quay.io/team/app:1.0`), or its error. */
export type ShortNameAnswer = { candidates: string[]; description: string } | { error: string }

export interface RegistriesOptions {
  registriesConf: string
  registriesConfDir?: string
}

export interface PullSource {
  reference: string
  insecure: boolean
}

/** sysregistriesv2.FindRegistry and the registry's PullSourcesFromReference (`registry: null`: none matches). */
export type RegistriesAnswer =
  | {
      blocked: boolean
      prefix: string
      location: string
      pullSources: PullSource[]
      unqualifiedSearchRegistries: string[]
    }
  | { registry: null; unqualifiedSearchRegistries: string[] }
  | { error: string }

export interface PolicyOptions {
  policy: string
  registriesD?: string
  /** A folder holding the registry's ca.crt, as /etc/containers/certs.d/<host>/ would. */
  certDir?: string
  credentials?: { username: string; password: string }
  registriesConf?: string
  registriesConfDir?: string
}

/** IsRunningImageAllowed; `stage` when it stopped before the evaluation (the image was never checked). */
export interface PolicyAnswer {
  allowed: boolean
  error?: string
  stage?: 'reference' | 'policy' | 'source'
  /** Signatures of every format the source holds. */
  signatures?: number
  signaturesError?: string
}

function flags(pairs: Record<string, string | undefined>): string[] {
  return Object.entries(pairs).flatMap(([name, value]) => (value === undefined ? [] : [`--${name}`, value]))
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The CLI is ours, but its output is checked once here so a changed field fails loudly, not as undefined. */
function expect<T>(answer: unknown, keys: readonly string[], what: string): T {
  if (!isRecord(answer) || !(typeof answer['error'] === 'string' || keys.every((k) => k in answer))) {
    throw new Error(`containers-image-ref ${what}: unexpected answer ${JSON.stringify(answer)}`)
  }
  return answer as T
}

export async function resolveShortName(image: string, options: ResolveOptions): Promise<ShortNameAnswer> {
  const args = flags({
    'registries-conf': options.registriesConf,
    'registries-conf-dir': options.registriesConfDir,
    'aliases-conf': options.aliasesConf,
    'short-name-mode': options.mode,
  })
  return expect(await containersImageRef(['resolve', ...args, image]), ['candidates', 'description'], 'resolve')
}

export async function findRegistry(image: string, options: RegistriesOptions): Promise<RegistriesAnswer> {
  const args = flags({ 'registries-conf': options.registriesConf, 'registries-conf-dir': options.registriesConfDir })
  return expect(await containersImageRef(['registries', ...args, image]), ['unqualifiedSearchRegistries'], 'registries')
}

/** `image` is a docker reference such as `127.0.0.1:5000/team/app:1.0`. */
export async function evaluatePolicy(image: string, options: PolicyOptions): Promise<PolicyAnswer> {
  const args = flags({
    policy: options.policy,
    'registries-d': options.registriesD,
    'cert-dir': options.certDir,
    username: options.credentials?.username,
    password: options.credentials?.password,
    'registries-conf': options.registriesConf,
    'registries-conf-dir': options.registriesConfDir,
  })
  return expect(await containersImageRef(['policy', ...args, image]), ['allowed'], 'policy')
}
