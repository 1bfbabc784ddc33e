// Listing tags against registries that paginate, misbehave, or try to pull credentials elsewhere.
// Tiny HTTPS servers on 127.0.0.1 stand in for what the real registry cannot be made to do.
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { directEndpoint } from '../../src/registry/endpoint.js'
import type { AuthContext, AuthHint } from '../../src/registry/auth-flow.js'
import { CachedChecker } from '../../src/registry/cached-checker.js'
import { listTags, parseNextLink, parseTagPage, RegistryClient, type Credential } from '../../src/registry/index.js'
import { TokenSource } from '../../src/registry/token.js'
import { Transport } from '../../src/registry/transport.js'
import { buildTrustStore } from '../../src/registry/trust.js'
import { closedPort, startFakeServer, type FakeServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const user: Credential = { label: 'secret ns/creds key "fake"', username: 'u', password: 'p@ss' }
const BASIC = 'Basic ' + Buffer.from('u:p@ss').toString('base64')

async function server(handler: Handler, tls = true): Promise<FakeServer> {
  const s = await startFakeServer(handler, tls ? ca : undefined)
  t.teardown(() => s.close())
  return s
}
function context(): AuthContext {
  const transport = new Transport({ trust: buildTrustStore({ extraCaPem: ca.caPem }), requestTimeoutMs: 1000 })
  t.teardown(() => transport.close())
  const hints = new Map<string, AuthHint>()
  return {
    transport,
    tokens: new TokenSource(transport),
    authHints: { get: (h) => hints.get(h), set: (h, p) => void hints.set(h, p) },
    now: () => Date.now(),
  }
}
function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ trust: { extraCaPem: ca.caPem }, requestTimeoutMs: 1000, ...options })
  t.teardown(() => c.close())
  return c
}
const ref = (host: string, rest = 'app:v9') => parseReference(`${host}/${rest}`)
function json(res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}
const query = (req: IncomingMessage): URLSearchParams => new URL(req.url ?? '/', 'https://x').searchParams

/** distribution's own paging: sorted tags, `n` and `last`, a Link to the next page while more remain. */
function paging(all: string[], link: (next: string, origin: string) => string): Handler {
  return (req, res) => {
    const q = query(req)
    const n = Number(q.get('n') ?? all.length)
    const last = q.get('last')
    const start = last === null ? 0 : all.indexOf(last) + 1
    const page = all.slice(start, start + n)
    const more = start + n < all.length
    const next = `/v2/app/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] ?? '')}`
    json(res, { name: 'app', tags: page }, more ? { link: link(next, `https://${req.headers.host}`) } : {})
  }
}
const SEVEN = ['a', 'b', 'c', 'd', 'e', 'f', 'g']

t.test('one page: the tags, complete', async (t) => {
  const s = await server((_req, res) => json(res, { name: 'app', tags: ['v1', 'v2', 'latest'] }))
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, {}), {
    ok: true,
    tags: ['v1', 'v2', 'latest'],
    complete: true,
  })
  t.same(
    s.seen.map((r) => r.url),
    ['/v2/app/tags/list?n=1000'],
  )
})

t.test('follows relative Link headers to the end', async (t) => {
  const s = await server(paging(SEVEN, (next) => `<${next}>; rel="next"`))
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, { pageSize: 3 }), {
    ok: true,
    tags: SEVEN,
    complete: true,
  })
  t.same(
    s.seen.map((r) => r.url),
    ['/v2/app/tags/list?n=3', '/v2/app/tags/list?n=3&last=c', '/v2/app/tags/list?n=3&last=f'],
  )
})

t.test('follows absolute same-origin Link headers, with other link-values around', async (t) => {
  const s = await server(
    paging(
      SEVEN,
      (next, origin) => `<${origin}/v2/app/tags/list?n=1>; rel="first", <${origin}${next}>; rel="next"; title="a, b"`,
    ),
  )
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, { pageSize: 2 }), {
    ok: true,
    tags: SEVEN,
    complete: true,
  })
  t.equal(s.seen.length, 4)
})

