/**
 * The flags every command takes about pulling: how to reach the registries (--registry-ca,
 * --insecure-registry, --registry-concurrency), and what the nodes pull with and from (their
 * credential provider plugins, their mirrors). Each command spreads PULL_OPTIONS into its own
 * flag table and reads them with pullSettings, so they mean the same everywhere.
 */
import type { CrioImageSettings } from '../mirrors/crio-conf.js'
import type { MirrorSource } from '../mirrors/routes.js'
import type { Platform } from '../registry/index.js'
import type { SignaturePolicySource } from '../signatures/signature-policies.js'
import type { FlagTable } from './flag-table.js'
import { flagsOrEnv, type Env } from './flags.js'
import type { CredentialProviderFlags } from './providers.js'
import { kubeletPullSettings } from './kubelet-flags.js'
import { nodeFileSettings } from './node-files.js'
import { nodePools, type PoolSettings } from './node-pools.js'
import type { RegistryFlags } from './registry.js'
import { insecureRegistries, nodeExtraCaCerts, registryCa, registryConcurrency } from './values.js'

export const PULL_OPTIONS = {
  'registry-ca': {
    type: 'string',
    value: 'FILE',
    help: 'PEM CA bundle trusted for registries, on top of the system store and NODE_EXTRA_CA_CERTS',
  },
  'insecure-registry': {
    type: 'string',
    multiple: true,
    value: 'HOST[:PORT]',
    help: 'a registry asked without certificate checks, then over plain HTTP (as the nodes are set up for it)',
  },
  'registry-concurrency': {
    type: 'string',
    value: 'N',
    default: '8',
    help: 'requests in flight per registry host, at most',
  },
  'image-credential-provider-config': {
    type: 'string',
    value: 'FILE|DIR',
    help: "the nodes' kubelet credential provider config (CredentialProviderConfig), run as the kubelet runs it",
  },
  'image-credential-provider-bin-dir': {
    type: 'string',
    value: 'DIR',
    help: 'where the credential provider plugins are (with --image-credential-provider-config)',
  },
  'containerd-hosts-dir': {
    type: 'string',
    value: 'DIR',
    help: "the nodes' containerd hosts directory (config_path: mirrors, CAs, client certificates)",
  },
  'registries-conf': {
    type: 'string',
    value: 'FILE',
    help: "the nodes' CRI-O registries.conf (mirrors, blocked registries, short names)",
  },
  'registries-conf-dir': {
    type: 'string',
    value: 'DIR',
    default: 'registries.conf.d beside --registries-conf',
    help: "registries.conf's drop-ins",
  },
  'short-name-aliases': { type: 'string', value: 'FILE', help: "CRI-O's short-name aliases cache" },
  'short-name-mode': {
    type: 'string',
    value: 'enforcing|disabled',
    help: "CRI-O's short_name_mode, over what --crio-config says",
  },
  'crio-config': { type: 'string', value: 'FILE', help: "the nodes' crio.conf (short_name_mode, signature policy)" },
  'crio-config-dir': { type: 'string', value: 'DIR', help: "the nodes' crio.conf.d" },
  'signature-policy': { type: 'string', value: 'FILE', help: "the nodes' signature policy.json (CRI-O)" },
  'signature-policy-dir': {
    type: 'string',
    value: 'DIR',
    help: "CRI-O's per-namespace signature policies (<dir>/<namespace>.json)",
  },
  'registries-d': { type: 'string', value: 'DIR', help: "the nodes' registries.d (where sigstore signatures are)" },
  'node-pools': {
    type: 'string',
    value: 'FILE',
    help: "the cluster's kinds of node, each with its own files, runtime and kubelet settings (README: Node pools)",
  },
  'image-pull-credentials-verification-policy': {
    type: 'string',
    value: 'POLICY',
    default: 'NeverVerifyPreloadedImages',
    help: "the nodes' kubelet imagePullCredentialsVerificationPolicy: NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages, AlwaysVerify",
  },
  'preloaded-images-verification-allowlist': {
    type: 'string',
    multiple: true,
    value: 'NAME',
    help: "the kubelet's preloadedImagesVerificationAllowlist entry (a name without tag, or registry/path/*)",
  },
} as const satisfies FlagTable

export interface PullSettings extends RegistryFlags {
  /** The nodes' credential provider plugins, run as the kubelet runs them. */
  credentialProviders: CredentialProviderFlags | undefined
  /** Where the nodes pull from (--containerd-hosts-dir or --registries-conf); undefined: each image's own registry. */
  mirrors: MirrorSource | undefined
  /** CRI-O's own settings (--crio-config, --crio-config-dir), when given. */
  crio: CrioImageSettings | undefined
  /** The nodes' signature policy (--signature-policy, --signature-policy-dir, --registries-d). */
  signatures: SignaturePolicySource | undefined
  /**
   * The kinds of node (--node-pools), each with the files its nodes pull with; without the file,
   * one pool the flags above describe.
   */
  nodePools: PoolSettings[]
}

/** What the command itself says of the nodes: its --node-docker-config (if it takes one) and --platform. */
export interface OwnNodeFlags {
  nodeDockerConfigPath: string | undefined
  platforms: readonly Platform[]
}

/** Those flags' values (flag, else environment), read and checked now. */
export function pullSettings(
  values: Readonly<Record<string, string | string[] | boolean | undefined>>,
  env: Env,
  own: OwnNodeFlags = { nodeDockerConfigPath: undefined, platforms: [] },
): PullSettings {
  const { pick, pickList } = flagsOrEnv(values, env)
  const node = nodeFileSettings(
    (flag) =>
      flag === 'node-docker-config' ? { value: own.nodeDockerConfigPath, source: '--node-docker-config' } : pick(flag),
    env,
  )
  const policy = pick('image-pull-credentials-verification-policy')
  const allowlist = pickList('preloaded-images-verification-allowlist')
  const kubelet = kubeletPullSettings(policy, allowlist)
  const given = [
    ...(own.platforms.length > 0 ? ['--platform'] : []),
    ...(policy.value !== undefined ? [policy.source] : []),
    ...(allowlist.given ? [allowlist.source] : []),
  ]
  return {
    registryCaPem: registryCa(pick('registry-ca')),
    insecureRegistries: insecureRegistries(pickList('insecure-registry')),
    nodeExtraCaCertsPath: nodeExtraCaCerts(env),
    registryConcurrency: registryConcurrency(pick('registry-concurrency')),
    credentialProviders: node.credentialProviders,
    mirrors: node.mirrors,
    crio: node.crio,
    signatures: node.signatures,
    nodePools: nodePools(pick('node-pools'), { node, kubelet, platforms: own.platforms, given }, env),
  }
}
