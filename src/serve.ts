/**
 * `pullguard serve` assembled from its parts: one registry client (pools, tokens), one cached
 * checker, the Kubernetes API source, the namespace modes, the judge, the HTTPS server. The CLI
 * and the tests build it with this same function.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { FastifyInstance } from 'fastify'
import { X509Certificate } from 'node:crypto'
import type { Server as HttpsServer } from 'node:https'
import type { Logger } from 'pino'
import { Auditor } from './audit/auditor.js'
import { auditChecker } from './audit/pass.js'
import { AuditEvents, eventSink } from './audit/events.js'
import { LeaderElector, leaseApi } from './audit/leader.js'
import { WorkloadCache } from './audit/workload-cache.js'
import { ConfigError, type AuditSettings, type ServeConfig } from './config.js'
import { ClusterCache } from './kube/cluster-cache.js'
import { KubeApi, loadKubeConfig } from './kube/kube-api.js'
import { NodeDockerConfig, NodeDockerConfigError } from './credentials/node-config.js'
import { MirrorConfigError } from './mirrors/errors.js'
import { MirrorRoutes } from './mirrors/routes.js'
import { ImageExemptions } from './policy/exemptions.js'
import { ProviderConfigError } from './providers/config.js'
import { CredentialProviders } from './providers/providers.js'
import type { ServiceAccountAccess } from './providers/service-account-tokens.js'
import type { AssessOptions } from './policy/assess.js'
import { createJudge, decisionBudgetMs } from './policy/judge.js'
import { NamespaceModes } from './policy/namespace-mode.js'
import { NodePlatforms } from './policy/node-platforms.js'
import { AssessmentMemo } from './policy/assessment-memo.js'
import { CachedChecker } from './registry/cached-checker.js'
import { RegistryClient } from './registry/index.js'
import { buildServer } from './server/app.js'
import { generateDevCertificate } from './server/dev-certificate.js'
import { Metrics } from './server/metrics.js'
import { CertificateReloader } from './server/tls-reload.js'

export interface Serve {
  app: FastifyInstance
  metrics: Metrics
  /** Stops accepting, lets in-flight reviews finish (up to `graceMs`), then releases everything. */
  close(graceMs?: number): Promise<void>
}

