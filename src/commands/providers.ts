/**
 * --image-credential-provider-config and --image-credential-provider-bin-dir: the nodes' credential
 * provider plugins, run as the kubelet runs them. Both flags or neither; the config is read and
 * validated at start-up (the kubelet refuses to start on a bad one, and so do we).
 */
import type { Logger } from 'pino'
import { loadProviderConfig, ProviderConfigError } from '../providers/config.js'
import { CredentialProviders, type ProvidersOptions } from '../providers/providers.js'
import type { ServiceAccountAccess } from '../providers/service-account-tokens.js'
import { ConfigError } from './errors.js'
import type { Env, Picked } from './flags.js'

export interface CredentialProviderFlags {
  configPath: string
  binDir: string
  /** The environment plugins start with: pullguard's own, as the kubelet passes its own. */
  env: Env
}

export function credentialProviderFlags(config: Picked, binDir: Picked, env: Env): CredentialProviderFlags | undefined {
  if (config.value === undefined && binDir.value === undefined) return undefined
  if (config.value === undefined)
    throw new ConfigError('--image-credential-provider-config', `is required when ${binDir.source} is set`)
  if (binDir.value === undefined)
    throw new ConfigError('--image-credential-provider-bin-dir', `is required when ${config.source} is set`)
  try {
    loadProviderConfig(config.value, binDir.value)
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ConfigError(config.source, err.message)
    throw err
  }
  return { configPath: config.value, binDir: binDir.value, env }
}

export interface ProviderExtras {
  /** Service accounts and TokenRequest, for plugins that take service-account tokens. */
  serviceAccounts?: ServiceAccountAccess
  onExec?: ProvidersOptions['onExec']
  /** true for serve: the config is read again when it changes. */
  watch: boolean
}

/**
 * The plugins, or undefined when none are configured. `budgetMs` is what one image may take; a
 * plugin gets half of it, so one that hangs leaves time to check the image without it and say
 * which plugin failed (the kubelet allows a minute; no review waits that long).
 */
export function startCredentialProviders(
  flags: CredentialProviderFlags | undefined,
  budgetMs: number,
  logger: Logger,
  extras: ProviderExtras,
): CredentialProviders | undefined {
  if (flags === undefined) return undefined
  try {
    return new CredentialProviders({
      configPath: flags.configPath,
      binDir: flags.binDir,
      baseEnv: flags.env,
      execTimeoutMs: Math.max(100, Math.floor(budgetMs / 2)),
      logger,
      watch: extras.watch,
      ...(extras.onExec === undefined ? {} : { onExec: extras.onExec }),
      ...(extras.serviceAccounts === undefined ? {} : { serviceAccounts: extras.serviceAccounts }),
    })
  } catch (err) {
    // Changed on disk since start-up validation.
    if (err instanceof ProviderConfigError) throw new ConfigError('--image-credential-provider-config', err.message)
    throw err
  }
}
