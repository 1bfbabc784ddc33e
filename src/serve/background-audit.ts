/**
 * The background audit of `serve`: workloads by list + watch, passes while this replica holds the
 * Lease. Reviews never wait on it: its requests are paced per registry and share only the cache.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { Auditor } from '../auditor/auditor.js'
import { AuditEvents, eventSink } from '../auditor/events.js'
import { auditChecker } from '../auditor/checkers.js'
import { WorkloadCache } from '../auditor/workload-cache.js'
import { LeaderElector, leaseApi } from '../kube/leader.js'
import type { AssessOptions } from '../policy/assess.js'
import { CachedChecker, type ImageChecker } from '../registry/cached-checker.js'
import type { NodePools } from '../policy/node-pools.js'
import type { Metrics } from '../server/metrics.js'
import type { AuditSettings } from './config.js'

/** auditChecker once per checker: pools sharing files share the audit's answers too. */
function freshOnce(): (checker: ImageChecker) => ImageChecker {
  const made = new WeakMap<ImageChecker, ImageChecker>()
  return (c) => {
    if (!(c instanceof CachedChecker)) return c
    let fresh = made.get(c)
    if (fresh === undefined) made.set(c, (fresh = auditChecker(c)))
    return fresh
  }
}

export function startBackgroundAudit(
  settings: AuditSettings,
  timeoutMs: number,
  kubeConfig: KubeConfig,
  logger: Logger,
  metrics: Metrics,
  assess: AssessOptions & { checker: CachedChecker },
  pools?: NodePools,
): { close(): Promise<void> } {
  // The workloads are watched by the leader only: a pod watch costs every replica that holds one.
  let workloads: WorkloadCache | undefined
  const auditor = new Auditor({
    workloads: () => workloads?.snapshot(),
    current: (w) => workloads?.get(w),
    assess: { ...assess, checker: auditChecker(assess.checker) },
    // Each pool's checker asked afresh too, its answers left in that pool's cache for the reviews.
    ...(pools === undefined ? {} : { pools, checkerFor: freshOnce() }),
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
  logger.info(
    {
      intervalMs: settings.intervalMs,
      qps: settings.qps,
      events: settings.events,
      lease: `${settings.leaseNamespace}/${AUDIT_LEASE}`,
      identity: settings.identity,
    },
    'audit enabled',
  )
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
