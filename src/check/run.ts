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
import { openMirrors } from '../commands/mirrors.js'
import { openSignaturePolicies } from '../commands/signature-policy.js'
import { startCredentialProviders } from '../commands/providers.js'
import { openRegistries } from '../commands/registry.js'
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type { NamespaceSource, NodeSource, SecretSource, ServiceAccountSource } from '../kube/sources.js'
import { assess, assessDeadlineMs } from '../policy/assess.js'
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
}

export type ClusterSources = SecretSource & ServiceAccountSource & NamespaceSource & NodeSource

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
  const routes = openMirrors(config.mirrors, options.logger, { watch: false })
  const signatures = openSignaturePolicies(config.signatures, options.logger, { watch: false })
  const { client: registry, checker } = openRegistries(config, config.timeoutMs, { routes })
  const cluster = options.cluster ?? new OfflineCluster()
  const providers = startCredentialProviders(config.credentialProviders, config.timeoutMs, options.logger, {
    watch: false,
  })
  const assessOptions = {
    checker,
    secrets: cluster,
    serviceAccounts: cluster,
    modes: labelsIgnored(),
    exemptImages: new ImageExemptions(config.exemptImages),
    nodeCredentials: { entries: () => options.docker.entries },
    ...(providers === undefined ? {} : { credentialProviders: providers }),
    clusterPlatforms: new NodePlatforms(cluster, config.platforms, options.logger),
    ...(routes === undefined ? {} : { pullRules: routes }),
    ...(signatures === undefined ? {} : { signaturePolicies: signatures }),
  }
  const results: CheckedObject[] = []
  try {
    for (const object of objects) {
      const signal = AbortSignal.timeout(assessDeadlineMs(object.subject, config.timeoutMs))
      setMaxListeners(0, signal)
      const found = await assess(assessOptions, object.subject, signal)
      // No exempt namespaces and no mode labels in check: anything else is a bug.
      if (found.mode !== 'enforce') throw new Error(`unexpected mode ${found.mode} in check`)
      const target = found.outcomes.every((o) => pullability(o) === 'pullable')
        ? undefined
        : await admissionFixTarget(object.subject, found, cluster, signal)
      results.push({
        object,
        outcomes: found.outcomes,
        serviceAccountWarning: found.secretNames.warning,
        secretProblems: found.secretProblems,
        target,
      })
      options.onProgress?.(results.length, objects.length)
    }
  } finally {
    providers?.close()
    await registry.close()
  }
  return results
}
