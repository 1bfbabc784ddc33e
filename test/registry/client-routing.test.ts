// The registry client asking several hosts for one image, as a runtime with mirrors does: each
// credential's pull tries the hosts in order and the first that has the manifest answers; a host
// that gets no credentials is asked anonymously, once; every host's own path, query and headers.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { parseReference, type ImageReference } from '../../src/reference/index.js'
import type { Endpoint, Router } from '../../src/registry/endpoint.js'
import { CachedChecker } from '../../src/registry/cached-checker.js'
import { RegistryClient, type Credential } from '../../src/registry/index.js'
import { startFakeServer, type FakeServer } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const MANIFEST = Buffer.from('{"schemaVersion":2}')
const DIGEST = 'sha256:' + createHash('sha256').update(MANIFEST).digest('hex')
const first: Credential = { label: 'secret shop/one (key "reg")', username: 'one', password: 'One-Value-1' }
const second: Credential = { label: 'secret shop/two (key "reg")', username: 'two', password: 'Two-Value-2' }

/** Basic auth required unless `open`; `has`: the paths it serves a manifest at; `status`: what it answers otherwise. */
function host(opts: {
  open?: boolean
  has?: string[]
  status?: number
}): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (opts.open !== true && req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    const path = (req.url ?? '').split('?')[0]!
    if (path.endsWith('/tags/list') && opts.has !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end('{"name":"shop/app","tags":["v0"]}')
    }
    if (opts.has?.includes(path) === true) {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': DIGEST,
      })
      return res.end()
    }
    res.writeHead(opts.status ?? 404, { 'content-type': 'application/json' })
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
  }
}

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<FakeServer> {
  const s = await startFakeServer(handler, ca)
  t.teardown(() => s.close())
  return s
}

function client(endpoints: (ref: ImageReference) => Endpoint[]): RegistryClient {
  const router: Router = { endpoints, generation: 1 }
  const c = new RegistryClient({ trust: { extraCaPem: ca.caPem }, router })
  t.teardown(() => c.close())
  return c
}

const ref = parseReference('registry.example/shop/app:v1')

t.test(
  "a host that gets no credentials is asked anonymously, once; the image's registry then with each credential",
  async (t) => {
    const mirror = await server(host({}))
    const registry = await server(host({ has: ['/v2/shop/app/manifests/v1'] }))
    const ref = parseReference(`${registry.host}/shop/app:v1`)
    const c = client((r) => [
      {
        host: mirror.host,
        root: '/v2',
        repository: `hub/${r.path}`,
        credentials: false,
        label: mirror.host,
        headers: { 'x-team': 'shop' },
      },
      { host: registry.host, root: '/v2', repository: r.path, credentials: true, label: registry.host },
    ])
    const result = await c.checkManifest(ref, [first, second])
    t.match(result, {
      code: 'Exists',
      digest: DIGEST,
      decidedBy: first.label,
      answeredBy: registry.host,
      asked: [mirror.host, registry.host],
    })
    t.same(
      result.attempts.map((a) => [a.host, a.credential, a.code]),
      [
        [mirror.host, 'anonymous', 'RegistryUnreachable'],
        [registry.host, first.label, 'Exists'],
      ],
    )
    t.match(
      result.attempts[0],
      { cause: 'mirror-auth', detail: /the nodes may hold their own credentials/ },
      "a mirror's refusal is not a verdict",
    )
    t.ok(
      mirror.seen.every((s) => s.headers.authorization === undefined),
      'no credential went to that host',
    )
    t.ok(
      mirror.seen.every((s) => s.headers['x-team'] === 'shop'),
      "the host's own headers",
    )
    t.match(mirror.seen[0]?.url, '/v2/hub/shop/app/manifests/v1', 'its repository path')
  },
)

