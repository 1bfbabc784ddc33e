// The result cache and single-flight in front of the registry client.
import { createHash } from 'node:crypto'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { CachedChecker, UNANSWERED_TTL_MS } from '../../src/registry/cached-checker.js'
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
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': DIGEST,
        })
        return res.end()
      }
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(
        req.url?.includes('/tags/list')
          ? '{"errors":[{"code":"NAME_UNKNOWN"}]}'
          : '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}',
      )
    }, opts.delayMs ?? 0)
  }
}

async function setup(
  handler: Handler,
  options: Partial<ConstructorParameters<typeof CachedChecker>[1]> = {},
): Promise<{ s: FakeServer; checker: CachedChecker }> {
  const s = await startFakeServer(handler, ca)
  const client = new RegistryClient({
    trust: { extraCaPem: ca.caPem },
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  })
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

t.test("a tag's answer also answers its digest: a pod pinned to it is judged without a request", async (t) => {
  const { s, checker } = await setup(registry({ basic: true }), { keepDigestAnswers: true })
  const tag = parseReference(`${s.host}/app:v1`)
  t.match(await checker.check(tag, [secretA], 'team-a'), { code: 'Exists', digest: DIGEST })
  t.equal(checker.size, 2, 'the answer kept for the tag and for its digest')
  const seen = s.seen.length
  t.match(await checker.check(parseReference(`${s.host}/app@${DIGEST}`), [secretA], 'team-a'), {
    code: 'Exists',
    digest: DIGEST,
    decidedBy: secretA.label,
  })
  t.match(
    await checker.check(parseReference(`${s.host}/app:other@${DIGEST}`), [secretB], 'team-b'),
    { code: 'Exists', decidedBy: secretB.label },
    'with a tag beside it, and the same credential value from another namespace',
  )
  t.equal(s.seen.length, seen, 'no request')
  // Other credentials are a question of their own, as for the tag.
  await checker.check(parseReference(`${s.host}/app@${DIGEST}`), [], 'team-a')
  t.equal(s.seen.length, seen + 1)
  // Without the option (no pinning), a tag's answer takes one entry.
  const plain = await setup(registry())
  await plain.checker.check(parseReference(`${plain.s.host}/app:v1`), [], 'team-a')
  t.equal(plain.checker.size, 1)
})

t.test('with keepDigestAnswers, a registry that did not answer in time is not asked again for a while', async (t) => {
  const clock = { now: (): number => now }
  let now = 1_000_000
  const hanging: Handler = () => undefined
  const { s, checker } = await setup(hanging, { keepDigestAnswers: true, checkBudgetMs: 300, clock })
  const ref = parseReference(`${s.host}/app:v1`)
  t.match(await checker.check(ref, [], 'team-a'), { code: 'RegistryUnreachable', cause: 'timeout' })
  const seen = s.seen.length
  t.match(await checker.check(ref, [], 'team-a'), { code: 'RegistryUnreachable' }, 'the validating review right after')
  t.equal(s.seen.length, seen, 'not waited for again')
  now += UNANSWERED_TTL_MS + 1
  await checker.check(ref, [], 'team-a')
  t.ok(s.seen.length > seen, 'asked again once the while is over')
  const plain = await setup(hanging, { checkBudgetMs: 300 })
  const other = parseReference(`${plain.s.host}/app:v1`)
  await plain.checker.check(other, [], 'team-a')
  const once = plain.s.seen.length
  await plain.checker.check(other, [], 'team-a')
  t.ok(plain.s.seen.length > once, 'without it, a registry error is never kept')
})

t.test('50 concurrent checks of one new image make one registry request', async (t) => {
  const { s, checker } = await setup(registry({ delayMs: 100 }))
  const ref = parseReference(`${s.host}/app:v1`)
  const results = await Promise.all(Array.from({ length: 50 }, () => checker.check(ref, [], 'team-a')))
  t.ok(results.every((r) => r.code === 'Exists'))
  t.equal(s.seen.length, 1)
})

t.test(
  'an answer is shared only with namespaces holding the same credential values, under their own labels',
  async (t) => {
    const { s, checker } = await setup(registry({ basic: true }))
    const ref = parseReference(`${s.host}/app:v1`)
    const a = await checker.check(ref, [secretA], 'team-a')
    t.match(a, { code: 'Exists', decidedBy: secretA.label })
    const before = s.seen.length
    const b = await checker.check(ref, [secretB], 'team-b')
    t.match(b, { code: 'Exists', decidedBy: secretB.label, digest: DIGEST }, "B's answer names B's own secret")
    t.equal(s.seen.length, before, 'B holds the same value: the same request, so no new one')
    t.equal(checker.size, 1, 'one entry for both')
    t.equal(checker.expiresAt(b), checker.expiresAt(a), 'the relabelled answer expires with the one it came from')
    t.ok(checker.expiresAt(b)! > Date.now())
    t.match(
      await checker.check(ref, [secretA], 'team-a'),
      { decidedBy: secretA.label },
      "A's answer still names A's secret",
    )

    const other: Credential = { label: secretB.label, username: 'u', password: 'another-value' }
    await checker.check(ref, [other], 'team-c')
    t.equal(s.seen.length, before + 1, 'the same secret name with another value is asked on its own')
    t.equal((await checker.check(ref, [], 'team-b')).code, 'AccessDenied', 'and B without credentials is denied')
  },
)

t.test('the credential that decided is found by position: order and duplicates', async (t) => {
  // Only the second value can read: the first is refused.
  const { s, checker } = await setup((req, res) => {
    const good = `Basic ${Buffer.from('u:good').toString('base64')}`
    if (req.headers.authorization !== good) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'docker-content-digest': DIGEST,
    })
    res.end()
  })
  const ref = parseReference(`${s.host}/app:v1`)
  const bad = (label: string): Credential => ({ label, username: 'u', password: 'bad' })
  const good = (label: string): Credential => ({ label, username: 'u', password: 'good' })
  t.match(await checker.check(ref, [bad('a/first'), good('a/second')], 'a'), { code: 'Exists', decidedBy: 'a/second' })
  const asked = s.seen.length
  t.match(
    await checker.check(ref, [bad('b/one'), good('b/two')], 'b'),
    { code: 'Exists', decidedBy: 'b/two' },
    'relabelled with the credential at the same position',
  )
  t.equal(s.seen.length, asked)
  t.match(
    await checker.check(ref, [good('c/two'), bad('c/one')], 'c'),
    { code: 'Exists', decidedBy: 'c/two' },
    'another order is another question',
  )
  t.ok(s.seen.length > asked)
})

