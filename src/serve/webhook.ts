/**
 * `pullguard serve` assembled from its parts: one registry client (pools, tokens), one cached
 * checker, the Kubernetes API source, the namespace modes, the judge, the HTTPS server. The CLI
 * and the tests build it with this same function.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import { kubeConfigFor } from '../commands/cluster.js'
import { openNodePools } from '../commands/pools.js'
import { ClusterCache } from '../kube/cluster-cache.js'
import { KubeApi } from '../kube/kube-api.js'
import { AssessmentMemo } from '../policy/assessment-memo.js'
import { ImageExemptions } from '../policy/exemptions.js'
import { createJudge, decisionBudgetMs } from '../policy/judge.js'
import { createPinner } from '../policy/pinner.js'
import { NamespaceModes } from '../policy/namespace-mode.js'
import { NodePlatforms } from '../policy/node-platforms.js'
import { NodePools } from '../policy/node-pools.js'
import { type App, buildServer } from '../server/app.js'
import { generateDevCertificate } from '../server/dev-certificate.js'
import { Metrics } from '../server/metrics.js'
import { CertificateReloader } from '../server/tls-reload.js'
import { startBackgroundAudit } from './background-audit.js'
import type { ServeConfig } from './config.js'

export interface Serve {
  app: App
  metrics: Metrics
  /** Stops accepting, lets in-flight reviews finish (up to --timeout + 2 s), then releases everything. */
  close(): Promise<void>
}

/** Without `kubeConfig`: KUBECONFIG or the in-cluster service account (a broken one exits 2). */
export async function createServe(config: ServeConfig, logger: Logger, kubeConfig?: KubeConfig): Promise<Serve> {
  const kc = kubeConfig ?? (await kubeConfigFor(undefined, 'KUBECONFIG'))
  let tls = config.tls
  if (tls === undefined) {
    logger.warn(
      'no --tls-cert/--tls-key given: serving a self-signed certificate generated in memory (development only)',
    )
    tls = { ...(await generateDevCertificate()), certPath: '(generated)', keyPath: '(generated)' }
  }
  const budget = decisionBudgetMs(config.timeoutMs)
  const metrics = new Metrics({ timeoutMs: config.timeoutMs })
  metrics.servingCertificate(certificateNotAfter(tls.certPem))
  const kube = new KubeApi(kc, { requestTimeoutMs: Math.max(200, Math.floor(budget / 3)) })
  // Pull secrets, service accounts and namespaces kept by list + watch; until listed (or when
  // RBAC allows no list), lookups go to the API as they would without it.
  const cluster = new ClusterCache(kc, kube, logger)
  const modes = new NamespaceModes(cluster, config.mode)
  // A relabelled namespace takes its new mode from the next review, not after the modes' TTL.
  cluster.onNamespaceChange((name) => modes.forget(name))
  cluster.start()
  // Each pool's files (one pool without --node-pools); accounts from the watched copy, tokens by
  // TokenRequest (only the tokens overlay's RBAC allows it).
  const opened = openNodePools(config.nodePools, config, budget, {
    logger,
    watch: true,
    onRequest: metrics.registryRequest,
    observer: metrics.checks,
    // Pinned pods are judged at the digest their tag answered: from the same cache entry.
    keepDigestAnswers: config.pinDigests,
    onExec: metrics.pluginExec,
    serviceAccounts: {
      getServiceAccount: (ns, name, signal) => cluster.getServiceAccount(ns, name, signal),
      createServiceAccountToken: (ns, name, request, signal) =>
        kube.createServiceAccountToken(ns, name, request, signal),
    },
  })
  const registries = opened.registries
  const { checker } = opened.first
  const nodePools = new NodePools(opened.pools, kube, logger)
  // The same spec asked again (every pod of a ReplicaSet) reuses its assessment while the
  // namespace's objects, the pools' files and nodes, and the registry answers hold.
  const memo = new AssessmentMemo({
    revision: (namespace) => cluster.revision(namespace),
    inputs: () => [nodePools.current(), ...opened.inputs()],
    expiresAt: (result) => checker.expiresAt(result),
  })
  metrics.registryPauses(() => new Map(registries.flatMap((r) => [...r.checker.pauses.current()])))
  metrics.registrySlots(
    () => new Map(registries.flatMap((r) => [...r.client.requestSlots()])),
    config.registryConcurrency,
  )
  metrics.cacheSizes({
    result: () => registries.reduce((n, r) => n + r.checker.size, 0),
    assessments: () => memo.size,
    'pull-secrets': () => cluster.stats().pullSecrets,
    'service-accounts': () => cluster.stats().serviceAccounts,
    namespaces: () => cluster.stats().namespaces,
  })
  // What a CREATE is judged with: the webhook's and the audit's, so both reach the same answer.
  const first = opened.pools[0]!.node
  const assessOptions = {
    secrets: cluster,
    serviceAccounts: cluster,
    modes,
    exemptNamespaces: new Set(config.exemptNamespaces),
    exemptImages: new ImageExemptions(config.exemptImages),
    ...first,
    checker,
    clusterPlatforms: new NodePlatforms(kube, config.platforms, logger),
  }
  const judgeOptions = {
    ...assessOptions,
    pools: nodePools,
    onRegistryError: config.onRegistryError,
    timeoutMs: config.timeoutMs,
    memo,
    logger,
  }
  const judge = createJudge({ ...judgeOptions, onDecision: metrics.decision })
  // The same assessments and answers as the judge's: a pod pinned, then judged, is asked about once.
  const pinner = config.pinDigests ? createPinner(judgeOptions) : undefined
  const audit =
    config.audit === undefined
      ? undefined
      : startBackgroundAudit(config.audit, config.timeoutMs, kc, logger, metrics, assessOptions, nodePools)
  const ready = reachedOnce(kube)
  metrics.readiness(ready)
  // Reviews in flight at shutdown get up to --timeout + 2 s; past that their connections are cut (server/lifecycle.ts).
  const app = buildServer({
    certPem: tls.certPem,
    keyPem: tls.keyPem,
    logger,
    judge,
    ...(pinner === undefined ? {} : { pinner }),
    metrics,
    ready,
    closeGraceMs: config.timeoutMs + 2_000,
  })
  const reloader =
    config.tls === undefined
      ? undefined
      : new CertificateReloader(app.server, config.tls.certPath, config.tls.keyPath, logger, (pem) =>
          metrics.servingCertificate(certificateNotAfter(pem)),
        )
  // Before the reviews drain: the Lease first, so another replica takes over the audit meanwhile.
  app.addHook('preClose', async () => {
    reloader?.close()
    await audit?.close()
  })
  // Once the last review is answered (or cut): everything the reviews used.
  app.addHook('onClose', async () => {
    await opened.close()
    cluster.stop()
  })
  await app.ready()
  return { app, metrics, close: () => app.close() }
}

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
