/**
 * `pullguard audit` options, validated once (a ConfigError names the flag; the CLI exits 2). The
 * credential and registry flags mean what they mean for `diagnose`.
 */
import {
  CLUSTER_CLI_OPTIONS,
  clusterCliSettings,
  PLATFORM_FLAG,
  type ClusterCliSettings,
} from '../commands/cluster-flags.js'
import { ConfigError } from '../commands/errors.js'
import { parseFlagTable, type FlagTable } from '../commands/flag-table.js'
import { flagsOrEnv, type Env } from '../commands/flags.js'
import { auditQps, parseNamespace, platformList } from '../commands/values.js'
import type { Platform } from '../policy/platforms.js'

export interface AuditConfig extends ClusterCliSettings {
  /** A namespace undefined: the kubeconfig context's, else `default` (as kubectl). */
  scope: { kind: 'all-namespaces' } | { kind: 'namespace'; namespace: string | undefined }
  platforms: Platform[]
  qps: number
  progress: boolean
}

export const AUDIT_OPTIONS = {
  ...CLUSTER_CLI_OPTIONS,
  platform: PLATFORM_FLAG,
  'audit-registry-qps': {
    type: 'string',
    value: 'N',
    default: '2',
    help: 'requests a second per registry host, at most',
  },
} as const satisfies FlagTable

export function parseAuditConfig(
  argv: readonly string[],
  env: Env = process.env,
  isTerminal = process.stderr.isTTY === true,
): AuditConfig {
  const { values, positionals } = parseFlagTable('audit', argv, AUDIT_OPTIONS, true)
  if (positionals.length > 0)
    throw new ConfigError('audit', `unexpected argument "${positionals[0]}" (use -n NS or -A)`)
  const all = values['all-namespaces'] === true
  if (all && values.namespace !== undefined)
    throw new ConfigError('--all-namespaces', 'cannot be combined with --namespace')
  if (values.namespace !== undefined) parseNamespace(values.namespace, '--namespace')
  const { pick, pickList } = flagsOrEnv(values, env)
  const shared = clusterCliSettings(values, env)
  return {
    scope: all ? { kind: 'all-namespaces' } : { kind: 'namespace', namespace: values.namespace },
    ...shared,
    platforms: platformList(pickList('platform')),
    qps: auditQps(pick('audit-registry-qps')),
    progress: isTerminal && shared.output === 'table',
  }
}
