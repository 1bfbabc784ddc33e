// certs/make-certs.sh, run for real with bash and openssl into temporary directories. The API server
// verifies the serving certificate for `pullguard.pullguard.svc` against the caBundle we patch in; the
// tests check exactly that with two verifiers (openssl and Node's TLS), plus the files a user applies.
import { loadYaml } from '@kubernetes/client-node'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, request } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

const SCRIPT = fileURLToPath(new URL('../../../certs/make-certs.sh', import.meta.url))
const HOST = 'pullguard.pullguard.svc'
const FQDN = 'pullguard.pullguard.svc.cluster.local'
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const DAY_MS = 86_400_000

function run(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 })
}

function runOk(args: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = run(args, env)
  if (r.status !== 0) throw new Error(`make-certs.sh ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

function openssl(args: string[]): SpawnSyncReturns<string> {
  return spawnSync('openssl', args, { encoding: 'utf8', timeout: 15_000 })
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const read = (dir: string, name: string): Promise<string> => readFile(join(dir, name), 'utf8')
const cert = async (dir: string, name: string): Promise<X509Certificate> => new X509Certificate(await read(dir, name))

// X509Certificate.keyUsage lists the *extended* key usages; newer Node lines also name it extKeyUsage.
function extendedKeyUsage(c: X509Certificate): string[] | undefined {
  return (Reflect.get(c, 'extKeyUsage') as string[] | undefined) ?? c.keyUsage
}

// One issuance shared by the tests that only read its output.
const shared = await mkdtemp(join(tmpdir(), 'pullguard-certs-test-'))
t.teardown(() => rm(shared, { recursive: true, force: true }))
const first = runOk(['--out', shared])

t.test('--help prints the usage and exits 0', async (t) => {
  const r = run(['--help'])
  t.equal(r.status, 0)
  t.match(r.stdout, /^usage: make-certs /)
  t.match(r.stdout, /--namespace NS/)
  t.match(r.stdout, /--apply/)
})

t.test('the serving certificate verifies against the CA for pullguard.pullguard.svc (openssl)', async (t) => {
  for (const name of [HOST, FQDN]) {
    const r = openssl(['verify', '-CAfile', join(shared, 'ca.crt'), '-verify_hostname', name, join(shared, 'tls.crt')])
    t.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`)
    t.match(r.stdout, /tls\.crt: OK/)
  }
  const r = openssl(['verify', '-CAfile', join(shared, 'ca.crt'), '-purpose', 'sslserver', join(shared, 'tls.crt')])
  t.equal(r.status, 0, r.stderr)
})

