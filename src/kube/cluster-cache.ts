/**
 * The webhook's view of the cluster, kept locally so a review makes no API request once warm:
 * pull secrets of the two docker types, service accounts and namespaces, each by list + watch
 * (reflector.ts). A change or a delete reaches the copy within a watch event; a deleted secret's
 * data is dropped with it.
 *
 * Answers not in a copy go to the API (KubeApi), as before caching:
 * - before the first list completes, or when listing is not allowed (RBAC without list/watch);
 * - a name the copy does not have: it may be a secret of another type (the kubelet ignores it, and
 *   we say why), one created a moment ago and not yet seen by the watch, or a missing one. Those
 *   answers (`missing`, other types: never data) are remembered briefly so a pod listing a missing
 *   secret does not cost a GET per review; a docker secret created meanwhile is found in the copy first.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type { KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { TtlCache } from '../cache/ttl-cache.js'
import { ApiTrouble } from './api-trouble.js'
import { listPage } from './list-page.js'
import { objectKey, Reflector, REFLECTOR_PAGE_SIZE } from './reflector.js'
import type {
  Lookup,
  NamespaceObject,
  NamespaceSource,
  SecretObject,
  SecretSource,
  ServiceAccountObject,
  ServiceAccountSource,
} from './sources.js'
import { annotationsOf } from './sources.js'

/** The two secret types the kubelet reads pull credentials from, and their data key. */
const PULL_SECRET_KEYS: Readonly<Record<string, string>> = {
  'kubernetes.io/dockerconfigjson': '.dockerconfigjson',
  'kubernetes.io/dockercfg': '.dockercfg',
}
const NOT_COPIED_TTL_MS = 30_000
const MAX_NOT_COPIED = 10_000

export interface ClusterCacheStats {
  pullSecrets: number
  serviceAccounts: number
  namespaces: number
  synced: boolean
}

export class ClusterCache implements SecretSource, ServiceAccountSource, NamespaceSource {
  readonly #api: SecretSource & ServiceAccountSource & NamespaceSource
  readonly #secrets: Array<Reflector<SecretObject>>
  readonly #accounts: Reflector<ServiceAccountObject>
  readonly #namespaces: Reflector<NamespaceObject>
  /** Secret answers from the API for names the copy lacks: `missing`, or another type without its data. */
  readonly #notCopied = new TtlCache<string, Lookup<SecretObject>>({ maxEntries: MAX_NOT_COPIED })
  readonly #namespaceListeners: Array<(name: string) => void> = []
  /** Per namespace, the counter value at its last change (see revision). */
  readonly #revisions = new Map<string, number>()
  #changes = 0

