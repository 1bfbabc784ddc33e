// Tag lists from the real CNCF distribution registry, open and behind token auth, and the
// suggestions a TagNotFound gets from them.
//
// distribution 2.8 (the Debian package the harness runs) ignores `n` and always answers with
// every tag in one page; distribution 3, Docker Hub, GHCR and ECR page with `n`, `last` and a
// `Link` header. To read more than one page from a real registry, a small proxy in front of it
// pages the real answer the way distribution 3 does (sorted, `n`, `last`, relative `Link`) and
// passes everything else — challenges, tokens, manifests — through untouched.
import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { Agent, request } from 'undici'
import { suggestTags } from '../../src/policy/tag-suggestions.js'
import { CachedChecker } from '../../src/registry/cached-checker.js'
import type { Credential } from '../../src/registry/index.js'
import { startFakeServer, type FakeServer } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { clientHarness } from '../helpers/client-harness.js'
import { seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const alice: Credential = { label: 'secret team/alice key "registry"', username: 'alice', password: 'alice-pw' }
const bob: Credential = { label: 'secret team/bob key "registry"', username: 'bob', password: 'bob-pw' }

const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, alice: alice.password, bob: bob.password },
  grant: (user, repo, actions) =>
    user === 'admin'
      ? actions
      : user === 'alice' && repo.startsWith('private/')
        ? actions.filter((a) => a === 'pull')
        : [],
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const token = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
for (const r of [open, token]) t.teardown(() => r.close())

const NGINX_TAGS = ['1.25.0', '1.25.1', '1.25.2', '1.25.4', '1.25', 'latest', 'stable']
const PRIVATE_TAGS = ['v1.0.0', 'v1.0.1', 'v1.1.0']
for (const tag of NGINX_TAGS) await seedOciManifest(open, 'library/nginx', tag)
for (const tag of PRIVATE_TAGS) await seedOciManifest(token, 'private/app', tag, ADMIN)
const sorted = (tags: readonly string[] | undefined): string[] | undefined =>
  tags === undefined ? undefined : [...tags].sort()

const { counter, newClient, ref } = clientHarness(t, ca, tokenServer)

/** Pages the upstream registry's tag lists like distribution 3 does; passes everything else through. */
async function pagingProxy(upstream: RunningRegistry): Promise<FakeServer> {
  const agent = new Agent({ connect: { ca: ca.caPem } })
  const relay = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', upstream.origin)
    const tagList = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname)
    const headers: Record<string, string> = {}
    for (const name of ['authorization', 'accept'] as const)
      if (req.headers[name] !== undefined) headers[name] = String(req.headers[name])
    const method = req.method === 'HEAD' ? 'HEAD' : 'GET'
    const up = await request(`${upstream.origin}${url.pathname}`, { method, headers, dispatcher: agent })
    const body = Buffer.from(await up.body.arrayBuffer())
    const out: Record<string, string> = {}
    for (const name of ['content-type', 'www-authenticate', 'docker-content-digest', 'content-length']) {
      const v = up.headers[name]
      if (typeof v === 'string') out[name] = v
    }
    if (tagList === null || up.statusCode !== 200) {
      res.writeHead(up.statusCode, out)
      return void res.end(method === 'HEAD' ? undefined : body)
    }
    const all = ((JSON.parse(body.toString()) as { tags: string[] | null }).tags ?? []).sort()
    const n = Number(url.searchParams.get('n') ?? all.length)
    const last = url.searchParams.get('last')
    const page = all.filter((tag) => last === null || tag > last).slice(0, n)
    const more = all.length > 0 && page.length > 0 && page[page.length - 1] !== all[all.length - 1]
    const link = more
      ? {
          link: `</v2/${tagList[1]}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] ?? '')}>; rel="next"`,
        }
      : {}
    res.writeHead(200, { 'content-type': 'application/json', ...link })
    res.end(JSON.stringify({ name: tagList[1], tags: page }))
  }
  const proxy = await startFakeServer((req, res) => void relay(req, res).catch(() => res.destroy()), ca)
  t.teardown(async () => {
    await proxy.close()
    await agent.close()
  })
  return proxy
}

t.test('lists every tag of a repository in one request', async (t) => {
  t.same(sorted(await newClient().listTags(ref(open.host, 'library/nginx:9'), [])), [...NGINX_TAGS].sort())
  t.same(counter.paths(open.origin), ['GET /v2/library/nginx/tags/list?n=1000'])
})

