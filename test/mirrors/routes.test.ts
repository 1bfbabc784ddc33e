// The hosts a check asks, from real files on disk: containerd's certs.d directory (which host
// directory applies, what each host becomes) and CRI-O's registries.conf (rewrites, mirrors,
// credentials, blocked), read again when they change.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log/logger.js'
import { MirrorConfigError } from '../../src/mirrors/errors.js'
import { MirrorRoutes } from '../../src/mirrors/routes.js'
import { parseReference } from '../../src/reference/index.js'
import { endpointUrl } from '../../src/registry/endpoint.js'
import { createTestCA } from '../helpers/pki.js'

const lines: string[] = []
const logger = createLogger(
  'debug',
  new Writable({
    write: (c: Buffer, _e, done) => {
      lines.push(c.toString())
      done()
    },
  }),
)
const ca = await createTestCA()

const root = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
async function hosts(
  dir: string,
  text: string | undefined,
  extra: Record<string, string> = {},
  base = root,
): Promise<void> {
  await mkdir(join(base, dir), { recursive: true })
  if (text !== undefined) await writeFile(join(base, dir, 'hosts.toml'), text)
  for (const [name, body] of Object.entries(extra)) await writeFile(join(base, dir, name), body)
}
await hosts('registry.example_5000_', 'server = "https://escaped.internal"')
await hosts('registry.example:5000', 'server = "https://plain.internal"')
await hosts('other.example:5000', 'server = "https://plain-only.internal"')
await hosts('_default', '[host."https://default-mirror.internal"]\n  capabilities = ["pull", "resolve"]')
await hosts('docker.io', undefined, { 'ca.crt': ca.caPem })
await hosts('quay.io', 'server = [')
await hosts(
  'ghcr.io',
  [
    'server = "https://ghcr.io"',
    'ca = "ghcr-ca.crt"',
    '[host."http://cache.internal:5000"]',
    '  capabilities = ["pull", "resolve"]',
    '  [host."http://cache.internal:5000".header]',
    '    x-team = ["a", "b"]',
    '[host."https://digest-only.internal"]',
    '  capabilities = ["pull"]',
    '[host."https://custom.internal/some/path"]',
    '  override_path = true',
    '  skip_verify = true',
  ].join('\n'),
  { 'ghcr-ca.crt': ca.caPem },
)
const routes = new MirrorRoutes({ kind: 'containerd', dir: root }, logger, { watch: false })
const hostsOf = (image: string): string[] => routes.endpoints(parseReference(image)).map((e) => e.label)

t.test('host_port_ wins over host:port, which wins over _default; no directory: _default', async (t) => {
  t.same(hostsOf('registry.example:5000/app:v1'), ['escaped.internal'])
  t.same(hostsOf('other.example:5000/app:v1'), ['plain-only.internal'])
  t.same(
    hostsOf('registry.gitlab.com/app:v1'),
    ['default-mirror.internal', 'registry.gitlab.com'],
    "_default's mirror, then the registry itself",
  )
})

t.test('a mirror without resolve is asked for digests only; override_path keeps its path', async (t) => {
  t.same(hostsOf('ghcr.io/org/app:v1'), ['http://cache.internal:5000', 'custom.internal/some/path', 'ghcr.io'])
  t.same(hostsOf(`ghcr.io/org/app@sha256:${'a'.repeat(64)}`), [
    'http://cache.internal:5000',
    'digest-only.internal',
    'custom.internal/some/path',
    'ghcr.io',
  ])
})

t.test('what each host becomes: scheme, root, ?ns=, headers, TLS, credentials', async (t) => {
  const [cache, custom, server] = routes.endpoints(parseReference('ghcr.io/org/app:v1'))
  t.match(cache, {
    host: 'cache.internal:5000',
    scheme: 'http',
    root: '/v2',
    repository: 'org/app',
    query: 'ns=ghcr.io',
    headers: { 'x-team': 'a, b' },
    credentials: true,
  })
  t.equal(cache?.tls, undefined, 'plain HTTP has no TLS settings')
  t.match(custom, { host: 'custom.internal', root: '/some/path', query: 'ns=ghcr.io', tls: { verify: false } })
  t.match(server, { host: 'ghcr.io', root: '/v2', tls: { verify: true, caPem: ca.caPem } })
  t.equal(server?.query, undefined, 'the registry itself gets no ns')
})

