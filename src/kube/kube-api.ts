/**
 * The Kubernetes API behind the small interfaces in sources.ts, through @kubernetes/client-node 1.x.
 *
 * 1. Each read gets its own AbortController, aborted by the caller's signal or by our per-request
 *    timeout, whichever comes first.
 * 2. client-node 1.x lets a call carry ConfigurationOptions; a per-call middleware puts our signal on
 *    the RequestContext (`setSignal`), and its default IsomorphicFetchHttpLibrary hands that signal to
 *    node-fetch, which destroys the socket on abort. So a hung API server costs us nothing after the
 *    timeout.
 * 3. The middleware only runs after client-node has applied authentication (token files, exec
 *    plugins, OIDC refresh), which takes no signal; we also race the whole call against the same
 *    signal, so a stuck auth step cannot hang the caller either.
 * 4. Every outcome becomes a Lookup value. Details are built from status codes, Status messages and
 *    error codes only: never from raw bodies or error messages, which can quote the response (a
 *    JSON.parse error shows the start of the body, i.e. secret data) or the exec plugin's output.
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type CoreV1Event,
  type CoreV1EventList,
  type V1ContainerStatus,
  type V1Namespace,
  type V1Node,
  type V1NodeList,
  type V1Pod,
  type V1PodList,
  type V1Secret,
  type V1ServiceAccount,
} from '@kubernetes/client-node'
import { createHash } from 'node:crypto'
import { Agent as HttpsAgent } from 'node:https'
import type {
  ContainerState,
  Lookup,
  NamespaceObject,
  NamespaceSource,
  NodeListSource,
  NodeObject,
  NodeSource,
  PodEvent,
  PodObject,
  PodSource,
  SecretObject,
  SecretSource,
  ServiceAccountObject,
  ServiceAccountSource,
  ServiceAccountTokenSource,
} from './sources.js'
import { annotationsOf } from './sources.js'

// One API read must leave most of the review budget (default 8s, inside the webhook's
// timeoutSeconds) for the registry checks that depend on it; a healthy API server answers a GET
// in milliseconds, so 3s only ever cuts off a server that is not going to answer.
const DEFAULT_REQUEST_TIMEOUT_MS = 3000
// Status messages end up in admission warnings, which kubectl shows on one line.
const MAX_DETAIL_CHARS = 300
// Node objects are large (status.images alone can be tens of KiB each): read them in pages so one
// answer stays a few MiB, each page within the per-request timeout. 100 pages of 500 is ten times
// the largest cluster Kubernetes supports; past that we say "unknown" rather than give a partial
// list, which could lack the one platform a pod would land on.
const NODE_PAGE_SIZE = 500
const MAX_NODE_PAGES = 100
// Pods for `diagnose namespace`: pages of 500 (a page is a few MiB at most), kept only when failing.
const POD_PAGE_SIZE = 500
const MAX_POD_PAGES = 1000

export interface KubeApiOptions {
  requestTimeoutMs?: number
}

/** `path` given: that file only; otherwise KUBECONFIG, ~/.kube/config, then in-cluster config. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig()
  if (path === undefined) kc.loadFromDefault()
  else kc.loadFromFile(path)
  return kc
}

type NodePlatform = { os: string; architecture: string }

export class KubeApi
  implements
    SecretSource,
    ServiceAccountSource,
    ServiceAccountTokenSource,
    NamespaceSource,
    NodeSource,
    NodeListSource,
    PodSource
{
  readonly #core: CoreV1Api
  readonly #timeoutMs: number

  constructor(kubeConfig: KubeConfig, options: KubeApiOptions = {}) {
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RangeError(`requestTimeoutMs must be a positive number, got ${timeoutMs}`)
    }
    this.#timeoutMs = timeoutMs
    this.#core = kubeConfig.makeApiClient(CoreV1Api)
  }

  getSecret(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<SecretObject>> {
    if (!validNames(namespace, name)) return Promise.resolve({ kind: 'missing' })
    return this.#read(
      signal,
      (o) => this.#core.readNamespacedSecret({ name, namespace }, o),
      (s: V1Secret) => {
        if (!isKind(s, 'Secret') || !isNamed(s, namespace, name)) return undefined
        const data = s.data === undefined ? {} : stringMap(s.data)
        if (data === undefined) return undefined
        // The API omits `type` for secrets created without one; the apiserver defaults it to Opaque.
        return { name, namespace, type: s.type === undefined || s.type === '' ? 'Opaque' : s.type, data }
      },
    )
  }

  getServiceAccount(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<ServiceAccountObject>> {
    if (!validNames(namespace, name)) return Promise.resolve({ kind: 'missing' })
    return this.#read(
      signal,
      (o) => this.#core.readNamespacedServiceAccount({ name, namespace }, o),
      (sa: V1ServiceAccount) => {
        if (!isKind(sa, 'ServiceAccount') || !isNamed(sa, namespace, name)) return undefined
        const refs: unknown = sa.imagePullSecrets ?? []
        if (!Array.isArray(refs)) return undefined
        // The kubelet skips references without a name (pkg/kubelet/kubelet_pods.go getPullSecretsForPod).
        const imagePullSecrets = refs
          .map((r: unknown) => (isRecord(r) && typeof r['name'] === 'string' ? r['name'] : ''))
          .filter((n) => n !== '')
        return {
          name,
          namespace,
          imagePullSecrets,
          uid: typeof sa.metadata?.uid === 'string' ? sa.metadata.uid : '',
          annotations: annotationsOf(sa.metadata?.annotations),
        }
      },
    )
  }

  /** TokenRequest with the account's uid as precondition, as the kubelet sends it for plugins; never bound to a pod (at admission there is none yet). */
  createServiceAccountToken(
    namespace: string,
    name: string,
    request: { audience: string; uid: string },
    signal?: AbortSignal,
  ): Promise<Lookup<{ token: string; expiresAt: number }>> {
    if (!validNames(namespace, name)) return Promise.resolve({ kind: 'missing' })
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: request.uid === '' ? {} : { uid: request.uid },
      spec: { audiences: [request.audience] },
    }
    return this.#read(
      signal,
      (o) => this.#core.createNamespacedServiceAccountToken({ name, namespace, body }, o),
      (tr) => {
        const token = tr.status?.token
        const expiry = tr.status?.expirationTimestamp
        if (typeof token !== 'string' || token === '') return undefined
        const expiresAt =
          expiry instanceof Date ? expiry.getTime() : typeof expiry === 'string' ? Date.parse(expiry) : NaN
        return { token, expiresAt: Number.isFinite(expiresAt) ? expiresAt : Date.now() + 10 * 60_000 }
      },
    )
  }

  getNamespace(name: string, signal?: AbortSignal): Promise<Lookup<NamespaceObject>> {
    if (!validNames(name, name)) return Promise.resolve({ kind: 'missing' })
    return this.#read(
      signal,
      (o) => this.#core.readNamespace({ name }, o),
      (ns: V1Namespace) => {
        if (!isKind(ns, 'Namespace') || !isNamed(ns, undefined, name)) return undefined
        const labels = ns.metadata?.labels === undefined ? {} : stringMap(ns.metadata.labels)
        return labels === undefined ? undefined : { name, labels }
      },
    )
  }

  async listNodePlatforms(signal?: AbortSignal): Promise<Lookup<NodePlatform[]>> {
    const seen = new Map<string, NodePlatform>()
    let next: string | undefined
    for (let page = 0; page < MAX_NODE_PAGES; page++) {
      const request = { limit: NODE_PAGE_SIZE, ...(next === undefined ? {} : { _continue: next }) }
      const r = await this.#read(signal, (o) => this.#core.listNode(request, o), nodePage)
      if (r.kind !== 'found') return r
      for (const p of r.object.platforms) seen.set(`${p.os}/${p.architecture}`, p)
      next = r.object.next
      if (next === undefined) return { kind: 'found', object: [...seen.values()] }
    }
    return {
      kind: 'error',
      detail: `the cluster has more than ${NODE_PAGE_SIZE * MAX_NODE_PAGES} nodes; set the platforms with --platform`,
    }
  }

  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<PodObject>> {
    if (!validNames(namespace, name)) return Promise.resolve({ kind: 'missing' })
    return this.#read(
      signal,
      (o) => this.#core.readNamespacedPod({ name, namespace }, o),
      (p: V1Pod) => {
        if (!isKind(p, 'Pod') || !isNamed(p, namespace, name)) return undefined
        return toPod(p)
      },
    )
  }

  async listPods(
    namespace: string | undefined,
    keep: (pod: PodObject) => boolean,
    signal?: AbortSignal,
  ): Promise<Lookup<PodObject[]>> {
    if (namespace !== undefined && !validNames(namespace, namespace)) return { kind: 'missing' }
    const kept: PodObject[] = []
    let next: string | undefined
    for (let page = 0; page < MAX_POD_PAGES; page++) {
      const request = { limit: POD_PAGE_SIZE, ...(next === undefined ? {} : { _continue: next }) }
      const r = await this.#read(
        signal,
        (o) =>
          namespace === undefined
            ? this.#core.listPodForAllNamespaces(request, o)
            : this.#core.listNamespacedPod({ namespace, ...request }, o),
        (list: V1PodList) => {
          if (!isKind(list, 'PodList') || !Array.isArray(list.items)) return undefined
          const pods = list.items.map(toPod)
          if (pods.some((p) => p === undefined || (namespace !== undefined && p.namespace !== namespace)))
            return undefined
          const more = list.metadata?._continue
          return { pods: pods as PodObject[], next: more === undefined || more === '' ? undefined : more }
        },
      )
      if (r.kind !== 'found') return r
      kept.push(...r.object.pods.filter(keep))
      next = r.object.next
      if (next === undefined) return { kind: 'found', object: kept }
    }
    return {
      kind: 'error',
      detail: `more than ${POD_PAGE_SIZE * MAX_POD_PAGES} pods; diagnose one namespace at a time`,
    }
  }

  listPodEvents(namespace: string, name: string, uid: string, signal?: AbortSignal): Promise<Lookup<PodEvent[]>> {
    if (!validNames(namespace, name)) return Promise.resolve({ kind: 'found', object: [] })
    const fieldSelector = `involvedObject.kind=Pod,involvedObject.name=${name}`
    return this.#read(
      signal,
      (o) => this.#core.listNamespacedEvent({ namespace, fieldSelector }, o),
      (list: CoreV1EventList) => {
        if (!isKind(list, 'EventList') || !Array.isArray(list.items)) return undefined
        // A pod re-created under the same name (StatefulSet) leaves events of the old one behind.
        return list.items
          .filter(
            (e) =>
              e.involvedObject?.name === name &&
              (e.involvedObject.uid === undefined || e.involvedObject.uid === '' || e.involvedObject.uid === uid),
          )
          .map(toEvent)
      },
    )
  }

  async listNodes(signal?: AbortSignal): Promise<Lookup<NodeObject[]>> {
    const nodes: NodeObject[] = []
    let next: string | undefined
    for (let page = 0; page < MAX_NODE_PAGES; page++) {
      const request = { limit: NODE_PAGE_SIZE, ...(next === undefined ? {} : { _continue: next }) }
      const r = await this.#read(signal, (o) => this.#core.listNode(request, o), nodeObjectPage)
      if (r.kind !== 'found') return r
      nodes.push(...r.object.nodes)
      next = r.object.next
      if (next === undefined) return { kind: 'found', object: nodes }
    }
    return { kind: 'error', detail: `the cluster has more than ${NODE_PAGE_SIZE * MAX_NODE_PAGES} nodes` }
  }

  getNodeImages(name: string, signal?: AbortSignal): Promise<Lookup<string[]>> {
    return this.#readNode(name, signal, (node) =>
      (node.status?.images ?? []).flatMap((i) => (Array.isArray(i.names) ? i.names : [])),
    )
  }

  getNodePlatform(name: string, signal?: AbortSignal): Promise<Lookup<NodePlatform>> {
    return this.#readNode(name, signal, (node) => {
      const info = node.status?.nodeInfo
      return info === undefined || info.operatingSystem === '' || info.architecture === ''
        ? undefined
        : { os: info.operatingSystem, architecture: info.architecture }
    })
  }

  /** One Node, what `convert` makes of it; a name no Node can have is missing without a request. */
  #readNode<T>(
    name: string,
    signal: AbortSignal | undefined,
    convert: (node: V1Node) => T | undefined,
  ): Promise<Lookup<T>> {
    if (name.length > 253 || !SUBDOMAIN.test(name)) return Promise.resolve({ kind: 'missing' })
    return this.#read(
      signal,
      (o) => this.#core.readNode({ name }, o),
      (node: V1Node) => (!isKind(node, 'Node') || !isNamed(node, undefined, name) ? undefined : convert(node)),
    )
  }

  async #read<R, T>(
    callerSignal: AbortSignal | undefined,
    call: (options: ConfigurationOptions) => Promise<R>,
    convert: (raw: R) => T | undefined,
  ): Promise<Lookup<T>> {
    if (callerSignal?.aborted === true) return { kind: 'error', detail: 'aborted before the request was sent' }
    const controller = new AbortController()
    let callerAborted = false
    const onCallerAbort = (): void => {
      callerAborted = true
      controller.abort()
    }
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true })
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs)
    try {
      const raw = await untilAborted(call(perCall(controller.signal)), controller.signal)
      const object = isRecord(raw) ? convert(raw) : undefined
      return object === undefined
        ? { kind: 'error', detail: 'the API answer is not the requested object' }
        : { kind: 'found', object }
    } catch (err) {
      if (err instanceof ApiException) return fromStatus(err.code, err.body)
      if (controller.signal.aborted) {
        return callerAborted
          ? { kind: 'error', detail: 'aborted by the caller before the API answered' }
          : { kind: 'error', detail: `no answer from the Kubernetes API within ${this.#timeoutMs} ms` }
      }
      return { kind: 'error', detail: describeFailure(err) }
    } finally {
      clearTimeout(timer)
      callerSignal?.removeEventListener('abort', onCallerAbort)
    }
  }
}