export async function createServe(config: ServeConfig, logger: Logger, kubeConfig: KubeConfig = defaultKubeConfig()): Promise<Serve> {
  let tls = config.tls
  if (tls === undefined) {
    logger.warn('no --tls-cert/--tls-key given: serving a self-signed certificate generated in memory (development only)')
    tls = { ...(await generateDevCertificate()), certPath: '(generated)', keyPath: '(generated)' }
  }
  const budget = decisionBudgetMs(config.timeoutMs)
  const metrics = new Metrics({ timeoutMs: config.timeoutMs })
  metrics.servingCertificate(certificateNotAfter(tls.certPem))
  const routes = loadMirrors(config, logger)
  const registry = new RegistryClient({
    onRequest: metrics.registryRequest,
    trust: { extraCaPem: config.registryCaPem, nodeExtraCaCertsPath: config.nodeExtraCaCertsPath },
    insecureRegistries: config.insecureRegistries,
    // Half the budget per request: a registry that hangs on the first credential still leaves
    // time to try the next one before the review must be answered.
    requestTimeoutMs: Math.max(200, Math.floor(budget / 2)),
    requestsPerRegistry: config.registryConcurrency,
    ...(routes === undefined ? {} : { router: routes }),
  })
  const kube = new KubeApi(kubeConfig, { requestTimeoutMs: Math.max(200, Math.floor(budget / 3)) })
  // Pull secrets, service accounts and namespaces kept by list + watch; until listed (or when
  // RBAC allows no list), lookups go to the API as they would without it.
  const cluster = new ClusterCache(kubeConfig, kube, logger)
  const modes = new NamespaceModes(cluster, config.mode)
  // A relabelled namespace takes its new mode from the next review, not after the modes' TTL.
  cluster.onNamespaceChange((name) => modes.forget(name))
  cluster.start()
  const nodeCredentials = loadNodeCredentials(config.nodeDockerConfigPath, logger)
  const checker = new CachedChecker(registry, { checkBudgetMs: budget, observer: metrics.checks })
  // Accounts from the watched copy; tokens by TokenRequest (only the tokens overlay's RBAC allows it).
  const providers = loadCredentialProviders(config, budget, logger, metrics, { getServiceAccount: (ns, name, signal) => cluster.getServiceAccount(ns, name, signal), createServiceAccountToken: (ns, name, request, signal) => kube.createServiceAccountToken(ns, name, request, signal) })
  const platforms = new NodePlatforms(kube, config.platforms, logger)
  // The same spec asked again (every pod of a ReplicaSet) reuses its assessment while the
  // namespace's objects, the nodes' credentials, the platforms and the registry answers hold.
  const memo = new AssessmentMemo({
    revision: (namespace) => cluster.revision(namespace),
    inputs: () => [nodeCredentials?.entries(), platforms.current(), providers?.generation, routes?.generation],
    expiresAt: (result) => checker.expiresAt(result),
  })
  metrics.registryPauses(() => checker.pauses.current())
  metrics.registrySlots(() => registry.requestSlots(), config.registryConcurrency)
  metrics.cacheSizes({
    result: () => checker.size,
    assessments: () => memo.size,
    'pull-secrets': () => cluster.stats().pullSecrets,
    'service-accounts': () => cluster.stats().serviceAccounts,
    namespaces: () => cluster.stats().namespaces,
  })
  // What a CREATE is judged with: the webhook's and the audit's, so both reach the same answer.
  const assessOptions = {
    checker,
    secrets: cluster,
    serviceAccounts: cluster,
    modes,
    exemptNamespaces: new Set(config.exemptNamespaces),
    exemptImages: new ImageExemptions(config.exemptImages),
    ...(nodeCredentials === undefined ? {} : { nodeCredentials }),
    ...(providers === undefined ? {} : { credentialProviders: providers }),
    clusterPlatforms: platforms,
    ...(routes === undefined ? {} : { pullRules: routes }),
  }
  const judge = createJudge({
    ...assessOptions,
    onRegistryError: config.onRegistryError,
    timeoutMs: config.timeoutMs,
    memo,
    onDecision: metrics.decision,
    logger,
  })
  const audit = config.audit === undefined ? undefined : startAudit(config.audit, config.timeoutMs, kubeConfig, logger, metrics, assessOptions)
  const ready = reachedOnce(kube)
  metrics.readiness(ready)
  const app = await buildServer({ certPem: tls.certPem, keyPem: tls.keyPem, logger, judge, metrics, ready })
  const reloader = config.tls === undefined ? undefined : new CertificateReloader(app.server as HttpsServer, config.tls.certPath, config.tls.keyPath, logger, (pem) => metrics.servingCertificate(certificateNotAfter(pem)))
  return {
    app,
    metrics,
    close: async (graceMs = config.timeoutMs + 2_000) => {
      reloader?.close()
      // The Lease first: another replica takes over the audit while this one drains its reviews.
      await audit?.close()
      // app.close() stops accepting and waits for in-flight reviews; past the grace period, stop waiting.
      let timer: NodeJS.Timeout | undefined
      const grace = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)))
      const outcome = await Promise.race([app.close().then(() => 'closed' as const), grace])
      clearTimeout(timer)
      if (outcome === 'timeout') logger.warn({ graceMs }, 'in-flight reviews did not finish within the grace period')
      await registry.close()
      cluster.stop()
      nodeCredentials?.close()
      providers?.close()
      routes?.close()
    },
  }
}

/**
 * The background audit: workloads by list + watch, passes while this replica holds the Lease.
 * Reviews never wait on it: its requests are paced per registry and share only the cache.
 */
