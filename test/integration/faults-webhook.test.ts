// Faults, seen from the API server's side: for each misbehaving registry, token server or
// Kubernetes API, a review of an image there is answered within --timeout plus a small margin,
// with the reason named, and the next review of a healthy image is answered at once and allowed.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { loadFixture, startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { startFakeServer, startRawServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startWebhook } from '../helpers/webhook.js'

const TIMEOUT_MS = 1500
/** Time to build and send the answer, and for a loaded CI machine. */
const MARGIN_MS = 700

const ca = await createTestCA()
t.teardown(() => ca.close())
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
kube.put('namespaces', { ...loadFixture<any>('api/namespace.json'), metadata: { name: 'faults', labels: {} } })

const MANIFEST = Buffer.from(
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' +
    'a'.repeat(64) +
    '","size":2},"layers":[]}',
)
const DIGEST = 'sha256:' + createHash('sha256').update(MANIFEST).digest('hex')
const exists: Handler = (req, res) => {
  res.writeHead(200, {
    'content-type': 'application/vnd.oci.image.manifest.v1+json',
    'docker-content-digest': DIGEST,
    'content-length': MANIFEST.length,
  })
  res.end(req.method === 'HEAD' ? undefined : MANIFEST)
}
const healthy = await startFakeServer(exists, ca)
t.teardown(() => healthy.close())

/** HEAD is refused (405), so the client asks with GET, whose body does the damage. */
const onGet =
  (get: (req: IncomingMessage, res: ServerResponse) => void): Handler =>
  (req, res) => {
    if (req.method === 'HEAD') return void res.writeHead(405).end()
    get(req, res)
  }
const hangingTokenServer = await startFakeServer(() => undefined, ca)
const emptyTokenServer = await startFakeServer(
  (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
  ca,
)
t.teardown(() => hangingTokenServer.close())
t.teardown(() => emptyTokenServer.close())
const bearer =
  (realm: string): Handler =>
  (_req, res) =>
    void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}/token",service="faults"` }).end()

const faults: Array<[string, () => Promise<{ host: string; close(): Promise<void> }>, RegExp]> = [
  ['hangs before headers', () => startFakeServer(() => undefined, ca), /timeout|did not answer|time budget/],
  [
    'hangs mid-body',
    () =>
      startFakeServer(
        onGet((_req, res) => {
          res.writeHead(200, {
            'content-type': 'application/vnd.oci.image.manifest.v1+json',
            'content-length': MANIFEST.length,
          })
          res.write(MANIFEST.subarray(0, 10))
        }),
        ca,
      ),
    /timeout|did not answer|time budget/,
  ],
  ['resets the connection', () => startRawServer((socket) => socket.resetAndDestroy()), /reset|closed the connection/],
  ['fails the TLS handshake', () => startRawServer((socket) => socket.end('this is not TLS\r\n\r\n')), /tls|TLS/],
  ['answers 500', () => startFakeServer((_req, res) => void res.writeHead(500).end(), ca), /5xx|HTTP 500/],
  ['answers 502', () => startFakeServer((_req, res) => void res.writeHead(502).end(), ca), /5xx|HTTP 502/],
  ['answers 503', () => startFakeServer((_req, res) => void res.writeHead(503).end(), ca), /5xx|HTTP 503/],
  [
    'answers 429 with Retry-After',
    () => startFakeServer((_req, res) => void res.writeHead(429, { 'retry-after': '120' }).end(), ca),
    /rate limiting \(retry after 120s\)/,
  ],
  [
    'answers 429 without Retry-After',
    () => startFakeServer((_req, res) => void res.writeHead(429).end(), ca),
    /rate limiting/,
  ],
  [
    'sends a manifest that is not JSON',
    () =>
      startFakeServer(
        onGet(
          (_req, res) =>
            void res
              .writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
              .end('{"schemaVersion": 2, "mediaType": '),
        ),
        ca,
      ),
    /bad-response/,
  ],
  [
    'sends a 100 MB manifest',
    () =>
      startFakeServer(
        onGet((_req, res) => {
          res.writeHead(200, {
            'content-type': 'application/vnd.oci.image.manifest.v1+json',
            'content-length': 100 * 1024 * 1024,
          })
          const chunk = Buffer.alloc(1024 * 1024, 0x20)
          let sent = 0
          const more = (): void => {
            while (sent < 100 && res.write(chunk)) sent++
            if (sent < 100) res.once('drain', more)
            else res.end()
          }
          more()
        }),
        ca,
      ),
    /larger than|bad-response/,
  ],
  [
    'names a token server that hangs',
    () => startFakeServer(bearer(hangingTokenServer.origin), ca),
    /timeout|time budget|did not answer/,
  ],
  [
    'names a token server that returns no token',
    () => startFakeServer(bearer(emptyTokenServer.origin), ca),
    /no usable token|bad-response/,
  ],
  [
    'redirects in a loop',
    () => startFakeServer((_req, res) => void res.writeHead(302, { location: '/again' }).end(), ca),
    /redirected more than/,
  ],
]

