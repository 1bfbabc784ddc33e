// containerd's hosts.toml, table by table: the cases of containerd's own hosts_test.go that bear on
// where a pull is resolved (server, [host] order, capabilities, paths, override_path, ca, header,
// skip_verify, client, dial_timeout, the docker.io upstream, localhost) and the fallbacks (no file, a
// broken file, with the docker-style *.crt and *.cert/*.key files).
import t from 'tap'
import {
  hostDirCandidates,
  hostDirectory,
  hostsFor,
  parseHostsToml,
  registryHosts,
  upstreamHost,
  type RegistryHost,
} from '../../src/mirrors/hosts-toml.js'

const DIR = '/etc/containerd/certs.d/docker.io'
const short = (h: RegistryHost): string =>
  `${h.scheme}://${h.host}${h.path} [${[...h.capabilities].sort().join(',')}] ${h.origin}`

t.test('host directories: host_port_, host, _default', async (t) => {
  t.same(hostDirCandidates('docker.io'), ['docker.io', '_default'])
  t.same(hostDirCandidates('registry.example:5000'), ['registry.example_5000_', 'registry.example:5000', '_default'])
  t.same(hostDirCandidates('[::1]:5000'), ['[::1]_5000_', '[::1]:5000', '_default'])
  t.equal(hostDirectory('localhost'), 'localhost')
})

t.test('the upstream when nothing names a server', async (t) => {
  const table: Array<[string, string, boolean | undefined]> = [
    ['docker.io', 'https://registry-1.docker.io/v2 [pull,push,resolve] upstream', undefined],
    ['ghcr.io', 'https://ghcr.io/v2 [pull,push,resolve] upstream', undefined],
    ['localhost:5000', 'http://localhost:5000/v2 [pull,push,resolve] upstream', true],
    ['127.0.0.1:443', 'https://127.0.0.1:443/v2 [pull,push,resolve] upstream', true],
    ['localhost:80', 'http://localhost:80/v2 [pull,push,resolve] upstream', undefined],
    ['localhost', 'https://localhost/v2 [pull,push,resolve] upstream', true],
  ]
  for (const [registry, want, skip] of table) {
    const h = upstreamHost(registry)
    t.equal(short(h), want, registry)
    t.equal(h.skipVerify, skip, `${registry} skip_verify`)
  }
})

t.test('[host] tables in file order, then the server', async (t) => {
  const hosts = parseHostsToml(
    'docker.io',
    `
server = "https://registry-1.docker.io"

[host."https://mirror-b.internal"]
  capabilities = ["pull", "resolve"]

[host."https://mirror-a.internal:5000"]
  capabilities = ["pull"]
  ca = "mirror-a.crt"
  skip_verify = false
  [host."https://mirror-a.internal:5000".header]
    x-custom = "1"
    x-list = ["a", "b"]

[host."http://cache.internal/registry"]
  capabilities = ["pull", "resolve"]
  override_path = true
`,
    DIR,
  )
  t.same(hosts.map(short), [
    'https://mirror-b.internal/v2 [pull,resolve] host',
    'https://mirror-a.internal:5000/v2 [pull] host',
    'http://cache.internal/registry [pull,resolve] host',
    'https://registry-1.docker.io/v2 [pull,push,resolve] server',
  ])
  t.same(hosts[1]?.caFiles, [`${DIR}/mirror-a.crt`], 'ca relative to the host directory')
  t.same(hosts[1]?.header, { 'x-custom': ['1'], 'x-list': ['a', 'b'] })
  t.equal(hosts[1]?.skipVerify, false)
  t.equal(hosts[0]?.skipVerify, undefined)
})

t.test('paths: /v2 added, kept, or left to override_path', async (t) => {
  const table: Array<[string, string]> = [
    ['server = "https://r.example"', '/v2'],
    ['server = "https://r.example/"', '/v2'],
    ['server = "https://r.example/v2"', '/v2'],
    ['server = "https://r.example/proxy"', '/proxy/v2'],
    ['server = "https://r.example/proxy/v2/"', '/proxy/v2'],
    ['server = "https://r.example/custom/api"\noverride_path = true', '/custom/api'],
    ['server = "https://r.example"\noverride_path = true', ''],
    ['server = "r.example:5000"', '/v2'],
  ]
  for (const [text, path] of table) {
    const [h] = parseHostsToml('r.example', text, DIR)
    t.equal(h?.path, path, text)
  }
  t.equal(parseHostsToml('r.example', 'server = "r.example:5000"', DIR)[0]?.scheme, 'https', 'no scheme: https')
})

