// containerd's hosts.toml, table by table: the cases of containerd's own hosts_test.go that bear on
// where a pull is resolved (server, [host] order, capabilities, paths, override_path, ca, header,
// skip_verify, the docker.io upstream, localhost) and the fallbacks (no file, a broken file).
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