t.test(
  "the URLs asked: a mirror is told the upstream with ?ns=, docker.io's own host is not, override_path keeps its root",
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-urls-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await hosts('docker.io', 'server = "https://registry-1.docker.io"\n[host."https://mirror.internal/cache"]', {}, dir)
    await hosts('r.example', 'server = "https://r.example/api"\noverride_path = true', {}, dir)
    const r = new MirrorRoutes({ kind: 'containerd', dir }, logger, { watch: false })
    const urls = (image: string, object: string): string[] =>
      r.endpoints(parseReference(image)).map((e) => endpointUrl(e, (h) => `https://${h}`, `manifests/${object}`).href)
    t.same(urls('nginx:1.25', '1.25'), [
      'https://mirror.internal/cache/v2/library/nginx/manifests/1.25?ns=docker.io',
      'https://registry-1.docker.io/v2/library/nginx/manifests/1.25',
    ])
    t.same(urls(`ghcr.io/org/app@sha256:${'a'.repeat(64)}`, `sha256:${'a'.repeat(64)}`), [
      `https://ghcr.io/v2/org/app/manifests/sha256:${'a'.repeat(64)}`,
    ])
    t.same(urls('r.example/team/app:1.0', '1.0'), ['https://r.example/api/team/app/manifests/1.0'])
  },
)

t.test('docker.io: the *.crt files of its directory, at registry-1.docker.io, no ns', async (t) => {
  const [hub] = routes.endpoints(parseReference('nginx:1.27'))
  t.match(hub, { host: 'registry-1.docker.io', repository: 'library/nginx', tls: { verify: true, caPem: ca.caPem } })
  t.equal(hub?.query, undefined)
})

t.test('a broken hosts.toml: the registry itself, and a warning naming the file', async (t) => {
  t.same(hostsOf('quay.io/org/app:v1'), ['quay.io'])
  t.match(lines.join(''), new RegExp(`${join(root, 'quay.io', 'hosts.toml')}`))
})

t.test('a localhost registry with no directory: TLS without checks, then plain HTTP, as containerd', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-empty-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  const r = new MirrorRoutes({ kind: 'containerd', dir: empty }, logger, { watch: false })
  t.match(r.endpoints(parseReference('127.0.0.1:5000/app:v1')), [
    { host: '127.0.0.1:5000', tls: { verify: false, plainFallback: { rule: 'containerd', portWritten: true } } },
  ])
  t.same(
    r.endpoints(parseReference('ghcr.io/app:v1')).map((e) => e.label),
    ['ghcr.io'],
  )
})

t.test('a missing directory is an error at start', async (t) => {
  t.throws(
    () => new MirrorRoutes({ kind: 'containerd', dir: join(root, 'nope') }, logger, { watch: false }),
    MirrorConfigError,
  )
})

t.test(
  'a CA or client file that cannot load fails every host of its registry, mirrors and server, as ConfigureHosts does',
  async (t) => {
    const bad = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-bad-'))
    t.teardown(() => rm(bad, { recursive: true, force: true }))
    const other = await ca.issue('another client', {})
    const client = await ca.issue('client', {})
    const notPem = '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n'
    const mirrorThenServer = (mirror: string, server: string): string =>
      `server = "https://server.internal"\n${server}\n[host."https://mirror.internal"]\n  capabilities = ["pull", "resolve"]\n  ${mirror}`
    // [registry, hosts.toml, files, the problem the registry's pulls fail with]
    const table: Array<[string, string, Record<string, string>, RegExp | undefined]> = [
      [
        'server-ca-missing.example',
        mirrorThenServer('ca = "ca.crt"', 'ca = "missing.crt"'),
        { 'ca.crt': ca.caPem },
        /^unable to read CA cert ".*\/missing\.crt": ENOENT$/,
      ],
      [
        'mirror-ca-broken.example',
        mirrorThenServer('ca = "broken.crt"', 'ca = "ca.crt"'),
        { 'ca.crt': ca.caPem, 'broken.crt': notPem },
        /^unable to load CA cert ".*\/broken\.crt": no PEM certificate in it parses$/,
      ],
      [
        'client-key-missing.example',
        mirrorThenServer('client = [["client.pem", "client-key.pem"]]', ''),
        { 'client.pem': client.certPem },
        /^unable to read CERT file ".*\/client-key\.pem": ENOENT$/,
      ],
      [
        'client-key-foreign.example',
        mirrorThenServer('client = [["client.pem", "other-key.pem"]]', ''),
        { 'client.pem': client.certPem, 'other-key.pem': other.keyPem },
        /^failed to load X509 key pair ".*\/client\.pem" and ".*\/other-key\.pem": key values mismatch$/,
      ],
      [
        'client-no-key.example',
        mirrorThenServer('client = "client.pem"', ''),
        { 'client.pem': client.certPem },
        /^failed to load X509 key pair ".*\/client\.pem": no PRIVATE KEY block$/,
      ],
      [
        'docker-style.example',
        '',
        { 'ca.crt': notPem },
        /^unable to load CA cert ".*\/docker-style\.example\/ca\.crt": no PEM certificate in it parses$/,
      ],
      // Go's AppendCertsFromPEM skips a block that does not parse when another one does.
      [
        'one-good-block.example',
        'server = "https://one.internal"\nca = "mixed.crt"',
        { 'mixed.crt': notPem + ca.caPem },
        undefined,
      ],
    ]
    for (const [registry, text, files] of table) await hosts(registry, text === '' ? undefined : text, files, bad)
    await hosts('fine.example', 'server = "https://fine.example"\nca = "ca.crt"', { 'ca.crt': ca.caPem }, bad)
    lines.splice(0)
    const r = new MirrorRoutes({ kind: 'containerd', dir: bad }, logger, { watch: false })
    for (const [registry, text, , problem] of table) {
      const ref = parseReference(`${registry}/app:v1`)
      const file = text === '' ? join(bad, registry) : join(bad, registry, 'hosts.toml')
      if (problem === undefined) {
        t.equal(r.blocked(ref), undefined, `${registry}: loads`)
        t.match(r.endpoints(ref), [{ tls: { caPem: ca.caPem } }], `${registry}: with the block that parses`)
        continue
      }
      t.match(
        r.blocked(ref),
        { file, prefix: registry, problem },
        `${registry}: its pulls fail, naming the file and why`,
      )
      t.same(r.endpoints(ref), [], `${registry}: no host is asked, not even the one whose files load`)
      t.match(lines.join(''), `containerd fails every pull from ${registry}`, `${registry}: said at the read`)
    }
    t.equal(r.blocked(parseReference('fine.example/app:v1')), undefined, 'the other registries keep theirs')
    t.match(r.endpoints(parseReference('fine.example/app:v1')), [{ tls: { verify: true, caPem: ca.caPem } }])
  },
)

