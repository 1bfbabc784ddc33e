/**
 * The files that say how one kind of node pulls: its docker config, its credential provider
 * plugins, its runtime's registry configuration (containerd's hosts dir, or CRI-O's
 * registries.conf with drop-ins, aliases and signature policy). Read from the command's flags for
 * the node pullguard describes by default, and from each pool of --node-pools; checked now.
 */
import type { CrioImageSettings } from '../mirrors/crio-conf.js'
import type { MirrorSource } from '../mirrors/routes.js'
import type { SignaturePolicySource } from '../signatures/signature-policies.js'
import type { Env, Picked } from './flags.js'
import { mirrorSource } from './mirrors.js'
import { credentialProviderFlags, type CredentialProviderFlags } from './providers.js'
import { signaturePolicySource } from './signature-policy.js'

export type NodeFlag =
  | 'node-docker-config'
  | 'image-credential-provider-config'
  | 'image-credential-provider-bin-dir'
  | 'containerd-hosts-dir'
  | 'registries-conf'
  | 'registries-conf-dir'
  | 'short-name-aliases'
  | 'short-name-mode'
  | 'crio-config'
  | 'crio-config-dir'
  | 'signature-policy'
  | 'signature-policy-dir'
  | 'registries-d'

export interface NodeFileSettings {
  /** A docker config.json with the nodes' own credentials (the kubelet's config.json). */
  nodeDockerConfigPath: string | undefined
  /** The nodes' credential provider plugins, run as the kubelet runs them. */
  credentialProviders: CredentialProviderFlags | undefined
  /** Where the nodes pull from (containerd hosts dir or registries.conf); undefined: each image's own registry. */
  mirrors: MirrorSource | undefined
  /** CRI-O's own settings, when given. */
  crio: CrioImageSettings | undefined
  /** The nodes' signature policy (CRI-O). */
  signatures: SignaturePolicySource | undefined
}

/** `pick` gives each file's value and how the user named it (a flag, a variable, a pool file's key). */
export function nodeFileSettings(pick: (flag: NodeFlag) => Picked, env: Env): NodeFileSettings {
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
    nodeDockerConfigPath: pick('node-docker-config').value,
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
