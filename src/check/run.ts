/**
 * `pullguard check` assembled: manifests → subjects → assess() (the webhook's own path to
 * per-image outcomes) → a report. Receives its inputs and collaborators, so the CLI and tests
 * build it the same way.
 *
 * Time: --timeout bounds each image's registry check (the checker's shared budget); an object's
 * deadline is assess's own for its images (assessDeadlineMs), plus the API reads before them.
 */
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import { openNodePools } from '../commands/pools.js'
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type {
  NamespaceSource,
  NodeListSource,
  NodeSource,
  SecretSource,
  ServiceAccountSource,
} from '../kube/sources.js'
import { assessAcrossPools, type PoolOutcomes } from '../policy/across-pools.js'
import { assessDeadlineMs } from '../policy/assess.js'
import { NodePools, type JudgedPool, type NodeSide } from '../policy/node-pools.js'
import { ImageExemptions } from '../policy/exemptions.js'
import { labelsIgnored } from '../policy/namespace-mode.js'
import { NodePlatforms } from '../policy/node-platforms.js'
import { admissionFixTarget } from '../policy/fix-target.js'
import type { FixTarget } from '../policy/fixes.js'
import { pullability, type ImageOutcome } from '../policy/outcome.js'
import type { CheckConfig } from './config.js'
import type { DockerCredentials } from '../commands/docker-credentials.js'
import type { CheckObject } from './objects.js'
import { OfflineCluster } from './offline-cluster.js'

export interface CheckedObject {
  object: CheckObject
  outcomes: ImageOutcome[]
  /** The service account could not be found or read (from-cluster only). */
  serviceAccountWarning: string | undefined
  secretProblems: SecretProblem[]
  /** What the fixes name; set when some image is not pullable. */
  target: FixTarget | undefined
  /** With --node-pools: each pool the object's pods can land on, with its outcomes. */
  pools?: PoolOutcomes[]
}

export type ClusterSources = SecretSource &
  ServiceAccountSource &
  NamespaceSource &
  NodeSource &
  Partial<NodeListSource>

export interface RunOptions {
  config: CheckConfig
  docker: DockerCredentials
  logger: Logger
  /** With --from-cluster, the Kubernetes API; otherwise nothing is read (OfflineCluster). */
  cluster?: ClusterSources
  onProgress?: (done: number, total: number) => void
}

export async function runCheck(objects: readonly CheckObject[], options: RunOptions): Promise<CheckedObject[]> {
  const { config } = options
  const cluster = options.cluster ?? new OfflineCluster()
  const opened = openNodePools(config.nodePools, config, config.timeoutMs, { logger: options.logger, watch: false })
  // --docker-config stands for the nodes' own credentials on every pool whose file gives none.
  const docker = { entries: () => options.docker.entries }
  const sides = new Map<NodeSide, NodeSide>()
  const withDocker = (side: NodeSide): NodeSide => {
    let out = sides.get(side)
    if (out === undefined)
      sides.set(side, (out = side.nodeCredentials === undefined ? { ...side, nodeCredentials: docker } : side))
    return out
  }
  const pools: JudgedPool[] = opened.pools.map((p) => ({ ...p, node: withDocker(p.node) }))
  // Offline nothing is read: every pool is judged by its file.
  const nodes = options.cluster
  const nodePools = new NodePools(
    pools,
    nodes?.listNodes === undefined || nodes.getNodeImages === undefined
      ? undefined
      : { listNodes: nodes.listNodes.bind(nodes), getNodeImages: nodes.getNodeImages.bind(nodes) },
    options.logger,
  )
  const assessOptions = {
    ...pools[0]!.node,
    secrets: cluster,
    serviceAccounts: cluster,
    modes: labelsIgnored(),
    exemptImages: new ImageExemptions(config.exemptImages),
    clusterPlatforms: new NodePlatforms(cluster, config.platforms, options.logger),
    pools: nodePools,
  }
  const results: CheckedObject[] = []
  try {
    for (const object of objects) {
      const signal = AbortSignal.timeout(assessDeadlineMs(object.subject, config.timeoutMs))
      setMaxListeners(0, signal)
      const found = await assessAcrossPools(assessOptions, object.subject, signal)
      // No exempt namespaces and no mode labels in check: anything else is a bug.
      if (found.mode !== 'enforce') throw new Error(`unexpected mode ${found.mode} in check`)
      const everyPool = found.pools === undefined ? found.outcomes : found.pools.judged.flatMap((j) => j.outcomes)
      const target = everyPool.every((o) => pullability(o) === 'pullable')
        ? undefined
        : await admissionFixTarget(object.subject, { ...found, outcomes: everyPool }, cluster, signal)
      results.push({
        object,
        outcomes: found.outcomes,
        serviceAccountWarning: found.secretNames.warning,
        secretProblems: found.secretProblems,
        target,
        ...(found.pools === undefined || found.pools.judged.length < 2 ? {} : { pools: found.pools.judged }),
      })
      options.onProgress?.(results.length, objects.length)
    }
  } finally {
    await opened.close()
  }
  return results
}