t.test('a Link to another origin is not followed, so credentials never go there', async (t) => {
  const elsewhere = await server((_req, res) => json(res, { name: 'app', tags: ['stolen'] }))
  const s = await server((req, res) => {
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    json(
      res,
      { name: 'app', tags: ['v1'] },
      { link: `<${elsewhere.origin}/v2/app/tags/list?n=1000&last=v1>; rel="next"` },
    )
  })
  t.same(await listTags(context(), directEndpoint(ref(s.host)), user, {}), { ok: true, tags: ['v1'], complete: false })
  t.equal(elsewhere.seen.length, 0)
  const down = await server((req, res) =>
    json(
      res,
      { name: 'app', tags: ['v1'] },
      { link: `<http://${req.headers.host}/v2/app/tags/list?last=v1>; rel="next"` },
    ),
  )
  t.same(
    await listTags(context(), directEndpoint(ref(down.host)), null, {}),
    { ok: true, tags: ['v1'], complete: false },
    'plain HTTP on the same host is another origin too',
  )
  t.equal(down.seen.length, 1)
})

t.test('stops at maxPages: complete false', async (t) => {
  const s = await server(paging(SEVEN, (next) => `<${next}>; rel="next"`))
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, { pageSize: 2, maxPages: 2 }), {
    ok: true,
    tags: ['a', 'b', 'c', 'd'],
    complete: false,
  })
  t.equal(s.seen.length, 2)
})

t.test('stops at maxTags without asking for another page', async (t) => {
  const s = await server(paging(SEVEN, (next) => `<${next}>; rel="next"`))
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, { pageSize: 2, maxTags: 4 }), {
    ok: true,
    tags: ['a', 'b', 'c', 'd'],
    complete: false,
  })
  t.equal(s.seen.length, 2)
  const one = await server((_req, res) => json(res, { name: 'app', tags: SEVEN }))
  t.same(
    await listTags(context(), directEndpoint(ref(one.host)), null, { maxTags: 5 }),
    { ok: true, tags: SEVEN.slice(0, 5), complete: false },
    'a page larger than n is cut too',
  )
})

t.test('a Link back to a page already read ends the listing', async (t) => {
  const s = await server((req, res) => json(res, { name: 'app', tags: ['v1'] }, { link: `<${req.url}>; rel="next"` }))
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, {}), { ok: true, tags: ['v1'], complete: false })
  t.equal(s.seen.length, 1)
})

const failures: Array<[string, Handler, RegExp]> = [
  ['not JSON', (_req, res) => json(res, '<html>login</html>'), /not \{"name", "tags"\} JSON/],
  ['a JSON array', (_req, res) => json(res, '["v1"]'), /not \{"name", "tags"\} JSON/],
  ['without a name', (_req, res) => json(res, '{"tags":["v1"]}'), /not \{"name", "tags"\} JSON/],
  ['with tags not an array', (_req, res) => json(res, '{"name":"app","tags":"v1"}'), /not \{"name", "tags"\} JSON/],
  ['HTTP 404', (_req, res) => res.writeHead(404).end(), /HTTP 404/],
  ['HTTP 403', (_req, res) => res.writeHead(403).end(), /HTTP 403/],
  ['HTTP 500', (_req, res) => res.writeHead(500).end(), /HTTP 500/],
  [
    'over 1 MiB',
    (_req, res) => json(res, { name: 'app', tags: Array.from({ length: 80_000 }, (_, i) => `tag-${i}-padding`) }),
    /larger than 1048576 bytes/,
  ],
]
for (const [name, handler, detail] of failures) {
  t.test(`a tag list answer ${name}: ok false`, async (t) => {
    const s = await server(handler)
    t.match(await listTags(context(), directEndpoint(ref(s.host)), null, {}), { ok: false, detail })
  })
}

