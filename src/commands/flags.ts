/**
 * Flags and their environment variables, for every command: this is the only module that maps
 * flags to `PULLGUARD_*` variables, and commands hand it `process.env` once, at start-up.
 */
import { ConfigError } from './errors.js'

export type Env = Readonly<Record<string, string | undefined>>

/**
 * The environment variable of every flag, whichever command takes it: `check`, `diagnose` and
 * `audit` read the flags they share with `serve` from the same variables, so one environment
 * configures all of them.
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
  'pin-digests': 'PULLGUARD_PIN_DIGESTS',
  'containerd-hosts-dir': 'PULLGUARD_CONTAINERD_HOSTS_DIR',
  'registries-conf': 'PULLGUARD_REGISTRIES_CONF',
  'registries-conf-dir': 'PULLGUARD_REGISTRIES_CONF_DIR',
  'short-name-aliases': 'PULLGUARD_SHORT_NAME_ALIASES',
  'short-name-mode': 'PULLGUARD_SHORT_NAME_MODE',
  'crio-config': 'PULLGUARD_CRIO_CONFIG',
  'crio-config-dir': 'PULLGUARD_CRIO_CONFIG_DIR',
  'signature-policy': 'PULLGUARD_SIGNATURE_POLICY',
  'signature-policy-dir': 'PULLGUARD_SIGNATURE_POLICY_DIR',
  'registries-d': 'PULLGUARD_REGISTRIES_D',
  'registry-concurrency': 'PULLGUARD_REGISTRY_CONCURRENCY',
  'node-pools': 'PULLGUARD_NODE_POOLS',
  'image-pull-credentials-verification-policy': 'PULLGUARD_IMAGE_PULL_CREDENTIALS_VERIFICATION_POLICY',
  'preloaded-images-verification-allowlist': 'PULLGUARD_PRELOADED_IMAGES_VERIFICATION_ALLOWLIST',
} as const
export type EnvFlag = keyof typeof FLAG_ENV

/** A flag's value (flag, else its variable) and `source`, the one the user wrote: error messages name it. */
export interface Picked {
  value: string | undefined
  source: string
}
export interface PickedList {
  list: string[]
  source: string
  given: boolean
}

type FlagValues = Readonly<Record<string, string | string[] | boolean | undefined>>

/**
 * Each flag, else its environment variable (an empty one counts as unset; lists are comma
 * separated): the flag wins, and `source` names whichever was used, for error messages.
 */
export function flagsOrEnv(
  values: FlagValues,
  env: Env,
): { pick(flag: EnvFlag): Picked; pickList(flag: EnvFlag): PickedList } {
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

/** A boolean flag (`--flag`, `--flag=false`), else its variable (`true` or `false`), else false. */
export function pickBoolean(values: FlagValues, env: Env, flag: EnvFlag): boolean {
  const fromFlag = values[flag]
  if (typeof fromFlag === 'boolean') return fromFlag
  const fromEnv = env[FLAG_ENV[flag]]
  if (fromEnv === undefined || fromEnv === '') return false
  return oneOf(fromEnv, ['true', 'false'] as const, FLAG_ENV[flag]) === 'true'
}

/** `-h` or `--help` anywhere: print the usage instead of running. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h')
}

export function oneOf<T extends string>(value: string, allowed: readonly T[], source: string): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new ConfigError(source, `"${value}" is not one of ${allowed.join(', ')}`)
  return value as T
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}
