import { Writable } from 'node:stream'
import { KubeConfig } from '@kubernetes/client-node'
import t from 'tap'
import { ApiTrouble, describeApiProblem, kubeconfigFound, type ApiProblemCode } from '../../src/kube/api-trouble.js'
import { createLogger } from '../../src/log/logger.js'

const S = 'https://10.0.0.1:6443'
const list = { verb: 'list', resource: 'secrets' }
const sys = (code: string): Error => Object.assign(new Error(`connect ${code} secret-body`), { code })

const table: Array<[string, unknown, ApiProblemCode, RegExp]> = [
  ['client-node ApiException 401', { code: 401, body: 'x' }, 'Unauthorized', /401 Unauthorized/],
  [
    'client-node ApiException 403',
    { code: 403, body: 'x' },
    'Forbidden',
    /may not list secrets \(403 Forbidden\): its ClusterRole must grant get, list and watch on secrets/,
  ],
  ['statusCode 500', { statusCode: 500 }, 'ApiError', /answered HTTP 500 to list secrets/],
  ['node-fetch ECONNREFUSED', sys('ECONNREFUSED'), 'Refused', /^connection refused at https:\/\/10\.0\.0\.1:6443/],
  [
    'nested cause ECONNREFUSED',
    Object.assign(new Error('fetch failed'), { cause: sys('ECONNREFUSED') }),
    'Refused',
    /connection refused/,
  ],
  ['ENOTFOUND', sys('ENOTFOUND'), 'Unresolvable', /cannot be resolved \(ENOTFOUND\)/],
  ['TLS', sys('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'Tls', /TLS with .* failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/],
  ['timeout', sys('ETIMEDOUT'), 'Unreachable', /no answer from the API server at .* \(ETIMEDOUT\)/],
  ['no code at all', new Error('boom'), 'Unreachable', /^no answer from the API server at https:\/\/10\.0\.0\.1:6443$/],
]
for (const [name, err, code, text] of table) {
  t.test(`describeApiProblem: ${name}`, async (t) => {
    const p = describeApiProblem(err, S, list)
    t.equal(p.code, code)
    t.match(p.text, text)
    t.notMatch(p.text, 'secret-body', 'never the error message')
  })
}

t.test("kubeconfigFound: false only for client-node's made-up fallback cluster", async (t) => {
  const none = new KubeConfig()
  none.loadFromClusterAndUser(
    { name: 'cluster', server: 'http://localhost:8080', skipTLSVerify: false },
    { name: 'user' },
  )
  t.notOk(kubeconfigFound(none))
  t.equal(
    describeApiProblem(new Error('HTTP protocol is not allowed'), 'http://localhost:8080', list, false).code,
    'NoKubeconfig',
  )
  const real = new KubeConfig()
  real.loadFromClusterAndUser({ name: 'prod', server: S, skipTLSVerify: false }, { name: 'pullguard', token: 't' })
  t.ok(kubeconfigFound(real))
})

t.test(
  'ApiTrouble: one warning per cause across copies, debug after; a copy recovering clears only its own',
  async (t) => {
    const lines: Array<{ level: number; msg: string }> = []
    const sink = new Writable({
      write(c: Buffer, _e, done) {
        for (const l of c.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l))
        done()
      },
    })
    const kc = new KubeConfig()
    kc.loadFromClusterAndUser({ name: 'prod', server: S, skipTLSVerify: false }, { name: 'pullguard', token: 't' })
    const trouble = new ApiTrouble(kc, createLogger('debug', sink))
    const warns = (): string[] => lines.filter((l) => l.level === 40).map((l) => l.msg)
    for (const who of ['secrets', 'namespaces', 'secrets', 'namespaces'])
      trouble.failed(who, sys('ECONNREFUSED'), { verb: 'list', resource: who }, 1000)
    t.equal(warns().length, 1, 'a refused connection is said once for every copy')
    trouble.failed('secrets', { code: 403 }, list, 2000)
    trouble.failed('secrets', { code: 403 }, list, 4000)
    t.equal(warns().length, 2, 'a new cause is said once')
    trouble.recovered('namespaces')
    t.notOk(
      lines.some((l) => l.msg === 'Kubernetes API usable again'),
      'secrets still fail',
    )
    trouble.failed('secrets', { code: 403 }, list, 8000)
    t.equal(warns().length, 2, 'still quiet for the same cause')
    trouble.recovered('secrets')
    t.ok(lines.some((l) => l.msg === 'Kubernetes API usable again'))
    trouble.failed('secrets', { code: 403 }, list, 1000)
    t.equal(warns().length, 3, 'after recovering, a failure is news again')
    await new Promise((r) => sink.end(r))
  },
)