const hook = await startWebhook({ ca, kube, args: ['--timeout', `${TIMEOUT_MS / 1000}s`] })
t.teardown(() => hook.close())

function review(image: string, secrets: string[] = []): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = `fault-${Math.random().toString(16).slice(2)}`
  r.request.namespace = 'faults'
  r.request.object.metadata.namespace = 'faults'
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = [{ name: 'app', image }]
  r.request.object.spec.imagePullSecrets = secrets.map((name) => ({ name }))
  return r
}

async function timedPost(body: unknown): Promise<{ ms: number; response: any }> {
  const started = Date.now()
  const res = await hook.post(body)
  return { ms: Date.now() - started, response: res.body.response }
}

async function healthyStillWorks(t: Test, what: string): Promise<void> {
  const { ms, response } = await timedPost(review(`${healthy.host}/team/app:${Math.random().toString(16).slice(2, 8)}`))
  t.same(response.allowed, true, `${what}: a healthy image right after is allowed`)
  t.equal(response.warnings, undefined, `${what}: without warnings`)
  t.ok(ms < 500, `${what}: and answered at once (${ms} ms)`)
}

for (const [name, start, reason] of faults) {
  t.test(`a registry that ${name}`, async (t) => {
    const server = await start()
    t.teardown(() => server.close())
    const { ms, response } = await timedPost(review(`${server.host}/team/app:1`))
    t.ok(ms < TIMEOUT_MS + MARGIN_MS, `answered after ${ms} ms (--timeout ${TIMEOUT_MS} ms)`)
    t.equal(response.allowed, true, 'an unverifiable image is allowed by --on-registry-error=allow')
    t.match(response.warnings?.join('\n'), reason, 'the warning names what went wrong')
    t.match(response.warnings?.join('\n'), server.host, 'and where')
    await healthyStillWorks(t, name)
  })
}

t.test('the Kubernetes API: a secret read that fails (500) or hangs, and a dropped watch', async (t) => {
  kube.faults.push({ match: /secrets\/broken-api/, status: 500 }, { match: /secrets\/hanging-api/, hang: true })
  t.teardown(() => void kube.faults.splice(0))
  for (const secret of ['broken-api', 'hanging-api']) {
    const { ms, response } = await timedPost(review(`${healthy.host}/team/app:1`, [secret]))
    t.ok(ms < TIMEOUT_MS + MARGIN_MS, `${secret}: answered after ${ms} ms`)
    t.equal(response.allowed, true, `${secret}: a pull secret pullguard could not read never causes a denial`)
    t.match(response.warnings?.join('\n'), new RegExp(`"${secret}" \\(could not be read\\)`))
    await healthyStillWorks(t, secret)
  }
  kube.dropWatches()
  await healthyStillWorks(t, 'a dropped watch')
})
