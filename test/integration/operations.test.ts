// Operating pullguard: probes, metrics, certificate rotation and graceful shutdown, over real HTTPS.
import { spawn } from 'node:child_process'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { Agent, request } from 'undici'
import { startFakeKubeApi, loadFixture, makeDockerConfigSecret } from '../helpers/fake-kube-api.js'
import { startFakeServer } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { startWebhook } from '../helpers/webhook.js'

const SECRET = 'Metrics-Must-Not-Show-This'
const ca = await createTestCA()
t.teardown(() => ca.close())
const kube = await startFakeKubeApi({ ca })
t.teardown(() => kube.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => open.close())
await seedOciManifest(open, 'team/app', 'v1')
const ns = loadFixture<any>('api/namespace.json')
kube.namespaces.set('team-a', ns)
kube.secrets.set(
  'team-a/regcred',
  makeDockerConfigSecret('team-a', 'regcred', { [open.host]: { username: 'u', password: SECRET } }),
)

function pod(image: string, uid = `uid-${Math.random().toString(16).slice(2)}`): any {
  const r = loadFixture<any>('admission/pod-create.json')
  r.request.uid = uid
  r.request.object.spec.initContainers = []
  r.request.object.spec.containers = [{ name: 'app', image }]
  r.request.object.spec.imagePullSecrets = [{ name: 'regcred' }]
  return r
}

t.test('readyz waits for the Kubernetes API once, then stays ready', async (t) => {
  kube.faults.push({ match: /^\/api\/v1\/namespaces\/default$/, status: 500 })
  const w = await startWebhook({ ca, kube })
  t.teardown(() => w.close())
  t.equal((await w.get('/healthz')).status, 200, 'alive regardless')
  t.equal((await w.get('/readyz')).status, 503)
  t.match((await w.get('/metrics')).text, /^pullguard_ready 0$/m, 'the readiness alert sees it too')
  kube.faults.splice(0)
  t.equal((await w.get('/readyz')).status, 200)
  t.match((await w.get('/metrics')).text, /^pullguard_ready 1$/m)
  kube.faults.push({ match: /^\/api\/v1\/namespaces\/default$/, status: 500 })
  t.equal((await w.get('/readyz')).status, 200, 'a later outage does not pull every replica out of the Service')
  kube.faults.splice(0)
})

t.test('metrics count decisions, registry requests, cache lookups and carry no tag, namespace or secret', async (t) => {
  const w = await startWebhook({ ca, kube })
  t.teardown(() => w.close())
  await w.post(pod(`${open.host}/team/app:v1`))
  await w.post(pod(`${open.host}/team/app:v1`))
  await w.post(pod(`${open.host}/team/app:no-such-tag`))
  const res = await w.get('/metrics')
  t.equal(res.status, 200)
  const text = res.text
  t.match(text, /pullguard_decisions_total\{verdict="allowed",mode="enforce",reason="Pullable"\} 2/)
  t.match(text, /pullguard_decisions_total\{verdict="denied",mode="enforce",reason="TagNotFound"\} 1/)
  t.match(text, /pullguard_review_duration_seconds_count\{verdict="allowed"\} 2/)
  t.match(
    text,
    new RegExp(
      `pullguard_registry_request_duration_seconds_count\\{registry="${open.host.replace(/\./g, '\\.')}",outcome="2xx"\\} \\d+`,
    ),
  )
  t.match(text, /pullguard_cache_lookups_total\{cache="result",result="hit"\} 1/)
  t.match(text, /pullguard_cache_lookups_total\{cache="result",result="miss"\} 2/)
  t.match(text, /pullguard_inflight_checks 0/)
  t.match(text, /pullguard_cache_entries\{cache="result"\} 2/, 'the pullable answer and the missing tag')
  let sizes = text
  for (let i = 0; i < 40 && !sizes.includes('pullguard_cache_entries{cache="pull-secrets"} 1'); i++) {
    await new Promise((r) => setTimeout(r, 50))
    sizes = (await w.get('/metrics')).text
  }
  t.match(sizes, /pullguard_cache_entries\{cache="pull-secrets"\} 1\n/, 'the watched copy holds the one pull secret')
  t.match(sizes, /pullguard_cache_entries\{cache="namespaces"\} 1\n/)
  t.match(sizes, /pullguard_cache_entries\{cache="service-accounts"\} 0\n/)
  t.match(text, /pullguard_process_cpu_seconds_total/)
  // What the dashboard and alerts compare with: the budget, and the certificate's expiry.
  t.match(text, /^pullguard_review_timeout_seconds 8$/m)
  const expiry = Number(/^pullguard_serving_certificate_expiry_timestamp_seconds (\S+)$/m.exec(text)?.[1])
  t.ok(
    expiry * 1000 > Date.now() + 86_400_000,
    `the serving certificate's notAfter (${new Date(expiry * 1000).toISOString()})`,
  )
  t.notMatch(text, /pullguard_audit_interval_seconds \d/, 'no audit interval with the audit off')
  for (const forbidden of [
    'no-such-tag',
    'team-a',
    'team/app',
    SECRET,
    Buffer.from(`u:${SECRET}`).toString('base64'),
  ]) {
    t.notOk(text.includes(forbidden), `no ${forbidden} in /metrics`)
  }
})

