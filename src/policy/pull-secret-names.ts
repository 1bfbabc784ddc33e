/**
 * Which imagePullSecrets the kubelet will use for the pods of a subject. A Pod already has its
 * final list: the ServiceAccount admission plugin copied the service account's secrets into it
 * when it listed none. A template (Deployment, Job, …) has not been through that yet: when it
 * lists none, its pods will get the service account's (registry-semantics §4).
 */
import type { ServiceAccountSource } from '../kube/sources.js'
import type { PodSubject } from './subject.js'

export interface PullSecretNames {
  names: string[]
  /** Where they came from, for the decision log. */
  source: 'pod' | 'service-account' | 'none'
  /** Something a person should know (service account missing or unreadable). */
  warning?: string
  /** The service account could not be read: the pods may get secrets we cannot see. */
  incomplete: boolean
  /** The service account's own list, when it was read (a template listing none). */
  account?: { name: string; imagePullSecrets: string[] }
}

export async function pullSecretNames(
  subject: PodSubject,
  accounts: ServiceAccountSource,
  signal?: AbortSignal,
): Promise<PullSecretNames> {
  if (subject.pullSecrets.length > 0) return { names: subject.pullSecrets, source: 'pod', incomplete: false }
  if (!subject.template) return { names: [], source: 'none', incomplete: false }
  const name = subject.serviceAccountName ?? 'default'
  const found = await accounts.getServiceAccount(subject.namespace, name, signal)
  switch (found.kind) {
    case 'found':
      return {
        names: found.object.imagePullSecrets,
        source: 'service-account',
        incomplete: false,
        account: { name, imagePullSecrets: found.object.imagePullSecrets },
      }
    case 'missing':
      return {
        names: [],
        source: 'none',
        incomplete: false,
        warning: `service account "${name}" does not exist in ${subject.namespace}; pods cannot be created until it does`,
      }
    default:
      return {
        names: [],
        source: 'none',
        incomplete: true,
        warning: `service account "${name}" could not be read (${found.detail}); its pull secrets were not tried`,
      }
  }
}