t.test('tags that are not valid tag strings are dropped; null tags are an empty list', async (t) => {
  const listed = ['v1', '-bad', 'has space', 42, null, 'a'.repeat(129), 'b'.repeat(128), 'ok_tag', '.x', 'x/y', 'é']
  t.same(parseTagPage(Buffer.from(JSON.stringify({ name: 'app', tags: listed }))), ['v1', 'b'.repeat(128), 'ok_tag'])
  t.same(parseTagPage(Buffer.from('{"name":"app","tags":null}')), [])
})

t.test('a refused connection: ok false, no exception', async (t) => {
  t.match(await listTags(context(), directEndpoint(ref(`127.0.0.1:${await closedPort()}`)), null, {}), {
    ok: false,
    detail: /refused/,
  })
})

t.test('a later page failing keeps the tags already read', async (t) => {
  const s = await server((req, res) => {
    if (query(req).get('last') !== null) return req.socket.destroy()
    json(res, { name: 'app', tags: ['v1'] }, { link: '</v2/app/tags/list?last=v1>; rel="next"' })
  })
  t.same(await listTags(context(), directEndpoint(ref(s.host)), null, {}), { ok: true, tags: ['v1'], complete: false })
})

const linkRows: Array<[string | string[] | undefined, string | undefined]> = [
  ['</v2/a/tags/list?n=2&last=b>; rel="next"', '/v2/a/tags/list?n=2&last=b'],
  ['</v2/a/tags/list?last=b>; rel=next', '/v2/a/tags/list?last=b'],
  ['<https://r.example/p?a=1,2>; rel="prev", <https://r.example/n>; REL="Next"', 'https://r.example/n'],
  ['</x>; title="a, rel=next", </y>; rel="prev next"', '/y'],
  ['</x>; rel="prev"; rel="next"', undefined], // only the first rel counts (RFC 8288 §3.3)
  [['</x>; rel="prev"', '</y>; rel="next"'], '/y'],
  ['</x>; rel="nextpage"', undefined],
  ['garbage', undefined],
  [undefined, undefined],
]
for (const [header, next] of linkRows) {
  t.test(`Link ${JSON.stringify(header)} → ${String(next)}`, async (t) => t.equal(parseNextLink(header), next))
}

/** A token registry: Bearer challenge, tokens from `realm`, tags and manifests for `tok`. */
async function tokenRegistry(): Promise<{ s: FakeServer; realm: FakeServer }> {
  const realm = await server((_req, res) => json(res, { token: 'tok', expires_in: 300 }))
  const s = await server((req, res) => {
    if (req.headers.authorization !== 'Bearer tok') {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${realm.origin}/token",service="s",scope="repository:app:pull"`,
      })
      return res.end()
    }
    if (req.url?.startsWith('/v2/app/tags/list')) return json(res, { name: 'app', tags: ['v1', 'v2'] })
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
  })
  return { s, realm }
}

t.test('the token earned by the manifest check is reused for the tag list', async (t) => {
  const { s, realm } = await tokenRegistry()
  const c = client()
  t.match(await c.checkManifest(ref(s.host), []), { code: 'TagNotFound' })
  t.equal(realm.seen.length, 1)
  const before = s.seen.length
  t.same(await c.listTags(ref(s.host), []), ['v1', 'v2'])
  t.equal(realm.seen.length, 1, 'no second token request')
  t.same(
    s.seen.slice(before).map((r) => [r.url, r.headers.authorization]),
    [['/v2/app/tags/list?n=1000', 'Bearer tok']],
    'sent with the token at once',
  )
})

t.test('a first tag list answers the challenge itself', async (t) => {
  const { s, realm } = await tokenRegistry()
  t.same(await client().listTags(ref(s.host), []), ['v1', 'v2'])
  t.equal(realm.seen.length, 1)
  t.match(realm.seen[0]?.url, /scope=repository%3Aapp%3Apull/)
})

t.test('credentials are tried in order; the first list read wins', async (t) => {
  const wrong: Credential = { label: 'secret ns/old key "fake"', username: 'u', password: 'old' }
  const s = await server((req, res) => {
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    json(res, { name: 'app', tags: ['v1'] })
  })
  t.same(await client().listTags(ref(s.host), [wrong, user]), ['v1'])
  t.same(await client().listTags(ref(s.host), [wrong]), undefined)
  t.same(await client().listTags(ref(s.host), []), undefined, 'anonymous is refused')
})