/**
 * One page of nodes. A node that has not yet posted its status has no nodeInfo: it is skipped (it
 * runs no pods until it does, and the next refresh sees it).
 */
function nodePage(list: V1NodeList): { platforms: NodePlatform[]; next: string | undefined } | undefined {
  if (!isKind(list, 'NodeList')) return undefined
  const items: unknown = list.items
  if (!Array.isArray(items)) return undefined
  const platforms: NodePlatform[] = []
  for (const node of items) {
    const info: unknown = isRecord(node) && isRecord(node['status']) ? node['status']['nodeInfo'] : undefined
    if (!isRecord(info)) continue
    const { operatingSystem: os, architecture } = info
    if (typeof os === 'string' && os !== '' && typeof architecture === 'string' && architecture !== '')
      platforms.push({ os, architecture })
  }
  const next = list.metadata?._continue
  return { platforms, next: next === undefined || next === '' ? undefined : next }
}

function nodeObjectPage(list: V1NodeList): { nodes: NodeObject[]; next: string | undefined } | undefined {
  if (!isKind(list, 'NodeList') || !Array.isArray(list.items)) return undefined
  const nodes: NodeObject[] = []
  for (const node of list.items) {
    const name = node.metadata?.name
    if (typeof name !== 'string' || name === '') continue
    const info = node.status?.nodeInfo
    const taints: NodeObject['taints'] = []
    for (const t of node.spec?.taints ?? []) {
      const effect = t.effect
      if (
        typeof t.key !== 'string' ||
        (effect !== 'NoSchedule' && effect !== 'PreferNoSchedule' && effect !== 'NoExecute')
      )
        continue
      taints.push({ key: t.key, ...(typeof t.value === 'string' ? { value: t.value } : {}), effect })
    }
    nodes.push({
      name,
      labels: stringMap(node.metadata?.labels ?? {}) ?? {},
      taints,
      os: info?.operatingSystem ?? '',
      architecture: info?.architecture ?? '',
      runtime: info?.containerRuntimeVersion ?? '',
    })
  }
  const next = list.metadata?._continue
  return { nodes, next: next === undefined || next === '' ? undefined : next }
}

