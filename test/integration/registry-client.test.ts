// The registry client against the real CNCF distribution server in its three auth modes.
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { RegistryClient, type Credential } from '../../src/registry/index.js'
import { MT } from '../helpers/seed.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { clientHarness } from '../helpers/client-harness.js'
import { startFakeServer } from '../helpers/fake-server.js'
import { seedDockerSchema2, seedOciIndex, seedOciManifest, type PushAuth } from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'

const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const cred = (label: string, username: string, password: string): Credential => ({ label, username, password })
const alice = cred('secret team/alice key "registry"', 'alice', 'alice-pw')
const aliceWrong = cred('secret team/alice-old key "registry"', 'alice', 'not-her-password')
const bob = cred('secret team/bob key "registry"', 'bob', 'bob-pw')

const ca = await createTestCA()
t.teardown(() => ca.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, alice: alice.password, bob: bob.password },
  grant: (user, repo, actions) => {
    if (user === 'admin') return actions
    const pull = actions.filter((a) => a === 'pull')
    if (repo.startsWith('public/')) return pull
    if (user === 'alice' && repo.startsWith('private/')) return pull
    return []
  },
})
t.teardown(() => tokenServer.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
const basic = await startRegistry({
  ca,
  auth: { kind: 'htpasswd', users: { admin: ADMIN.password, alice: alice.password } },
})
const token = await startRegistry({ ca, auth: { kind: 'token', tokenServer } })
for (const r of [open, basic, token]) t.teardown(() => r.close())

const seeded = {
  manifest: await seedOciManifest(open, 'app', 'v1'),
  index: await seedOciIndex(open, 'multi', 'v2', [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ]),
  schema2: await seedDockerSchema2(open, 'legacy/app', '1.0'),
  deep: await seedOciManifest(open, 'team/sub/deep/app', 'stable'),
  basicPrivate: await seedOciManifest(basic, 'private/app', 'v1', ADMIN),
  tokenPublic: await seedOciManifest(token, 'public/app', 'v1', ADMIN),
  tokenPrivate: await seedOciManifest(token, 'private/app', 'v1', ADMIN),
}

const { counter, newClient, ref } = clientHarness(t, ca, tokenServer)

t.test('finds an OCI image manifest by tag with a single HEAD', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'app:v1'), [])
  t.match(r, { code: 'Exists', digest: seeded.manifest.digest, mediaType: MT.ociManifest, decidedBy: 'anonymous' })
  t.same(counter.paths(open.origin), ['HEAD /v2/app/manifests/v1'])
})

t.test('finds an image by digest', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, `app@${seeded.manifest.digest}`), [])
  t.match(r, { code: 'Exists', digest: seeded.manifest.digest })
})

t.test('tag@digest pulls the digest and ignores the tag', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, `app:no-such-tag@${seeded.manifest.digest}`), [])
  t.match(r, { code: 'Exists', digest: seeded.manifest.digest })
  t.same(counter.paths(open.origin), [`HEAD /v2/app/manifests/${seeded.manifest.digest}`])
})

t.test('reports an OCI index with its media type', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'multi:v2'), [])
  t.match(r, { code: 'Exists', digest: seeded.index.digest, mediaType: MT.ociIndex })
})

t.test('reports a Docker schema2 manifest as itself, not a schema1 conversion', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'legacy/app:1.0'), [])
  t.match(r, { code: 'Exists', digest: seeded.schema2.digest, mediaType: MT.dockerManifest })
})

t.test('finds an image on a deep repository path', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'team/sub/deep/app:stable'), [])
  t.match(r, { code: 'Exists', digest: seeded.deep.digest })
})

t.test('a missing tag in an existing repository is TagNotFound', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'app:v9'), [])
  t.match(r, { code: 'TagNotFound', detail: /tag v9 does not exist in app/ })
  t.same(counter.paths(open.origin), ['HEAD /v2/app/manifests/v9', 'GET /v2/app/tags/list?n=1'])
})

t.test('a missing repository is RepositoryNotFound, not TagNotFound', async (t) => {
  const r = await newClient().checkManifest(ref(open.host, 'nothing/here:v1'), [])
  t.match(r, { code: 'RepositoryNotFound', detail: /repository nothing\/here does not exist/ })
})