t.test(
  "a file outside the hosts directory is not the nodes' to judge: said at the read, the host asked without it, no denial",
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-outside-'))
    const elsewhere = await mkdtemp(join(tmpdir(), 'pullguard-elsewhere-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    t.teardown(() => rm(elsewhere, { recursive: true, force: true }))
    const client = await ca.issue('client', {})
    const other = await ca.issue('another client', {})
    await writeFile(join(elsewhere, 'client.pem'), client.certPem)
    await writeFile(join(elsewhere, 'other-key.pem'), other.keyPem)
    await hosts(
      'reg.example',
      [
        'server = "https://reg.example"',
        `ca = ${JSON.stringify(join(elsewhere, 'missing-ca.pem'))}`,
        '[host."https://mirror.internal"]',
        `  client = [[${JSON.stringify(join(elsewhere, 'client.pem'))}, ${JSON.stringify(join(elsewhere, 'other-key.pem'))}]]`,
      ].join('\n'),
      {},
      dir,
    )
    lines.splice(0)
    const r = new MirrorRoutes({ kind: 'containerd', dir }, logger, { watch: false })
    const ref = parseReference('reg.example/app:v1')
    t.equal(r.blocked(ref), undefined, 'not denied: the nodes may have other files there')
    const [mirror, server] = r.endpoints(ref)
    t.match(mirror, { host: 'mirror.internal' })
    t.equal(mirror?.tls?.clientCertificates, undefined, 'asked without the pair that does not load here')
    t.match(server, { host: 'reg.example', tls: { verify: true } })
    t.equal(server?.tls?.caPem, undefined, 'asked without the CA pullguard cannot read')
    t.match(
      lines.join(''),
      /missing-ca\.pem\\": ENOENT \(outside .*, pullguard cannot see the nodes' file\): the host is asked without it/,
    )
    t.match(
      lines.join(''),
      /other-key\.pem\\": key values mismatch \(outside .*, pullguard reads its own copy, not the nodes'\)/,
    )
  },
)

t.test('a host with a client certificate presents it; dial_timeout goes with the host, plain HTTP too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const client = await ca.issue('client', {})
  await hosts(
    'reg.example',
    [
      'server = "https://reg.example"',
      'dial_timeout = "2s"',
      '[host."https://pair.internal"]',
      '  client = [["client.pem", "client-key.pem"]]',
      '[host."https://combined.internal"]',
      '  client = "combined.pem"',
      '[host."http://plain.internal:5000"]',
      '  dial_timeout = "750ms"',
    ].join('\n'),
    { 'client.pem': client.certPem, 'client-key.pem': client.keyPem, 'combined.pem': client.keyPem + client.certPem },
    dir,
  )
  await hosts('docker.io', undefined, { 'client.cert': client.certPem, 'client.key': client.keyPem }, dir)
  const r = new MirrorRoutes({ kind: 'containerd', dir }, logger, { watch: false })
  const [pair, combined, plain, server] = r.endpoints(parseReference('reg.example/app:v1'))
  const presented = [{ certPem: client.certPem.trim(), keyPem: client.keyPem.trim() }]
  t.match(pair, { host: 'pair.internal', tls: { verify: true } })
  t.same(pair?.tls?.clientCertificates, presented)
  t.same(combined?.tls?.clientCertificates, presented, 'certificate and key from one file')
  t.match(plain, { host: 'plain.internal:5000', scheme: 'http', tls: { dialTimeoutMs: 750 } })
  t.equal(plain?.tls?.plainFallback, undefined, 'a dial timeout alone is no TLS setting: plain HTTP only')
  t.match(server, { host: 'reg.example', tls: { verify: true, dialTimeoutMs: 2000 } })
  const [hub] = r.endpoints(parseReference('nginx:1.27'))
  t.same(hub?.tls?.clientCertificates, presented, "docker-style: the directory's client.cert and client.key")
})

