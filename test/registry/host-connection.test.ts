// How a host with its own settings is reached, as containerd reaches it: plain HTTP only by
// containerd's fallback rule (resolver.go isTLSError / isPortError), the client certificate in the
// handshake (for the token realm too), and the dial and handshake limits. The rules are tables; the
// behaviour is real servers on 127.0.0.1.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { realmConnection } from '../../src/registry/auth-flow.js'
import { StepTimeout, stepLimits } from '../../src/registry/connector.js'
import type { Endpoint, EndpointTls } from '../../src/registry/endpoint.js'
import { RegistryClient } from '../../src/registry/index.js'
import {
  ConnectFailureError,
  connectFailure,
  containerdFallsBack,
  fallsBackAfter,
  type ConnectFailure,
} from '../../src/registry/plain-fallback.js'
import { TransportError } from '../../src/registry/transport-error.js'
import { closedPort, startFakeServer, startRawServer, type FakeServer } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { countRequests } from '../helpers/request-counter.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const MANIFEST = Buffer.from('{"schemaVersion":2}')
const DIGEST = 'sha256:' + createHash('sha256').update(MANIFEST).digest('hex')
const ref = parseReference('registry.example/shop/app:v1')
const containerd = (portWritten: boolean): EndpointTls['plainFallback'] => ({ rule: 'containerd', portWritten })

function exists(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': DIGEST })
  res.end()
}

function client(host: string, tls: EndpointTls | undefined, options: { tlsHandshakeTimeoutMs?: number } = {}) {
  const endpoint: Endpoint = {
    host,
    root: '/v2',
    repository: 'shop/app',
    credentials: true,
    label: host,
    ...(tls === undefined ? {} : { tls }),
  }
  const c = new RegistryClient({
    trust: { extraCaPem: ca.caPem },
    router: { endpoints: () => [endpoint], generation: 1 },
    requestTimeoutMs: 2_000,
    ...options,
  })
  t.teardown(() => c.close())
  return c
}

