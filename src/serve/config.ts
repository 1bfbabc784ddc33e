/**
 * `pullguard serve` configuration: one typed ServeConfig, built once at start-up from flags and
 * environment (the flag wins). Invalid input is a ConfigError naming the flag: the CLI prints its
 * message on one line and exits with status 2.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { createSecureContext } from 'node:tls'
import { ConfigError } from '../commands/errors.js'
import { PLATFORM_FLAG } from '../commands/cluster-flags.js'
import { parseFlagTable, type FlagTable } from '../commands/flag-table.js'
import { flagsOrEnv, oneOf, pickBoolean, type Env, type Picked } from '../commands/flags.js'
import { PULL_OPTIONS, pullSettings, type PullSettings } from '../commands/pull-flags.js'
import { auditQps, parseDuration, parseNamespace, platformList, readPem } from '../commands/values.js'
import { LOG_LEVELS, type LogLevel } from '../log/logger.js'
import type { OnRegistryError } from '../policy/decide.js'
import type { Mode } from '../policy/namespace-mode.js'
import type { Platform } from '../registry/index.js'

export interface TlsFiles {
  certPem: string
  keyPem: string
  certPath: string
  keyPath: string
}

export interface ServeConfig extends PullSettings {
  port: number
  host: string
  /** Undefined: generate a self-signed pair in memory (development only; logged as a warning). */
  tls: TlsFiles | undefined
  /** For namespaces without a `pullguard.io/mode` label. */
  mode: Mode
  /** What to do when a registry gives no answer (unreachable, rate limited, timeout). */
  onRegistryError: OnRegistryError
  /** Budget for one review, all images included. */
  timeoutMs: number
  /** Namespaces never judged (no registry or API call). */
  exemptNamespaces: string[]
  /** Image globs never checked. */
  exemptImages: string[]
  /** A docker config.json standing for the nodes' own credentials. */
  nodeDockerConfigPath: string | undefined
  /** The cluster's platforms; empty: read them from the Node objects. */
  platforms: Platform[]
  logLevel: LogLevel
  /** The background audit; undefined: off (--audit-interval 0, the default). */
  audit: AuditSettings | undefined
  /** POST /mutate pins pods' images to their verified digests. */
  pinDigests: boolean
}

export interface AuditSettings {
  intervalMs: number
  /** Requests a second per registry host. */
  qps: number
  /** Warning Events on the workloads (needs the events overlay's RBAC). */
  events: boolean
  /** Where the leader-election Lease lives: pullguard's own namespace. */
  leaseNamespace: string
  /** This replica's name in the Lease: the pod's name (POD_NAME), else host and pid. */
  identity: string
}

export const SERVE_OPTIONS = {
  port: { type: 'string', value: 'N', default: '8443', help: 'the HTTPS port' },
  host: { type: 'string', value: 'ADDR', default: '0.0.0.0', help: 'the address to listen on' },
  'tls-cert': {
    type: 'string',
    value: 'FILE',
    help: 'serving certificate (PEM), reloaded when it changes; without it a self-signed one (development only)',
  },
  'tls-key': { type: 'string', value: 'FILE', help: "the serving certificate's key (PEM)" },
  mode: {
    type: 'string',
    value: 'enforce|warn',
    default: 'enforce',
    help: 'for namespaces without a pullguard.io/mode label: deny, or allow with warnings',
  },
  'on-registry-error': {
    type: 'string',
    value: 'allow|deny',
    default: 'allow',
    help: 'what an image gets when its registry gives no answer (unreachable, rate limited, out of time)',
  },
  timeout: {
    type: 'string',
    value: 'DURATION',
    default: '8s',
    help: "one review's budget, all images included (100ms..29s; below the webhook's timeoutSeconds)",
  },
  'exempt-namespace': {
    type: 'string',
    multiple: true,
    value: 'NS',
    default: "pullguard's own namespace",
    help: 'a namespace never judged',
  },
  'exempt-image': { type: 'string', multiple: true, value: 'GLOB', help: 'images never checked (registry/path/*)' },
  'node-docker-config': {
    type: 'string',
    value: 'FILE',
    help: "a docker config.json standing for the nodes' own credentials, reloaded when it changes",
  },
  platform: PLATFORM_FLAG,
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    default: 'info',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
  'audit-interval': {
    type: 'string',
    value: 'DURATION',
    default: '0 (off)',
    help: 'how often the background audit re-judges every workload (leader-elected)',
  },
  'audit-registry-qps': {
    type: 'string',
    value: 'N',
    default: '2',
    help: "the audit's requests a second per registry host, at most",
  },
  'audit-events': {
    type: 'boolean',
    default: 'false',
    help: 'write Warning Events on workloads whose images would no longer pull (events overlay RBAC)',
  },
  'pin-digests': {
    type: 'boolean',
    default: 'false',
    help: "serve POST /mutate: pin each image of a Pod to the digest verified for its tag (the pin-digests overlay's MutatingWebhookConfiguration)",
  },
  ...PULL_OPTIONS,
} as const satisfies FlagTable