t.test(
  'http:// with TLS settings and no port or one other than 80: HTTPS first, then plain HTTP, as containerd',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-fallback-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await hosts(
      'reg.example',
      [
        '[host."http://a.internal:5000"]',
        '  ca = "ca.crt"',
        '[host."http://b.internal:5000"]',
        '  skip_verify = true',
        '[host."http://c.internal:80"]',
        '  skip_verify = true',
        '[host."http://d.internal:5000"]',
        '[host."http://e.internal"]',
        '  skip_verify = true',
      ].join('\n'),
      { 'ca.crt': ca.caPem },
      dir,
    )
    const [a, b, c, d, e] = new MirrorRoutes({ kind: 'containerd', dir }, logger, { watch: false }).endpoints(
      parseReference('reg.example/app:v1'),
    )
    t.match(
      e,
      { host: 'e.internal', tls: { verify: false, plainFallback: { rule: 'containerd', portWritten: false } } },
      'no port written: ambiguous too (net.SplitHostPort gives "", not "80"), and isPortError applies',
    )
    t.equal(e?.scheme, undefined, 'HTTPS first, on 443')
    const containerdRule = { rule: 'containerd', portWritten: true }
    t.match(a, { host: 'a.internal:5000', tls: { verify: true, caPem: ca.caPem, plainFallback: containerdRule } })
    t.equal(a?.scheme, undefined, 'HTTPS first')
    t.match(b, { host: 'b.internal:5000', tls: { verify: false, plainFallback: containerdRule } })
    t.match(c, { host: 'c.internal', scheme: 'http' }, 'port 80 (written) is not ambiguous')
    t.match(d, { host: 'd.internal:5000', scheme: 'http' }, 'no TLS settings: plain HTTP')
    t.equal(d?.tls, undefined)
  },
)

t.test('reload: a new host directory is used, with a new generation', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const r = new MirrorRoutes({ kind: 'containerd', dir }, logger, { watch: false })
  t.same(
    r.endpoints(parseReference('reg.example/app:v1')).map((e) => e.label),
    ['reg.example'],
  )
  const before = r.generation
  await hosts('reg.example', '[host."https://mirror.example"]\n  capabilities = ["pull", "resolve"]', {}, dir)
  r.reload()
  t.equal(r.generation, before + 1)
  t.same(
    r.endpoints(parseReference('reg.example/app:v1')).map((e) => e.label),
    ['mirror.example', 'reg.example'],
  )
})

const confDir = await mkdtemp(join(tmpdir(), 'pullguard-registries-conf-'))
t.teardown(() => rm(confDir, { recursive: true, force: true }))
const conf = join(confDir, 'registries.conf')
await writeFile(
  conf,
  [
    '[[registry]]',
    'prefix = "docker.io"',
    'location = "docker.io"',
    '[[registry.mirror]]',
    'location = "mirror.internal:5000/hub"',
    'insecure = true',
    '[[registry.mirror]]',
    'location = "docker.io/mirrored"',
    '',
    '[[registry]]',
    'prefix = "example.com/team"',
    'location = "internal.example:5000/imported/team"',
    '',
    '[[registry]]',
    'prefix = "blocked.example"',
    'blocked = true',
  ].join('\n'),
)
const crio = new MirrorRoutes({ kind: 'registries-conf', file: conf }, logger, { watch: false })

