// Registries that misbehave: every fault ends in a classified result within the deadline, never an
// exception or a hang. Tiny Node servers on 127.0.0.1 stand in for what the real registry can't do.
import { createHash } from 'node:crypto'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { RegistryClient, type CheckResult, type Credential } from '../../src/registry/index.js'
import { closedPort, startFakeServer, startRawServer, type FakeServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const MANIFEST = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}')
const DIGEST = 'sha256:' + createHash('sha256').update(MANIFEST).digest('hex')
const user: Credential = { label: 'secret ns/creds key "fake"', username: 'u', password: 'p@ss' }

const exists: Handler = (req, res) => {
  res.writeHead(200, {
    'content-type': 'application/vnd.oci.image.manifest.v1+json',
    'docker-content-digest': DIGEST,
    'content-length': MANIFEST.length,
  })
  res.end(req.method === 'HEAD' ? undefined : MANIFEST)
}

async function server(handler: Handler, tls = true): Promise<FakeServer> {
  const s = await startFakeServer(handler, tls ? ca : undefined)
  t.teardown(() => s.close())
  return s
}
function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ trust: { extraCaPem: ca.caPem }, requestTimeoutMs: 400, ...options })
  t.teardown(() => c.close())
  return c
}
async function timed(p: Promise<CheckResult>): Promise<{ r: CheckResult; ms: number }> {
  const started = Date.now()
  const r = await p
  return { r, ms: Date.now() - started }
}
const ref = (host: string, rest = 'app:v1') => parseReference(`${host}/${rest}`)

t.test('a server that never sends headers: timeout within the per-request limit', async (t) => {
  const s = await server(() => undefined)
  const { r, ms } = await timed(client().checkManifest(ref(s.host), []))
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.ok(ms < 400 + 1500, `answered after ${ms} ms`)
})

t.test('the overall deadline cuts a hanging request short', async (t) => {
  const s = await server(() => undefined)
  const { r, ms } = await timed(
    client({ requestTimeoutMs: 30_000 }).checkManifest(ref(s.host), [], { signal: AbortSignal.timeout(250) }),
  )
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout', detail: /time budget/ })
  t.ok(ms < 250 + 1500, `answered after ${ms} ms`)
})

t.test('credentials left untried when the deadline passes make the answer unknown, not denied', async (t) => {
  const s = await server((req, res) => {
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    setTimeout(() => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      res.end()
    }, 300)
  })
  const other: Credential = { label: 'secret ns/second key "fake"', username: 'x', password: 'y' }
  const r = await client({ requestTimeoutMs: 5000 }).checkManifest(ref(s.host), [user, other], {
    signal: AbortSignal.timeout(200),
  })
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.match(r.attempts[1], { credential: other.label, detail: /not tried/ })
})

t.test('a server that hangs mid-body: timeout', async (t) => {
  const s = await server((req, res) => {
    // No digest header on HEAD forces a GET; the GET body stops half way.
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': MANIFEST.length,
    })
    if (req.method === 'HEAD') return res.end()
    res.write(MANIFEST.subarray(0, 10))
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RegistryUnreachable', cause: 'timeout' })
})

t.test('a server that trickles one byte at a time is cut off by the per-request limit', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    if (req.method === 'HEAD') return res.end()
    const timer = setInterval(() => res.write(' '), 50)
    res.on('close', () => clearInterval(timer))
  })
  const { r, ms } = await timed(client().checkManifest(ref(s.host), []))
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.ok(ms < 400 * 2 + 1500, `answered after ${ms} ms`)
})

t.test('a connection reset is RegistryUnreachable (reset)', async (t) => {
  const s = await server((req) => req.socket.destroy())
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RegistryUnreachable', cause: 'reset' })
})

t.test('a refused connection is RegistryUnreachable (refused)', async (t) => {
  const port = await closedPort()
  t.match(await client().checkManifest(ref(`127.0.0.1:${port}`), []), { code: 'RegistryUnreachable', cause: 'refused' })
})

t.test('a TLS handshake answered with garbage is RegistryUnreachable (tls)', async (t) => {
  const s = await startRawServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'))
  t.teardown(() => s.close())
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RegistryUnreachable', cause: 'tls' })
})

t.test('an HTTP answer that is not HTTP is RegistryUnreachable (bad-response)', async (t) => {
  const s = await startRawServer((socket) => socket.once('data', () => socket.end('HELLO THIS IS NOT HTTP\r\n\r\n')))
  t.teardown(() => s.close())
  const r = await client({ insecureRegistries: [s.host] }).checkManifest(ref(s.host), [])
  t.match(r, { code: 'RegistryUnreachable', cause: 'bad-response' })
})

