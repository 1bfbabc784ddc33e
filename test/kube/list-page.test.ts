// listPage: a list page read as the API's JSON, with the kubeconfig's TLS and token, the server
// URL's own path kept, the query as given, and failures as values the reflector understands.
import { KubeConfig } from '@kubernetes/client-node'
import t from 'tap'
import { ListError, listPage } from '../../src/kube/list-page.js'
import { startFakeServer, type Handler } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'

const ca = await createTestCA()
t.teardown(() => ca.close())

async function setup(
  handler: Handler,
  prefix = '',
): Promise<{ kc: KubeConfig; seen: Array<{ url: string; headers: Record<string, unknown> }> }> {
  const s = await startFakeServer(handler, ca)
  t.teardown(() => s.close())
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `${s.origin}${prefix}`, caData: Buffer.from(ca.caPem).toString('base64') }],
    users: [{ name: 'u', token: 'list-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  })
  return { kc, seen: s.seen }
}

const json =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

t.test(
  'a page: items as the API sent them, its version and continue token; the token and query on the wire',
  async (t) => {
    const items = [
      {
        metadata: {
          name: 'a',
          namespace: 'n',
          creationTimestamp: '2026-12-01T00:00:00Z',
          managedFields: [{ manager: 'm' }],
        },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': 'e30=' },
      },
    ]
    const { kc, seen } = await setup(
      json(200, { kind: 'SecretList', metadata: { resourceVersion: '42', continue: 'next-page' }, items }),
      '/prefix/',
    )
    const page = await listPage(
      kc,
      '/api/v1/secrets',
      { limit: 500, continue: undefined, fieldSelector: 'type=kubernetes.io/dockerconfigjson' },
      AbortSignal.timeout(5000),
    )
    t.same(
      page,
      { items, resourceVersion: '42', continue: 'next-page' },
      'JSON, not model objects: the timestamp stays a string',
    )
    const url = new URL(seen[0]!.url, 'https://x')
    t.equal(url.pathname, '/prefix/api/v1/secrets', "the server URL's path is kept")
    t.same(
      Object.fromEntries(url.searchParams),
      { limit: '500', fieldSelector: 'type=kubernetes.io/dockerconfigjson' },
      'undefined parameters are left out',
    )
    t.equal(seen[0]!.headers['authorization'], 'Bearer list-token', "the kubeconfig's credentials")
    const last = await setup(json(200, { metadata: { resourceVersion: '43', continue: '' }, items: [] }))
    t.same(
      await listPage(last.kc, '/api/v1/namespaces', { limit: 500, continue: 'tok' }, AbortSignal.timeout(5000)),
      { items: [], resourceVersion: '43', continue: undefined },
      'an empty token ends the list',
    )
    t.equal(new URL(last.seen[0]!.url, 'https://x').searchParams.get('continue'), 'tok')
  },
)

t.test('an HTTP error is a ListError with the status and without the body', async (t) => {
  const { kc } = await setup(
    json(403, {
      kind: 'Status',
      message: 'secrets is forbidden: User "system:serviceaccount:x" cannot list resource "secrets"',
    }),
  )
  const err = await listPage(kc, '/api/v1/secrets', {}, AbortSignal.timeout(5000)).catch((e: unknown) => e)
  t.ok(err instanceof ListError)
  t.match(err, { code: 403, statusCode: 403 })
  t.notMatch((err as Error).message, /forbidden|User/, 'the message never quotes the answer')
  const gone = await setup(json(410, { kind: 'Status', code: 410 }))
  t.match(await listPage(gone.kc, '/api/v1/secrets', {}, AbortSignal.timeout(5000)).catch((e: unknown) => e), {
    statusCode: 410,
  })
})

t.test('an answer that is not a list, or not JSON, is an error; so is an abort', async (t) => {
  const notList = await setup(json(200, { kind: 'Status' }))
  await t.rejects(listPage(notList.kc, '/api/v1/secrets', {}, AbortSignal.timeout(5000)), /no items/)
  const notJson = await setup((_req, res) => res.end('<html>proxy error</html>'))
  await t.rejects(listPage(notJson.kc, '/api/v1/secrets', {}, AbortSignal.timeout(5000)), SyntaxError)
  const hang = await setup(() => undefined)
  const started = Date.now()
  await t.rejects(listPage(hang.kc, '/api/v1/secrets', {}, AbortSignal.timeout(200)))
  t.ok(Date.now() - started < 3000, 'the signal ends the wait')
})
