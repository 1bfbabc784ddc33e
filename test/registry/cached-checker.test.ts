// The result cache and single-flight in front of the registry client.
import { createHash } from 'node:crypto'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { CachedChecker } from '../../src/registry/cached-checker.js'
import { RegistryClient, type Credential } from '../../src/registry/index.js'
import { startFakeServer, type FakeServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const MANIFEST = Buffer.from('{"schemaVersion":2}')
const DIGEST = 'sha256:' + createHash('sha256').update(MANIFEST).digest('hex')
const secretA: Credential = { label: 'secret team-a/regcred (key "r")', username: 'u', password: 'same-value' }
const secretB: Credential = { label: 'secret team-b/regcred (key "r")', username: 'u', password: 'same-value' }

/** Serves `app:v1` (to anyone with Basic, when `basic`), 404 for the rest, 503 for `flaky`. */
function registry(opts: { delayMs?: number; basic?: boolean } = {}): Handler {
  return (req, res) => {
    setTimeout(() => {
      if (opts.basic === true && req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
        return res.end()
      }
      if (req.url?.includes('flaky')) {
        res.writeHead(503)
        return res.end()
      }
      if (req.url === '/v2/app/manifests/v1') {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': DIGEST })
        return res.end()
      }
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(req.url?.includes('/tags/list') ? '{"errors":[{"code":"NAME_UNKNOWN"}]}' : '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
    }, opts.delayMs ?? 0)
  }
}

async function setup(handler: Handler, options: Partial<ConstructorParameters<typeof CachedChecker>[1]> = {}): Promise<{ s: FakeServer; checker: CachedChecker }> {
  const s = await startFakeServer(handler, ca)
  const client = new RegistryClient({ trust: { extraCaPem: ca.caPem }, ...(options.clock === undefined ? {} : { clock: options.clock }) })
  t.teardown(async () => {
    await client.close()
    await s.close()
  })
  return { s, checker: new CachedChecker(client, { checkBudgetMs: 5000, ...options }) }
}

t.test('a cached answer makes no registry request', async (t) => {
  const { s, checker } = await setup(registry())
  const ref = parseReference(`${s.host}/app:v1`)
  t.match(await checker.check(ref, [], 'team-a'), { code: 'Exists', digest: DIGEST })
  t.match(await checker.check(ref, [], 'team-b'), { code: 'Exists' }, 'anonymous answers are shared across namespaces')
  t.equal(s.seen.length, 1)
})

t.test('50 concurrent checks of one new image make one registry request', async (t) => {
  const { s, checker } = await setup(registry({ delayMs: 100 }))
  const ref = parseReference(`${s.host}/app:v1`)
  const results = await Promise.all(Array.from({ length: 50 }, () => checker.check(ref, [], 'team-a')))
  t.ok(results.every((r) => r.code === 'Exists'))
  t.equal(s.seen.length, 1)
})

t.test('an answer earned with namespace A credentials is never served to namespace B', async (t) => {
  const { s, checker } = await setup(registry({ basic: true }))
  const ref = parseReference(`${s.host}/app:v1`)
  t.match(await checker.check(ref, [secretA], 'team-a'), { code: 'Exists', decidedBy: secretA.label })
  const before = s.seen.length
  const b = await checker.check(ref, [secretB], 'team-b')
  t.match(b, { code: 'Exists', decidedBy: secretB.label }, "B's answer names B's own secret")
  t.ok(s.seen.length > before, 'B was checked with its own credentials, not served from A')
  t.equal((await checker.check(ref, [], 'team-b')).code, 'AccessDenied', 'and B without credentials is denied')
})

t.test('negative answers are cached briefly, then asked again', async (t) => {
  let now = 1_000_000
  const { s, checker } = await setup(registry(), { clock: { now: () => now }, negativeTtlMs: 15_000 })
  const ref = parseReference(`${s.host}/app:v404`)
  t.equal((await checker.check(ref, [], 'ns')).code, 'RepositoryNotFound')
  const first = s.seen.length
  await checker.check(ref, [], 'ns')
  t.equal(s.seen.length, first, 'cached within the TTL')
  now += 15_001
  await checker.check(ref, [], 'ns')
  t.ok(s.seen.length > first, 'asked again after the TTL')
})

t.test('registry errors are never cached', async (t) => {
  const { s, checker } = await setup(registry())
  const ref = parseReference(`${s.host}/flaky:v1`)
  t.equal((await checker.check(ref, [], 'ns')).code, 'RegistryUnreachable')
  t.equal((await checker.check(ref, [], 'ns')).code, 'RegistryUnreachable')
  t.equal(s.seen.length, 2)
})

t.test("a waiter's deadline ends its wait, not the shared check", async (t) => {
  const { s, checker } = await setup(registry({ delayMs: 400 }))
  const ref = parseReference(`${s.host}/app:v1`)
  const [short, long] = await Promise.all([checker.check(ref, [], 'ns', AbortSignal.timeout(100)), checker.check(ref, [], 'ns', AbortSignal.timeout(5000))])
  t.match(short, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.match(long, { code: 'Exists' })
  t.equal(s.seen.length, 1)
})

t.test('a 429 pauses that registry: no request until its Retry-After has passed, for every image on it', async (t) => {
  let now = 1_000_000
  const clock = { now: () => now }
  let retryAfter: string | undefined = '9'
  const { s, checker } = await setup((req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }) })
    res.end('{"errors":[{"code":"TOOMANYREQUESTS"}]}')
  }, { clock })
  const first = await checker.check(parseReference(`${s.host}/app:v1`), [], 'ns')
  t.match(first, { code: 'RateLimited', retryAfterSeconds: 9 })
  const asked = s.seen.length
  t.ok(asked >= 1)
  now += 8_000
  const during = await checker.check(parseReference(`${s.host}/other:v2`), [], 'ns')
  t.match(during, { code: 'RateLimited', retryAfterSeconds: 1, detail: `${s.host} is rate limiting pulls (HTTP 429); not asked again for 1s` })
  t.equal(s.seen.length, asked, 'another image on the paused registry: answered from memory, no request')
  t.same([...checker.pauses.current().keys()], [s.host])
  now += 1_001
  retryAfter = undefined
  await checker.check(parseReference(`${s.host}/app:v1`), [], 'ns')
  t.ok(s.seen.length > asked, 'asked again once the pause is over')
  t.equal(Math.round((checker.pauses.remaining(s.host) ?? 0) / 1000), 30, 'without Retry-After: 30 s')
})