const STATUS_LISTS = [
  ['initContainerStatuses', 'initContainers'],
  ['containerStatuses', 'containers'],
  ['ephemeralContainerStatuses', 'ephemeralContainers'],
] as const

/**
 * client-node's model keeps the API's JSON field names for everything in a PodSpec (only ListMeta's
 * `continue` is renamed), so the spec goes to readPodSpec as it is.
 */
function toPod(p: V1Pod): PodObject | undefined {
  const m = p.metadata
  if (m?.name === undefined || m.namespace === undefined) return undefined
  const containers: ContainerState[] = []
  for (const [field, list] of STATUS_LISTS) {
    const statuses: V1ContainerStatus[] = p.status?.[field] ?? []
    for (const s of statuses) {
      if (typeof s.name !== 'string') continue
      containers.push({
        name: s.name,
        list,
        waitingReason: s.state?.waiting?.reason,
        waitingMessage: s.state?.waiting?.message,
      })
    }
  }
  const owner = m.ownerReferences?.find((r) => r.controller === true)
  return {
    name: m.name,
    namespace: m.namespace,
    uid: m.uid ?? '',
    nodeName: p.spec?.nodeName === '' ? undefined : p.spec?.nodeName,
    labels: m.labels ?? {},
    controller: owner === undefined ? undefined : { kind: owner.kind, name: owner.name },
    spec: p.spec,
    containers,
  }
}