for (const status of [500, 502, 503]) {
  t.test(`HTTP ${status} is RegistryUnreachable (5xx)`, async (t) => {
    const s = await server((_req, res) => {
      res.writeHead(status)
      res.end()
    })
    t.match(await client().checkManifest(ref(s.host), []), {
      code: 'RegistryUnreachable',
      cause: '5xx',
      attempts: [{ status }],
    })
  })
}

t.test('429 with Retry-After is RateLimited with the delay', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(429, { 'retry-after': '30', 'content-type': 'application/json' })
    res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit"}]}')
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RateLimited', retryAfterSeconds: 30 })
})

t.test('429 without Retry-After is RateLimited without a delay', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(429)
    res.end()
  })
  const r = await client().checkManifest(ref(s.host), [])
  t.equal(r.code, 'RateLimited')
  t.notOk('retryAfterSeconds' in r)
})

t.test('a registry that refuses HEAD (405) is asked with GET', async (t) => {
  const s = await server((req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(405)
      return res.end()
    }
    exists(req, res, [])
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'Exists', digest: DIGEST })
  t.same(
    s.seen.map((q) => q.method),
    ['HEAD', 'GET'],
  )
})

t.test('without Docker-Content-Digest the digest is computed from the GET body', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    res.end(req.method === 'HEAD' ? undefined : MANIFEST)
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'Exists', digest: DIGEST })
})

t.test('a manifest over 4 MiB is refused as a bad response, not buffered', async (t) => {
  let written = 0
  let closed!: () => void
  const disconnected = new Promise<void>((r) => (closed = r))
  const s = await server((req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
    if (req.method === 'HEAD') return res.end()
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const pump = (): void => {
      while (written < 100 * 1024 * 1024 && !res.destroyed) {
        written += chunk.length
        if (!res.write(chunk)) return
      }
      res.end()
    }
    res.on('drain', pump)
    res.on('close', () => closed())
    pump()
  })
  const r = await client({ requestTimeoutMs: 5000 }).checkManifest(ref(s.host), [])
  t.match(r, { code: 'RegistryUnreachable', cause: 'bad-response', detail: /larger than 4194304 bytes/ })
  await disconnected
  // What the server managed to write is the 4 MiB we read plus what sat in socket buffers, not 100 MiB.
  t.ok(written < 16 * 1024 * 1024, `server wrote ${written} bytes before the client hung up`)
})

t.test('a HEAD announcing a manifest over 4 MiB is refused without reading it', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'docker-content-digest': DIGEST,
      'content-length': String(5 * 1024 * 1024),
    })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /refuse manifests over/,
  })
  t.same(
    s.seen.map((q) => q.method),
    ['HEAD'],
  )
})

t.test('a manifest GET whose body is not a JSON object is a bad response', async (t) => {
  for (const body of ['{"schemaVersion": 2, "mediaType": ', '[1,2]', '']) {
    const s = await server((req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(405).end()
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(body)
    })
    t.match(
      await client().checkManifest(ref(s.host), []),
      { code: 'RegistryUnreachable', cause: 'bad-response', detail: /not a JSON object/ },
      JSON.stringify(body),
    )
  }
})

t.test('a 200 that is a login page, not a manifest, is a bad response', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(req.method === 'HEAD' ? undefined : '<html><body>Please sign in</body></html>')
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /not a manifest \(text\/html\)/,
  })
})

t.test('a manifest served as application/json is recognized by its content', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'docker-content-digest': DIGEST })
    res.end(req.method === 'HEAD' ? undefined : MANIFEST)
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'Exists',
    digest: DIGEST,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
  })
})

t.test('a Docker-Content-Digest that is not a digest is a bad response', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'docker-content-digest': 'not-a-digest',
    })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /not a digest/,
  })
})

t.test('asked for one digest, answering another is a bad response', async (t) => {
  const s = await server(exists)
  const other = 'sha256:' + 'b'.repeat(64)
  t.match(await client().checkManifest(ref(s.host, `app@${other}`), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /when asked for/,
  })
})