  constructor(kubeConfig: KubeConfig, api: SecretSource & ServiceAccountSource & NamespaceSource, logger: Logger) {
    this.#api = api
    const trouble = new ApiTrouble(kubeConfig, logger)
    const request = (
      token: string | undefined,
      fieldSelector?: string,
    ): Record<string, string | number | undefined> => ({ limit: REFLECTOR_PAGE_SIZE, continue: token, fieldSelector })
    this.#secrets = Object.keys(PULL_SECRET_KEYS).map((type) => {
      const fieldSelector = `type=${type}`
      return new Reflector<SecretObject>(kubeConfig, {
        name: `secrets (${type})`,
        path: '/api/v1/secrets',
        fieldSelector,
        list: (token, signal) => listPage(kubeConfig, '/api/v1/secrets', request(token, fieldSelector), signal),
        convert: (o) => pullSecret(o, type),
        onChange: (key) => this.#changed(key.slice(0, key.indexOf('/'))),
        logger,
        trouble,
        resource: 'secrets',
      })
    })
    this.#accounts = new Reflector<ServiceAccountObject>(kubeConfig, {
      name: 'serviceaccounts',
      path: '/api/v1/serviceaccounts',
      list: (token, signal) => listPage(kubeConfig, '/api/v1/serviceaccounts', request(token), signal),
      convert: serviceAccount,
      onChange: (key) => this.#changed(key.slice(0, key.indexOf('/'))),
      logger,
      trouble,
      resource: 'serviceaccounts',
    })
    this.#namespaces = new Reflector<NamespaceObject>(kubeConfig, {
      name: 'namespaces',
      path: '/api/v1/namespaces',
      list: (token, signal) => listPage(kubeConfig, '/api/v1/namespaces', request(token), signal),
      convert: namespace,
      onChange: (name) => {
        this.#changed(name)
        for (const listener of this.#namespaceListeners) listener(name)
      },
      logger,
      trouble,
      resource: 'namespaces',
    })
  }

  /** Called with a namespace's name whenever the watch sees it change (labels: the mode). */
  onNamespaceChange(listener: (name: string) => void): void {
    this.#namespaceListeners.push(listener)
  }

  /**
   * A number that changes whenever a pull secret, a service account or the object of this
   * namespace changes in the copies; undefined while any copy is not listed yet (answers may come
   * from the API then, and nothing tells us when they change). Lets a caller keep what it derived
   * from this namespace's objects for as long as the number stays the same.
   */
  revision(namespace: string): number | undefined {
    if (!this.#secrets.every((r) => r.synced) || !this.#accounts.synced || !this.#namespaces.synced) return undefined
    return this.#revisions.get(namespace) ?? 0
  }

  #changed(namespace: string): void {
    this.#revisions.set(namespace, ++this.#changes)
  }

  start(): void {
    for (const r of this.#all()) r.start()
  }

  /** Resolves when every copy is listed, or at the timeout; true when all are. */
  async waitForSync(timeoutMs: number): Promise<boolean> {
    const done = await Promise.all(this.#all().map((r) => r.waitForSync(timeoutMs)))
    return done.every(Boolean)
  }

  stop(): void {
    for (const r of this.#all()) r.stop()
    this.#notCopied.clear()
  }

  stats(): ClusterCacheStats {
    return {
      pullSecrets: this.#secrets.reduce((n, r) => n + r.size, 0),
      serviceAccounts: this.#accounts.size,
      namespaces: this.#namespaces.size,
      synced: this.#all().every((r) => r.synced),
    }
  }

  async getSecret(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<SecretObject>> {
    const key = `${namespace}/${name}`
    const copied = this.#secrets.every((r) => r.synced)
    if (copied) {
      for (const r of this.#secrets) {
        const hit = r.get(key)
        if (hit !== undefined) return { kind: 'found', object: hit }
      }
      const remembered = this.#notCopied.get(key)
      if (remembered !== undefined) return remembered
    }
    const answer = await this.#api.getSecret(namespace, name, signal)
    if (copied) {
      // Only answers that say "nothing for the kubelet here"; a docker secret goes to the copy by its watch.
      if (answer.kind === 'missing') this.#notCopied.set(key, answer, Date.now() + NOT_COPIED_TTL_MS)
      if (answer.kind === 'found' && !Object.hasOwn(PULL_SECRET_KEYS, answer.object.type)) {
        this.#notCopied.set(
          key,
          { kind: 'found', object: { ...answer.object, data: {} } },
          Date.now() + NOT_COPIED_TTL_MS,
        )
      }
    }
    return answer
  }

  async getServiceAccount(
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<Lookup<ServiceAccountObject>> {
    const hit = this.#accounts.synced ? this.#accounts.get(`${namespace}/${name}`) : undefined
    return hit !== undefined ? { kind: 'found', object: hit } : this.#api.getServiceAccount(namespace, name, signal)
  }

  async getNamespace(name: string, signal?: AbortSignal): Promise<Lookup<NamespaceObject>> {
    const hit = this.#namespaces.synced ? this.#namespaces.get(name) : undefined
    return hit !== undefined ? { kind: 'found', object: hit } : this.#api.getNamespace(name, signal)
  }

  #all(): Array<Reflector<unknown>> {
    return [...this.#secrets, this.#accounts, this.#namespaces] as Array<Reflector<unknown>>
  }
}

type Raw = {
  metadata?: { name?: unknown; namespace?: unknown; labels?: unknown; uid?: unknown; annotations?: unknown }
  type?: unknown
  data?: unknown
  imagePullSecrets?: unknown
}

function names(o: unknown): { raw: Raw; name: string; namespace: string } | undefined {
  if (typeof o !== 'object' || o === null) return undefined
  const raw = o as Raw
  const name = raw.metadata?.name
  const namespace = raw.metadata?.namespace
  return typeof name === 'string' && typeof namespace === 'string' ? { raw, name, namespace } : undefined
}

/** Only the one data key the kubelet reads; the type as the field selector promised it. */
function pullSecret(o: unknown, type: string): { key: string; value: SecretObject } | undefined {
  const n = names(o)
  if (n === undefined || (n.raw.type !== undefined && n.raw.type !== type)) return undefined
  const dataKey = PULL_SECRET_KEYS[type]!
  const data = n.raw.data
  const value = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[dataKey] : undefined
  return {
    key: objectKey(n.namespace, n.name),
    value: Object.freeze({
      name: n.name,
      namespace: n.namespace,
      type,
      data: typeof value === 'string' ? sharedData(dataKey, value) : NO_DATA,
    }),
  }
}

const NO_DATA: Readonly<Record<string, string>> = Object.freeze({})
/**
 * One data object per distinct document: secret-copying tools put the same pull secret into
 * thousands of namespaces, and each copy would otherwise hold its own base64 text (a few KB for a
 * cloud key). Held weakly, so a document leaves memory with its last secret; pull-secrets.ts parses
 * each data object once. Found by an HMAC of the text under a key of this process: the table never
 * holds the text itself, so nothing of a deleted secret waits in it for the finalizer.
 */
const documents = new Map<string, WeakRef<Readonly<Record<string, string>>>>()
const forgotten = new FinalizationRegistry<string>((id) => {
  if (documents.get(id)?.deref() === undefined) documents.delete(id)
})
const DOCUMENT_KEY = randomBytes(32)

function sharedData(dataKey: string, value: string): Readonly<Record<string, string>> {
  const id = createHmac('sha256', DOCUMENT_KEY).update(dataKey).update('\0').update(value).digest('base64')
  const known = documents.get(id)?.deref()
  if (known !== undefined && known[dataKey] === value) return known
  const data = Object.freeze({ [dataKey]: value })
  documents.set(id, new WeakRef(data))
  forgotten.register(data, id)
  return data
}

function serviceAccount(o: unknown): { key: string; value: ServiceAccountObject } | undefined {
  const n = names(o)
  if (n === undefined) return undefined
  const refs = Array.isArray(n.raw.imagePullSecrets) ? n.raw.imagePullSecrets : []
  // As KubeApi: the kubelet skips references without a name.
  const imagePullSecrets = refs
    .map((r: unknown) =>
      typeof r === 'object' && r !== null && typeof (r as { name?: unknown }).name === 'string'
        ? (r as { name: string }).name
        : '',
    )
    .filter((s) => s !== '')
  return {
    key: objectKey(n.namespace, n.name),
    value: {
      name: n.name,
      namespace: n.namespace,
      imagePullSecrets: imagePullSecrets.slice(),
      uid: typeof n.raw.metadata?.uid === 'string' ? n.raw.metadata.uid : '',
      annotations: annotationsOf(n.raw.metadata?.annotations),
    },
  }
}

function namespace(o: unknown): { key: string; value: NamespaceObject } | undefined {
  if (typeof o !== 'object' || o === null) return undefined
  const m = (o as Raw).metadata
  if (typeof m?.name !== 'string') return undefined
  const labels: Record<string, string> = {}
  if (typeof m.labels === 'object' && m.labels !== null)
    for (const [k, v] of Object.entries(m.labels)) if (typeof v === 'string') labels[k] = v
  return { key: m.name, value: { name: m.name, labels } }
}
