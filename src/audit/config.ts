/**
 * `pullguard audit` options, validated once (a ConfigError names the flag; the CLI exits 2). The
 * credential and registry flags mean what they mean for `diagnose`.
 */
import { parseArgs } from 'node:util'
import { auditQps, CLUSTER_CLI_OPTIONS, clusterCliSettings, ConfigError, flagsOrEnv, platformList, type ClusterCliSettings, type Env } from '../config.js'
import { perImageTimeout } from '../check/config.js'
import type { Platform } from '../policy/platforms.js'

export interface AuditConfig extends ClusterCliSettings {
  /** A namespace undefined: the kubeconfig context's, else `default` (as kubectl). */
  scope: { kind: 'all-namespaces' } | { kind: 'namespace'; namespace: string | undefined }
  platforms: Platform[]
  qps: number
  progress: boolean
}

const OPTIONS = {
  ...CLUSTER_CLI_OPTIONS,
  platform: { type: 'string', multiple: true },
  'audit-registry-qps': { type: 'string' },
} as const

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/

export function parseAuditConfig(argv: readonly string[], env: Env = process.env, isTerminal = process.stderr.isTTY === true): AuditConfig {
  let values
  let positionals
  try {
    ;({ values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true }))
  } catch (err) {
    throw new ConfigError('audit', (err as Error).message)
  }
  if (positionals.length > 0) throw new ConfigError('audit', `unexpected argument "${positionals[0]}" (use -n NS or -A)`)
  const all = values['all-namespaces'] === true
  if (all && values.namespace !== undefined) throw new ConfigError('--all-namespaces', 'cannot be combined with --namespace')
  if (values.namespace !== undefined && !LABEL.test(values.namespace)) throw new ConfigError('--namespace', `"${values.namespace}" is not a namespace name`)
  const { pick, pickList } = flagsOrEnv(values, env)
  const shared = clusterCliSettings(values, env, perImageTimeout)
  return {
    scope: all ? { kind: 'all-namespaces' } : { kind: 'namespace', namespace: values.namespace },
    ...shared,
    platforms: platformList(pickList('platform')),
    qps: auditQps(pick('audit-registry-qps')),
    progress: isTerminal && shared.output === 'table',
  }
}