t.test('a missing digest is DigestNotFound', async (t) => {
  const missing = 'sha256:' + 'a'.repeat(64)
  const r = await newClient().checkManifest(ref(open.host, `app@${missing}`), [])
  t.match(r, { code: 'DigestNotFound' })
})

t.test('Basic auth: the right password reads a private repository; once challenged, sent first', async (t) => {
  const client = newClient()
  const r = await client.checkManifest(ref(basic.host, 'private/app:v1'), [alice])
  t.match(r, { code: 'Exists', digest: seeded.basicPrivate.digest, decidedBy: alice.label })
  t.equal(counter.count(basic.origin), 2, 'HEAD → 401 Basic challenge → HEAD with credentials')
  counter.reset()
  t.match(await client.checkManifest(ref(basic.host, 'private/app:v1'), [alice]), { code: 'Exists' })
  t.equal(counter.count(basic.origin), 1, 'the registry asked for Basic before: one HEAD with credentials')
})

t.test('Basic sent first and refused: starts over anonymously, and the verdict is the same', async (t) => {
  const client = newClient()
  await client.checkManifest(ref(basic.host, 'private/app:v1'), [alice])
  counter.reset()
  const r = await client.checkManifest(ref(basic.host, 'private/app:v1'), [aliceWrong])
  t.match(r, { code: 'AccessDenied', attempts: [{ credential: aliceWrong.label, code: 'AccessDenied', status: 401 }] })
  t.equal(
    counter.count(basic.origin),
    3,
    'HEAD with the stale password → 401, anonymous HEAD → 401 challenge, HEAD with the password → 401',
  )
})

t.test('Basic sent first to an anonymous-readable repository: a stale password does not make it fail', async (t) => {
  // Registries like Nexus read some repositories anonymously and answer a wrong password with 401.
  const good = `Basic ${Buffer.from(`${alice.username}:${alice.password}`).toString('base64')}`
  const server = await startFakeServer((req, res) => {
    const auth = req.headers.authorization
    const publicRepo = req.url?.startsWith('/v2/public/') === true
    if ((publicRepo && auth === undefined) || auth === good) {
      return res
        .writeHead(200, {
          'content-type': MT.ociManifest,
          'docker-content-digest': `sha256:${'c'.repeat(64)}`,
          'content-length': '2',
        })
        .end()
    }
    res.writeHead(401, { 'www-authenticate': 'Basic realm="nexus"' }).end()
  }, ca)
  t.teardown(() => server.close())
  const client = newClient()
  t.match(await client.checkManifest(ref(server.host, 'private/app:v1'), [alice]), { code: 'Exists' })
  server.seen.splice(0)
  t.match(
    await client.checkManifest(ref(server.host, 'public/app:v1'), [aliceWrong]),
    { code: 'Exists' },
    'as on the node, whose pull starts anonymous',
  )
  t.same(
    server.seen.map((r) => (r.headers.authorization === undefined ? 'anonymous' : 'basic')),
    ['basic', 'anonymous'],
  )
})

t.test('Basic auth: a wrong password is AccessDenied naming the secret, never the password', async (t) => {
  const r = await newClient().checkManifest(ref(basic.host, 'private/app:v1'), [aliceWrong])
  t.match(r, { code: 'AccessDenied', attempts: [{ credential: aliceWrong.label, code: 'AccessDenied', status: 401 }] })
  const text = JSON.stringify(r)
  t.notMatch(text, /not-her-password/)
  t.notMatch(text, Buffer.from('alice:not-her-password').toString('base64'))
})

t.test('Basic auth: anonymous on a registry that requires login is AccessDenied', async (t) => {
  const r = await newClient().checkManifest(ref(basic.host, 'private/app:v1'), [])
  t.match(r, { code: 'AccessDenied', detail: /requires a username and password/ })
})

t.test('credentials are tried in order and the first success decides', async (t) => {
  const r = await newClient().checkManifest(ref(basic.host, 'private/app:v1'), [aliceWrong, alice])
  t.match(r, { code: 'Exists', decidedBy: alice.label })
  t.same(
    r.attempts.map((a) => [a.credential, a.code]),
    [
      [aliceWrong.label, 'AccessDenied'],
      [alice.label, 'Exists'],
    ],
  )
})

