// The schema 1 helper against the real CNCF distribution registry: the push is accepted only with
// schema 1 enabled, the registry serves it back as a signed schema 1 manifest under the digest of its
// payload, and pullguard's client reports what it found as that media type.
import { createHash } from 'node:crypto'
import t from 'tap'
import { Agent, request } from 'undici'
import { parseReference } from '../../src/reference/index.js'
import { RegistryClient } from '../../src/registry/index.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { pushSchema1, SCHEMA1_SIGNED, schema1Payload } from '../helpers/schema1.js'

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

const ca = await createTestCA()
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' }, schema1: true })
t.teardown(() => registry.close())
const pushed = await pushSchema1(registry, 'legacy/old', '2015')

t.test('a registry without schema 1 enabled refuses the push', async (t) => {
  const plain = await startRegistry({ ca, auth: { kind: 'none' } })
  t.teardown(() => plain.close())
  // ErrSchemaV1Unsupported is a plain Go error: the body says UNKNOWN with an empty detail.
  await t.rejects(pushSchema1(plain, 'legacy/old', '2015'), /PUT legacy\/old:2015 → 500: .*"code":"UNKNOWN"/)
})

t.test('a GET by tag answers the signed schema 1 type, re-signed, under the payload digest', async (t) => {
  const agent = new Agent({ connect: { ca: registry.caPem } })
  t.teardown(() => agent.close())
  const res = await request(`${registry.origin}/v2/legacy/old/manifests/2015`, {
    headers: { accept: `${SCHEMA1_SIGNED}, application/vnd.docker.distribution.manifest.v1+json` },
    dispatcher: agent,
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], SCHEMA1_SIGNED)
  t.equal(res.headers['docker-content-digest'], pushed.digest)
  t.equal(sha256(schema1Payload(body)), pushed.digest, 'the digest is of the payload without signatures')
  t.same(schema1Payload(body), schema1Payload(pushed.signed), 'the payload is the one pushed')
  t.not(body.toString(), pushed.signed.toString(), 'distribution signs it again with its own key')
  t.not(sha256(pushed.signed), pushed.digest, 'the bytes PUT hash to something else')
})

t.test('the registry checked our signature: one changed signature character is MANIFEST_UNVERIFIED', async (t) => {
  const agent = new Agent({ connect: { ca: registry.caPem } })
  t.teardown(() => agent.close())
  const tampered = pushed.signed
    .toString()
    .replace(/"signature": "(.)/, (_, c: string) => `"signature": "${c === 'A' ? 'B' : 'A'}`)
  const res = await request(`${registry.origin}/v2/legacy/old/manifests/tampered`, {
    method: 'PUT',
    headers: { 'content-type': SCHEMA1_SIGNED },
    body: tampered,
    dispatcher: agent,
  })
  t.equal(res.statusCode, 400)
  t.match(await res.body.json(), { errors: [{ code: 'MANIFEST_UNVERIFIED' }] })
})

t.test("pullguard's client finds it by tag and by digest as a signed schema 1 manifest", async (t) => {
  const client = new RegistryClient({ trust: { extraCaPem: ca.caPem } })
  t.teardown(() => client.close())
  for (const rest of ['legacy/old:2015', `legacy/old@${pushed.digest}`]) {
    const r = await client.checkManifest(parseReference(`${registry.host}/${rest}`), [])
    t.match(r, { code: 'Exists', digest: pushed.digest, mediaType: SCHEMA1_SIGNED }, rest)
  }
})