t.test('distribution 2.8 ignores a small n: the whole list is still read, in one page', async (t) => {
  t.same(
    sorted(await newClient().listTags(ref(open.host, 'library/nginx:9'), [], { pageSize: 2 })),
    [...NGINX_TAGS].sort(),
  )
  t.same(counter.paths(open.origin), ['GET /v2/library/nginx/tags/list?n=2'])
})

t.test('a missing repository has no tag list', async (t) => {
  t.equal(await newClient().listTags(ref(open.host, 'nothing/here:v1'), []), undefined)
})

t.test('TagNotFound, then the tags nearest to the one asked for', async (t) => {
  const client = newClient()
  const wanted = ref(open.host, 'library/nginx:1.25.3')
  t.match(await client.checkManifest(wanted, []), { code: 'TagNotFound' })
  const checker = new CachedChecker(client, { checkBudgetMs: 5000 })
  const tags = await checker.tags(wanted, [], 'team-a')
  t.same(suggestTags('1.25.3', tags ?? []), ['1.25.2', '1.25', '1.25.4'])
  t.same(suggestTags('lates', tags ?? []), ['latest'])
  t.same(suggestTags('2.0', tags ?? []), [], 'nothing close: nothing suggested')
  await checker.tags(wanted, [], 'team-b')
  t.equal(
    counter.paths(open.origin).filter((p) => p.includes('tags/list?n=1000')).length,
    1,
    'the second namespace reads the anonymous list from the cache',
  )
})

t.test('token auth: the token from the manifest check lists the tags, with no new token and no 401', async (t) => {
  const client = newClient()
  t.match(await client.checkManifest(ref(token.host, 'private/app:v1.0.2'), [alice]), { code: 'TagNotFound' })
  t.equal(tokenServer.requests.length, 1)
  counter.reset()
  t.same(sorted(await client.listTags(ref(token.host, 'private/app:v1.0.2'), [alice])), PRIVATE_TAGS)
  t.equal(tokenServer.requests.length, 1, 'no second token request')
  t.same(
    counter.paths(token.origin),
    ['GET /v2/private/app/tags/list?n=1000'],
    'one request, sent with the cached token',
  )
})

t.test('token auth: a first tag list answers the challenge itself', async (t) => {
  t.same(sorted(await newClient().listTags(ref(token.host, 'private/app:x'), [alice])), PRIVATE_TAGS)
  t.match(tokenServer.requests, [{ user: 'alice', scope: 'repository:private/app:pull', status: 200 }])
  t.equal(counter.count(token.origin), 2, '401, then the list with the token')
})

t.test('token auth: no list without a grant', async (t) => {
  const client = newClient()
  t.equal(await client.listTags(ref(token.host, 'private/app:x'), []), undefined, 'anonymous')
  t.equal(await client.listTags(ref(token.host, 'private/app:x'), [bob]), undefined, 'a user without a grant')
  t.same(
    sorted(await client.listTags(ref(token.host, 'private/app:x'), [bob, alice])),
    PRIVATE_TAGS,
    'the next credential that works',
  )
})

t.test('several pages, following relative Link headers', async (t) => {
  const proxy = await pagingProxy(open)
  t.same(await newClient().listTags(ref(proxy.host, 'library/nginx:9'), [], { pageSize: 2 }), [...NGINX_TAGS].sort())
  t.same(
    proxy.seen.map((r) => r.url),
    [
      '/v2/library/nginx/tags/list?n=2',
      '/v2/library/nginx/tags/list?n=2&last=1.25.0',
      '/v2/library/nginx/tags/list?n=2&last=1.25.2',
      '/v2/library/nginx/tags/list?n=2&last=latest',
    ],
  )
})

t.test('several pages stop at maxPages', async (t) => {
  const proxy = await pagingProxy(open)
  t.same(await newClient().listTags(ref(proxy.host, 'library/nginx:9'), [], { pageSize: 2, maxPages: 2 }), [
    '1.25',
    '1.25.0',
    '1.25.1',
    '1.25.2',
  ])
  t.equal(proxy.seen.length, 2)
})

t.test('token auth over several pages: one token for the manifest check and every page', async (t) => {
  const proxy = await pagingProxy(token)
  const client = newClient()
  t.match(await client.checkManifest(ref(proxy.host, 'private/app:v2'), [alice]), { code: 'TagNotFound' })
  const before = proxy.seen.length
  t.same(await client.listTags(ref(proxy.host, 'private/app:v2'), [alice], { pageSize: 1 }), PRIVATE_TAGS)
  t.equal(tokenServer.requests.length, 1)
  const pages = proxy.seen.slice(before)
  t.equal(pages.length, 3)
  t.ok(
    pages.every((r) => r.headers.authorization?.startsWith('Bearer ') === true),
    'every page carries the token',
  )
})
