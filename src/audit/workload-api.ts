/**
 * Reading the workloads from the Kubernetes API: one paged list per kind, cluster-wide or in one
 * namespace. `pullguard audit` lists once; `serve` keeps a watched copy (workload-cache.ts) on the
 * same list calls. Only what auditWorkload keeps of each object stays in memory.
 */
import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node'
import { withSignal } from '../credentials/kube-api.js'
import type { ListPage } from '../credentials/reflector.js'
import { auditWorkload, GROUP, WORKLOAD_KINDS, type AuditWorkload, type WorkloadKind } from './workloads.js'

export const WORKLOAD_PAGE_SIZE = 500
/** 1000 pages of 500: beyond any cluster Kubernetes supports; a list that long is refused rather than cut. */
const MAX_PAGES = 1000

export type ListWorkloads = (kind: WorkloadKind, namespace: string | undefined, token: string | undefined, signal: AbortSignal) => Promise<ListPage>

/** The collection path of a kind, for watches and messages: `/apis/apps/v1/deployments`. */
export function collectionPath(kind: WorkloadKind, namespace?: string): string {
  const group = GROUP[kind]
  const base = group === '' ? '/api/v1' : `/apis/${group}/v1`
  return `${base}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${plural(kind)}`
}

export function plural(kind: WorkloadKind): string {
  return kind === 'DaemonSet' ? 'daemonsets' : `${kind.toLowerCase()}s`
}

export function workloadLister(kubeConfig: KubeConfig): ListWorkloads {
  const apps = kubeConfig.makeApiClient(AppsV1Api)
  const batch = kubeConfig.makeApiClient(BatchV1Api)
  const core = kubeConfig.makeApiClient(CoreV1Api)
  return async (kind, namespace, token, signal) => {
    const request = { limit: WORKLOAD_PAGE_SIZE, ...(token === undefined ? {} : { _continue: token }) }
    const o = withSignal(signal)
    const ns = namespace === undefined ? undefined : { namespace, ...request }
    let list: { items: unknown[]; metadata?: { resourceVersion?: string; _continue?: string } }
    switch (kind) {
      case 'Deployment': list = ns === undefined ? await apps.listDeploymentForAllNamespaces(request, o) : await apps.listNamespacedDeployment(ns, o); break
      case 'StatefulSet': list = ns === undefined ? await apps.listStatefulSetForAllNamespaces(request, o) : await apps.listNamespacedStatefulSet(ns, o); break
      case 'DaemonSet': list = ns === undefined ? await apps.listDaemonSetForAllNamespaces(request, o) : await apps.listNamespacedDaemonSet(ns, o); break
      case 'ReplicaSet': list = ns === undefined ? await apps.listReplicaSetForAllNamespaces(request, o) : await apps.listNamespacedReplicaSet(ns, o); break
      case 'ReplicationController': list = ns === undefined ? await core.listReplicationControllerForAllNamespaces(request, o) : await core.listNamespacedReplicationController(ns, o); break
      case 'CronJob': list = ns === undefined ? await batch.listCronJobForAllNamespaces(request, o) : await batch.listNamespacedCronJob(ns, o); break
      case 'Job': list = ns === undefined ? await batch.listJobForAllNamespaces(request, o) : await batch.listNamespacedJob(ns, o); break
      case 'Pod': list = ns === undefined ? await core.listPodForAllNamespaces(request, o) : await core.listNamespacedPod(ns, o); break
    }
    const next = list.metadata?._continue
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '', continue: next === undefined || next === '' ? undefined : next }
  }
}

/** Every workload of every kind, listed once (for `pullguard audit`); throws what the API threw. */
export async function listWorkloads(list: ListWorkloads, namespace: string | undefined, signal: AbortSignal): Promise<AuditWorkload[]> {
  const out: AuditWorkload[] = []
  for (const kind of WORKLOAD_KINDS) {
    let token: string | undefined
    let pages = 0
    do {
      if (++pages > MAX_PAGES) throw new Error(`more than ${WORKLOAD_PAGE_SIZE * MAX_PAGES} ${plural(kind)}; audit one namespace at a time`)
      const page = await list(kind, namespace, token, signal)
      for (const item of page.items) {
        const w = auditWorkload(kind, item)
        if (w !== undefined) out.push(w)
      }
      token = page.continue
    } while (token !== undefined)
  }
  return out
}