function toEvent(e: CoreV1Event): PodEvent {
  // client-node turns Time fields into Dates but leaves MicroTime ones (eventTime, series) as strings.
  const last = [e.series?.lastObservedTime, e.lastTimestamp, e.eventTime, e.metadata?.creationTimestamp]
    .map((v: unknown) => (v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined))
    .find((d) => d !== undefined && !Number.isNaN(d.getTime()))
  return {
    type: e.type ?? '',
    reason: e.reason ?? '',
    message: e.message ?? '',
    fieldPath: e.involvedObject?.fieldPath === '' ? undefined : e.involvedObject?.fieldPath,
    count: e.series?.count ?? e.count ?? 1,
    lastSeen: last?.toISOString().replace('.000Z', 'Z'),
  }
}

/**
 * Per-call middleware: the RequestContext is only reachable here, after auth has been applied.
 * It carries our signal, and a shared keep-alive agent in place of the one client-node 1.x makes
 * for every request (KubeConfig.applySecurityAuthentication: a new https.Agent, so a new TCP and
 * TLS handshake and a new SecureContext per read; measured, most of `pullguard audit -A`'s CPU).
 */
export function perCall(signal: AbortSignal): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal)
      // Proxy agents (also http.Agents underneath) are left as client-node made them.
      const agent = ctx.getAgent()
      if (agent instanceof HttpsAgent && agent.constructor === HttpsAgent) ctx.setAgent(sharedAgent(agent))
      return new Observable(Promise.resolve(ctx))
    },
    post: (res) => new Observable(Promise.resolve(res)),
  }
  // 'append' keeps any middleware the KubeConfig's configuration already carries.
  return { middleware: [middleware], middlewareMergeStrategy: 'append' }
}

