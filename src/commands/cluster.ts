/**
 * The Kubernetes client configuration of a command: --kubeconfig, else KUBECONFIG, ~/.kube/config
 * or the in-cluster service account. One that cannot be loaded is a ConfigError (exit 2). The
 * client is imported on first use: it takes about a second to load, which `check` without
 * --from-cluster need not pay.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { KubeApi } from '../kube/kube-api.js'
import { ConfigError } from './errors.js'

export interface UserCluster {
  kubeConfig: KubeConfig
  api: KubeApi
  /** The context's namespace, else `default` (as kubectl). */
  namespace: string
}

/** `flag` names what the user gave, or what stood in for it (the command, KUBECONFIG), in the error. */
export async function kubeConfigFor(path: string | undefined, flag: string): Promise<KubeConfig> {
  const { loadKubeConfig } = await import('../kube/kube-api.js')
  try {
    return loadKubeConfig(path)
  } catch (err) {
    throw unusable(err, path, flag)
  }
}

/** The user's cluster for `check --from-cluster`, `diagnose` and `audit`; `requestTimeoutMs` per API request. */
export async function userCluster(
  path: string | undefined,
  flag: string,
  requestTimeoutMs: number,
  /** --context: a context of the kubeconfig other than its current one (as kubectl's --context). */
  context?: string,
): Promise<UserCluster> {
  const kubeConfig = await kubeConfigFor(path, flag)
  if (context !== undefined) {
    const names = kubeConfig.getContexts().map((c) => c.name)
    if (!names.includes(context))
      throw new ConfigError(
        '--context',
        `the kubeconfig has no context ${JSON.stringify(context)}${names.length === 0 ? '' : ` (it has ${names.join(', ')})`}`,
      )
    kubeConfig.setCurrentContext(context)
  }
  const { KubeApi } = await import('../kube/kube-api.js')
  try {
    const namespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace
    return {
      kubeConfig,
      api: new KubeApi(kubeConfig, { requestTimeoutMs }),
      namespace: namespace === undefined || namespace === '' ? 'default' : namespace,
    }
  } catch (err) {
    // A configuration without a current cluster loads, and fails here.
    throw unusable(err, path, flag)
  }
}

function unusable(err: unknown, path: string | undefined, flag: string): ConfigError {
  return new ConfigError(
    path === undefined ? flag : '--kubeconfig',
    `cannot load the Kubernetes client configuration: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
  )
}