t.test('the serving certificate verifies against the CA for pullguard.pullguard.svc (Node)', async (t) => {
  const [ca, leaf] = await Promise.all([cert(shared, 'ca.crt'), cert(shared, 'tls.crt')])
  t.ok(leaf.verify(ca.publicKey), 'signed by the CA key')
  t.ok(leaf.checkIssued(ca), 'issuer matches the CA subject')
  t.equal(leaf.checkHost(HOST), HOST)
  t.equal(leaf.checkHost(FQDN), FQDN)
  t.equal(ca.ca, true)
  t.equal(leaf.ca, false)
  t.same(extendedKeyUsage(leaf), [SERVER_AUTH])
  const days = (c: X509Certificate): number => Math.round((Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY_MS)
  t.equal(days(leaf), 365)
  t.equal(days(ca), 3650)
})

t.test('the serving certificate does not verify for another name', async (t) => {
  for (const name of ['evil.example', 'pullguard.svc', 'other.pullguard.svc', `x.${HOST}`]) {
    const r = openssl(['verify', '-CAfile', join(shared, 'ca.crt'), '-verify_hostname', name, join(shared, 'tls.crt')])
    t.not(r.status, 0, `openssl refuses ${name}`)
    t.match(r.stdout + r.stderr, /hostname mismatch/)
    t.equal((await cert(shared, 'tls.crt')).checkHost(name), undefined, `Node refuses ${name}`)
  }
})

t.test('the serving certificate is for servers only, and the CA signs nothing but certificates', async (t) => {
  const leafText = openssl(['x509', '-in', join(shared, 'tls.crt'), '-noout', '-text']).stdout
  t.match(leafText, /X509v3 Extended Key Usage: *\n\s*TLS Web Server Authentication\n/)
  t.match(leafText, /CA:FALSE/)
  t.match(leafText, /DNS:pullguard\.pullguard\.svc, DNS:pullguard\.pullguard\.svc\.cluster\.local/)
  const client = openssl([
    'verify',
    '-CAfile',
    join(shared, 'ca.crt'),
    '-purpose',
    'sslclient',
    join(shared, 'tls.crt'),
  ])
  t.not(client.status, 0, 'not usable as a client certificate')
  const caText = openssl(['x509', '-in', join(shared, 'ca.crt'), '-noout', '-text']).stdout
  t.match(caText, /CA:TRUE, pathlen:0/)
  t.match(caText, /Key Usage: critical\n\s*Certificate Sign, CRL Sign\n/)
})

t.test('private keys and the Secret manifest are readable by their owner only', async (t) => {
  for (const name of ['ca.key', 'tls.key', 'secret.yaml'])
    t.equal((await stat(join(shared, name))).mode & 0o777, 0o600, name)
  for (const name of ['ca.crt', 'tls.crt', 'webhook-cabundle-patch.json'])
    t.equal((await stat(join(shared, name))).mode & 0o777, 0o644, name)
  t.same(
    (await readdir(shared)).sort(),
    ['ca.crt', 'ca.key', 'secret.yaml', 'tls.crt', 'tls.key', 'webhook-cabundle-patch.json'],
    'no staging leftovers',
  )
})

t.test('no key material is printed', async (t) => {
  const printed = first.stdout + first.stderr
  t.notMatch(printed, /PRIVATE KEY/)
  for (const name of ['ca.key', 'tls.key']) {
    const pem = await read(shared, name)
    const body = pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))
    for (const line of body) t.notOk(printed.includes(line), `${name} does not appear in the output`)
    t.notOk(printed.includes(Buffer.from(pem).toString('base64').slice(0, 40)), `${name} in base64 does not appear`)
  }
  t.match(first.stdout, `pullguard TLS material in ${shared}`)
  t.match(first.stdout, /kubectl apply -f .*secret\.yaml/)
  t.match(
    first.stdout,
    /with manifests\/overlays\/pin-digests, also:\n {2}kubectl patch mutatingwebhookconfiguration pullguard --type=json --patch-file .*webhook-cabundle-patch\.json/,
    'the mutating webhook of the pin-digests overlay gets the same caBundle',
  )
})

t.test('secret.yaml is a kubernetes.io/tls Secret whose data are the files', async (t) => {
  interface Secret {
    apiVersion: string
    kind: string
    type: string
    metadata: { name: string; namespace: string }
    data: Record<string, string>
  }
  const secret = loadYaml<Secret>(await read(shared, 'secret.yaml'))
  t.match(secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: 'pullguard-tls', namespace: 'pullguard' },
  })
  t.same(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'])
  for (const name of ['tls.crt', 'tls.key', 'ca.crt']) {
    t.equal(
      Buffer.from(secret.data[name] ?? '', 'base64').toString('utf8'),
      await read(shared, name),
      `${name} decodes to the file`,
    )
  }
})

t.test('the patch sets the first webhook caBundle to the CA certificate', async (t) => {
  const patch: unknown = JSON.parse(await read(shared, 'webhook-cabundle-patch.json'))
  const caBundle = Buffer.from(await read(shared, 'ca.crt')).toString('base64')
  t.same(patch, [{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: caBundle }])
})