/** Agents by their TLS options; a handful at most (a client certificate an exec plugin rotates makes a new one). */
const agents = new Map<string, HttpsAgent>()
const MAX_AGENTS = 4

/** One keep-alive agent per set of TLS options. Keyed by a digest: the options hold client keys. */
function sharedAgent(agent: HttpsAgent): HttpsAgent {
  const o = agent.options
  const key = createHash('sha256')
    .update(JSON.stringify([o.ca, o.cert, o.key, o.pfx, o.passphrase, o.servername, o.rejectUnauthorized]))
    .digest('base64')
  let shared = agents.get(key)
  if (shared === undefined) {
    if (agents.size >= MAX_AGENTS) {
      for (const old of agents.values()) old.destroy()
      agents.clear()
    }
    shared = new HttpsAgent({ ...o, keepAlive: true, scheduling: 'lifo' })
    agents.set(key, shared)
  }
  return shared
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** 404 is an answer about the object; 403 is about our RBAC; anything else is no answer. */
function fromStatus(code: number, body: unknown): Lookup<never> {
  if (code === 404) return { kind: 'missing' }
  const message = statusMessage(body)
  if (code === 403) return { kind: 'forbidden', detail: message ?? 'forbidden (HTTP 403)' }
  if (code === 401) return { kind: 'error', detail: 'the Kubernetes API rejected our credentials (HTTP 401)' }
  return {
    kind: 'error',
    detail: `the Kubernetes API answered HTTP ${code}${message === undefined ? '' : `: ${message}`}`,
  }
}

/**
 * Only the `message` of a real Status body: the apiserver writes it from names and RBAC facts and
 * never echoes request headers. Any other body is dropped rather than quoted.
 */
function statusMessage(body: unknown): string | undefined {
  let parsed: unknown = body
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body)
    } catch {
      return undefined
    }
  }
  if (!isRecord(parsed) || parsed['kind'] !== 'Status' || typeof parsed['message'] !== 'string') return undefined
  const message = parsed['message'].replace(/\s+/g, ' ').trim()
  return message.length > MAX_DETAIL_CHARS ? `${message.slice(0, MAX_DETAIL_CHARS)}…` : message
}