t.test("no server: the registry itself, with every capability, keeping the top level's TLS settings", async (t) => {
  const hosts = parseHostsToml(
    'docker.io',
    `
capabilities = ["pull"]
ca = "/etc/ssl/extra.pem"
[host."https://mirror.internal"]
`,
    DIR,
  )
  t.same(hosts.map(short), [
    'https://mirror.internal/v2 [pull,push,resolve] host',
    'https://registry-1.docker.io/v2 [pull,push,resolve] upstream',
  ])
  t.same(hosts[1]?.caFiles, ['/etc/ssl/extra.pem'])
})

t.test('a tag asks the hosts that resolve; a digest every host that pulls', async (t) => {
  const hosts = parseHostsToml(
    'docker.io',
    `
server = "https://registry-1.docker.io"
[host."https://pull-only.internal"]
  capabilities = ["pull"]
[host."https://resolver.internal"]
  capabilities = ["pull", "resolve"]
[host."https://push-only.internal"]
  capabilities = ["push"]
`,
    DIR,
  )
  t.same(
    hostsFor(hosts, false).map((h) => h.host),
    ['resolver.internal', 'registry-1.docker.io'],
  )
  t.same(
    hostsFor(hosts, true).map((h) => h.host),
    ['pull-only.internal', 'resolver.internal', 'registry-1.docker.io'],
  )
})

t.test("what containerd refuses, and falls back from to the directory's *.crt files", async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['server = ', /Invalid|invalid|expected/i],
    ['capabilities = ["pull", "fetch"]', /unknown capability fetch/],
    ['skip_verify = "yes"', /skip_verify must be true or false/],
    ['server = 5', /server must be a string/],
    ['ca = 5', /ca must be a string or a list of strings/],
    ['[host."httpx://mirror"]', /only http and https/],
  ]
  for (const [text, problem] of refused) {
    const r = registryHosts('docker.io', { text, files: ['b.crt', 'a.crt', 'client.cert', 'client.key'], dir: DIR })
    t.match(r.problem?.message ?? '', problem, text)
    t.equal(r.problem?.code, 'HostsFileInvalid')
    t.same(
      r.hosts.map(short),
      ['https://registry-1.docker.io/v2 [pull,push,resolve] upstream'],
      `${text}: the upstream`,
    )
    t.same(r.hosts[0]?.caFiles, [`${DIR}/a.crt`, `${DIR}/b.crt`], `${text}: with the *.crt files`)
  }
  const none = registryHosts('docker.io', { text: undefined, files: ['ca.crt'], dir: DIR })
  t.equal(none.problem, undefined, 'no hosts.toml is no problem')
  t.same(none.hosts[0]?.caFiles, [`${DIR}/ca.crt`])
  t.same(
    registryHosts('quay.io', undefined).hosts.map(short),
    ['https://quay.io/v2 [pull,push,resolve] upstream'],
    'no directory at all',
  )
})

t.test('client: every shape containerd accepts, paths relative to the host directory', async (t) => {
  const table: Array<[string, Array<{ certFile: string; keyFile?: string }>]> = [
    ['client = "client.pem"', [{ certFile: `${DIR}/client.pem` }]],
    ['client = "/etc/pki/client.pem"', [{ certFile: '/etc/pki/client.pem' }]],
    ['client = ["a.pem", "b.pem"]', [{ certFile: `${DIR}/a.pem` }, { certFile: `${DIR}/b.pem` }]],
    ['client = [["client.cert", "client.key"]]', [{ certFile: `${DIR}/client.cert`, keyFile: `${DIR}/client.key` }]],
    [
      'client = ["both.pem", ["c.cert", "/keys/c.key"]]',
      [{ certFile: `${DIR}/both.pem` }, { certFile: `${DIR}/c.cert`, keyFile: '/keys/c.key' }],
    ],
    ['client = "../common/client.pem"', [{ certFile: '/etc/containerd/certs.d/common/client.pem' }]],
    ['client = []', []],
  ]
  for (const [line, pairs] of table) {
    const [h] = parseHostsToml('docker.io', `server = "https://registry-1.docker.io"\n${line}`, DIR)
    t.same(h?.clientPairs, pairs, line)
  }
})

