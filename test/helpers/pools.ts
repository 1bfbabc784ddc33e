// The one node pool a command has without --node-pools, as its config holds it: the flags' files
// (none given here), the kubelet's default verification policy.
import type { PoolSettings } from '../../src/commands/node-pools.js'
import type { NodeFileSettings } from '../../src/commands/node-files.js'

export const NO_NODE_FILES: NodeFileSettings = {
  nodeDockerConfigPath: undefined,
  credentialProviders: undefined,
  mirrors: undefined,
  crio: undefined,
  signatures: undefined,
}

export function defaultPool(): PoolSettings {
  return {
    name: 'nodes',
    nodeLabels: {},
    taints: [],
    runtime: undefined,
    platforms: [],
    kubelet: { verificationPolicy: 'NeverVerifyPreloadedImages', allowlist: [] },
    node: { ...NO_NODE_FILES },
    nodeKey: 'flags',
  }
}
