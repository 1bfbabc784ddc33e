/**
 * The flags every command takes about pulling: how to reach the registries (--registry-ca,
 * --insecure-registry, --registry-concurrency), and what the nodes pull with and from (their
 * credential provider plugins, their mirrors). Each command spreads PULL_OPTIONS into its own
 * flag table and reads them with pullSettings, so they mean the same everywhere.
 */
import type { CrioImageSettings } from '../mirrors/crio-conf.js'
import type { MirrorSource } from '../mirrors/routes.js'
import type { SignaturePolicySource } from '../signatures/signature-policies.js'
import { flagsOrEnv, type Env } from './flags.js'
import { mirrorSource } from './mirrors.js'
import { signaturePolicySource } from './signature-policy.js'
import { credentialProviderFlags, type CredentialProviderFlags } from './providers.js'
import type { RegistryFlags } from './registry.js'
import { insecureRegistries, nodeExtraCaCerts, registryCa, registryConcurrency } from './values.js'

export const PULL_OPTIONS = {
  'registry-ca': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'registry-concurrency': { type: 'string' },
  'image-credential-provider-config': { type: 'string' },
  'image-credential-provider-bin-dir': { type: 'string' },
  'containerd-hosts-dir': { type: 'string' },
  'registries-conf': { type: 'string' },
  'registries-conf-dir': { type: 'string' },
  'short-name-aliases': { type: 'string' },
  'short-name-mode': { type: 'string' },
  'crio-config': { type: 'string' },
  'crio-config-dir': { type: 'string' },
  'signature-policy': { type: 'string' },
  'signature-policy-dir': { type: 'string' },
  'registries-d': { type: 'string' },
} as const

export interface PullSettings extends RegistryFlags {
  /** The nodes' credential provider plugins, run as the kubelet runs them. */
  credentialProviders: CredentialProviderFlags | undefined
  /** Where the nodes pull from (--containerd-hosts-dir or --registries-conf); undefined: each image's own registry. */
  mirrors: MirrorSource | undefined
  /** CRI-O's own settings (--crio-config, --crio-config-dir), when given. */
  crio: CrioImageSettings | undefined
  /** The nodes' signature policy (--signature-policy, --signature-policy-dir, --registries-d). */
  signatures: SignaturePolicySource | undefined
}

/** Those flags' values (flag, else environment), read and checked now. */
export function pullSettings(
  values: Readonly<Record<string, string | string[] | boolean | undefined>>,
  env: Env,
): PullSettings {
  const { pick, pickList } = flagsOrEnv(values, env)
  const nodes = mirrorSource({
    hostsDir: pick('containerd-hosts-dir'),
    registriesConf: pick('registries-conf'),
    registriesConfDir: pick('registries-conf-dir'),
    shortNameAliases: pick('short-name-aliases'),
    shortNameMode: pick('short-name-mode'),
    crioConfig: pick('crio-config'),
    crioConfigDir: pick('crio-config-dir'),
  })
  return {
    registryCaPem: registryCa(pick('registry-ca')),
    insecureRegistries: insecureRegistries(pickList('insecure-registry')),
    nodeExtraCaCertsPath: nodeExtraCaCerts(env),
    registryConcurrency: registryConcurrency(pick('registry-concurrency')),
    credentialProviders: credentialProviderFlags(
      pick('image-credential-provider-config'),
      pick('image-credential-provider-bin-dir'),
      env,
    ),
    mirrors: nodes.source,
    crio: nodes.crio,
    signatures: signaturePolicySource(
      {
        policy: pick('signature-policy'),
        dir: pick('signature-policy-dir'),
        registriesD: pick('registries-d'),
        registriesConf: pick('registries-conf'),
      },
      nodes.crio,
    ),
  }
}
