/**
 * Reading the workloads from the Kubernetes API: one paged list per kind, cluster-wide or in one
 * namespace. `pullguard audit` lists once; `serve` keeps a watched copy (workload-cache.ts) on the
 * same list calls. Only what auditWorkload keeps of each object stays in memory.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import { listPage } from '../kube/list-page.js'
import type { ListPage } from '../kube/reflector.js'
import { auditWorkload, GROUP, WORKLOAD_KINDS, type AuditWorkload, type WorkloadKind } from './workloads.js'

export const WORKLOAD_PAGE_SIZE = 500
/** 1000 pages of 500: beyond any cluster Kubernetes supports; a list that long is refused rather than cut. */
const MAX_PAGES = 1000

export type ListWorkloads = (
  kind: WorkloadKind,
  namespace: string | undefined,
  token: string | undefined,
  signal: AbortSignal,
) => Promise<ListPage>

/** The collection path of a kind, for watches and messages: `/apis/apps/v1/deployments`. */
export function collectionPath(kind: WorkloadKind, namespace?: string): string {
  const group = GROUP[kind]
  const base = group === '' ? '/api/v1' : `/apis/${group}/v1`
  return `${base}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${plural(kind)}`
}

export function plural(kind: WorkloadKind): string {
  return kind === 'DaemonSet' ? 'daemonsets' : `${kind.toLowerCase()}s`
}

/** Pages of each kind's collection, as the API's JSON (list-page.ts: no client-side models). */
export function workloadLister(kubeConfig: KubeConfig): ListWorkloads {
  return (kind, namespace, token, signal) =>
    listPage(kubeConfig, collectionPath(kind, namespace), { limit: WORKLOAD_PAGE_SIZE, continue: token }, signal)
}

/**
 * Every workload of every kind, listed once (for `pullguard audit`), a page at a time: the next
 * page is read while the caller works on this one, and only what auditWorkload keeps of a page is
 * held. Throws what the API threw.
 */
export async function* workloadPages(
  list: ListWorkloads,
  namespace: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<AuditWorkload[]> {
  let next: Promise<ListPage> | undefined
  for (const kind of WORKLOAD_KINDS) {
    let token: string | undefined
    let pages = 0
    do {
      if (++pages > MAX_PAGES)
        throw new Error(`more than ${WORKLOAD_PAGE_SIZE * MAX_PAGES} ${plural(kind)}; audit one namespace at a time`)
      const page = await (next ?? list(kind, namespace, token, signal))
      next = undefined
      token = page.continue
      if (token !== undefined) {
        next = list(kind, namespace, token, signal)
        // Read while this page is worked on; its failure is thrown when it is awaited.
        next.catch(() => undefined)
      }
      const out: AuditWorkload[] = []
      for (const item of page.items) {
        const w = auditWorkload(kind, item)
        if (w !== undefined) out.push(w)
      }
      yield out
    } while (token !== undefined)
  }
}
