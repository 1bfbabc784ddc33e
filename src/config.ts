/**
 * The one typed Config, built once at start-up from flags and environment (flag wins).
 * This is the only module that reads process.env. Invalid input is a ConfigError naming the
 * flag: the CLI prints its message on one line and exits with status 2.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { Writable } from 'node:stream'
import { createSecureContext } from 'node:tls'
import { parseArgs } from 'node:util'
import type { KubeConfig } from '@kubernetes/client-node'
import type { KubeApi } from './kube/kube-api.js'
import type { Mode, OnRegistryError } from './policy/modes.js'
import { parsePlatform } from './policy/platforms.js'
import { LOG_LEVELS, createLogger, type LogLevel } from './log/logger.js'
import { loadProviderConfig, ProviderConfigError } from './providers/config.js'
import type { Platform } from './registry/index.js'
import { MirrorConfigError } from './mirrors/errors.js'
import { MirrorRoutes, type MirrorSource } from './mirrors/routes.js'


export interface TlsFiles {
  certPem: string
  keyPem: string
  certPath: string
  keyPath: string
}


export interface ServeConfig {
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
  /** Extra PEM bundle trusted for registries. */
  registryCaPem: string | undefined
  /** host[:port] reached without certificate checks or over plain HTTP. */
  insecureRegistries: string[]
  /** NODE_EXTRA_CA_CERTS, re-read because passing our own CA list makes Node drop it. */
  nodeExtraCaCertsPath: string | undefined
  /** Namespaces never judged (no registry or API call). */
  exemptNamespaces: string[]
  /** Image globs never checked. */
  exemptImages: string[]
  /** A docker config.json standing for the nodes' own credentials. */
  nodeDockerConfigPath: string | undefined
  /** The cluster's platforms; empty: read them from the Node objects. */
  platforms: Platform[]
  logLevel: LogLevel
  credentialProviders: CredentialProviderFlags | undefined
  /** The background audit; undefined: off (--audit-interval 0, the default). */
  audit: AuditSettings | undefined
  /** Where the nodes pull from (--containerd-hosts-dir or --registries-conf); undefined: each image's own registry. */
  mirrors: MirrorSource | undefined
  /** Requests in flight per registry host, shared by reviews and the audit (--registry-concurrency). */
  registryConcurrency: number
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

/** --image-credential-provider-config and --image-credential-provider-bin-dir, both checked at start. */
export interface CredentialProviderFlags {
  configPath: string
  binDir: string
  /** The environment plugins start with: pullguard's own, as the kubelet passes its own. */
  env: Env
}

/**
 * Both flags or neither; the config is read and validated now (the kubelet refuses to start on a
 * bad one, and so do we), and again when it changes.
 */
export function credentialProviderFlags(config: Picked, binDir: Picked, env: Env): CredentialProviderFlags | undefined {
  if (config.value === undefined && binDir.value === undefined) return undefined
  if (config.value === undefined) throw new ConfigError('--image-credential-provider-config', `is required when ${binDir.source} is set`)
  if (binDir.value === undefined) throw new ConfigError('--image-credential-provider-bin-dir', `is required when ${config.source} is set`)
  try {
    loadProviderConfig(config.value, binDir.value)
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ConfigError(config.source, err.message)
    throw err
  }
  return { configPath: config.value, binDir: binDir.value, env }
}

export class ConfigError extends Error {
  readonly code = 'InvalidConfig'
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`${flag}: ${problem}`)
    this.name = 'ConfigError'
  }
}

/** What a one-shot command was asked to read (a pod, a namespace, the workloads) cannot be read: exit 2. */
export class TargetError extends Error {
  readonly code = 'TargetUnreadable'
  override name = 'TargetError'
}

export type Env = Readonly<Record<string, string | undefined>>

const SERVE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  mode: { type: 'string' },
  'on-registry-error': { type: 'string' },
  timeout: { type: 'string' },
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'exempt-namespace': { type: 'string', multiple: true },
  'exempt-image': { type: 'string', multiple: true },
  'node-docker-config': { type: 'string' },
  platform: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'image-credential-provider-config': { type: 'string' },
  'image-credential-provider-bin-dir': { type: 'string' },
  'audit-interval': { type: 'string' },
  'audit-registry-qps': { type: 'string' },
  'audit-events': { type: 'string' },
  'containerd-hosts-dir': { type: 'string' },
  'registries-conf': { type: 'string' },
  'registry-concurrency': { type: 'string' },
} as const