function startAudit(settings: AuditSettings, timeoutMs: number, kubeConfig: KubeConfig, logger: Logger, metrics: Metrics, assess: AssessOptions & { checker: CachedChecker }): { close(): Promise<void> } {
  // The workloads are watched by the leader only: a pod watch costs every replica that holds one.
  let workloads: WorkloadCache | undefined
  const auditor = new Auditor({
    workloads: () => workloads?.snapshot(),
    current: (w) => workloads?.get(w),
    assess: { ...assess, checker: auditChecker(assess.checker) },
    intervalMs: settings.intervalMs,
    qps: settings.qps,
    timeoutMs,
    logger,
    observer: metrics.audit,
    ...(settings.events ? { events: new AuditEvents(eventSink(kubeConfig, settings.identity), logger) } : {}),
  })
  const stopWatching = (): void => {
    workloads?.stop()
    workloads = undefined
  }
  const elector = new LeaderElector({
    api: leaseApi(kubeConfig, settings.leaseNamespace, AUDIT_LEASE),
    identity: settings.identity,
    logger,
    onStart: () => {
      metrics.auditLeader(Date.now())
      stopWatching()
      workloads = new WorkloadCache(kubeConfig, logger, (w) => auditor.forget(w))
      workloads.start()
      auditor.start()
    },
    onStop: () => {
      metrics.auditLeader(undefined)
      void auditor.stop()
      stopWatching()
    },
  })
  metrics.auditInterval(settings.intervalMs)
  elector.start()
  logger.info({ intervalMs: settings.intervalMs, qps: settings.qps, events: settings.events, lease: `${settings.leaseNamespace}/${AUDIT_LEASE}`, identity: settings.identity }, 'audit enabled')
  return {
    close: async () => {
      await elector.stop()
      await auditor.stop()
      stopWatching()
    },
  }
}

/** The Lease the replicas share in pullguard's namespace (the Role grants it by name). */
export const AUDIT_LEASE = 'pullguard-audit'

/**
 * Ready once the Kubernetes API has answered anything (even 403/404): TLS is loaded by then, and
 * the pull secrets can be read. Latched: a later API outage is a registry-style error per review,
 * not a reason to take every replica out of the Service at once.
 */
function reachedOnce(kube: KubeApi): () => Promise<boolean> {
  let reached = false
  return async () => {
    if (reached) return true
    const answer = await kube.getNamespace('default', AbortSignal.timeout(2_000))
    reached = answer.kind !== 'error'
    return reached
  }
}

/** The first certificate's notAfter: what the expiry alert watches (the chain's leaf). */
function certificateNotAfter(certPem: string): number {
  return Date.parse(new X509Certificate(certPem).validTo)
}

function loadCredentialProviders(config: ServeConfig, budget: number, logger: Logger, metrics: Metrics, serviceAccounts: ServiceAccountAccess): CredentialProviders | undefined {
  const flags = config.credentialProviders
  if (flags === undefined) return undefined
  try {
    return new CredentialProviders({
      configPath: flags.configPath,
      binDir: flags.binDir,
      baseEnv: flags.env,
      // Half the review's budget: a plugin that hangs must leave time to check the image without
      // it and to say which plugin failed (the kubelet allows a minute; no review waits that long).
      execTimeoutMs: Math.max(100, Math.floor(budget / 2)),
      logger,
      onExec: metrics.pluginExec,
      serviceAccounts,
    })
  } catch (err) {
    if (err instanceof ProviderConfigError) throw new ConfigError('--image-credential-provider-config', err.message)
    throw err
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

/** --containerd-hosts-dir / --registries-conf, watched for changes; unreadable at start: exit 2. */
function loadMirrors(config: ServeConfig, logger: Logger): MirrorRoutes | undefined {
  if (config.mirrors === undefined) return undefined
  try {
    return new MirrorRoutes(config.mirrors, logger)
  } catch (err) {
    if (err instanceof MirrorConfigError) throw new ConfigError(config.mirrors.kind === 'containerd' ? '--containerd-hosts-dir' : '--registries-conf', err.message)
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
