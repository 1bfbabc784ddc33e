// An in-process HTTPS stand-in for the Kubernetes API: the GET paths pullguard reads, answered with
// the exact shapes of test/fixtures/api (objects, lists, and 401/403/404 Status bodies), behind
// a real kubeconfig file (CA data + bearer token) so @kubernetes/client-node does its real work.
// It serves only what a test puts in its maps; `loadFixture` makes adding the fixture objects a line.
// Secrets, service accounts and namespaces can also be listed cluster-wide and watched
// (`?watch=true&resourceVersion=…`, with a `type=` field selector for secrets): changes made
// through put()/remove() are logged with a resourceVersion, replayed to watches that resume from an
// older one, and streamed as the API server does (one JSON event per line).
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadFixture } from './fixtures.js'
import { createTestCA, type TestCA } from './pki.js'

export { loadFixture }

export interface Fault {
  match: RegExp // tested against the path including the query
  status?: number // answer this status with a Status body (or `body`, when given)
  body?: string // raw body to send instead (e.g. broken JSON), with `status` (default 200)
  hang?: boolean // never answer; released by close()
  delayMs?: number // answer normally (or with the fault) after this long
}

export interface FakeKubeApi {
  origin: string
  kubeconfigPath: string
  /** Requests without `Authorization: Bearer <token>` get a 401 Status. Read per request, so tests may rotate it. */
  token: string
  requests: Array<{ method: string; path: string }>
  /** Objects served, keyed by namespace/name; tests add/replace/remove freely. */
  secrets: Map<string, unknown>
  serviceAccounts: Map<string, unknown>
  namespaces: Map<string, unknown> // key: name
  nodes: unknown[]
  pods: Map<string, unknown>
  events: Map<string, unknown[]> // key `${ns}/${podName}`
  /** Per-path fault injection. First match wins. */
  faults: Fault[]
  /** Adds or replaces an object (a Secret, ServiceAccount or Namespace) and tells the watches. */
  put(resource: Watched, object: unknown): void
  /** Deletes one (`namespace/name`, or the name of a namespace) and tells the watches. */
  remove(resource: Watched, key: string): void
  /** Watches open now. */
  readonly watches: number
  /** Cuts every open watch connection, as a restarting API server or a load balancer does. */
  dropWatches(): void
  /** Ends every watch with 410 Gone and forgets the log: a resume must list again. */
  expireWatches(): void
  /** TCP connections currently open / accepted so far: shows aborted requests really close their socket. */
  readonly openConnections: number
  readonly totalConnections: number
  close(): Promise<void>
}

/**
 * A Secret in the fixture shape. `kubernetes.io/dockercfg` stores the bare auths map under `.dockercfg`;
 * every other type stores `{"auths": …}` under `.dockerconfigjson`. Entries are written exactly as given
 * (no `auth` is derived), so tests control which fields exist.
 */
export function makeDockerConfigSecret(
  ns: string,
  name: string,
  auths: Record<string, { username?: string; password?: string; auth?: string }>,
  type = 'kubernetes.io/dockerconfigjson',
): unknown {
  const legacy = type === 'kubernetes.io/dockercfg'
  const json = JSON.stringify(legacy ? auths : { auths })
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace: ns,
      uid: randomUUID(),
      resourceVersion: '1042',
      creationTimestamp: '2026-11-20T09:00:00Z',
    },
    data: { [legacy ? '.dockercfg' : '.dockerconfigjson']: Buffer.from(json).toString('base64') },
    type,
  }
}

/** A Namespace in the fixture shape, labelled as the API server labels it (and with `labels`). */
export function makeNamespace(name: string, labels: Record<string, string> = {}): unknown {
  const ns = loadFixture<any>('api/namespace.json')
  ns.metadata.name = name
  ns.metadata.labels = { 'kubernetes.io/metadata.name': name, ...labels }
  return ns
}