/** Network, TLS and parsing failures, named by their code (ECONNREFUSED, CERT_…), never their message. */
function describeFailure(err: unknown): string {
  if (err instanceof SyntaxError) return 'the API answer is not valid JSON'
  const e = isRecord(err) ? err : {}
  const code = typeof e['code'] === 'string' ? e['code'] : undefined
  const name = typeof e['name'] === 'string' ? e['name'] : 'unknown error'
  return code !== undefined
    ? `cannot reach the Kubernetes API (${code})`
    : `request to the Kubernetes API failed (${name})`
}

/**
 * Object names are DNS-1123 subdomains (namespaces: labels). A name from a pod spec that is not one
 * (`..`, `a/b`, `.`) names nothing: the kubelet cannot read such a secret either. Asking anyway
 * would hit another URL (`secrets/..` is the namespace itself) and turn "missing" into "error",
 * which a pod could use to make its denial look undetermined.
 */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
function validNames(namespace: string, name: string): boolean {
  return LABEL.test(namespace) && name.length <= 253 && SUBDOMAIN.test(name)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// A 200 carrying another kind (a Status, an HTML error page parsed into nothing) is not our object.
function isKind(o: { kind?: string }, kind: string): boolean {
  return o.kind === undefined || o.kind === kind
}

// Guards namespace isolation: a credential must come from the namespace and name we asked for.
function isNamed(
  o: { metadata?: { name?: string; namespace?: string } },
  namespace: string | undefined,
  name: string,
): boolean {
  return (
    o.metadata?.name === name &&
    (namespace === undefined || o.metadata.namespace === undefined || o.metadata.namespace === namespace)
  )
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined
  const entries = Object.entries(v)
  return entries.every(([, value]) => typeof value === 'string')
    ? Object.fromEntries(entries as Array<[string, string]>)
    : undefined
}
