/**
 * `pullguard serve` assembled from its parts: one registry client (pools, tokens), one cached
 * checker, the Kubernetes API source, the namespace modes, the judge, the HTTPS server. The CLI
 * and the tests build it with this same function.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { ConfigError, type ServeConfig } from './config.js'
import { KubeApi, loadKubeConfig } from './credentials/kube-api.js'
import { NodeDockerConfig, NodeDockerConfigError } from './credentials/node-config.js'
import { ImageExemptions } from './policy/exemptions.js'
import { createJudge, decisionBudgetMs } from './policy/judge.js'
import { NamespaceModes } from './policy/namespace-mode.js'
import { NodePlatforms } from './policy/node-platforms.js'
import { CachedChecker } from './registry/cached-checker.js'
import { RegistryClient } from './registry/index.js'
import { buildServer } from './server/app.js'
import { generateDevCertificate } from './server/dev-certificate.js'

export interface Serve {
  app: FastifyInstance
  close(): Promise<void>
}

export async function createServe(config: ServeConfig, logger: Logger, kubeConfig: KubeConfig = defaultKubeConfig()): Promise<Serve> {
  let tls = config.tls
  if (tls === undefined) {
    logger.warn('no --tls-cert/--tls-key given: serving a self-signed certificate generated in memory (development only)')
    tls = { ...(await generateDevCertificate()), certPath: '(generated)', keyPath: '(generated)' }
  }
  const budget = decisionBudgetMs(config.timeoutMs)
  const registry = new RegistryClient({
    trust: { extraCaPem: config.registryCaPem, nodeExtraCaCertsPath: config.nodeExtraCaCertsPath },
    insecureRegistries: config.insecureRegistries,
    // Half the budget per request: a registry that hangs on the first credential still leaves
    // time to try the next one before the review must be answered.
    requestTimeoutMs: Math.max(200, Math.floor(budget / 2)),
  })
  const kube = new KubeApi(kubeConfig, { requestTimeoutMs: Math.max(200, Math.floor(budget / 3)) })
  const nodeCredentials = loadNodeCredentials(config.nodeDockerConfigPath, logger)
  const judge = createJudge({
    checker: new CachedChecker(registry, { checkBudgetMs: budget }),
    secrets: kube,
    serviceAccounts: kube,
    modes: new NamespaceModes(kube, config.mode),
    onRegistryError: config.onRegistryError,
    timeoutMs: config.timeoutMs,
    exemptNamespaces: new Set(config.exemptNamespaces),
    exemptImages: new ImageExemptions(config.exemptImages),
    ...(nodeCredentials === undefined ? {} : { nodeCredentials }),
    clusterPlatforms: new NodePlatforms(kube, config.platforms, logger),
    logger,
  })
  const app = await buildServer({ certPem: tls.certPem, keyPem: tls.keyPem, logger, judge })
  return {
    app,
    close: async () => {
      await app.close()
      await registry.close()
      nodeCredentials?.close()
    },
  }
}

function loadNodeCredentials(path: string | undefined, logger: Logger): NodeDockerConfig | undefined {
  if (path === undefined) return undefined
  try {
    return new NodeDockerConfig(path, logger)
  } catch (err) {
    if (err instanceof NodeDockerConfigError) throw new ConfigError('--node-docker-config', err.message)
    throw err
  }
}

/** KUBECONFIG or the in-cluster service account; a broken one is a configuration error (exit 2). */
function defaultKubeConfig(): KubeConfig {
  try {
    return loadKubeConfig()
  } catch (err) {
    throw new ConfigError('KUBECONFIG', `cannot load the Kubernetes client configuration: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}