t.test('credentials after the first success are not tried', async (t) => {
  const r = await newClient().checkManifest(ref(basic.host, 'private/app:v1'), [alice, aliceWrong])
  t.equal(r.attempts.length, 1)
})

t.test('token auth: anonymous pull of a public repository', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'public/app:v1'), [])
  t.match(r, { code: 'Exists', digest: seeded.tokenPublic.digest })
  t.equal(counter.count(token.origin), 2, 'HEAD → 401, HEAD with token')
  t.match(tokenServer.requests, [{ user: null, scope: 'repository:public/app:pull', status: 200 }])
})

t.test('token auth: anonymous on a private repository is RepositoryNotFoundOrDenied', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'private/app:v1'), [])
  t.match(r, { code: 'RepositoryNotFoundOrDenied', detail: /does not exist or requires authorization/ })
})

t.test('token auth: a repository that does not exist looks exactly like a private one', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'ghost/app:v1'), [])
  t.equal(r.code, 'RepositoryNotFoundOrDenied')
})

t.test('token auth: the right user reads the private repository', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'private/app:v1'), [alice])
  t.match(r, { code: 'Exists', digest: seeded.tokenPrivate.digest, decidedBy: alice.label })
  t.match(tokenServer.requests, [{ user: 'alice', scope: 'repository:private/app:pull', status: 200 }])
})

t.test('token auth: a valid user without a grant gets RepositoryNotFoundOrDenied', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'private/app:v1'), [bob])
  t.match(r, { code: 'RepositoryNotFoundOrDenied', attempts: [{ credential: bob.label }] })
})

t.test('token auth: a wrong password is refused by the token server: AccessDenied', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'private/app:v1'), [aliceWrong])
  t.match(r, { code: 'AccessDenied', detail: /token server .* refused the credentials of secret team\/alice-old/ })
  const text = JSON.stringify(r)
  t.notMatch(text, /not-her-password/)
  t.notMatch(text, Buffer.from('alice:not-her-password').toString('base64'))
})

t.test('token auth: a credential with an empty password gets an anonymous token, as containerd does', async (t) => {
  const empty = cred('secret team/acr key "registry"', '00000000-0000-0000-0000-000000000000', '')
  t.match(await newClient().checkManifest(ref(token.host, 'public/app:v1'), [empty]), {
    code: 'Exists',
    decidedBy: empty.label,
  })
  t.match(tokenServer.requests, [{ user: null }])
})

t.test('token auth: results never carry a token', async (t) => {
  const client = newClient()
  const results = [
    await client.checkManifest(ref(token.host, 'private/app:v1'), [alice]),
    await client.checkManifest(ref(token.host, 'private/app:v1'), [bob]),
    await client.checkManifest(ref(token.host, 'private/app:v404'), [alice]),
  ]
  t.notMatch(JSON.stringify(results), /eyJ[A-Za-z0-9_-]{10,}/, 'no JWT in any result')
})

t.test('token auth: with a credential given, there is no anonymous fallback even for a public image', async (t) => {
  const r = await newClient().checkManifest(ref(token.host, 'public/app:v1'), [aliceWrong])
  t.equal(r.code, 'AccessDenied')
  t.notOk(
    tokenServer.requests.some((q) => q.user === null),
    'no anonymous token request',
  )
})

t.test('token auth: a granted repository with a missing tag vs a missing repository', async (t) => {
  const client = newClient()
  t.equal((await client.checkManifest(ref(token.host, 'private/app:v404'), [alice])).code, 'TagNotFound')
  t.equal((await client.checkManifest(ref(token.host, 'private/missing:v1'), [alice])).code, 'RepositoryNotFound')
})

t.test('token auth: a cached token makes the next check a single request and no token request', async (t) => {
  const client = newClient()
  await client.checkManifest(ref(token.host, 'private/app:v1'), [alice])
  t.equal(tokenServer.requests.length, 1)
  counter.reset()
  tokenServer.requests.splice(0)
  t.match(await client.checkManifest(ref(token.host, 'private/app:v1'), [alice]), { code: 'Exists' })
  t.equal(counter.count(token.origin), 1)
  t.equal(tokenServer.requests.length, 0)
})