t.test('dial_timeout: a Go duration, in milliseconds', async (t) => {
  const table: Array<[string, number | undefined]> = [
    ['dial_timeout = "5s"', 5000],
    ['dial_timeout = "300ms"', 300],
    ['dial_timeout = "1.5s"', 1500],
    ['dial_timeout = "1m30s"', 90_000],
    ['dial_timeout = "-1s"', -1000],
    ['dial_timeout = "0"', 0],
    ['dial_timeout = ""', undefined],
    ['', undefined],
  ]
  for (const [line, ms] of table) {
    const [h] = parseHostsToml('r.example', `server = "https://r.example"\n${line}`, DIR)
    t.equal(h?.dialTimeoutMs, ms, line || 'none')
  }
  const [mirror] = parseHostsToml('r.example', '[host."https://m.example"]\n  dial_timeout = "2s"', DIR)
  t.equal(mirror?.dialTimeoutMs, 2000, 'per host')
})

t.test('which hosts have TLS settings of their own (containerd explicitTLSFromHost)', async (t) => {
  const table: Array<[string, boolean]> = [
    ['ca = "ca.crt"', true],
    ['ca = []', true],
    ['client = "c.pem"', true],
    ['client = []', false],
    ['skip_verify = false', true],
    ['dial_timeout = "1s"', false],
    ['', false],
  ]
  for (const [line, configured] of table) {
    const [h] = parseHostsToml('r.example', `server = "http://r.example:5000"\n${line}`, DIR)
    t.equal(h?.tlsConfigured, configured, line || 'nothing')
  }
})

t.test("no server: the top level's client and dial_timeout go to the registry itself", async (t) => {
  const [upstream] = parseHostsToml('ghcr.io', 'client = "c.pem"\ndial_timeout = "3s"', DIR)
  t.match(upstream, {
    host: 'ghcr.io',
    origin: 'upstream',
    clientPairs: [{ certFile: `${DIR}/c.pem` }],
    dialTimeoutMs: 3000,
    tlsConfigured: true,
  })
})

t.test('without a usable hosts.toml: *.cert files with their *.key (or alone) are client certificates', async (t) => {
  const r = registryHosts('docker.io', { text: undefined, files: ['b.cert', 'b.key', 'a.cert', 'ca.crt'], dir: DIR })
  t.same(r.hosts[0]?.clientPairs, [
    { certFile: `${DIR}/a.cert` },
    { certFile: `${DIR}/b.cert`, keyFile: `${DIR}/b.key` },
  ])
  t.equal(r.hosts[0]?.tlsConfigured, true)
})

t.test('a client or dial_timeout containerd cannot decode makes the whole file unusable', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['client = 5', /client must be a file/],
    ['client = [5]', /client must be a file/],
    ['client = { cert = "a" }', /client must be a file/],
    ['client = [["a.pem"]]', /invalid pair/],
    ['client = [["a", "b", "c"]]', /invalid pair/],
    ['client = [[1, 2]]', /must hold file names/],
    ['dial_timeout = "5"', /dial_timeout: time: missing unit in duration "5"/],
    ['dial_timeout = "soon"', /dial_timeout: time: invalid duration "soon"/],
    ['dial_timeout = "5x"', /dial_timeout: time: unknown unit "x" in duration "5x"/],
    ['dial_timeout = 5', /dial_timeout must be a string/],
    ['[host."https://m.example"]\n  dial_timeout = "1 s"', /dial_timeout/],
  ]
  for (const [text, problem] of refused) {
    const r = registryHosts('docker.io', { text, files: ['ca.crt'], dir: DIR })
    t.match(r.problem?.message ?? '', problem, text)
    t.equal(r.problem?.code, 'HostsFileInvalid')
    t.same(
      r.hosts.map(short),
      ['https://registry-1.docker.io/v2 [pull,push,resolve] upstream'],
      `${text}: the upstream`,
    )
    t.same(r.hosts[0]?.caFiles, [`${DIR}/ca.crt`], `${text}: with the *.crt files`)
  }
})