/** The serial number of the certificate a fresh TLS connection is served. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.caPem, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.end()
    })
    socket.on('error', reject)
  })
}

t.test('a rotated certificate is served to new connections while a live client keeps working', async (t) => {
  const first = await ca.issue('pullguard webhook', { dns: ['localhost'], ips: ['127.0.0.1'] })
  const certPath = join(ca.dir, 'rotating.crt')
  const keyPath = join(ca.dir, 'rotating.key')
  copyFileSync(first.certPath, certPath)
  copyFileSync(first.keyPath, keyPath)
  const w = await startWebhook({ ca, kube, tls: { certPath, keyPath } })
  t.teardown(() => w.close())
  const port = Number(new URL(w.origin).port)
  const before = await servedSerial(port)
  const live = new Agent({ connect: { ca: ca.caPem }, connections: 1, keepAliveTimeout: 60_000 })
  t.teardown(() => live.close())
  const ask = async () => (await request(`${w.origin}/healthz`, { dispatcher: live })).body.text()
  await ask()

  const second = await ca.issue('pullguard webhook', { dns: ['localhost'], ips: ['127.0.0.1'] })
  writeFileSync(keyPath, second.keyPem)
  writeFileSync(certPath, second.certPem)
  let after = before
  const deadline = Date.now() + 15_000
  while (after === before && Date.now() < deadline) {
    t.equal(JSON.parse(await ask()).status, 'ok', 'the live client is never dropped')
    await new Promise((r) => setTimeout(r, 200))
    after = await servedSerial(port)
  }
  t.not(after, before, 'new connections get the new certificate')
  t.equal(JSON.parse(await ask()).status, 'ok')
})

t.test('SIGTERM during a slow review: the review still gets its answer and the process exits 0', async (t) => {
  const hang = await startFakeServer(() => undefined, ca)
  t.teardown(() => hang.close())
  const cert = await ca.issue('pullguard webhook', { dns: ['localhost'], ips: ['127.0.0.1'] })
  const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
  const child = spawn(
    process.execPath,
    [
      cli,
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--tls-cert',
      cert.certPath,
      '--tls-key',
      cert.keyPath,
      '--registry-ca',
      ca.caPath,
      '--timeout',
      '3s',
    ],
    {
      env: { PATH: process.env.PATH ?? '', KUBECONFIG: kube.kubeconfigPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  t.teardown(() => void child.kill('SIGKILL'))
  let out = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /"port":(\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`exited early (${code}): ${out}`)))
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const agent = new Agent({ connect: { ca: ca.caPem } })
  t.teardown(() => agent.close())
  const review = request(`https://127.0.0.1:${port}/validate`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(pod(`${hang.host}/slow/app:v1`, 'slow-review')),
  })
  await new Promise((r) => setTimeout(r, 500))
  child.kill('SIGTERM')
  const res = await review
  const body = (await res.body.json()) as any
  t.equal(res.statusCode, 200)
  t.match(body.response, { uid: 'slow-review', allowed: true, warnings: [/not verified/] })
  t.equal(await exited, 0)
  t.match(out, /shutting down/)
})
