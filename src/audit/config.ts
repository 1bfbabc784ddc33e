/**
 * `pullguard audit` options, validated once (a ConfigError names the flag; the CLI exits 2). The
 * credential and registry flags mean what they mean for `diagnose`.
 */
import { parseArgs } from 'node:util'
import { auditQps, ConfigError, credentialProviderFlags, flagsOrEnv, insecureRegistries, nodeExtraCaCerts, oneOf, platformList, registryCa, type CredentialProviderFlags, type Env } from '../config.js'
import { perImageTimeout } from '../check/config.js'
import type { Platform } from '../policy/platforms.js'

export interface AuditConfig {
  /** undefined: all namespaces (-A); a name; or `context`: the kubeconfig context's, else default. */
  scope: { kind: 'all-namespaces' } | { kind: 'namespace'; namespace: string | undefined }
  kubeconfigPath: string | undefined
  timeoutMs: number
  registryCaPem: string | undefined
  insecureRegistries: string[]
  nodeExtraCaCertsPath: string | undefined
  nodeDockerConfigPath: string | undefined
  credentialProviders: CredentialProviderFlags | undefined
  platforms: Platform[]
  qps: number
  output: 'table' | 'json'
  progress: boolean
}

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  kubeconfig: { type: 'string' },
  timeout: { type: 'string' },
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'node-docker-config': { type: 'string' },
  'image-credential-provider-config': { type: 'string' },
  'image-credential-provider-bin-dir': { type: 'string' },
  platform: { type: 'string', multiple: true },
  'audit-registry-qps': { type: 'string' },
  output: { type: 'string', short: 'o' },
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
  const output = oneOf(values.output ?? 'table', ['table', 'json'] as const, '--output')
  return {
    scope: all ? { kind: 'all-namespaces' } : { kind: 'namespace', namespace: values.namespace },
    kubeconfigPath: values.kubeconfig,
    timeoutMs: perImageTimeout(pick('timeout')),
    registryCaPem: registryCa(pick('registry-ca')),
    insecureRegistries: insecureRegistries(pickList('insecure-registry')),
    nodeExtraCaCertsPath: nodeExtraCaCerts(env),
    nodeDockerConfigPath: pick('node-docker-config').value,
    credentialProviders: credentialProviderFlags(pick('image-credential-provider-config'), pick('image-credential-provider-bin-dir'), env),
    platforms: platformList(pickList('platform')),
    qps: auditQps(pick('audit-registry-qps')),
    output,
    progress: isTerminal && output === 'table',
  }
}