/** The API server waits at most 30 s for a webhook; a budget beyond 29 s could never be honoured. */
export const MAX_TIMEOUT_MS = 29_000
/** Below this not even a warm registry round-trip fits. */
export const MIN_TIMEOUT_MS = 100

export function parseServeConfig(argv: readonly string[], env: Env = process.env): ServeConfig {
  const { values } = parseFlagTable('serve', argv, SERVE_OPTIONS, false)
  const { pick, pickList } = flagsOrEnv(values, env)
  const timeout = pick('timeout')
  const exemptNs = pickList('exempt-namespace')
  const timeoutMs = parseDuration(timeout.value ?? '8s', timeout.source)
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ConfigError(
      timeout.source,
      `${timeout.value} is outside 100ms..29s (the API server waits at most 30s for a webhook)`,
    )
  }
  const nodeDockerConfigPath = pick('node-docker-config').value
  const platforms = platformList(pickList('platform'))
  const port = pick('port')
  const mode = pick('mode')
  const onError = pick('on-registry-error')
  const level = pick('log-level')
  return {
    port: parsePort(port.value ?? '8443', port.source),
    host: pick('host').value ?? '0.0.0.0',
    tls: readTls(pick('tls-cert'), pick('tls-key')),
    mode: oneOf(mode.value ?? 'enforce', ['enforce', 'warn'] as const, mode.source),
    onRegistryError: oneOf(onError.value ?? 'allow', ['allow', 'deny'] as const, onError.source),
    timeoutMs,
    exemptNamespaces: exemptNs.given
      ? exemptNs.list.map((n) => parseNamespace(n, exemptNs.source))
      : [ownNamespace(env)],
    exemptImages: pickList('exempt-image').list,
    nodeDockerConfigPath,
    platforms,
    logLevel: oneOf(level.value ?? 'info', LOG_LEVELS, level.source),
    audit: auditSettings(
      pick('audit-interval'),
      pick('audit-registry-qps'),
      pickBoolean(values, env, 'audit-events'),
      env,
    ),
    pinDigests: pickBoolean(values, env, 'pin-digests'),
    ...pullSettings(values, env, { nodeDockerConfigPath, platforms }),
  }
}

/** Shorter intervals would re-ask every registry more often than its answers are cached. */
const MIN_AUDIT_INTERVAL_MS = 1000

function auditSettings(interval: Picked, qps: Picked, withEvents: boolean, env: Env): AuditSettings | undefined {
  const intervalMs =
    interval.value === undefined || interval.value === '0' ? 0 : parseDuration(interval.value, interval.source)
  const rate = auditQps(qps)
  if (intervalMs === 0) return undefined
  if (intervalMs < MIN_AUDIT_INTERVAL_MS)
    throw new ConfigError(interval.source, `${interval.value} is shorter than 1s (0 turns the audit off)`)
  const pod = env.POD_NAME
  return {
    intervalMs,
    qps: rate,
    events: withEvents,
    leaseNamespace: ownNamespace(env),
    identity: pod !== undefined && pod !== '' ? pod : `${hostname()}-${process.pid}`,
  }
}

/** Where pullguard itself runs: the downward API, else the service account's namespace file. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'
function ownNamespace(env: Env): string {
  if (env.POD_NAMESPACE !== undefined && env.POD_NAMESPACE !== '') return env.POD_NAMESPACE
  try {
    const fromFile = readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim()
    if (fromFile !== '') return fromFile
  } catch {
    // not in a cluster
  }
  return 'pullguard'
}

function parsePort(value: string, source: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw new ConfigError(source, `"${value}" is not a port number (0-65535)`)
  return Number(value)
}

function readTls(cert: Picked, key: Picked): TlsFiles | undefined {
  if (cert.value === undefined && key.value === undefined) return undefined
  if (cert.value === undefined) throw new ConfigError('--tls-cert', 'is required when --tls-key is set')
  if (key.value === undefined) throw new ConfigError('--tls-key', 'is required when --tls-cert is set')
  const pair = {
    certPem: readPem(cert.value, cert.source),
    keyPem: readPem(key.value, key.source),
    certPath: cert.value,
    keyPath: key.value,
  }
  try {
    createSecureContext({ cert: pair.certPem, key: pair.keyPem })
  } catch (err) {
    // Swapped files, a key for another certificate, an encrypted key: say so now, not at first request.
    throw new ConfigError(
      cert.source,
      `${cert.value} and ${key.value} are not a usable certificate and key pair (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    )
  }
  return pair
}
