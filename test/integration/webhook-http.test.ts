// The HTTP contract of /validate for bodies the API server would never send, and the CLI's
// configuration errors.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startFakeKubeApi, loadFixture } from '../helpers/fake-kube-api.js'
import { createTestCA } from '../helpers/pki.js'
import { startWebhook } from '../helpers/webhook.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const hook = await startWebhook({ ca, kube })
t.teardown(() => hook.close())

const valid = loadFixture<any>('admission/pod-create.json')
const cases: Array<[string, unknown, RegExp]> = [
  ['malformed JSON', '{"apiVersion": "admission.k8s.io/v1", "kind": ', /JSON/i],
  ['a JSON array', '[1,2,3]', /body must be a JSON object/],
  [
    'a wrong apiVersion',
    { ...valid, apiVersion: 'admission.k8s.io/v1beta1' },
    /apiVersion must be "admission.k8s.io\/v1", got "admission.k8s.io\/v1beta1"/,
  ],
  ['a wrong kind', { ...valid, kind: 'Pod' }, /kind must be "AdmissionReview"/],
  ['a missing request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
  ['a request without uid', { ...valid, request: { ...valid.request, uid: undefined } }, /request.uid/],
  ['an unknown operation', { ...valid, request: { ...valid.request, operation: 'PATCH' } }, /request.operation/],
  [
    'containers that are not a list',
    { ...valid, request: { ...valid.request, object: { ...valid.request.object, spec: { containers: 'nginx' } } } },
    /spec.containers must be an array/,
  ],
  [
    'a container that is not an object',
    { ...valid, request: { ...valid.request, object: { ...valid.request.object, spec: { containers: [42] } } } },
    /spec.containers\[0\] must be an object/,
  ],
  [
    'an UPDATE without oldObject',
    { ...valid, request: { ...valid.request, operation: 'UPDATE', oldObject: null } },
    /oldObject is required/,
  ],
  ['JSON null', 'null', /body must be a JSON object/],
]
for (const [name, body, reason] of cases) {
  t.test(`answers ${name} with HTTP 400 and a JSON reason`, async (t) => {
    const res = await hook.post(body)
    t.equal(res.status, 400)
    t.type(res.body, 'object', `JSON body: ${res.text}`)
    t.match(res.body.reason ?? res.body.message, reason)
  })
}

t.test('a body over the limit is refused with 413 and a JSON reason', async (t) => {
  const huge = JSON.stringify({ ...valid, padding: 'x'.repeat(9 * 1024 * 1024) })
  const res = await hook.post(huge)
  t.equal(res.status, 413)
  t.type(res.body, 'object')
})

t.test('a prototype-pollution body is refused, not merged', async (t) => {
  const res = await hook.post(
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","__proto__":{"allowed":true}}',
  )
  t.equal(res.status, 400)
  t.equal(({} as Record<string, unknown>).allowed, undefined)
})

t.test('after all that, a good review still works', async (t) => {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.operation = 'DELETE'
  const res = await hook.post(r)
  t.same(res.body, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: r.request.uid, allowed: true },
  })
})

t.test('healthz and readyz answer', async (t) => {
  t.match(await hook.get('/healthz'), { status: 200, body: { status: 'ok' } })
  t.equal((await hook.get('/readyz')).status, 200)
})

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
const run = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { status: r.status, stderr: r.stderr.trim() }
}
const notPem = join(ca.dir, 'not-a-cert.txt')
writeFileSync(notPem, 'hello')
const configErrors: Array<[string, string[], Record<string, string>, RegExp]> = [
  ['an unknown mode', ['serve', '--mode', 'audit'], {}, /^pullguard: --mode: "audit" is not one of enforce, warn$/],
  [
    'an unknown mode from the environment',
    ['serve'],
    { PULLGUARD_MODE: 'strict' },
    /^pullguard: PULLGUARD_MODE: "strict" is not one of enforce, warn$/,
  ],
  ['a bad duration', ['serve', '--timeout', '8 seconds'], {}, /^pullguard: --timeout: "8 seconds" is not a duration/],
  [
    'a budget beyond the API server limit',
    ['serve', '--timeout', '45s'],
    {},
    /^pullguard: --timeout: 45s is outside 100ms\.\.29s/,
  ],
  [
    'an unreadable registry CA',
    ['serve', '--registry-ca', '/nonexistent/ca.pem'],
    {},
    /^pullguard: --registry-ca: cannot read \/nonexistent\/ca.pem: ENOENT$/,
  ],
  [
    'a registry CA that is not PEM',
    ['serve', '--registry-ca', notPem],
    {},
    /^pullguard: --registry-ca: .* is not a PEM file$/,
  ],
  [
    'a bad on-registry-error',
    ['serve', '--on-registry-error', 'maybe'],
    {},
    /^pullguard: --on-registry-error: "maybe" is not one of allow, deny$/,
  ],
  [
    'an insecure registry with a scheme',
    ['serve', '--insecure-registry', 'http://reg:5000'],
    {},
    /^pullguard: --insecure-registry: "http:\/\/reg:5000" is not a registry host/,
  ],
  ['a bad port', ['serve', '--port', '70000'], {}, /^pullguard: --port: "70000" is not a port number/],
  [
    'a cert without a key',
    ['serve', '--tls-cert', notPem],
    {},
    /^pullguard: --tls-key: is required when --tls-cert is set$/,
  ],
  ['an unknown flag', ['serve', '--frobnicate'], {}, /^pullguard: serve: unknown flag --frobnicate$/],
  [
    'a mistyped flag',
    ['serve', '--tmeout', '3s'],
    {},
    /^pullguard: serve: unknown flag --tmeout \(did you mean --timeout\?\)$/,
  ],
  [
    'an unknown command',
    ['judge'],
    {},
    /^pullguard: judge: unknown command; the commands are serve, check, diagnose, audit$/,
  ],
  ['a mistyped command', ['serv'], {}, /^pullguard: serv: unknown command \(did you mean serve\?\)/],
  [
    'a boolean flag given a word other than true or false',
    ['serve', '--audit-events=yes'],
    {},
    /^pullguard: --audit-events: takes true or false, not "yes"$/,
  ],
]
for (const [name, args, env, line] of configErrors) {
  t.test(`exits 2 with one line naming the flag for ${name}`, async (t) => {
    const r = run(args, env)
    t.equal(r.status, 2)
    t.equal(r.stderr.split('\n').length, 1, r.stderr)
    t.match(r.stderr, line)
  })
}

t.test('the flag wins over the environment', async (t) => {
  const r = run(['serve', '--mode', 'nonsense'], { PULLGUARD_MODE: 'warn' })
  t.match(r.stderr, /^pullguard: --mode:/)
})
