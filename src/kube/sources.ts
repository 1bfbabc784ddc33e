/**
 * What pullguard reads from the Kubernetes API, behind small interfaces so the decision can be
 * tested without a cluster and the CLI can feed it from files. Lookups never throw: every
 * outcome the API can produce is a value, because each one means something different to the
 * kubelet (a missing secret is skipped; a secret we may not read might still work on the node).
 */

/** A Secret as the API returns it: `data` values are base64. */
export interface SecretObject {
  name: string
  namespace: string
  type: string
  data: Record<string, string>
}

export interface ServiceAccountObject {
  name: string
  namespace: string
  imagePullSecrets: string[]
  /** For credential provider plugins that take service-account tokens (the TokenRequest precondition and their cache key). */
  uid: string
  /** Without kubectl's last-applied copy of the object (large, and never a plugin's input). */
  annotations: Record<string, string>
}

export interface NamespaceObject {
  name: string
  labels: Record<string, string>
}

export type Lookup<T> =
  | { kind: 'found'; object: T }
  /** 404: the object does not exist. */
  | { kind: 'missing' }
  /** 403: pullguard's RBAC does not allow it (the kubelet may still read it). */
  | { kind: 'forbidden'; detail: string }
  /** Anything else: API unreachable, 5xx, timeout, an answer that is not the object. */
  | { kind: 'error'; detail: string }

export interface SecretSource {
  getSecret(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<SecretObject>>
}

export interface ServiceAccountSource {
  getServiceAccount(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<ServiceAccountObject>>
}

/** TokenRequest (`create` on serviceaccounts/token): a token for the account, for one audience. */
export interface ServiceAccountTokenSource {
  createServiceAccountToken(
    namespace: string,
    name: string,
    request: { audience: string; uid: string },
    signal?: AbortSignal,
  ): Promise<Lookup<{ token: string; expiresAt: number }>>
}

export interface NamespaceSource {
  getNamespace(name: string, signal?: AbortSignal): Promise<Lookup<NamespaceObject>>
}

/**
 * The distinct (os, architecture) pairs of the cluster's Nodes, from `status.nodeInfo` (the
 * kubelet's runtime.GOOS / GOARCH; it reports no variant). Found with an empty list: no node has
 * reported yet.
 */
export interface NodeSource {
  listNodePlatforms(signal?: AbortSignal): Promise<Lookup<Array<{ os: string; architecture: string }>>>
}

/** What pullguard keeps of a Node: where it is (labels, taints), what it is (platform, runtime). */
export interface NodeObject {
  name: string
  labels: Record<string, string>
  /** spec.taints. */
  taints: Array<{ key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }>
  /** status.nodeInfo; "" until the kubelet has reported. */
  os: string
  architecture: string
  /** status.nodeInfo.containerRuntimeVersion, e.g. `containerd://2.1.4`; "" until reported. */
  runtime: string
}

/** The Nodes, for node pools (labels, taints, runtimes), and one node's images for a pod bound to it. */
export interface NodeListSource {
  listNodes(signal?: AbortSignal): Promise<Lookup<NodeObject[]>>
  /**
   * Every name in the node's status.images (`name:tag` and `name@digest` forms as the runtime
   * reports them). The kubelet lists at most nodeStatusMaxImages (50 by default), largest first.
   */
  getNodeImages(name: string, signal?: AbortSignal): Promise<Lookup<string[]>>
}

/** A container's state as the kubelet last reported it (status.initContainerStatuses, …). */
export interface ContainerState {
  name: string
  /** The spec list it belongs to. */
  list: 'initContainers' | 'containers' | 'ephemeralContainers'
  waitingReason: string | undefined
  waitingMessage: string | undefined
}

/** What `pullguard diagnose` needs of a Pod. */
export interface PodObject {
  name: string
  namespace: string
  uid: string
  nodeName: string | undefined
  labels: Record<string, string>
  /** The controller ownerReference (ReplicaSet, Job, StatefulSet, …); undefined for a bare pod. */
  controller: { kind: string; name: string } | undefined
  /** The spec with the API's JSON field names, for readPodSpec. */
  spec: unknown
  containers: ContainerState[]
}

/** One kubelet (or scheduler) event about a pod; `count` folds the repeats the API deduplicates. */
export interface PodEvent {
  type: string
  reason: string
  message: string
  /** `spec.containers{api}`; undefined for events about the whole pod. */
  fieldPath: string | undefined
  count: number
  /** When it last happened (ISO 8601), if the API said. */
  lastSeen: string | undefined
}

export interface PodSource {
  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<PodObject>>
  /**
   * The pods of a namespace (undefined: of every namespace), read in pages; only those `keep`
   * accepts are held, so a large cluster costs one page of memory.
   */
  listPods(
    namespace: string | undefined,
    keep: (pod: PodObject) => boolean,
    signal?: AbortSignal,
  ): Promise<Lookup<PodObject[]>>
  /** Events whose involvedObject is this pod (by name, and by uid when the event has one). */
  listPodEvents(namespace: string, name: string, uid: string, signal?: AbortSignal): Promise<Lookup<PodEvent[]>>
  /** One node's platform (status.nodeInfo); `missing` when the node is gone. */
  getNodePlatform(name: string, signal?: AbortSignal): Promise<Lookup<{ os: string; architecture: string }>>
}

/** kubectl's last-applied copy of the whole object is often the largest thing in it, and nobody's input. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'

/** An object's string annotations, without the last-applied copy. */
export function annotationsOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (typeof raw !== 'object' || raw === null) return out
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string' && k !== LAST_APPLIED) out[k] = v
  return out
}