export type Watched = 'secrets' | 'serviceaccounts' | 'namespaces'
const WATCHED: readonly string[] = ['secrets', 'serviceaccounts', 'namespaces']

interface Target {
  resource: string
  name?: string
  namespace?: string
  verb: 'get' | 'list'
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
}

/** The Status the apiserver sends, built from the 403/404 fixtures so the shape stays theirs. */
function status(code: number, target: Target | undefined): unknown {
  const base = loadFixture<Record<string, unknown>>(
    code === 403 ? 'api/status-403-secret.json' : 'api/status-404-secret.json',
  )
  const what = target?.name === undefined ? (target?.resource ?? 'resource') : `${target.resource} "${target.name}"`
  const scope = target?.namespace === undefined ? 'at the cluster scope' : `in the namespace "${target.namespace}"`
  const message =
    code === 404
      ? target === undefined
        ? 'the server could not find the requested resource'
        : `${what} not found`
      : code === 403
        ? `${what} is forbidden: User "system:serviceaccount:pullguard:pullguard" cannot ${target?.verb ?? 'get'} resource "${target?.resource ?? ''}" in API group "" ${scope}`
        : code === 401
          ? 'Unauthorized'
          : `injected fault: HTTP ${code}`
  const details =
    target === undefined || code === 401
      ? undefined
      : { ...(target.name === undefined ? {} : { name: target.name }), kind: target.resource }
  return { ...base, message, reason: REASONS[code] ?? 'Unknown', details, code }
}

function parsePath(pathname: string): Target | undefined {
  const p = pathname.split('/').slice(1).map(decodeURIComponent)
  if (p[0] !== 'api' || p[1] !== 'v1') return undefined
  if (p.length === 3 && p[2] === 'nodes') return { resource: 'nodes', verb: 'list' }
  if (p.length === 4 && p[2] === 'nodes' && p[3] !== undefined) return { resource: 'nodes', name: p[3], verb: 'get' }
  if (p.length === 3 && p[2] !== undefined && ['pods', 'secrets', 'serviceaccounts', 'namespaces'].includes(p[2]))
    return { resource: p[2], verb: 'list' }
  if (p[2] !== 'namespaces' || p[3] === undefined) return undefined
  if (p.length === 4) return { resource: 'namespaces', name: p[3], verb: 'get' }
  const resource = p[4]
  if (resource === undefined || !['secrets', 'serviceaccounts', 'pods', 'events'].includes(resource)) return undefined
  if (p.length === 5) return { resource, namespace: p[3], verb: 'list' }
  if (p.length === 6 && p[5] !== undefined) return { resource, namespace: p[3], name: p[5], verb: 'get' }
  return undefined
}