t.test('a TLS client that trusts only ca.crt completes a handshake for pullguard.pullguard.svc', async (t) => {
  const server = createServer(
    { cert: await read(shared, 'tls.crt'), key: await read(shared, 'tls.key') },
    (_req, res) => res.end('ok'),
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  const ca = await read(shared, 'ca.crt')

  const get = (options: { ca?: string; servername: string }): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
        let body = ''
        res
          .setEncoding('utf8')
          .on('data', (c: string) => (body += c))
          .on('end', () => resolve(body))
      })
      req.on('error', reject).end()
    })

  t.equal(await get({ ca, servername: HOST }), 'ok')
  t.equal(await get({ ca, servername: FQDN }), 'ok')
  await t.rejects(get({ ca, servername: 'evil.example' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  await t.rejects(
    get({ servername: HOST }),
    { code: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/ },
    'the public roots do not vouch for it',
  )
})

t.test('a second run reuses the CA, so the caBundle stays, and issues a new serving key', async (t) => {
  const dir = await tempDir(t)
  runOk(['--out', dir])
  const before = await Promise.all(
    ['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'webhook-cabundle-patch.json'].map((n) => read(dir, n)),
  )
  const again = runOk(['--out', dir])
  t.match(again.stdout, /ca\.crt \(reused/)
  t.equal(await read(dir, 'ca.crt'), before[0])
  t.equal(await read(dir, 'ca.key'), before[1])
  t.equal(await read(dir, 'webhook-cabundle-patch.json'), before[4])
  t.not(await read(dir, 'tls.crt'), before[2])
  t.not(await read(dir, 'tls.key'), before[3])
  const r = openssl(['verify', '-CAfile', join(dir, 'ca.crt'), '-verify_hostname', HOST, join(dir, 'tls.crt')])
  t.equal(r.status, 0, r.stderr)
})

t.test('--new-ca replaces the CA and the caBundle', async (t) => {
  const dir = await tempDir(t)
  runOk(['--out', dir])
  const [oldCa, oldPatch] = await Promise.all([read(dir, 'ca.crt'), read(dir, 'webhook-cabundle-patch.json')])
  t.match(runOk(['--out', dir, '--new-ca']).stdout, /ca\.crt \(new/)
  t.not(await read(dir, 'ca.crt'), oldCa)
  t.not(await read(dir, 'webhook-cabundle-patch.json'), oldPatch)
  const leaf = await cert(dir, 'tls.crt')
  t.ok(leaf.verify((await cert(dir, 'ca.crt')).publicKey), 'the new serving certificate is signed by the new CA')
  t.notOk(leaf.verify(new X509Certificate(oldCa).publicKey), 'and not by the old one')
})

t.test('--namespace and --service change the names and the Secret namespace', async (t) => {
  const dir = await tempDir(t)
  runOk(['--out', dir, '--namespace', 'admission', '--service=pg-webhook'])
  const leaf = await cert(dir, 'tls.crt')
  t.equal(leaf.checkHost('pg-webhook.admission.svc'), 'pg-webhook.admission.svc')
  t.equal(leaf.checkHost('pg-webhook.admission.svc.cluster.local'), 'pg-webhook.admission.svc.cluster.local')
  t.equal(leaf.checkHost(HOST), undefined)
  t.equal(leaf.subjectAltName, 'DNS:pg-webhook.admission.svc, DNS:pg-webhook.admission.svc.cluster.local')
  t.match(loadYaml(await read(dir, 'secret.yaml')), { metadata: { name: 'pullguard-tls', namespace: 'admission' } })
})

t.test('refuses names that are not Kubernetes names, before writing anything', async (t) => {
  const dir = await tempDir(t)
  for (const args of [
    ['--namespace', 'Bad_NS'],
    ['--service', 'a/b'],
    ['--namespace', 'x'.repeat(64)],
    ['--service', '-a'],
  ]) {
    const r = run(['--out', join(dir, 'out'), ...args])
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, /is not a valid Kubernetes name/)
  }
  const unknown = run(['--bogus'])
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /unknown argument "--bogus"/)
  t.match(run(['--out']).stderr, /--out needs a value/)
  t.same(await readdir(dir), [])
})

t.test('without --out it writes into a new temporary directory and prints where', async (t) => {
  const dir = await tempDir(t)
  const r = runOk([], { TMPDIR: dir })
  const out = /^pullguard TLS material in (.+)$/m.exec(r.stdout)?.[1]
  t.ok(out?.startsWith(join(dir, 'pullguard-certs.')), `printed ${String(out)}`)
  t.equal((await stat(out ?? '')).mode & 0o777, 0o700, 'the directory is private')
  t.ok((await readdir(out ?? '')).includes('secret.yaml'))
})

t.test('refuses a CA key that does not belong to the CA certificate', async (t) => {
  const dir = await tempDir(t)
  runOk(['--out', dir])
  const other = await tempDir(t)
  runOk(['--out', other])
  await writeFile(join(dir, 'ca.key'), await read(other, 'ca.key'))
  const before = await read(dir, 'tls.crt')
  const r = run(['--out', dir])
  t.equal(r.status, 1)
  t.match(r.stderr, /ca\.key does not belong to .*ca\.crt/)
  t.equal(await read(dir, 'tls.crt'), before, 'the previous files stay as they were')
})

t.test('refuses to reuse a CA that expires before a new serving certificate would', async (t) => {
  const dir = await tempDir(t)
  const r0 = openssl([
    'req',
    '-x509',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=old CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-days',
    '30',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.crt'),
  ])
  t.equal(r0.status, 0, r0.stderr)
  await chmod(join(dir, 'ca.key'), 0o600)
  const r = run(['--out', dir])
  t.equal(r.status, 1)
  t.match(r.stderr, /expires within 365 days; run with --new-ca/)
  t.equal(run(['--out', dir, '--new-ca']).status, 0)
})

t.test('a missing openssl names the package to install', async (t) => {
  const r = run(['--out', await tempDir(t)], { OPENSSL: '/nonexistent/openssl' })
  t.equal(r.status, 1)
  t.match(r.stderr, /openssl not found: install OpenSSL \(Debian\/Ubuntu: apt-get install openssl/)
})

t.test('kubectl is needed only with --apply, and its absence stops the run before anything is written', async (t) => {
  const dir = await tempDir(t)
  const env = { KUBECTL: '/nonexistent/kubectl' }
  const r = run(['--out', join(dir, 'applied'), '--apply'], env)
  t.equal(r.status, 1)
  t.match(r.stderr, /--apply needs kubectl, and \/nonexistent\/kubectl was not found/)
  t.same(await readdir(dir), [], 'no output directory was made')
  t.equal(run(['--out', join(dir, 'plain')], env).status, 0, 'without --apply kubectl is never looked for')
})

t.test('--apply applies the Secret, then patches the caBundle of every webhook', async (t) => {
  // A stand-in kubectl that records its arguments and reports two webhooks in the configuration.
  const dir = await tempDir(t)
  const log = join(dir, 'kubectl.log')
  const kubectl = join(dir, 'kubectl')
  await writeFile(
    kubectl,
    `#!/usr/bin/env bash
printf '%s\\n' "$*" >> ${JSON.stringify(log)}
case "$1" in
  config) echo test-context ;;
  get) printf xx ;;
esac
`,
    { mode: 0o755 },
  )
  const out = join(dir, 'out')
  const r = runOk(['--out', out, '--apply'], { KUBECTL: kubectl })
  t.match(r.stdout, /applying to kubectl context test-context/)
  const calls = (await readFile(log, 'utf8')).trim().split('\n')
  t.same(calls, [
    'config current-context',
    `apply -f ${out}/secret.yaml`,
    'get validatingwebhookconfiguration pullguard -o jsonpath={range .webhooks[*]}x{end}',
    `patch validatingwebhookconfiguration pullguard --type=json --patch-file ${out}/webhook-cabundle-patch.json`,
    // The pin-digests overlay's mutating webhook, found here too, gets the same caBundle.
    'get mutatingwebhookconfiguration pullguard -o jsonpath={range .webhooks[*]}x{end}',
    `patch mutatingwebhookconfiguration pullguard --type=json --patch-file ${out}/mutating-webhook-cabundle-patch.json`,
  ])
  const caBundle = Buffer.from(await read(out, 'ca.crt')).toString('base64')
  t.same(
    JSON.parse(await read(out, 'webhook-cabundle-patch.json')),
    [0, 1].map((i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle })),
  )
})

t.test('the script is valid bash', async (t) => {
  const syntax = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' })
  t.equal(syntax.status, 0, syntax.stderr)
})