type Values = { [K in keyof typeof SERVE_OPTIONS]?: (typeof SERVE_OPTIONS)[K] extends { multiple: true } ? string[] : string }

export interface Picked { value: string | undefined; source: string }
export interface PickedList { list: string[]; source: string; given: boolean }

/**
 * The environment variable of every flag, whichever command takes it: `check` and `diagnose` read
 * the flags they share with `serve` from the same variables, so one environment configures all three.
 */
export const FLAG_ENV = {
  port: 'PULLGUARD_PORT',
  host: 'PULLGUARD_HOST',
  'tls-cert': 'PULLGUARD_TLS_CERT',
  'tls-key': 'PULLGUARD_TLS_KEY',
  mode: 'PULLGUARD_MODE',
  'on-registry-error': 'PULLGUARD_ON_REGISTRY_ERROR',
  timeout: 'PULLGUARD_TIMEOUT',
  'registry-ca': 'PULLGUARD_REGISTRY_CA',
  'insecure-registry': 'PULLGUARD_INSECURE_REGISTRIES',
  'exempt-namespace': 'PULLGUARD_EXEMPT_NAMESPACES',
  'exempt-image': 'PULLGUARD_EXEMPT_IMAGES',
  'node-docker-config': 'PULLGUARD_NODE_DOCKER_CONFIG',
  platform: 'PULLGUARD_PLATFORMS',
  'log-level': 'PULLGUARD_LOG_LEVEL',
  'image-credential-provider-config': 'PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_CONFIG',
  'image-credential-provider-bin-dir': 'PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR',
  'audit-interval': 'PULLGUARD_AUDIT_INTERVAL',
  'audit-registry-qps': 'PULLGUARD_AUDIT_REGISTRY_QPS',
  'audit-events': 'PULLGUARD_AUDIT_EVENTS',
  'containerd-hosts-dir': 'PULLGUARD_CONTAINERD_HOSTS_DIR',
  'registries-conf': 'PULLGUARD_REGISTRIES_CONF',
  'registry-concurrency': 'PULLGUARD_REGISTRY_CONCURRENCY',
} as const
export type EnvFlag = keyof typeof FLAG_ENV

/**
 * Each flag, else its environment variable (an empty one counts as unset; lists are comma
 * separated): the flag wins, and `source` names whichever was used, for error messages.
 */
export function flagsOrEnv(values: Readonly<Record<string, string | string[] | boolean | undefined>>, env: Env): {
  pick(flag: EnvFlag): Picked
  pickList(flag: EnvFlag): PickedList
} {
  return {
    pick(flag) {
      const fromFlag = values[flag]
      if (typeof fromFlag === 'string') return { value: fromFlag, source: `--${flag}` }
      const fromEnv = env[FLAG_ENV[flag]]
      return { value: fromEnv === '' ? undefined : fromEnv, source: FLAG_ENV[flag] }
    },
    pickList(flag) {
      const fromFlag = values[flag]
      if (Array.isArray(fromFlag)) return { list: fromFlag, source: `--${flag}`, given: true }
      const fromEnv = env[FLAG_ENV[flag]]
      return { list: splitList(fromEnv), source: FLAG_ENV[flag], given: fromEnv !== undefined && fromEnv !== '' }
    },
  }
}

/**
 * The flags `diagnose` and `audit` share: which cluster, how long per image, how to reach the
 * registries, and the nodes' own credentials.
 */
export const CLUSTER_CLI_OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  kubeconfig: { type: 'string' },
  timeout: { type: 'string' },
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'node-docker-config': { type: 'string' },
  output: { type: 'string', short: 'o' },
  'image-credential-provider-config': { type: 'string' },
  'image-credential-provider-bin-dir': { type: 'string' },
  'containerd-hosts-dir': { type: 'string' },
  'registries-conf': { type: 'string' },
  'registry-concurrency': { type: 'string' },
} as const

