/**
 * The cluster as `pullguard check` sees it without --from-cluster: nothing is read. A pull
 * secret is "could not be read", not "missing": the kubelet may well have it, so an image its
 * credentials might unlock is reported unknown rather than refused. A service account is taken to
 * add no pull secrets (the default one adds none), and namespaces carry no mode label.
 */
import type {
  Lookup,
  NamespaceObject,
  NamespaceSource,
  NodeSource,
  SecretObject,
  SecretSource,
  ServiceAccountObject,
  ServiceAccountSource,
} from '../kube/sources.js'

export const OFFLINE_SECRET_DETAIL = 'not read without --from-cluster'

export class OfflineCluster implements SecretSource, ServiceAccountSource, NamespaceSource, NodeSource {
  async getSecret(): Promise<Lookup<SecretObject>> {
    return { kind: 'error', detail: OFFLINE_SECRET_DETAIL }
  }

  async getServiceAccount(namespace: string, name: string): Promise<Lookup<ServiceAccountObject>> {
    return { kind: 'found', object: { name, namespace, imagePullSecrets: [], uid: '', annotations: {} } }
  }

  async getNamespace(): Promise<Lookup<NamespaceObject>> {
    return { kind: 'missing' }
  }

  async listNodePlatforms(): Promise<Lookup<Array<{ os: string; architecture: string }>>> {
    return { kind: 'found', object: [] }
  }
}
