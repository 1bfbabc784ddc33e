/**
 * Which registry checker a pass asks through: `serve`'s shares the webhook's result cache, the
 * CLI's asks the registry directly.
 */
import type { CachedChecker, ImageChecker } from '../registry/cached-checker.js'
import type { RegistryClient } from '../registry/client.js'

/**
 * The audit asks the registry afresh each time (it is there to see what changed since a review
 * filled the cache) and leaves its answer in the shared cache for the reviews after it.
 */
export function auditChecker(checker: CachedChecker): ImageChecker {
  return {
    check: (ref, credentials, namespace, signal) => checker.fresh(ref, credentials, namespace, signal),
    tags: (ref, credentials, namespace, signal) => checker.tags(ref, credentials, namespace, signal),
    catalog: (ref, credentials, namespace, signal) => checker.catalog(ref, credentials, namespace, signal),
    sigstoreAttachments: (ref, credentials, namespace, found, signal) =>
      checker.sigstoreAttachments(ref, credentials, namespace, found, signal),
    indexInstances: (ref, credentials, namespace, found, signal) =>
      checker.indexInstances(ref, credentials, namespace, found, signal),
  }
}

/**
 * `pullguard audit`'s: the registry asked directly. Nothing after the run reads a result cache, and
 * the pass's answers already ask each question once, so a cache would only hold the whole
 * cluster's answers in memory.
 */
export function directChecker(client: RegistryClient): ImageChecker {
  return {
    check: (ref, credentials, _namespace, signal) => client.checkManifest(ref, credentials, { signal }),
    tags: (ref, credentials, _namespace, signal) =>
      client.listTags(ref, credentials, { signal }).catch(() => undefined),
    catalog: (ref, credentials, _namespace, signal) =>
      client.listCatalog(ref, credentials, signal === undefined ? {} : { signal }),
    sigstoreAttachments: (ref, credentials, _namespace, found, signal) =>
      client.sigstoreAttachments(ref, credentials, found, { signal }),
    indexInstances: (ref, credentials, _namespace, found, signal) =>
      client.indexInstances(ref, credentials, found, { signal }),
  }
}