export interface ClusterCliSettings {
  kubeconfigPath: string | undefined
  /** Per image. */
  timeoutMs: number
  registryCaPem: string | undefined
  insecureRegistries: string[]
  nodeExtraCaCertsPath: string | undefined
  nodeDockerConfigPath: string | undefined
  credentialProviders: CredentialProviderFlags | undefined
  output: 'table' | 'json'
  mirrors: MirrorSource | undefined
  registryConcurrency: number
}

/** Those flags' values (flag, else environment), checked; `perImageTimeout` is `check`'s own rule for --timeout. */
export function clusterCliSettings(values: { kubeconfig?: string | undefined; output?: string | undefined } & Readonly<Record<string, string | string[] | boolean | undefined>>, env: Env, perImageTimeout: (picked: Picked) => number): ClusterCliSettings {
  const { pick, pickList } = flagsOrEnv(values, env)
  return {
    kubeconfigPath: values.kubeconfig,
    timeoutMs: perImageTimeout(pick('timeout')),
    registryCaPem: registryCa(pick('registry-ca')),
    insecureRegistries: insecureRegistries(pickList('insecure-registry')),
    nodeExtraCaCertsPath: nodeExtraCaCerts(env),
    nodeDockerConfigPath: pick('node-docker-config').value,
    credentialProviders: credentialProviderFlags(pick('image-credential-provider-config'), pick('image-credential-provider-bin-dir'), env),
    output: oneOf(values.output ?? 'table', ['table', 'json'] as const, '--output'),
    mirrors: mirrorSource(pick('containerd-hosts-dir'), pick('registries-conf')),
    registryConcurrency: registryConcurrency(pick('registry-concurrency')),
  }
}

/**
 * --containerd-hosts-dir or --registries-conf (a node runs one runtime: both is an error), read
 * and checked now, as the runtime would refuse a broken file at start.
 */
export function mirrorSource(hostsDir: Picked, registriesConf: Picked): MirrorSource | undefined {
  if (hostsDir.value !== undefined && registriesConf.value !== undefined) {
    throw new ConfigError(hostsDir.source, `cannot be combined with ${registriesConf.source}: give the configuration of the runtime your nodes run (containerd or CRI-O)`)
  }
  const source: MirrorSource | undefined =
    hostsDir.value !== undefined ? { kind: 'containerd', dir: hostsDir.value } : registriesConf.value !== undefined ? { kind: 'registries-conf', file: registriesConf.value } : undefined
  if (source === undefined) return undefined
  try {
    new MirrorRoutes(source, createLogger('silent', new Writable({ write: (_c, _e, done) => done() })), { watch: false })
  } catch (err) {
    if (err instanceof MirrorConfigError) throw new ConfigError(hostsDir.value !== undefined ? hostsDir.source : registriesConf.source, err.message)
    throw err
  }
  return source
}

export const DEFAULT_REGISTRY_CONCURRENCY = 8
/** More than this many requests at once to one registry is a load test, not a check. */
const MAX_REGISTRY_CONCURRENCY = 256

/** --registry-concurrency: requests in flight per registry host. */
export function registryConcurrency(picked: Picked): number {
  if (picked.value === undefined) return DEFAULT_REGISTRY_CONCURRENCY
  const n = Number(picked.value)
  if (!Number.isInteger(n) || n < 1 || n > MAX_REGISTRY_CONCURRENCY) throw new ConfigError(picked.source, `${picked.value} is not a whole number of requests between 1 and ${MAX_REGISTRY_CONCURRENCY}`)
  return n
}

/**
 * The user's cluster for `diagnose` and `audit`: --kubeconfig, else KUBECONFIG, ~/.kube/config or
 * the in-cluster account; the context's namespace (else `default`, as kubectl); the API through
 * it. A configuration that cannot be loaded is a ConfigError naming the command (exit 2). The
 * client is imported here: it takes a second to load, which `check` need not pay.
 */