t.test('each credential tries every host before the next credential, as each kubelet pull does', async (t) => {
  const mirror = await server(host({}))
  const registry = await server(host({ has: [] }))
  const ref = parseReference(`${registry.host}/shop/app:v1`)
  const c = client((r) => [
    {
      host: mirror.host,
      root: '/mirror',
      repository: r.path,
      query: 'ns=registry.example',
      credentials: true,
      label: `${mirror.host}/mirror`,
    },
    { host: registry.host, root: '/v2', repository: r.path, credentials: true, label: registry.host },
  ])
  const result = await c.checkManifest(ref, [first, second])
  t.same(
    result.attempts.map((a) => [a.host, a.credential]),
    [
      [`${mirror.host}/mirror`, first.label],
      [registry.host, first.label],
      [`${mirror.host}/mirror`, second.label],
      [registry.host, second.label],
    ],
  )
  t.match(
    mirror.seen.find((s) => s.headers.authorization !== undefined)?.url,
    /^\/mirror\/shop\/app\/manifests\/v1\?ns=registry\.example$/,
  )
  t.equal(result.code, 'TagNotFound', 'every host answered 404: not there')
  t.same(result.asked, [`${mirror.host}/mirror`, registry.host])
})

t.test('a host that could not answer keeps the image unverified, whatever the others said', async (t) => {
  const mirror = await server(host({ open: true, has: [] }))
  const registry = await server(host({ open: true, status: 503 }))
  const c = client((r) => [
    { host: mirror.host, root: '/v2', repository: r.path, credentials: true, label: mirror.host },
    { host: registry.host, root: '/v2', repository: r.path, credentials: true, label: registry.host },
  ])
  const result = await c.checkManifest(ref, [])
  t.match(result, { code: 'RegistryUnreachable', cause: '5xx', asked: [mirror.host, registry.host] })
  t.same(
    result.attempts.map((a) => a.code),
    ['TagNotFound', 'RegistryUnreachable'],
  )
})

t.test("a mirror that refuses while the image's registry has no such tag: unverified, not a denial", async (t) => {
  const mirror = await server(host({}))
  const registry = await server(host({ open: true, has: [] }))
  const ref = parseReference(`${registry.host}/shop/app:v1`)
  const c = client((r) => [
    { host: mirror.host, root: '/v2', repository: r.path, credentials: false, label: mirror.host },
    { host: registry.host, root: '/v2', repository: r.path, credentials: true, label: registry.host },
  ])
  const result = await c.checkManifest(ref, [first])
  t.match(
    result,
    { code: 'RegistryUnreachable', cause: 'mirror-auth' },
    'the node may pull it from the mirror with credentials pullguard cannot see',
  )
})

t.test(
  "a source on another registry asked without the pod's credentials (CRI-O): its 404 is not a verdict either",
  async (t) => {
    const rewritten = await server(host({ open: true, has: [] }))
    const c = client((r) => [
      { host: rewritten.host, root: '/v2', repository: r.path, credentials: false, label: rewritten.host },
    ])
    t.match(
      await c.checkManifest(ref, [first]),
      { code: 'RegistryUnreachable', cause: 'mirror-auth' },
      'the node would have sent its own credentials there, and a registry may hide private repositories behind 404',
    )
    t.match(await c.checkManifest(ref, []), { code: 'TagNotFound' }, 'with no credential to withhold, a 404 is a 404')
  },
)

