/**
 * The flags `diagnose` and `audit` share: which cluster, how long per image, the nodes' own docker
 * config, the output, and the pull flags every command takes.
 */
import type { FlagTable } from './flag-table.js'
import { flagsOrEnv, oneOf, type Env } from './flags.js'
import { PULL_OPTIONS, pullSettings, type PullSettings } from './pull-flags.js'
import { perImageTimeout } from './values.js'

/** kubectl's --context, for every command that reads the cluster. */
export const CONTEXT_FLAG = {
  type: 'string',
  value: 'NAME',
  default: "the kubeconfig's current context",
  help: 'the kubeconfig context to use, as kubectl --context',
} as const

/** --platform of the commands that otherwise read the platforms from the Node objects (serve, audit). */
export const PLATFORM_FLAG = {
  type: 'string',
  multiple: true,
  value: 'OS/ARCH[/VARIANT]',
  default: 'read from the Node objects',
  help: "the cluster's platforms",
} as const

export const CLUSTER_CLI_OPTIONS = {
  namespace: {
    type: 'string',
    short: 'n',
    value: 'NS',
    default: "the kubeconfig context's namespace, else default",
    help: 'the namespace',
  },
  'all-namespaces': { type: 'boolean', short: 'A', help: 'every namespace' },
  kubeconfig: {
    type: 'string',
    value: 'FILE',
    default: 'KUBECONFIG, else ~/.kube/config, else in-cluster',
    help: 'the kubeconfig',
  },
  context: CONTEXT_FLAG,
  timeout: { type: 'string', value: 'DURATION', default: '8s', help: "each image's budget" },
  'node-docker-config': {
    type: 'string',
    value: 'FILE',
    help: "a docker config.json standing for the nodes' own credentials (the kubelet's config.json)",
  },
  output: { type: 'string', short: 'o', value: 'table|json', default: 'table', help: 'the report format' },
  ...PULL_OPTIONS,
} as const satisfies FlagTable

export interface ClusterCliSettings extends PullSettings {
  kubeconfigPath: string | undefined
  /** --context: undefined for the kubeconfig's current one. */
  context: string | undefined
  /** Per image. */
  timeoutMs: number
  nodeDockerConfigPath: string | undefined
  output: 'table' | 'json'
}

/** Those flags' values (flag, else environment), checked. */
export function clusterCliSettings(
  values: { kubeconfig?: string | undefined; context?: string | undefined; output?: string | undefined } & Readonly<
    Record<string, string | string[] | boolean | undefined>
  >,
  env: Env,
): ClusterCliSettings {
  const { pick } = flagsOrEnv(values, env)
  const timeoutMs = perImageTimeout(pick('timeout'))
  const nodeDockerConfigPath = pick('node-docker-config').value
  return {
    kubeconfigPath: values.kubeconfig,
    context: values.context,
    timeoutMs,
    nodeDockerConfigPath,
    output: oneOf(values.output ?? 'table', ['table', 'json'] as const, '--output'),
    ...pullSettings(values, env, { nodeDockerConfigPath, platforms: [] }),
  }
}
