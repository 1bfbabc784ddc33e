// Proves the integration harness itself: the real distribution registry in its three auth modes,
// seeding through its API, and the auth behaviour other integration tests rely on. Talks to the
// registry with undici directly, never through pullguard's own code.
import t from 'tap'
import { Agent, request } from 'undici'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import {
  MT,
  seedDockerManifestList,
  seedDockerSchema2,
  seedOciIndex,
  seedOciManifest,
  type PushAuth,
} from '../helpers/seed.js'
import { startTokenServer } from '../helpers/token-server.js'

// Every manifest type a runtime accepts. distribution 2.8 needs the exact types: `*/*` alone gets a
// 404 for OCI content and a schema1 conversion for Docker content.
const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ')
const ADMIN: PushAuth = { username: 'admin', password: 'admin-pw' }
const DEEP = 'team/sub/deep/app'
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`

const ca = await createTestCA()
t.teardown(() => ca.close())
const agent = new Agent({ connect: { ca: ca.caPem } })
t.teardown(() => agent.close())
const tokenServer = await startTokenServer({
  ca,
  users: { admin: ADMIN.password, reader: 'reader-pw' },
  grant: (user, repo, actions) =>
    user === 'admin' ? actions : user === 'reader' && repo === DEEP ? actions.filter((a) => a === 'pull') : [],
})
t.teardown(() => tokenServer.close())
const registries = {
  none: await startRegistry({ ca, auth: { kind: 'none' } }),
  htpasswd: await startRegistry({ ca, auth: { kind: 'htpasswd', users: { admin: ADMIN.password } } }),
  token: await startRegistry({ ca, auth: { kind: 'token', tokenServer } }),
}
for (const reg of Object.values(registries)) t.teardown(() => reg.close())

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, headers, dispatcher: agent })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

async function fetchToken(scope: string, auth?: string): Promise<string> {
  const url = new URL(tokenServer.realm)
  url.searchParams.set('service', tokenServer.service)
  url.searchParams.set('scope', scope)
  const res = await get(url.href, auth ? { authorization: auth } : {})
  const body = JSON.parse(res.text) as { token: string }
  return body.token
}

t.test('each registry starts on 127.0.0.1 and answers /v2/', async (t) => {
  for (const [kind, reg] of Object.entries(registries)) {
    t.match(reg.host, /^127\.0\.0\.1:\d+$/, kind)
    const res = await get(`${reg.origin}/v2/`)
    t.equal(res.status, kind === 'none' ? 200 : 401, kind)
    t.equal(res.headers['docker-distribution-api-version'], 'registry/2.0', kind)
  }
})

t.test('seeds every manifest kind in every auth mode, deep paths included', async (t) => {
  for (const [kind, reg] of Object.entries(registries)) {
    const auth = kind === 'none' ? undefined : ADMIN
    const header: Record<string, string> = { accept: ACCEPT }
    if (kind === 'htpasswd') header.authorization = basic(ADMIN.username, ADMIN.password)
    if (kind === 'token')
      header.authorization = `Bearer ${await fetchToken(`repository:${DEEP}:pull`, basic(ADMIN.username, ADMIN.password))}`
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]
    const seeded = [
      await seedOciManifest(reg, DEEP, 'oci', auth),
      await seedOciIndex(reg, DEEP, 'index', platforms, auth),
      await seedDockerSchema2(reg, DEEP, 'docker', auth),
      await seedDockerManifestList(reg, DEEP, 'list', platforms, auth),
      await seedOciManifest(reg, DEEP, 'oci-2', auth),
    ]
    t.not(seeded[0]?.digest, seeded[4]?.digest, `${kind}: different tags get different digests`)
    for (const s of seeded) {
      const res = await get(`${reg.origin}/v2/${DEEP}/manifests/${s.tag}`, header, 'HEAD')
      t.equal(res.status, 200, `${kind} ${s.tag}`)
      t.equal(res.headers['docker-content-digest'], s.digest, `${kind} ${s.tag} digest`)
      t.equal(res.headers['content-type'], s.mediaType, `${kind} ${s.tag} media type`)
      for (const child of s.children ?? []) {
        const c = await get(`${reg.origin}/v2/${DEEP}/manifests/${child.digest}`, header, 'HEAD')
        t.equal(c.status, 200, `${kind} ${s.tag} child ${child.platform.architecture}`)
      }
    }
    t.equal(seeded[1]?.children?.length, 2)
  }
})

t.test('htpasswd registry challenges anonymous clients with Basic', async (t) => {
  const res = await get(`${registries.htpasswd.origin}/v2/`)
  t.equal(res.status, 401)
  t.match(res.headers['www-authenticate'], /^Basic realm="[^"]+"$/)
})

t.test('token registry challenges with Bearer pointing at the token server', async (t) => {
  const res = await get(`${registries.token.origin}/v2/${DEEP}/manifests/oci`, { accept: ACCEPT })
  t.equal(res.status, 401)
  t.equal(
    res.headers['www-authenticate'],
    `Bearer realm="${tokenServer.realm}",service="${tokenServer.service}",scope="repository:${DEEP}:pull"`,
  )
})

t.test('a token granted pull reads the manifest and its digest', async (t) => {
  const seeded = await seedOciManifest(registries.token, DEEP, 'pull-me', ADMIN)
  const token = await fetchToken(`repository:${DEEP}:pull`, basic('reader', 'reader-pw'))
  const res = await get(`${registries.token.origin}/v2/${DEEP}/manifests/pull-me`, {
    accept: ACCEPT,
    authorization: `Bearer ${token}`,
  })
  t.equal(res.status, 200)
  t.equal(res.headers['docker-content-digest'], seeded.digest)
  t.match(tokenServer.requests.at(-1), { user: 'reader', scope: `repository:${DEEP}:pull`, status: 200 })
})

t.test('an empty grant is a 200 token that the registry refuses with insufficient_scope', async (t) => {
  const token = await fetchToken('repository:team/other:pull')
  t.match(tokenServer.requests.at(-1), { user: null, status: 200 })
  const res = await get(`${registries.token.origin}/v2/team/other/manifests/v1`, {
    accept: ACCEPT,
    authorization: `Bearer ${token}`,
  })
  t.equal(res.status, 401)
  t.match(
    res.headers['www-authenticate'],
    /^Bearer realm=".+",service=".+",scope="repository:team\/other:pull",error="insufficient_scope"$/,
  )
})

t.test('the token server refuses wrong credentials with 401 JSON', async (t) => {
  const url = `${tokenServer.realm}?service=${tokenServer.service}&scope=repository:${DEEP}:pull`
  const res = await get(url, { authorization: basic('admin', 'wrong') })
  t.equal(res.status, 401)
  t.match(JSON.parse(res.text), { errors: [{ code: 'UNAUTHORIZED' }] })
  t.match(tokenServer.requests.at(-1), { user: 'admin', status: 401 })
})