t.test('a repository readable anonymously is not failed by a stale Basic password', async (t) => {
  const s = await server((req, res) => {
    if (req.url?.includes('/private/') && req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    // Every password is stale here, and like Nexus the registry refuses one even where anonymous reads are fine.
    if (req.url?.includes('/private/') || req.headers.authorization !== undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    exists(req, res, [])
  })
  const c = client()
  t.equal((await c.checkManifest(ref(s.host, 'private/app:v1'), [user])).code, 'AccessDenied')
  const seen = s.seen.length
  t.match(await c.checkManifest(ref(s.host, 'public/app:v1'), [user]), { code: 'Exists', decidedBy: user.label })
  t.same(
    s.seen.slice(seen).map((r) => (r.headers.authorization === undefined ? 'anonymous' : 'basic')),
    ['basic', 'anonymous'],
    'Basic first (the host asked for it before), refused, then anonymous as on the node',
  )
})

t.test('a credential without a password cannot answer a Basic challenge', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
    res.end()
  })
  const noPassword: Credential = { label: 'secret ns/np key "fake"', username: 'u', password: '' }
  t.match(await client().checkManifest(ref(s.host), [noPassword]), { code: 'AccessDenied', detail: /has none/ })
  t.equal(s.seen.length, 1)
})

t.test('a redirect to another host is followed without the Authorization header', async (t) => {
  const target = await server(exists)
  const s = await server((req, res) => {
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    res.writeHead(307, { location: `${target.origin}/blobs/manifest?sig=abc` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), [user]), { code: 'Exists', decidedBy: user.label })
  t.ok(
    s.seen.some((q) => q.headers.authorization !== undefined),
    'credentials went to the registry',
  )
  t.equal(target.seen.length, 1)
  t.equal(target.seen[0]?.headers.authorization, undefined, 'and not to the redirect target')
})

t.test('a redirect on the same origin keeps the Authorization header', async (t) => {
  const s = await server((req, res) => {
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      return res.end()
    }
    if (req.url?.startsWith('/v2/')) {
      res.writeHead(307, { location: '/moved' })
      return res.end()
    }
    exists(req, res, [])
  })
  t.match(await client().checkManifest(ref(s.host), [user]), { code: 'Exists' })
  t.ok(s.seen.at(-1)?.headers.authorization?.startsWith('Basic '))
})

t.test('manifest HEADs keep their connection open (no TLS handshake per image)', async (t) => {
  const s = await server(exists)
  const c = client({ connectionsPerOrigin: 1 })
  for (let i = 0; i < 5; i++) t.match(await c.checkManifest(ref(s.host, `app:v${i}`), []), { code: 'Exists' })
  t.same(
    s.seen.map((r) => r.method),
    ['HEAD', 'HEAD', 'HEAD', 'HEAD', 'HEAD'],
  )
  t.equal(new Set(s.seen.map((r) => r.connection)).size, 1, 'one connection for all five')
})

t.test('a redirect loop ends as a bad response', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(302, { location: '/again' })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /redirected more than/,
  })
})

t.test('a redirect or a token realm pointing at a metadata address is refused without a request', async (t) => {
  // 169.254.169.254 is unroutable here: a connection attempt would hang until the timeout.
  for (const target of [
    'http://169.254.169.254/latest/meta-data/',
    'https://169.254.169.254/m',
    'https://[fd00:ec2::254]/m',
    'https://metadata.google.internal/computeMetadata/v1/',
    'https://2852039166/m',
  ]) {
    const s = await server((_req, res) => {
      res.writeHead(307, { location: target })
      res.end()
    })
    const { r, ms } = await timed(client().checkManifest(ref(s.host), [user]))
    t.match(r, { code: 'RegistryUnreachable', cause: 'metadata-host', detail: /redirected to .*refused/ }, target)
    t.ok(ms < 300, `refused at once (${ms} ms), not after a connection attempt`)
  }
  const realm = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://169.254.169.254/token",service="x"' })
    res.end()
  })
  const { r, ms } = await timed(client().checkManifest(ref(realm.host), [user]))
  t.match(r, { code: 'RegistryUnreachable', cause: 'metadata-host', detail: /169\.254\.169\.254/ }, 'token realm')
  t.ok(ms < 300, `refused at once (${ms} ms)`)
  t.match(
    await client().checkManifest(ref('169.254.169.254'), []),
    { code: 'RegistryUnreachable', cause: 'metadata-host' },
    'and the registry itself, should a caller ask',
  )
})