export async function startFakeKubeApi(options: { ca?: TestCA } = {}): Promise<FakeKubeApi> {
  const ownCa = options.ca === undefined
  const ca = options.ca ?? (await createTestCA('fake kube-apiserver CA'))
  const cert = await ca.issue('fake kube-apiserver', { dns: ['localhost'], ips: ['127.0.0.1'] })
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-kube-'))
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let resourceVersion = 73000
  let totalConnections = 0

  const list = (kind: string, items: unknown[]): unknown => ({
    kind,
    apiVersion: 'v1',
    metadata: { resourceVersion: String(resourceVersion) },
    items,
  })
  const log: Array<{ rv: number; resource: Watched; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: unknown }> = []
  let oldestRv = resourceVersion
  const watchers = new Set<{ resource: Watched; type: string | undefined; res: ServerResponse }>()
  const mapOf = (resource: Watched): Map<string, unknown> =>
    resource === 'secrets' ? fake.secrets : resource === 'serviceaccounts' ? fake.serviceAccounts : fake.namespaces
  const typeOf = (o: unknown): string | undefined => (o as { type?: string }).type
  /** A secret list's or watch's `type=` field selector, if any. */
  const typeSelector = (resource: string, url: URL): string | undefined =>
    resource === 'secrets' ? /(?:^|,)type==?([^,]*)/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1] : undefined
  const hasType = (type: string | undefined, o: unknown): boolean =>
    type === undefined || (typeOf(o) ?? 'Opaque') === type
  function record(resource: Watched, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void {
    const rv = ++resourceVersion
    const o = JSON.parse(JSON.stringify(object)) as { metadata?: Record<string, unknown> }
    o.metadata = { ...o.metadata, resourceVersion: String(rv) }
    log.push({ rv, resource, type, object: o })
    for (const w of watchers)
      if (w.resource === resource && hasType(w.type, o)) w.res.write(JSON.stringify({ type, object: o }) + '\n')
    if (type !== 'DELETED') {
      const m = o.metadata as { name?: string; namespace?: string }
      mapOf(resource).set(resource === 'namespaces' ? (m.name ?? '') : `${m.namespace ?? ''}/${m.name ?? ''}`, o)
    }
  }
  function watch(url: URL, resource: Watched, res: ServerResponse): void {
    const since = Number(url.searchParams.get('resourceVersion') ?? '0')
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    if (since < oldestRv) {
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: {
            ...(status(410, undefined) as object),
            message: `too old resource version: ${since} (${oldestRv})`,
          },
        }) + '\n',
      )
      return
    }
    const type = typeSelector(resource, url)
    for (const e of log)
      if (e.rv > since && e.resource === resource && hasType(type, e.object))
        res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n')
    const w = { resource, type, res }
    watchers.add(w)
    res.on('close', () => watchers.delete(w))
  }
  const inNamespace = <V>(m: Map<string, V>, ns: string): V[] =>
    [...m].filter(([k]) => k.startsWith(`${ns}/`)).map(([, v]) => v)

  function send(res: ServerResponse, code: number, body: unknown): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body)
    res.writeHead(code, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      'audit-id': randomUUID(),
      'content-length': Buffer.byteLength(text),
    })
    res.end(text)
  }

  function answer(url: URL, target: Target | undefined): [number, unknown] {
    if (target === undefined) return [404, status(404, undefined)]
    const key = `${target.namespace ?? ''}/${target.name ?? ''}`
    const one = (m: Map<string, unknown>, k: string): [number, unknown] =>
      m.has(k) ? [200, m.get(k)] : [404, status(404, target)]
    switch (`${target.resource}:${target.verb}`) {
      case 'namespaces:get':
        return one(fake.namespaces, target.name ?? '')
      case 'secrets:get':
        return one(fake.secrets, key)
      case 'serviceaccounts:get':
        return one(fake.serviceAccounts, key)
      case 'pods:get':
        return one(fake.pods, key)
      case 'nodes:list':
        return [200, list('NodeList', fake.nodes)]
      case 'pods:list':
        return [
          200,
          list(
            'PodList',
            target.namespace === undefined ? [...fake.pods.values()] : inNamespace(fake.pods, target.namespace),
          ),
        ]
      case 'secrets:list':
        return [
          200,
          list(
            'SecretList',
            (target.namespace === undefined
              ? [...fake.secrets.values()]
              : inNamespace(fake.secrets, target.namespace)
            ).filter((o) => hasType(typeSelector('secrets', url), o)),
          ),
        ]
      case 'serviceaccounts:list':
        return [
          200,
          list(
            'ServiceAccountList',
            target.namespace === undefined
              ? [...fake.serviceAccounts.values()]
              : inNamespace(fake.serviceAccounts, target.namespace),
          ),
        ]
      case 'namespaces:list':
        return [200, list('NamespaceList', [...fake.namespaces.values()])]
      case 'nodes:get': {
        const node = fake.nodes.find((n) => (n as { metadata?: { name?: string } }).metadata?.name === target.name)
        return node === undefined ? [404, status(404, target)] : [200, node]
      }
      case 'events:list': {
        const ns = target.namespace ?? ''
        const selector = url.searchParams.get('fieldSelector') ?? ''
        const name = /(?:^|,)involvedObject\.name==?([^,]*)/.exec(selector)?.[1]
        return [
          200,
          list(
            'EventList',
            name === undefined ? inNamespace(fake.events, ns).flat() : (fake.events.get(`${ns}/${name}`) ?? []),
          ),
        ]
      }
      default:
        return [404, status(404, undefined)]
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/'
    fake.requests.push({ method: req.method ?? '', path })
    const url = new URL(path, 'https://fake.invalid')
    const target = parsePath(url.pathname)
    const fault = fake.faults.find((f) => f.match.test(path))
    if (fault?.hang === true) return // the socket stays open until the client gives up or close()
    if (fault?.delayMs !== undefined) {
      await new Promise<void>((resolve) => {
        const tm = setTimeout(() => {
          timers.delete(tm)
          resolve()
        }, fault.delayMs)
        timers.add(tm)
      })
    }
    if (req.headers.authorization !== `Bearer ${fake.token}`) return send(res, 401, status(401, target))
    if (fault?.body !== undefined) return send(res, fault.status ?? 200, fault.body)
    if (fault?.status !== undefined) return send(res, fault.status, status(fault.status, target))
    if (req.method !== 'GET') return send(res, 405, status(405, target))
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      if (target?.verb === 'list' && target.namespace === undefined && WATCHED.includes(target.resource))
        return watch(url, target.resource as Watched, res)
      return send(res, 405, status(405, target))
    }
    const [code, body] = answer(url, target)
    send(res, code, body)
  }

  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, status(500, undefined))
      else res.destroy(err as Error)
    })
  })
  server.on('connection', (socket: Socket) => {
    totalConnections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const token = `pullguard-test-token-${randomBytes(16).toString('hex')}`
  const kubeconfigPath = join(dir, 'kubeconfig')
  await writeFile(kubeconfigPath, kubeconfig(origin, ca.caPem, token), { mode: 0o600 })

  const fake: FakeKubeApi = {
    origin,
    kubeconfigPath,
    token,
    requests: [],
    secrets: new Map(),
    serviceAccounts: new Map(),
    namespaces: new Map(),
    nodes: [],
    pods: new Map(),
    events: new Map(),
    faults: [],
    put: (resource, object) => {
      const m = (object as { metadata?: { name?: string; namespace?: string } }).metadata
      const key = resource === 'namespaces' ? (m?.name ?? '') : `${m?.namespace ?? ''}/${m?.name ?? ''}`
      record(resource, mapOf(resource).has(key) ? 'MODIFIED' : 'ADDED', object)
    },
    remove: (resource, key) => {
      const old = mapOf(resource).get(key)
      if (old === undefined) return
      mapOf(resource).delete(key)
      record(resource, 'DELETED', old)
    },
    get watches() {
      return watchers.size
    },
    dropWatches: () => {
      for (const w of watchers) w.res.destroy()
      watchers.clear()
    },
    expireWatches: () => {
      oldestRv = resourceVersion
      for (const w of watchers) w.res.end(JSON.stringify({ type: 'ERROR', object: status(410, undefined) }) + '\n')
      watchers.clear()
    },
    get openConnections() {
      return sockets.size
    },
    get totalConnections() {
      return totalConnections
    },
    async close() {
      for (const tm of timers) clearTimeout(tm)
      // Destroying the sockets releases hanging and kept-alive requests so server.close() can finish.
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await rm(dir, { recursive: true, force: true })
      if (ownCa) await ca.close()
    },
  }
  return fake
}

function kubeconfig(server: string, caPem: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${server}
    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}
users:
- name: pullguard
  user:
    token: ${token}
contexts:
- name: fake
  context:
    cluster: fake
    user: pullguard
current-context: fake
`
}