export async function userCluster(path: string | undefined, command: string, timeoutMs: number): Promise<{ kubeConfig: KubeConfig; api: KubeApi; namespace: string }> {
  const { KubeApi, loadKubeConfig } = await import('./kube/kube-api.js')
  try {
    const kubeConfig = loadKubeConfig(path)
    const namespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace
    return { kubeConfig, api: new KubeApi(kubeConfig, { requestTimeoutMs: timeoutMs }), namespace: namespace === undefined || namespace === '' ? 'default' : namespace }
  } catch (err) {
    throw new ConfigError(path === undefined ? command : '--kubeconfig', `cannot load the Kubernetes client configuration: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** --audit-registry-qps: requests a second per registry host for the audit (default 2). */
export function auditQps(picked: Picked): number {
  if (picked.value === undefined) return DEFAULT_AUDIT_QPS
  const qps = Number(picked.value)
  if (!Number.isFinite(qps) || qps < 0.01 || qps > 100) throw new ConfigError(picked.source, `${picked.value} is not a rate between 0.01 and 100 requests a second`)
  return qps
}

export const DEFAULT_AUDIT_QPS = 2

/** --registry-ca: the PEM bundle, read and checked now. */
export function registryCa(picked: Picked): string | undefined {
  return picked.value === undefined ? undefined : readCertificates(picked.value, picked.source)
}

/** --insecure-registry: host[:port] each. */
export function insecureRegistries(picked: PickedList): string[] {
  return picked.list.map((h) => parseRegistryHost(h, picked.source))
}

/** --platform: os/arch[/variant] each. */
export function platformList(picked: PickedList): Platform[] {
  return picked.list.map((p) => {
    try {
      return parsePlatform(p)
    } catch (err) {
      throw new ConfigError(picked.source, (err as Error).message)
    }
  })
}

/** NODE_EXTRA_CA_CERTS, re-read because passing our own CA list makes Node drop it. */
export function nodeExtraCaCerts(env: Env): string | undefined {
  return env.NODE_EXTRA_CA_CERTS === '' ? undefined : env.NODE_EXTRA_CA_CERTS
}

/** The API server waits at most 30 s for a webhook; a budget beyond 29 s could never be honoured. */
export const MAX_TIMEOUT_MS = 29_000
/** Below this not even a warm registry round-trip fits. */
export const MIN_TIMEOUT_MS = 100

export function parseServeConfig(argv: readonly string[], env: Env = process.env): ServeConfig {
  let values: Values
  try {
    ;({ values } = parseArgs({ args: [...argv], options: SERVE_OPTIONS, strict: true, allowPositionals: false }))
  } catch (err) {
    throw new ConfigError('serve', (err as Error).message)
  }
  const { pick, pickList } = flagsOrEnv(values, env)
  const port = pick('port')
  const host = pick('host')
  const cert = pick('tls-cert')
  const key = pick('tls-key')
  const mode = pick('mode')
  const onError = pick('on-registry-error')
  const timeout = pick('timeout')
  const ca = pick('registry-ca')
  const level = pick('log-level')
  const insecure = pickList('insecure-registry')
  const exemptNs = pickList('exempt-namespace')
  const exemptImages = pickList('exempt-image')
  const platforms = pickList('platform')
  const nodeConfig = pick('node-docker-config')

  const timeoutMs = parseDuration(timeout.value ?? '8s', timeout.source)
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ConfigError(timeout.source, `${timeout.value} is outside 100ms..29s (the API server waits at most 30s for a webhook)`)
  }
  return {
    port: parsePort(port.value ?? '8443', port.source),
    host: host.value ?? '0.0.0.0',
    tls: readTls(cert, key),
    mode: oneOf(mode.value ?? 'enforce', ['enforce', 'warn'] as const, mode.source),
    onRegistryError: oneOf(onError.value ?? 'allow', ['allow', 'deny'] as const, onError.source),
    timeoutMs,
    registryCaPem: registryCa(ca),
    insecureRegistries: insecureRegistries(insecure),
    nodeExtraCaCertsPath: nodeExtraCaCerts(env),
    exemptNamespaces: exemptNs.given ? exemptNs.list.map((n) => parseNamespace(n, exemptNs.source)) : [ownNamespace(env)],
    exemptImages: exemptImages.list,
    nodeDockerConfigPath: nodeConfig.value,
    platforms: platformList(platforms),
    logLevel: oneOf(level.value ?? 'info', LOG_LEVELS, level.source),
    credentialProviders: credentialProviderFlags(pick('image-credential-provider-config'), pick('image-credential-provider-bin-dir'), env),
    audit: auditSettings(pick('audit-interval'), pick('audit-registry-qps'), pick('audit-events'), env),
    mirrors: mirrorSource(pick('containerd-hosts-dir'), pick('registries-conf')),
    registryConcurrency: registryConcurrency(pick('registry-concurrency')),
  }
}

/** Shorter intervals would re-ask every registry more often than its answers are cached. */
const MIN_AUDIT_INTERVAL_MS = 1000

function auditSettings(interval: Picked, qps: Picked, events: Picked, env: Env): AuditSettings | undefined {
  const intervalMs = interval.value === undefined || interval.value === '0' ? 0 : parseDuration(interval.value, interval.source)
  const rate = auditQps(qps)
  const withEvents = oneOf(events.value ?? 'false', ['true', 'false'] as const, events.source) === 'true'
  if (intervalMs === 0) return undefined
  if (intervalMs < MIN_AUDIT_INTERVAL_MS) throw new ConfigError(interval.source, `${interval.value} is shorter than 1s (0 turns the audit off)`)
  const pod = env.POD_NAME
  return { intervalMs, qps: rate, events: withEvents, leaseNamespace: ownNamespace(env), identity: pod !== undefined && pod !== '' ? pod : `${hostname()}-${process.pid}` }
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

/** A DNS-1123 label, as namespace names are. */
function parseNamespace(value: string, source: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) throw new ConfigError(source, `"${value}" is not a namespace name`)
  return value
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
}

export function oneOf<T extends string>(value: string, allowed: readonly T[], source: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(source, `"${value}" is not one of ${allowed.join(', ')}`)
  return value as T
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/** `500ms`, `8s`, `1m`, `1m30s`, `1.5s`, `1h`. */
export function parseDuration(value: string, source: string): number {
  let total = 0
  DURATION_PART.lastIndex = 0
  let consumed = 0
  while (consumed < value.length) {
    const m = DURATION_PART.exec(value)
    if (m === null) break
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
    consumed = DURATION_PART.lastIndex
  }
  if (value === '' || consumed !== value.length) throw new ConfigError(source, `"${value}" is not a duration (examples: 500ms, 8s, 1m, 1h)`)
  return Math.round(total)
}

/** host[:port] as written in image references: no scheme, no path. */
export function parseRegistryHost(value: string, source: string): string {
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(value)) {
    throw new ConfigError(source, `"${value}" is not a registry host[:port] (no scheme or path)`)
  }
  return value
}

export function readCertificates(path: string, source: string): string {
  const text = readPem(path, source)
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new ConfigError(source, `${path} holds no PEM certificate`)
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem)
    } catch {
      throw new ConfigError(source, `certificate ${i + 1} in ${path} cannot be parsed`)
    }
  })
  return text
}

function parsePort(value: string, source: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new ConfigError(source, `"${value}" is not a port number (0-65535)`)
  return Number(value)
}

function readTls(cert: { value: string | undefined; source: string }, key: { value: string | undefined; source: string }): TlsFiles | undefined {
  if (cert.value === undefined && key.value === undefined) return undefined
  if (cert.value === undefined) throw new ConfigError('--tls-cert', 'is required when --tls-key is set')
  if (key.value === undefined) throw new ConfigError('--tls-key', 'is required when --tls-cert is set')
  const pair = { certPem: readPem(cert.value, cert.source), keyPem: readPem(key.value, key.source), certPath: cert.value, keyPath: key.value }
  try {
    createSecureContext({ cert: pair.certPem, key: pair.keyPem })
  } catch (err) {
    // Swapped files, a key for another certificate, an encrypted key: say so now, not at first request.
    throw new ConfigError(cert.source, `${cert.value} and ${key.value} are not a usable certificate and key pair (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  return pair
}

export function readPem(path: string, source: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(source, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!text.includes('-----BEGIN ')) throw new ConfigError(source, `${path} is not a PEM file`)
  return text
}