t.test('a redirect down to plain HTTP is refused', async (t) => {
  const plain = await server(exists, false)
  const s = await server((_req, res) => {
    res.writeHead(307, { location: `${plain.origin}/m` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RegistryUnreachable', cause: 'tls' })
  t.equal(plain.seen.length, 0)
})

t.test('an insecure registry that speaks plain HTTP is reached over HTTP; others are not', async (t) => {
  const plain = await server(exists, false)
  t.match(await client({ insecureRegistries: [plain.host] }).checkManifest(ref(plain.host), []), {
    code: 'Exists',
    digest: DIGEST,
  })
  t.match(await client().checkManifest(ref(plain.host), []), { code: 'RegistryUnreachable', cause: 'tls' })
})

t.test('a 401 without any challenge is AccessDenied', async (t) => {
  const s = await server((_req, res) => {
    res.writeHead(401)
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'AccessDenied',
    detail: /without a usable authentication challenge/,
  })
})

t.test('a token realm over plain HTTP is refused and the credentials are never sent', async (t) => {
  const realm = await server((_req, res) => res.end('{"token":"t"}'), false)
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), [user]), {
    code: 'RegistryUnreachable',
    cause: 'tls',
    detail: /not HTTPS/,
  })
  t.equal(realm.seen.length, 0)
})

t.test('a token server that hangs: timeout', async (t) => {
  const realm = await server(() => undefined)
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'timeout',
    detail: /token server/,
  })
})

t.test('a token server refusing an anonymous token means not found or private, not wrong credentials', async (t) => {
  const realm = await server((_req, res) => {
    res.writeHead(403)
    res.end()
  })
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RepositoryNotFoundOrDenied' })
  t.match(await client().checkManifest(ref(s.host), [user]), { code: 'AccessDenied' })
})

for (const [name, token] of [
  ['a token with characters a header cannot carry', 'abc\r\nx-injected: 1'],
  ['a token of 100 KB', 'a'.repeat(20_000)],
] as const) {
  t.test(`${name} is refused, not cached`, async (t) => {
    const realm = await server((_req, res) => res.end(JSON.stringify({ token })))
    const s = await server((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
      res.end()
    })
    t.match(await client().checkManifest(ref(s.host), []), {
      code: 'RegistryUnreachable',
      cause: 'bad-response',
      detail: /no usable token/,
    })
  })
}

t.test('callers sharing one token fetch each stop at their own deadline', async (t) => {
  const realm = await server((_req, res) => setTimeout(() => res.end('{"token":"shared-token"}'), 800))
  const s = await server((req, res) => {
    if (req.headers.authorization !== 'Bearer shared-token') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
      return res.end()
    }
    exists(req, res, [])
  })
  const c = client({ requestTimeoutMs: 5000 })
  const short = timed(c.checkManifest(ref(s.host), [], { signal: AbortSignal.timeout(200) }))
  const long = timed(c.checkManifest(ref(s.host), [], { signal: AbortSignal.timeout(5000) }))
  const [a, b] = await Promise.all([short, long])
  t.match(a.r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.ok(a.ms < 700, `the short caller left after ${a.ms} ms, before the token arrived`)
  t.match(b.r, { code: 'Exists' }, 'the patient caller got the shared token')
  t.equal(realm.seen.length, 1, 'one token request for both')
})

t.test('without a caller deadline the default deadline still bounds a check', async (t) => {
  const s = await server(() => undefined)
  const { r, ms } = await timed(
    client({ requestTimeoutMs: 30_000, defaultDeadlineMs: 300 }).checkManifest(ref(s.host), []),
  )
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.ok(ms < 300 + 1500, `answered after ${ms} ms`)
})

t.test('a token server that returns no token: bad response', async (t) => {
  const realm = await server((_req, res) => res.end('{"expires_in":300}'))
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), {
    code: 'RegistryUnreachable',
    cause: 'bad-response',
    detail: /sent no usable token/,
  })
})

t.test('a rate-limited token server is RateLimited', async (t) => {
  const realm = await server((_req, res) => {
    res.writeHead(429, { 'retry-after': '12' })
    res.end()
  })
  const s = await server((_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="s"` })
    res.end()
  })
  t.match(await client().checkManifest(ref(s.host), []), { code: 'RateLimited', retryAfterSeconds: 12 })
})

t.test('concurrent requests per origin are capped', async (t) => {
  let inflight = 0
  let peak = 0
  const s = await server((req, res) => {
    peak = Math.max(peak, ++inflight)
    setTimeout(() => {
      inflight--
      exists(req, res, [])
    }, 50)
  })
  const c = client({ connectionsPerOrigin: 2, requestTimeoutMs: 5000 })
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => c.checkManifest(ref(s.host, `app:v${i}`), [])))
  t.ok(results.every((r) => r.code === 'Exists'))
  t.equal(peak, 2, 'two requests at a time, never more')
  t.equal(s.seen.length, 12)
})