t.test(
  'one secret listed twice, and two secrets with that value: the same question, each named as its own',
  async (t) => {
    const { s, checker } = await setup(registry({ basic: true }))
    const ref = parseReference(`${s.host}/app:v1`)
    const value = (label: string): Credential => ({ label, username: 'u', password: 'one-value' })
    const twice = value('a/regcred')
    t.match(await checker.check(ref, [twice, twice], 'a'), { code: 'Exists', decidedBy: 'a/regcred' })
    const asked = s.seen.length
    t.match(
      await checker.check(ref, [value('b/first'), value('b/second')], 'b'),
      { code: 'Exists', decidedBy: 'b/first' },
      'the first of them decided, as the kubelet would',
    )
    t.equal(s.seen.length, asked, 'no request: the same values in the same order')
  },
)

t.test(
  "a negative answer for the same values (another namespace's, or the audit's) ends the shared Exists",
  async (t) => {
    let gone = false
    const { s, checker } = await setup((req, res) => {
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
        return res.end()
      }
      if (!gone && req.url === '/v2/app/manifests/v1') {
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': DIGEST,
        })
        return res.end()
      }
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
    })
    const ref = parseReference(`${s.host}/app:v1`)
    t.match(await checker.check(ref, [secretA], 'team-a'), { code: 'Exists' })
    gone = true
    const b = await checker.fresh(ref, [secretB], 'team-b')
    t.not(b.code, 'Exists', 'B asks afresh (the audit): the image is gone')
    const asked = s.seen.length
    t.equal((await checker.check(ref, [secretA], 'team-a')).code, b.code, 'A is no longer served the old Exists')
    t.ok(s.seen.length > asked, 'A asked again: its negative answer names its own secret')
  },
)

