/**
 * The flags `diagnose` and `audit` share: which cluster, how long per image, how to reach the
 * registries, and the nodes' own credentials, plugins and mirrors.
 */
import type { MirrorSource } from '../mirrors/routes.js'
import { flagsOrEnv, oneOf, type Env } from './flags.js'
import { mirrorSource } from './mirrors.js'
import { credentialProviderFlags, type CredentialProviderFlags } from './providers.js'
import type { RegistryFlags } from './registry.js'
import { insecureRegistries, nodeExtraCaCerts, perImageTimeout, registryCa, registryConcurrency } from './values.js'

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

export interface ClusterCliSettings extends RegistryFlags {
  kubeconfigPath: string | undefined
  /** Per image. */
  timeoutMs: number
  nodeDockerConfigPath: string | undefined
  credentialProviders: CredentialProviderFlags | undefined
  output: 'table' | 'json'
  mirrors: MirrorSource | undefined
}

/** Those flags' values (flag, else environment), checked. */
export function clusterCliSettings(values: { kubeconfig?: string | undefined; output?: string | undefined } & Readonly<Record<string, string | string[] | boolean | undefined>>, env: Env): ClusterCliSettings {
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