t.test("Node's connect errors, as the failures containerd's fallback rule names", async (t) => {
  const table: Array<[string, unknown, ConnectFailure | undefined]> = [
    [
      'a plain-HTTP answer to the handshake',
      Object.assign(new Error('ssl3_get_record:wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }),
      'plain-answer',
    ],
    [
      'the same from the socket write path',
      Object.assign(new Error('write EPROTO ...:wrong version number:...'), { code: 'EPROTO' }),
      'plain-answer',
    ],
    [
      'another protocol error',
      Object.assign(new Error('write EPROTO ...:bad record mac'), { code: 'EPROTO' }),
      undefined,
    ],
    ['a handshake timeout', new StepTimeout('handshake', 10_000), 'handshake-timeout'],
    ['a dial timeout', new StepTimeout('dial', 500), 'dial-timeout'],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'refused'],
    [
      'an untrusted certificate',
      Object.assign(new Error('self-signed'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
      undefined,
    ],
    ['an expired one', Object.assign(new Error('expired'), { code: 'CERT_HAS_EXPIRED' }), undefined],
    ['a reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), undefined],
    [
      "pullguard's own bound",
      Object.assign(new Error('Connect Timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }),
      undefined,
    ],
  ]
  for (const [name, err, failure] of table) t.equal(connectFailure(err), failure, name)
})

t.test(
  'containerd falls back after isTLSError, and after isPortError only for a host written without a port',
  async (t) => {
    const table: Array<[ConnectFailure | undefined, boolean, boolean]> = [
      // [failure, port written, falls back]
      ['plain-answer', true, true],
      ['plain-answer', false, true],
      ['handshake-timeout', true, true],
      ['handshake-timeout', false, true],
      ['refused', true, false],
      ['refused', false, true],
      ['dial-timeout', true, false],
      ['dial-timeout', false, true],
      [undefined, true, false],
      [undefined, false, false],
    ]
    for (const [failure, portWritten, falls] of table)
      t.equal(
        containerdFallsBack({ rule: 'containerd', portWritten }, failure),
        falls,
        `${failure ?? 'a certificate error'}, port ${portWritten ? 'written' : 'not written'}`,
      )
  },
)

t.test('each runtime its rule: any TLS failure for Docker and CRI-O hosts, containerd its own', async (t) => {
  const certificate = new TransportError('tls', 'TLS with h failed: CERT_HAS_EXPIRED')
  const plainAnswer = new ConnectFailureError('tls', 'TLS with h failed', 'plain-answer')
  const refused = new ConnectFailureError('refused', 'connection to h refused', 'refused')
  const table: Array<[string, EndpointTls['plainFallback'], TransportError, boolean]> = [
    ['insecure: a certificate error', true, certificate, true],
    ['insecure: a plain answer', true, plainAnswer, true],
    ['insecure: refused', true, refused, false],
    ['containerd: a certificate error', containerd(true), certificate, false],
    ['containerd: a plain answer', containerd(true), plainAnswer, true],
    ['containerd: refused, port written', containerd(true), refused, false],
    ['containerd: refused, no port', containerd(false), refused, true],
    ['no fallback', false, plainAnswer, false],
    ['none configured', undefined, plainAnswer, false],
  ]
  for (const [name, setting, err, falls] of table) t.equal(fallsBackAfter(setting, err), falls, name)
})

t.test(
  "each connect step's limit: the host's dial_timeout and Go's handshake limit, within pullguard's bound",
  async (t) => {
    const table: Array<[string, Parameters<typeof stepLimits>[0], ReturnType<typeof stepLimits>]> = [
      [
        'no dial_timeout: the bound for the dial, 10 s for the handshake when the bound allows it',
        { boundMs: 15_000, handshakeTimeoutMs: 10_000 },
        { dialMs: 15_000, dialIsRuntimes: false, handshakeMs: 10_000, handshakeIsRuntimes: true },
      ],
      [
        'a dial_timeout inside the bound is the dial limit',
        { boundMs: 4_000, dialTimeoutMs: 1_500, handshakeTimeoutMs: 10_000 },
        { dialMs: 1_500, dialIsRuntimes: true, handshakeMs: 4_000, handshakeIsRuntimes: false },
      ],
      [
        "a dial_timeout longer than the bound: the bound, and running into it is pullguard's timeout",
        { boundMs: 4_000, dialTimeoutMs: 30_000, handshakeTimeoutMs: 10_000 },
        { dialMs: 4_000, dialIsRuntimes: false, handshakeMs: 4_000, handshakeIsRuntimes: false },
      ],
      [
        'dial_timeout 0: no limit of its own (Go)',
        { boundMs: 4_000, dialTimeoutMs: 0, handshakeTimeoutMs: 10_000 },
        { dialMs: 4_000, dialIsRuntimes: false, handshakeMs: 4_000, handshakeIsRuntimes: false },
      ],
    ]
    for (const [name, limits, want] of table) t.same(stepLimits(limits), want, name)
  },
)

t.test(
  "a token realm gets the host's CA, client certificate and dial timeout; another host's is always verified, never plain",
  async (t) => {
    const client = [{ certPem: 'CERT', keyPem: 'KEY' }]
    const table: Array<[string, EndpointTls | undefined, boolean, EndpointTls | undefined]> = [
      ['no settings', undefined, false, undefined],
      [
        'same host: everything',
        { verify: false, caPem: 'CA', plainFallback: containerd(true) },
        true,
        { verify: false, caPem: 'CA', plainFallback: containerd(true) },
      ],
      [
        'another host: verified, no fallback',
        { verify: false, caPem: 'CA', clientCertificates: client, dialTimeoutMs: 500, plainFallback: true },
        false,
        { verify: true, caPem: 'CA', clientCertificates: client, dialTimeoutMs: 500 },
      ],
      ['another host, only skip_verify: the usual trust', { verify: false, plainFallback: true }, false, undefined],
    ]
    for (const [name, tls, sameHost, want] of table) t.same(realmConnection(tls, sameHost), want, name)
  },
)

t.test('containerd: a server answering the handshake in plain HTTP is asked again over HTTP', async (t) => {
  const plain = await startFakeServer(exists)
  t.teardown(() => plain.close())
  const counter = countRequests()
  t.teardown(() => counter.stop())
  t.match(await client(plain.host, { verify: false, plainFallback: containerd(true) }).checkManifest(ref, []), {
    code: 'Exists',
    digest: DIGEST,
  })
  t.equal(counter.count(`http://${plain.host}`), 1)
})

t.test('containerd: a certificate that does not verify is the pull’s error; no plain HTTP is tried', async (t) => {
  const other = await createTestCA('unknown CA')
  t.teardown(() => other.close())
  const untrusted = await startFakeServer(exists, other)
  t.teardown(() => untrusted.close())
  const counter = countRequests()
  t.teardown(() => counter.stop())
  t.match(await client(untrusted.host, { verify: true, plainFallback: containerd(true) }).checkManifest(ref, []), {
    code: 'RegistryUnreachable',
    cause: 'tls',
  })
  t.equal(counter.count(`http://${untrusted.host}`), 0, 'containerd: no second try')
  await client(untrusted.host, { verify: true, plainFallback: true }).checkManifest(ref, [])
  t.equal(
    counter.count(`http://${untrusted.host}`),
    1,
    'the insecure-registry rule tries plain HTTP after any TLS failure',
  )
})

t.test(
  'containerd: a handshake that times out (a plain server waiting for more) is asked again over HTTP',
  async (t) => {
    // Never answers a TLS ClientHello (record type 0x16); answers a plain request as a registry.
    const waiting = await startRawServer((socket) =>
      socket.once('data', (chunk: Buffer) => {
        if (chunk[0] === 0x16) return
        socket.end(
          `HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ndocker-content-digest: ${DIGEST}\r\ncontent-length: 0\r\n\r\n`,
        )
      }),
    )
    t.teardown(() => waiting.close())
    const quick = { tlsHandshakeTimeoutMs: 150 }
    t.match(
      await client(waiting.host, { verify: false, plainFallback: containerd(true) }, quick).checkManifest(ref, []),
      {
        code: 'Exists',
      },
    )
    t.match(
      await client(waiting.host, { verify: false, plainFallback: true }, quick).checkManifest(ref, []),
      { code: 'RegistryUnreachable', cause: 'timeout', detail: /TLS handshake timeout/ },
      'not a TLS failure: the insecure-registry rule does not fall back',
    )
  },
)

t.test('containerd: a refused connection on a host written with its port is the error', async (t) => {
  const port = await closedPort()
  t.match(
    await client(`127.0.0.1:${port}`, { verify: false, plainFallback: containerd(true) }).checkManifest(ref, []),
    {
      code: 'RegistryUnreachable',
      cause: 'refused',
    },
  )
})

t.test('dial_timeout reaches the dialer: a negative one fails every dial at once, as Go', async (t) => {
  const s = await startFakeServer(exists, ca)
  t.teardown(() => s.close())
  const started = performance.now()
  t.match(await client(s.host, { verify: true, dialTimeoutMs: -1000 }).checkManifest(ref, []), {
    code: 'RegistryUnreachable',
    cause: 'timeout',
    detail: /dial timeout/,
  })
  t.ok(performance.now() - started < 1_000, 'at once, not at the per-request timeout')
  t.match(
    await client(s.host, { verify: true, dialTimeoutMs: 1_500 }).checkManifest(ref, []),
    { code: 'Exists' },
    'a positive one lets a quick host answer',
  )
})

/** An HTTPS server that accepts only clients presenting a certificate `clientCa` issued. */
async function mtlsServer(
  clientCa: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<FakeServer & { peers: string[] }> {
  const cert = await ca.issue('mtls registry', {})
  const peers: string[] = []
  const server = createHttpsServer(
    { cert: cert.certPem, key: cert.keyPem, requestCert: true, rejectUnauthorized: true, ca: clientCa },
    (req, res) => {
      peers.push(`${req.url} ${(req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ''}`)
      handler(req, res)
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const s = {
    host,
    origin: `https://${host}`,
    seen: [],
    peers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  t.teardown(() => s.close())
  return s
}

t.test('a mirror that requires a client certificate: answered with `client`, a TLS failure without', async (t) => {
  const clientCa = await createTestCA('client CA')
  t.teardown(() => clientCa.close())
  const issued = await clientCa.issue('node client', {})
  const mirror = await mtlsServer(clientCa.caPem, exists)
  const clientCertificates = [{ certPem: issued.certPem, keyPem: issued.keyPem }]
  t.match(await client(mirror.host, { verify: true, clientCertificates }).checkManifest(ref, []), { code: 'Exists' })
  // TLS 1.3: the server refuses once the handshake is done, so the client reads its alert or only the close.
  t.match(
    await client(mirror.host, { verify: true }).checkManifest(ref, []),
    { code: 'RegistryUnreachable', cause: /^(tls|reset)$/ },
    'without the certificate, no answer: unverified',
  )
  t.match(mirror.peers, [/node client$/], 'only the request with the certificate got through')
})

t.test('the token realm on the same host gets the client certificate too', async (t) => {
  const clientCa = await createTestCA('client CA')
  t.teardown(() => clientCa.close())
  const issued = await clientCa.issue('node client', {})
  const harbor = await mtlsServer(clientCa.caPem, (req, res) => {
    if (req.url?.startsWith('/service/token')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end('{"token":"mtls-token-1","expires_in":300}')
    }
    if (req.headers.authorization !== 'Bearer mtls-token-1') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="https://${req.headers.host}/service/token",service="h"` })
      return res.end()
    }
    exists(req, res)
  })
  const clientCertificates = [{ certPem: issued.certPem, keyPem: issued.keyPem }]
  t.match(await client(harbor.host, { verify: true, clientCertificates }).checkManifest(ref, []), { code: 'Exists' })
  t.match(harbor.peers, [/^\/v2\/.* node client$/, /^\/service\/token.* node client$/, /^\/v2\/.* node client$/])
})

t.test("a token realm on another host: the host's CA serves it, its skip_verify does not", async (t) => {
  const realmCa = await createTestCA('realm CA')
  t.teardown(() => realmCa.close())
  const realm = await startFakeServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"token":"realm-token-1","expires_in":300}')
  }, realmCa)
  t.teardown(() => realm.close())
  const registry = await startFakeServer((req, res) => {
    if (req.headers.authorization !== 'Bearer realm-token-1') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.origin}/token",service="r"` })
      return res.end()
    }
    exists(req, res)
  }, ca)
  t.teardown(() => registry.close())
  t.match(
    await client(registry.host, { verify: true, caPem: realmCa.caPem }).checkManifest(ref, []),
    { code: 'Exists' },
    "the host's CA, as containerd's host client has it",
  )
  t.match(
    await client(registry.host, { verify: false }).checkManifest(ref, []),
    { code: 'RegistryUnreachable', cause: 'tls' },
    'the credentials would go to a host nobody named: verified all the same',
  )
  t.equal(realm.seen.length, 1, 'the unverified realm got no request')
})