t.test('negative answers name the secrets tried, so they are never shared across namespaces', async (t) => {
  const { s, checker } = await setup((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
    res.end()
  })
  const ref = parseReference(`${s.host}/app:v1`)
  const a = await checker.check(ref, [secretA], 'team-a')
  t.match(a, { code: 'AccessDenied' })
  t.match(a.code === 'AccessDenied' ? a.detail : '', secretA.label)
  const asked = s.seen.length
  t.equal((await checker.check(ref, [secretA], 'team-a')).code, 'AccessDenied')
  t.equal(s.seen.length, asked, 'cached for its own namespace')
  const b = await checker.check(ref, [secretB], 'team-b')
  t.ok(s.seen.length > asked, 'asked again for B')
  t.match(b.code === 'AccessDenied' ? b.detail : '', secretB.label)
  t.notMatch(b.code === 'AccessDenied' ? b.detail : '', secretA.label, "B's message never names A's secret")
})

t.test('what answers share is shared: media types and platform lists are one frozen copy', async (t) => {
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: DIGEST,
        size: 2,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: DIGEST,
        size: 2,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
    ],
  })
  const indexDigest = 'sha256:' + createHash('sha256').update(index).digest('hex')
  const { s, checker } = await setup((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.index.v1+json',
      'docker-content-digest': indexDigest,
    })
    res.end(req.method === 'HEAD' ? undefined : index)
  })
  const one = await checker.check(parseReference(`${s.host}/one:v1`), [], 'ns')
  const two = await checker.check(parseReference(`${s.host}/two:v1`), [], 'ns')
  t.ok(one.code === 'Exists' && two.code === 'Exists')
  if (one.code !== 'Exists' || two.code !== 'Exists') return
  t.same(one.platforms, [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ])
  t.equal(one.platforms, two.platforms, 'one list for both answers')
  t.ok(Object.isFrozen(one.platforms) && Object.isFrozen(one.platforms?.[0]), 'frozen: no answer can change another')
  t.equal(one.mediaType, 'application/vnd.oci.image.index.v1+json')
  t.same(one.attempts, [], 'the attempt log is not kept')
})

t.test('the results held are bounded: the answer set longest ago leaves first', async (t) => {
  const { s, checker } = await setup(registry(), { maxEntries: 2 })
  for (const tag of ['v1', 'v2', 'v3']) await checker.check(parseReference(`${s.host}/app:${tag}`), [], 'ns')
  t.equal(checker.size, 2)
  const before = s.seen.length
  await checker.check(parseReference(`${s.host}/app:v3`), [], 'ns')
  t.equal(s.seen.length, before, 'the newest is still cached')
  await checker.check(parseReference(`${s.host}/app:v1`), [], 'ns')
  t.ok(s.seen.length > before, 'the oldest was asked again')
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
  const [short, long] = await Promise.all([
    checker.check(ref, [], 'ns', AbortSignal.timeout(100)),
    checker.check(ref, [], 'ns', AbortSignal.timeout(5000)),
  ])
  t.match(short, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.match(long, { code: 'Exists' })
  t.equal(s.seen.length, 1)
})

t.test('a 429 pauses that registry: no request until its Retry-After has passed, for every image on it', async (t) => {
  let now = 1_000_000
  const clock = { now: () => now }
  let retryAfter: string | undefined = '9'
  const { s, checker } = await setup(
    (_req, res) => {
      res.writeHead(429, {
        'content-type': 'application/json',
        ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
      })
      res.end('{"errors":[{"code":"TOOMANYREQUESTS"}]}')
    },
    { clock },
  )
  const first = await checker.check(parseReference(`${s.host}/app:v1`), [], 'ns')
  t.match(first, { code: 'RateLimited', retryAfterSeconds: 9 })
  const asked = s.seen.length
  t.ok(asked >= 1)
  now += 8_000
  const during = await checker.check(parseReference(`${s.host}/other:v2`), [], 'ns')
  t.match(during, {
    code: 'RateLimited',
    retryAfterSeconds: 1,
    detail: `${s.host} is rate limiting pulls (HTTP 429); not asked again for 1s`,
  })
  t.equal(s.seen.length, asked, 'another image on the paused registry: answered from memory, no request')
  t.same([...checker.pauses.current().keys()], [s.host])
  now += 1_001
  retryAfter = undefined
  await checker.check(parseReference(`${s.host}/app:v1`), [], 'ns')
  t.ok(s.seen.length > asked, 'asked again once the pause is over')
  t.equal(Math.round((checker.pauses.remaining(s.host) ?? 0) / 1000), 30, 'without Retry-After: 30 s')
})