t.test(
  'per-host TLS: its own CA (for the token realm on the same host too), skip_verify, and nothing else trusting it',
  async (t) => {
    const other = await createTestCA('mirror CA')
    t.teardown(() => other.close())
    // Harbor-style: the token realm is on the registry's own host.
    const harbor = await startFakeServer((req, res) => {
      if (req.url?.startsWith('/service/token')) {
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end('{"token":"mirror-token-1","expires_in":300}')
      }
      if (req.headers.authorization !== 'Bearer mirror-token-1') {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="https://${req.headers.host}/service/token",service="harbor"`,
        })
        return res.end()
      }
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': DIGEST,
      })
      res.end()
    }, other)
    t.teardown(() => harbor.close())
    const at = (tls: Endpoint['tls']): RegistryClient =>
      client((r) => [
        {
          host: harbor.host,
          root: '/v2',
          repository: r.path,
          credentials: true,
          label: harbor.host,
          ...(tls === undefined ? {} : { tls }),
        },
      ])
    t.match(
      await at({ verify: true, caPem: other.caPem }).checkManifest(ref, []),
      { code: 'Exists' },
      'its ca: the manifest and the token',
    )
    t.match(
      await at(undefined).checkManifest(ref, []),
      { code: 'RegistryUnreachable', cause: 'tls' },
      'without it, the usual trust does not know that CA',
    )
    t.match(await at({ verify: false }).checkManifest(ref, []), { code: 'Exists' }, 'skip_verify')
  },
)

t.test(
  "a redirect to another host drops the credentials and the host's sensitive headers, keeping the rest",
  async (t) => {
    const target = await server(host({ open: true, has: ['/v2/shop/app/manifests/v1'] }))
    const front = await server((req, res) => {
      res.writeHead(307, { location: `${target.origin}${req.url}` })
      res.end()
    })
    const c = client((r) => [
      {
        host: front.host,
        root: '/v2',
        repository: r.path,
        credentials: true,
        label: front.host,
        headers: { authorization: 'Basic aG9zdDpzZWNyZXQ=', cookie: 'session=1', 'x-team': 'shop' },
      },
    ])
    t.match(await c.checkManifest(ref, []), { code: 'Exists' })
    t.equal(front.seen[0]?.headers.authorization, 'Basic aG9zdDpzZWNyZXQ=', "the host's own header, to the host")
    t.equal(target.seen[0]?.headers.authorization, undefined, 'not to the host it redirects to')
    t.equal(target.seen[0]?.headers.cookie, undefined)
    t.equal(target.seen[0]?.headers['x-team'], 'shop')
  },
)

t.test('plain HTTP only for an endpoint allowed to fall back, never for another one on the same host', async (t) => {
  const plain = await startFakeServer(host({ open: true, has: ['/v2/shop/app/manifests/v1'] }))
  t.teardown(() => plain.close())
  const c = client((r) =>
    r.path === 'shop/app'
      ? [
          {
            host: plain.host,
            root: '/v2',
            repository: r.path,
            credentials: true,
            label: plain.host,
            tls: { verify: false, plainFallback: true },
          },
        ]
      : [
          {
            host: plain.host,
            root: '/v2',
            repository: 'shop/app',
            credentials: true,
            label: plain.host,
            tls: { verify: true },
          },
        ],
  )
  t.match(await c.checkManifest(ref, []), { code: 'Exists' }, 'TLS failed, plain HTTP answered')
  t.match(
    await c.checkManifest(parseReference('registry.example/other/app:v1'), []),
    { code: 'RegistryUnreachable', cause: 'tls' },
    'the other endpoint stays on HTTPS',
  )
})

t.test('a new mirrors configuration: answers cached under the old one are not served', async (t) => {
  const a = await server(host({ open: true, has: ['/v2/shop/app/manifests/v1'] }))
  const b = await server(host({ open: true, has: ['/v2/shop/app/manifests/v1'] }))
  let current = a
  const router = {
    generation: 1,
    endpoints: (r: ImageReference): Endpoint[] => [
      { host: current.host, root: '/v2', repository: r.path, credentials: true, label: current.host },
    ],
  }
  const c = new RegistryClient({ trust: { extraCaPem: ca.caPem }, router })
  t.teardown(() => c.close())
  const checker = new CachedChecker(c, { checkBudgetMs: 5000 })
  t.match(await checker.check(ref, [], 'shop'), { answeredBy: a.host })
  t.match(await checker.check(ref, [], 'shop'), { answeredBy: a.host }, 'cached')
  current = b
  router.generation = 2
  t.match(await checker.check(ref, [], 'shop'), { answeredBy: b.host }, 'asked again, at the new host')
  t.equal(a.seen.length, 1)
})

t.test('no host to ask (a blocked image): no request, no answer', async (t) => {
  const c = client(() => [])
  t.match(await c.checkManifest(ref, []), { code: 'RegistryUnreachable', attempts: [], asked: [] })
})
