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
