/**
 * A node pool: one kind of node (a GPU pool with its own mirror, CRI-O nodes beside containerd
 * ones, a pool still on containerd 1.7). Its nodes carry `nodeLabels` and `taints`, and pull with
 * the same files, runtime and kubelet settings, so one answer holds for all of them. Without
 * --node-pools the cluster is one pool, described by the command's own flags.
 */
import type { Platform } from '../registry/index.js'

/** The name of the one pool when no --node-pools is given. */
export const DEFAULT_POOL = 'nodes'

/** A node taint (spec.taints); only NoSchedule and NoExecute keep a pod off. */
export interface Taint {
  key: string
  value?: string
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute'
}

/** The kubelet's imagePullCredentialsVerificationPolicy (KEP-2535, kubelet config v1beta1). */
export type VerificationPolicy =
  | 'NeverVerify'
  | 'NeverVerifyPreloadedImages'
  | 'NeverVerifyAllowlistedImages'
  | 'AlwaysVerify'

export const VERIFICATION_POLICIES: readonly VerificationPolicy[] = [
  'NeverVerify',
  'NeverVerifyPreloadedImages',
  'NeverVerifyAllowlistedImages',
  'AlwaysVerify',
]

/** The kubelet's default since the policy exists (1.33). */
export const DEFAULT_VERIFICATION_POLICY: VerificationPolicy = 'NeverVerifyPreloadedImages'

export interface KubeletPullSettings {
  verificationPolicy: VerificationPolicy
  /** preloadedImagesVerificationAllowlist: used by NeverVerifyAllowlistedImages only. */
  allowlist: readonly string[]
}

/** What decides where a pool's pods can land and how its nodes pull, apart from the files. */
export interface PoolShape {
  name: string
  /** Labels every node of the pool carries; a node belongs to the first pool whose labels it has. */
  nodeLabels: Readonly<Record<string, string>>
  taints: readonly Taint[]
  /** containerRuntimeVersion as the pool file gives it; undefined: read from the pool's nodes. */
  runtime: string | undefined
  /** From the pool file; empty: read from the pool's nodes. */
  platforms: readonly Platform[]
  kubelet: KubeletPullSettings
}

/** What pullguard keeps of one Node: enough to place it in a pool and hold a pod's scheduling against it. */
export interface NodeSummary {
  name: string
  labels: Readonly<Record<string, string>>
  taints: readonly Taint[]
  platform: Platform
  /** status.nodeInfo.containerRuntimeVersion, e.g. `containerd://2.1.4`; "" when not reported. */
  runtime: string
}
