/**
 * Every configured provider, as the kubelet's externalCredentialProviderKeyring.Lookup uses them
 * (plugins.go): each provider whose matchImages cover the image is asked (in config order), all
 * their answers go into one keyring (so across providers the most specific key comes first, and
 * config order breaks ties), and that keyring is looked up for the image. These come after the pod's
 * pull secrets and the node's docker config (policy/assess.ts).
 *
 * The config (file or directory) and the bin dir are re-read when the config's files change, like
 * --node-docker-config: a bad new version keeps the last good one and says so. The kubelet reads it
 * at start only; a webhook that runs for months should follow the nodes' config without a restart.
 */
import { FileWatcher } from '../reload/file-watcher.js'
import type { Logger } from 'pino'
import { createKeyring, type KeyringEntry } from '../credentials/keyring.js'
import { loadProviderConfig, ProviderConfigError, type ProviderConfig } from './config.js'
import { MAX_PLUGIN_TIME_MS } from './exec.js'
import { ExecLimiter } from './limiter.js'
import {
  CredentialProvider,
  type PodIdentity,
  type ProviderOptions,
  type ProviderProblemCode,
  type ProviderSkip,
} from './provider.js'
import { ServiceAccountTokens, type ServiceAccountAccess } from './service-account-tokens.js'

/** How often the config's stat is polled (node files change rarely; a mounted ConfigMap syncs in ~1 minute). */
const POLL_MS = 5_000
/** Plugin processes at once, all providers together. */
export const MAX_CONCURRENT_EXECS = 8

export type { ProviderSkip }

export interface ProviderFailure {
  provider: string
  code: ProviderProblemCode
  problem: string
}

export interface ProvidedCredentials {
  /** Keyring-ordered credentials for the image from every provider that answered. */
  entries: KeyringEntry[]
  /** Providers that matched the image but gave no usable answer. */
  failures: ProviderFailure[]
  /** Providers that matched the image but that the kubelet would not run for this pod (no exec, no credentials). */
  skipped: ProviderSkip[]
  /** Providers whose matchImages covered the image (asked, from the cache or by exec). */
  matched: string[]
  /** Until when every answer here would come back the same (0: not reusable, e.g. a failure or an uncached answer). */
  reusableUntil: number
}

export interface ProvidersOptions {
  configPath: string
  binDir: string
  baseEnv: Readonly<Record<string, string | undefined>>
  /** Per exec: the review budget (the kubelet allows a minute; no review waits that long). */
  execTimeoutMs?: number
  logger: Logger
  onExec?: ProviderOptions['onExec']
  /** false: no reload (the CLI commands that run once). */
  watch?: boolean
  /** Service accounts and TokenRequest, for providers with tokenAttributes; without it those fail with a warning. */
  serviceAccounts?: ServiceAccountAccess
}

export class CredentialProviders {
  readonly #options: ProvidersOptions
  readonly #limiter = new ExecLimiter(MAX_CONCURRENT_EXECS)
  readonly #tokens: ServiceAccountTokens | undefined
  #providers: CredentialProvider[]
  #watcher: FileWatcher | undefined
  #config: ProviderConfig | undefined
  #generation = 0

  /** Loads and validates the config; an invalid one throws ProviderConfigError (a start-up error). */
  constructor(options: ProvidersOptions) {
    this.#options = options
    this.#tokens = options.serviceAccounts === undefined ? undefined : new ServiceAccountTokens(options.serviceAccounts)
    const config = loadProviderConfig(options.configPath, options.binDir)
    this.#providers = this.#build(config)
    this.#watch(config, undefined)
  }

  /** Moves on every reload: what was decided with the old config is not reused (assessment memo). */
  get generation(): number {
    return this.#generation
  }

  get names(): string[] {
    return this.#providers.map((p) => p.name)
  }

  /** Credentials the plugins give for a repository name (`docker.io/library/nginx`) pulled by `pod`. */
  async provide(repository: string, signal?: AbortSignal, pod?: PodIdentity): Promise<ProvidedCredentials> {
    const matching = this.#providers.filter((p) => p.matches(repository))
    if (matching.length === 0)
      return { entries: [], failures: [], skipped: [], matched: [], reusableUntil: Number.POSITIVE_INFINITY }
    const answers = await Promise.all(matching.map((p) => p.provide(repository, signal, pod)))
    const all: KeyringEntry[] = []
    const failures: ProviderFailure[] = []
    // A skip depends on the account's annotations, which the namespace's revision follows (assessment memo).
    const skipped: ProviderSkip[] = []
    let reusableUntil = Number.POSITIVE_INFINITY
    for (const a of answers) {
      if (a.kind === 'credentials') {
        all.push(...a.entries)
        reusableUntil = Math.min(reusableUntil, a.reusableUntil)
      } else if (a.kind === 'failed') {
        failures.push({ provider: a.provider, code: a.code, problem: a.problem })
        reusableUntil = 0
      } else if (a.kind === 'skipped') skipped.push(a.skip)
    }
    return {
      entries: createKeyring(all)(repository),
      failures,
      skipped,
      matched: matching.map((p) => p.name),
      reusableUntil,
    }
  }

  reload(): void {
    // Seen before reading, so a change made during the read is noticed next time.
    this.#watcher?.markSeen()
    const seen = this.#watcher?.snapshot()
    let config: ProviderConfig
    try {
      config = loadProviderConfig(this.#options.configPath, this.#options.binDir)
    } catch (err) {
      // Runs from a timer: any failure keeps the previous version rather than ending the process.
      this.#options.logger.error(
        {
          path: this.#options.configPath,
          problem: err instanceof ProviderConfigError ? err.message : (err as Error).name,
        },
        'credential provider config could not be reloaded; keeping the previous version',
      )
      return
    }
    for (const p of this.#providers) p.clear()
    this.#providers = this.#build(config)
    this.#generation++
    this.#watch(config, seen)
    this.#options.logger.info(
      { path: this.#options.configPath, providers: this.names },
      'credential provider config reloaded',
    )
  }

  close(): void {
    this.#watcher?.close()
    this.#tokens?.clear()
    for (const p of this.#providers) p.clear()
  }

  #build(config: ProviderConfig): CredentialProvider[] {
    const timeoutMs = Math.min(this.#options.execTimeoutMs ?? MAX_PLUGIN_TIME_MS, MAX_PLUGIN_TIME_MS)
    return config.providers.map(
      (spec) =>
        new CredentialProvider(spec, {
          baseEnv: this.#options.baseEnv,
          execTimeoutMs: timeoutMs,
          limiter: this.#limiter,
          ...(this.#tokens === undefined ? {} : { tokens: this.#tokens }),
          ...(this.#options.onExec === undefined ? {} : { onExec: this.#options.onExec }),
        }),
    )
  }

  /**
   * The config's files and the path itself (a directory gains or loses files), plus the binaries.
   * When they are the files watched before, the snapshot taken before the read carries over.
   */
  #watch(config: ProviderConfig, seenBefore: string | undefined): void {
    if (this.#options.watch === false) return
    const paths = [this.#options.configPath, ...config.files, ...config.providers.map((p) => p.binary)]
    const samePaths =
      this.#config !== undefined &&
      JSON.stringify(paths) ===
        JSON.stringify([
          this.#options.configPath,
          ...this.#config.files,
          ...this.#config.providers.map((p) => p.binary),
        ])
    this.#config = config
    this.#watcher?.close()
    this.#watcher = new FileWatcher(paths, POLL_MS, () => this.reload(), samePaths ? seenBefore : undefined)
  }
}
