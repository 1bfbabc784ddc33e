/**
 * The workloads `serve` audits, kept by list + watch (one Reflector per kind, cluster-wide), each
 * object reduced to what auditWorkload keeps. The RBAC grants list and watch on these kinds and
 * nothing else about them.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { ApiTrouble } from '../credentials/api-trouble.js'
import { Reflector } from '../credentials/reflector.js'
import { collectionPath, plural, workloadLister } from './workload-api.js'
import { auditWorkload, WORKLOAD_KINDS, type AuditWorkload } from './workloads.js'

export class WorkloadCache {
  readonly #reflectors: Array<Reflector<AuditWorkload>>

  constructor(kubeConfig: KubeConfig, logger: Logger) {
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
            return w === undefined ? undefined : { key: `${w.namespace}/${w.name}`, value: w }
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

  /** Every workload now, or undefined until every kind has been listed once. */
  snapshot(): AuditWorkload[] | undefined {
    if (!this.#reflectors.every((r) => r.synced)) return undefined
    return this.#reflectors.flatMap((r) => [...r.values()])
  }

  get size(): number {
    return this.#reflectors.reduce((n, r) => n + r.size, 0)
  }
}