t.test('token auth: tokens are cached per credential identity, not shared across credentials', async (t) => {
  const client = newClient()
  await client.checkManifest(ref(token.host, 'private/app:v1'), [alice])
  t.equal((await client.checkManifest(ref(token.host, 'private/app:v1'), [bob])).code, 'RepositoryNotFoundOrDenied')
  t.same(
    tokenServer.requests.map((q) => q.user),
    ['alice', 'bob'],
  )
})

t.test('token auth: an expired token is replaced', async (t) => {
  let now = Date.now()
  const client = new RegistryClient({ trust: { extraCaPem: ca.caPem }, clock: { now: () => now } })
  t.teardown(() => client.close())
  await client.checkManifest(ref(token.host, 'private/app:v1'), [alice])
  now += 299_000 // the token server says expires_in 300: past our early-refresh margin
  t.match(await client.checkManifest(ref(token.host, 'private/app:v1'), [alice]), { code: 'Exists' })
  t.equal(tokenServer.requests.length, 2)
})

t.test('token auth: a cached token the registry refuses gets one retry with a fresh token', async (t) => {
  const client = newClient()
  tokenServer.options.jwtLifetime = -120 // the registry already refuses these; we think they are good
  t.teardown(() => void (tokenServer.options.jwtLifetime = undefined))
  t.match(await client.checkManifest(ref(token.host, 'private/app:v1'), [alice]), { code: 'AccessDenied' })
  tokenServer.options.jwtLifetime = undefined
  counter.reset()
  tokenServer.requests.splice(0)
  t.match(await client.checkManifest(ref(token.host, 'private/app:v1'), [alice]), { code: 'Exists' })
  t.equal(counter.count(token.origin), 2, 'HEAD with stale token → 401 → HEAD with fresh token')
  t.equal(tokenServer.requests.length, 1)
})

t.test('token auth: a token answer with access_token only is accepted', async (t) => {
  tokenServer.options.tokenField = 'access_token'
  tokenServer.options.includeIssuedAt = false
  t.teardown(() => {
    tokenServer.options.tokenField = 'token'
    tokenServer.options.includeIssuedAt = true
  })
  t.match(await newClient().checkManifest(ref(token.host, 'private/app:v1'), [alice]), { code: 'Exists' })
})

t.test('concurrent checks with one credential share a single token request', async (t) => {
  const client = newClient()
  const results = await Promise.all(
    Array.from({ length: 20 }, () => client.checkManifest(ref(token.host, 'public/app:v1'), [bob])),
  )
  t.ok(results.every((r) => r.code === 'Exists'))
  t.equal(tokenServer.requests.length, 1)
})

t.test('an untrusted registry certificate is RegistryUnreachable (tls)', async (t) => {
  const client = new RegistryClient({ trust: { systemBundlePaths: [] } })
  t.teardown(() => client.close())
  t.match(await client.checkManifest(ref(open.host, 'app:v1'), []), { code: 'RegistryUnreachable', cause: 'tls' })
})

t.test('the CA file named by NODE_EXTRA_CA_CERTS is trusted', async (t) => {
  const client = new RegistryClient({ trust: { nodeExtraCaCertsPath: ca.caPath, systemBundlePaths: [] } })
  t.teardown(() => client.close())
  t.match(await client.checkManifest(ref(open.host, 'app:v1'), []), { code: 'Exists' })
})

t.test('insecure registries match whatever the case and default port', async (t) => {
  const port = open.host.split(':')[1]
  const client = new RegistryClient({ trust: { systemBundlePaths: [] }, insecureRegistries: [`LOCALHOST:${port}`] })
  t.teardown(() => client.close())
  t.match(await client.checkManifest(parseReference(`localhost:${port}/app:v1`), []), { code: 'Exists' })
})

t.test('an insecure registry is reached without certificate checks, and only that one', async (t) => {
  const client = new RegistryClient({ trust: { systemBundlePaths: [] }, insecureRegistries: [open.host] })
  t.teardown(() => client.close())
  t.match(await client.checkManifest(ref(open.host, 'app:v1'), []), { code: 'Exists' })
  t.match(await client.checkManifest(ref(basic.host, 'private/app:v1'), [alice]), {
    code: 'RegistryUnreachable',
    cause: 'tls',
  })
})