t.test(
  "registries.conf: mirrors in order with the rewritten path, then the location; credentials only at the image's own registry",
  async (t) => {
    t.match(
      crio.endpoints(parseReference('nginx:1.27')),
      [
        {
          host: 'mirror.internal:5000',
          repository: 'hub/library/nginx',
          tls: { verify: false, plainFallback: true },
          credentials: false,
          label: 'mirror.internal:5000/hub/library/nginx',
        },
        {
          host: 'registry-1.docker.io',
          repository: 'mirrored/library/nginx',
          credentials: true,
          label: 'registry-1.docker.io/mirrored/library/nginx',
        },
        {
          host: 'registry-1.docker.io',
          repository: 'library/nginx',
          credentials: true,
          label: 'registry-1.docker.io/library/nginx',
        },
      ],
      'two sources on one host are two questions, told apart by their repository',
    )
  },
)

t.test(
  'registries.conf: a prefix rewrite moves the repository to another registry, which gets no pod credentials',
  async (t) => {
    t.match(crio.endpoints(parseReference('example.com/team/app:v1')), [
      { host: 'internal.example:5000', repository: 'imported/team/app', credentials: false },
    ])
    t.match(
      crio.endpoints(parseReference('example.com/teammate/app:v1')),
      [{ host: 'example.com', repository: 'teammate/app' }],
      'a prefix matches whole path parts only',
    )
  },
)

t.test('registries.conf: blocked names the file and the rule; no host is asked', async (t) => {
  t.same(crio.blocked(parseReference('blocked.example/app:v1')), { file: conf, prefix: 'blocked.example' })
  t.same(crio.endpoints(parseReference('blocked.example/app:v1')), [])
  t.equal(crio.blocked(parseReference('nginx')), undefined)
})

t.test('registries.conf reload: a broken version keeps the last good one and says so', async (t) => {
  const file = join(confDir, 'reload.conf')
  await writeFile(file, '[[registry]]\nprefix = "reg.example"\nlocation = "reg.example"\n')
  const r = new MirrorRoutes({ kind: 'registries-conf', file }, logger, { watch: false })
  await writeFile(file, '[[registry]]\nprefix = "reg.example"\nblocked = true\n')
  r.reload()
  t.same(r.blocked(parseReference('reg.example/app')), { file, prefix: 'reg.example' })
  const generation = r.generation
  lines.splice(0)
  await writeFile(file, '[[registry]\nprefix = ')
  r.reload()
  t.equal(r.generation, generation, 'no new generation for a file that does not parse')
  t.same(r.blocked(parseReference('reg.example/app')), { file, prefix: 'reg.example' })
  t.match(lines.join(''), /keeping the previous version/)
})

t.test('the files are watched: an edit is picked up without a call', async (t) => {
  const file = join(confDir, 'watched.conf')
  await writeFile(file, '')
  const r = new MirrorRoutes({ kind: 'registries-conf', file }, logger)
  t.teardown(() => r.close())
  await writeFile(file, '[[registry]]\nprefix = "reg.example"\nblocked = true\n')
  const deadline = Date.now() + 15_000
  while (r.blocked(parseReference('reg.example/app')) === undefined && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 200))
  t.same(r.blocked(parseReference('reg.example/app')), { file, prefix: 'reg.example' })
})

t.test('an aliases cache that does not load fails every short name, and nothing else', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-aliases-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'registries.conf')
  await writeFile(
    file,
    'unqualified-search-registries = ["quay.io"]\n[[registry]]\nlocation = "quay.io"\nblocked = true\n',
  )
  const cache = join(dir, 'short-name-aliases.conf')
  await writeFile(cache, '[aliases]\n"quay.io/app" = "quay.io/team/app"\n')
  const routes = new MirrorRoutes({ kind: 'registries-conf', file, aliasesFile: cache }, logger, { watch: false })
  t.teardown(() => routes.close())
  t.match(routes.shortName('team/app:1'), {
    kind: 'unresolvable',
    problem: /loading short-name aliases config file .*short-name-aliases\.conf: .*must not contain registry/,
  })
  t.same(routes.shortName('quay.io/team/app:1'), { kind: 'qualified' })
  t.match(
    routes.blocked(parseReference('quay.io/team/app:1')),
    { prefix: 'quay.io' },
    'the rest of the files still apply',
  )
  await writeFile(cache, '[aliases]\n"app" = "quay.io/team/app"\n')
  routes.reload()
  t.match(routes.shortName('app:1'), { kind: 'alias', candidates: [{ canonical: 'quay.io/team/app:1' }] })
})
