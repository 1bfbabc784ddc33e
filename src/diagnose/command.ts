/**
 * `pullguard diagnose pod NAME` / `diagnose namespace [NS | -A]`: reads the pods stuck on an image
 * pull with the user's kubeconfig, diagnoses each (run.ts) and prints the report (report.ts).
 * Usage errors throw ConfigError; a pod or namespace that cannot be read throws TargetError; the
 * CLI prints either on one line and exits 2.
 */
import { userCluster } from '../commands/cluster.js'
import { TargetError } from '../commands/errors.js'
import { wantsHelp } from '../commands/flags.js'
import { openNodePools, type OpenedPools } from '../commands/pools.js'
import { createLogger } from '../log/logger.js'
import type { ServiceAccountAccess } from '../providers/service-account-tokens.js'
import { NodePools } from '../policy/node-pools.js'
import type { Lookup, PodObject } from '../kube/sources.js'
import { parseDiagnoseConfig, type DiagnoseConfig } from './config.js'
import { buildDiagnoseReport, renderDiagnoseJson, renderDiagnoseText, type DiagnoseReport } from './report.js'
import { Diagnoser, isStuck, type DiagnoseApi } from './run.js'

export const DIAGNOSE_USAGE = `usage: pullguard diagnose pod NAME [-n NS] | namespace [NS | -A/--all-namespaces]
                       [--kubeconfig FILE] [--timeout 8s] [--registry-ca FILE] [--insecure-registry HOST[:PORT]]...
                       [--node-docker-config FILE] [--image-credential-provider-config FILE|DIR --image-credential-provider-bin-dir DIR]
                       [--containerd-hosts-dir DIR | --registries-conf FILE [--registries-conf-dir DIR] [--short-name-aliases FILE] [--short-name-mode enforcing|disabled] [--crio-config FILE] [--crio-config-dir DIR] [--signature-policy FILE] [--signature-policy-dir DIR] [--registries-d DIR]] [--registry-concurrency 8]
                       [--node-pools FILE] [--image-pull-credentials-verification-policy POLICY [--preloaded-images-verification-allowlist NAME]...] [--output table|json]`

export async function diagnose(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(DIAGNOSE_USAGE + '\n')
    return 0
  }
  const config = parseDiagnoseConfig(argv)
  const { api, namespace } = await userCluster(config.kubeconfigPath, 'diagnose', config.timeoutMs)
  // Each pool's files (one pool without --node-pools), read and checked before any pod is.
  const opened = openNodePools(config.nodePools, config, config.timeoutMs, {
    logger: createLogger('silent'),
    watch: false,
    serviceAccounts: api,
  })
  try {
    const report = await run(api, config, namespace, opened)
    process.stdout.write(config.output === 'json' ? renderDiagnoseJson(report) : renderDiagnoseText(report))
    return report.summary.exitCode
  } finally {
    await opened.close()
  }
}

async function run(
  api: DiagnoseApi & ServiceAccountAccess,
  config: DiagnoseConfig,
  defaultNamespace: string,
  opened: OpenedPools,
): Promise<DiagnoseReport> {
  const target = config.target
  // Listing a cluster's pods takes pages; each page has the per-request timeout of its own.
  const signal = AbortSignal.timeout(Math.max(config.timeoutMs * 10, 60_000))
  let pods: PodObject[]
  let examined = 0
  let scope: DiagnoseReport['scope']
  if (target.kind === 'pod') {
    const namespace = target.namespace ?? defaultNamespace
    scope = { kind: 'pod', namespace, name: target.name }
    const found = await api.getPod(namespace, target.name, signal)
    pods = [readable(found, `pod ${namespace}/${target.name}`)]
    examined = 1
  } else {
    const namespace = target.kind === 'namespace' ? (target.namespace ?? defaultNamespace) : undefined
    scope = namespace === undefined ? { kind: 'all-namespaces' } : { kind: 'namespace', namespace }
    const keep = (pod: PodObject): boolean => {
      examined++
      return isStuck(pod)
    }
    pods = readable(
      await api.listPods(namespace, keep, signal),
      namespace === undefined ? 'the pods of all namespaces' : `the pods of namespace ${namespace}`,
    )
  }
  const diagnoser = new Diagnoser(api, {
    timeoutMs: config.timeoutMs,
    pools: new NodePools(opened.pools, api, createLogger('silent')),
  })
  return buildDiagnoseReport(scope, examined, await diagnoser.pods(pods))
}

function readable<T>(found: Lookup<T>, what: string): T {
  switch (found.kind) {
    case 'found':
      return found.object
    case 'missing':
      throw new TargetError(`${what} not found`)
    case 'forbidden':
      throw new TargetError(`${what} may not be read with your credentials: ${found.detail}`)
    case 'error':
      throw new TargetError(`${what} could not be read: ${found.detail}`)
  }
}