t.test('the listing ends at its own budget, and sooner at the caller deadline', async (t) => {
  const s = await server(() => undefined)
  const c = client({ requestTimeoutMs: 30_000 })
  let started = Date.now()
  t.equal(await c.listTags(ref(s.host), [], { budgetMs: 200 }), undefined)
  t.ok(Date.now() - started < 200 + 1000, `budget: ${Date.now() - started} ms`)
  started = Date.now()
  t.equal(await c.listTags(ref(s.host), [], { signal: AbortSignal.timeout(150) }), undefined)
  t.ok(Date.now() - started < 150 + 1000, `caller deadline inside the 2 s default budget: ${Date.now() - started} ms`)
  started = Date.now()
  t.equal(await c.listTags(ref(s.host), [user, user]), undefined)
  t.ok(Date.now() - started < 2000 + 1000, `default budget across credentials: ${Date.now() - started} ms`)
})

async function cached(handler: Handler, clock?: { now(): number }): Promise<{ s: FakeServer; checker: CachedChecker }> {
  const s = await server(handler)
  return { s, checker: new CachedChecker(client(), { checkBudgetMs: 5000, ...(clock === undefined ? {} : { clock }) }) }
}
const tagsFor =
  (delayMs = 0): Handler =>
  (req, res) => {
    setTimeout(() => {
      if (req.url?.includes('/broken/')) {
        res.writeHead(403)
        return res.end()
      }
      json(res, { name: 'app', tags: ['v1', 'v2'] })
    }, delayMs)
  }

t.test('cached: a second read within a minute makes no request; anonymous lists are shared', async (t) => {
  let now = 1_000_000
  const { s, checker } = await cached(tagsFor(), { now: () => now })
  const first = await checker.tags(ref(s.host), [], 'team-a')
  t.same(await checker.tags(ref(s.host, 'app:other'), [], 'team-b'), first, 'same repository, any tag, any namespace')
  t.equal(s.seen.length, 1)
  now += 60_001
  await checker.tags(ref(s.host), [], 'team-a')
  t.equal(s.seen.length, 2, 'read again after the TTL')
})

t.test('cached: lists read with credentials are kept per namespace', async (t) => {
  const { s, checker } = await cached(tagsFor())
  const a = await checker.tags(ref(s.host), [user], 'team-a')
  const b = await checker.tags(ref(s.host), [user], 'team-b')
  t.same(a, b)
  t.equal(s.seen.length, 2, "team-b's list is read with team-b's secret, not served from team-a")
})

t.test('cached: concurrent reads share one request', async (t) => {
  const { s, checker } = await cached(tagsFor(100))
  const lists = await Promise.all(Array.from({ length: 20 }, () => checker.tags(ref(s.host), [], 'ns')))
  t.ok(lists.every((l) => l?.[0] === 'v1'))
  t.equal(s.seen.length, 1)
})

t.test("cached: a waiter's deadline ends its wait, not the shared read", async (t) => {
  const { s, checker } = await cached(tagsFor(300))
  const [short, long] = await Promise.all([
    checker.tags(ref(s.host), [], 'ns', AbortSignal.timeout(50)),
    checker.tags(ref(s.host), [], 'ns'),
  ])
  t.equal(short, undefined)
  t.equal(long?.[0], 'v1')
  t.equal(s.seen.length, 1)
})

t.test('cached: a failed read is undefined and remembered only briefly', async (t) => {
  let now = 1_000_000
  const { s, checker } = await cached(tagsFor(), { now: () => now })
  t.equal(await checker.tags(ref(s.host, 'broken/app:v1'), [], 'ns'), undefined)
  t.equal(await checker.tags(ref(s.host, 'broken/app:v1'), [], 'ns'), undefined)
  t.equal(s.seen.length, 1)
  now += 15_001
  await checker.tags(ref(s.host, 'broken/app:v1'), [], 'ns')
  t.equal(s.seen.length, 2)
})
