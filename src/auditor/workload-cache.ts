/**
 * The workloads `serve` audits, kept by list + watch (one Reflector per kind, cluster-wide), each
 * object reduced to what auditWorkload keeps. The RBAC grants list and watch on these kinds and
 * nothing else about them.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { ApiTrouble } from '../kube/api-trouble.js'
import { objectKey, Reflector } from '../kube/reflector.js'
import { collectionPath, plural, workloadLister } from './workload-api.js'
import { auditWorkload, WORKLOAD_KINDS, type AuditWorkload } from './workloads.js'

export class WorkloadCache {
  readonly #reflectors: Array<Reflector<AuditWorkload>>

  /** `onGone`: told of each workload the watch saw deleted (or turned into one the audit leaves). */
  constructor(
    kubeConfig: KubeConfig,
    logger: Logger,
    onGone?: (w: Pick<AuditWorkload, 'kind' | 'namespace' | 'name'>) => void,
  ) {
    const list = workloadLister(kubeConfig)
    const trouble = new ApiTrouble(kubeConfig, logger)
    this.#reflectors = WORKLOAD_KINDS.map(
      (kind) =>
        new Reflector<AuditWorkload>(kubeConfig, {
          name: plural(kind),
          path: collectionPath(kind),
          list: (token, signal) => list(kind, undefined, token, signal),
          convert: (o) => {
            const w = auditWorkload(kind, o)
            return w === undefined ? undefined : { key: objectKey(w.namespace, w.name), value: w }
          },
          onChange: (key) => {
            if (onGone === undefined || this.#reflectors === undefined) return
            const slash = key.indexOf('/')
            const ref = { kind, namespace: key.slice(0, slash), name: key.slice(slash + 1) }
            if (this.get(ref) === undefined) onGone(ref)
          },
          logger,
          trouble,
          resource: plural(kind),
        }),
    )
  }

  start(): void {
    for (const r of this.#reflectors) r.start()
  }

  stop(): void {
    for (const r of this.#reflectors) r.stop()
  }

  /** The workload as the watch has it now, or undefined when it is gone. */
  get(w: Pick<AuditWorkload, 'kind' | 'namespace' | 'name'>): AuditWorkload | undefined {
    return this.#reflectors[WORKLOAD_KINDS.indexOf(w.kind)]?.get(`${w.namespace}/${w.name}`)
  }

  /** Every workload now, or undefined until every kind has been listed once. */
  snapshot(): AuditWorkload[] | undefined {
    if (!this.#reflectors.every((r) => r.synced)) return undefined
    return this.#reflectors.flatMap((r) => [...r.values()])
  }

  get size(): number {
    return this.#reflectors.reduce((n, r) => n + r.size, 0)
  }
}
