/**
 * `pullguard diagnose pod NAME` / `diagnose namespace [NS | -A]`: reads the pods stuck on an image
 * pull with the user's kubeconfig, diagnoses each (run.ts) and prints the report (report.ts).
 * Usage errors throw ConfigError; a pod or namespace that cannot be read throws TargetError; the
 * CLI prints either on one line and exits 2.
 */
import { userCluster } from '../commands/cluster.js'
import { TargetError } from '../commands/errors.js'
import { renderHelp, type CommandHelp } from '../commands/flag-table.js'
import { wantsHelp } from '../commands/flags.js'
import { openNodePools, type OpenedPools } from '../commands/pools.js'
import { createLogger } from '../log/logger.js'
import type { ServiceAccountAccess } from '../providers/service-account-tokens.js'
import { NodePools } from '../policy/node-pools.js'
import type { Lookup, PodObject } from '../kube/sources.js'
import { CLUSTER_CLI_OPTIONS } from '../commands/cluster-flags.js'
import { parseDiagnoseConfig, type DiagnoseConfig } from './config.js'
import { buildDiagnoseReport, renderDiagnoseJson, renderDiagnoseText, type DiagnoseReport } from './report.js'
import { Diagnoser, isStuck, type DiagnoseApi } from './run.js'

export const DIAGNOSE_HELP: CommandHelp = {
  name: 'diagnose',
  summary: 'explain pods stuck on an image pull, and how to fix each',
  usage: ['diagnose pod NAME [-n NS] [flags]', 'diagnose namespace [NS | -A] [flags]'],
  description: [
    "For each container waiting with ErrImagePull, ImagePullBackOff, ErrImageNeverPull or InvalidImageName: the kubelet's own error, what its registry says now with the pod's credentials, and the exact command that fixes it (the tag that exists, the secret to create, the annotation to add).",
  ],
  exitCodes: [
    [0, 'no pod stuck, or every stuck image pulls now'],
    [1, 'some image still cannot be pulled'],
    [2, 'bad flags, or the pod or namespace cannot be read'],
    [3, 'some image could not be verified'],
  ],
  examples: [
    ['one pod', 'pullguard diagnose pod web-7c9f8d6b5-x2x9q -n team-a'],
    ['every stuck pod of the cluster, as JSON', 'pullguard diagnose namespace -A -o json'],
  ],
}

export async function diagnose(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(renderHelp(DIAGNOSE_HELP, CLUSTER_CLI_OPTIONS))
    return 0
  }
  const config = parseDiagnoseConfig(argv)
  const { api, namespace } = await userCluster(config.kubeconfigPath, 'diagnose', config.timeoutMs, config.context)
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
