import t from 'tap'
import {
  globMatch,
  isDefaultRegistryMatch,
  keyMatches,
  lookup,
  normalizeKey,
  type KeyringEntry,
} from '../../src/credentials/keyring.js'

// [key as written, normalized KEY (undefined: the kubelet drops it), host, port, path]
const normalized: Array<[string, string | undefined, string?, string?, string?]> = [
  ['https://index.docker.io/v1/', 'index.docker.io', 'index.docker.io', '', ''],
  ['index.docker.io/v1/', 'index.docker.io', 'index.docker.io', '', ''],
  ['https://index.docker.io/v2/', 'index.docker.io', 'index.docker.io', '', ''],
  ['docker.io', 'docker.io', 'docker.io', '', ''],
  ['https://quay.io/v2/', 'quay.io', 'quay.io', '', ''],
  ['https://quay.io/v1/org/app', 'quay.io/org/app', 'quay.io', '', '/org/app'],
  ['quay.io/', 'quay.io', 'quay.io', '', ''],
  ['quay.io/org', 'quay.io/org', 'quay.io', '', '/org'],
  ['quay.io/org/', 'quay.io/org/', 'quay.io', '', '/org/'],
  ['quay.io/v2', 'quay.io/v2', 'quay.io', '', '/v2'],
  ['quay.io/V2/', 'quay.io/V2/', 'quay.io', '', '/V2/'],
  ['quay.io/v2/v1/x', 'quay.io/v1/x', 'quay.io', '', '/v1/x'],
  ['http://10.0.0.1:5000', '10.0.0.1:5000', '10.0.0.1', '5000', ''],
  ['myreg:5000', 'myreg:5000', 'myreg', '5000', ''],
  ['myreg:', 'myreg:', 'myreg', '', ''],
  ['Quay.IO', 'Quay.IO', 'Quay.IO', '', ''],
  ['*.gcr.io', '*.gcr.io', '*.gcr.io', '', ''],
  ['[::1]:5000', '[::1]:5000', '::1', '5000', ''],
  ['[::1]', '[::1]', '[::1]', '', ''],
  ['https://[2001:db8::1]:8443/v2/team', '[2001:db8::1]:8443/team', '2001:db8::1', '8443', '/team'],
  ['quay.io?query=1', 'quay.io', 'quay.io', '', ''],
  ['quay.io/org?x#y', 'quay.io/org', 'quay.io', '', '/org'],
  ['user:pw@quay.io', 'quay.io', 'quay.io', '', ''],
  ['quay.io/org%2Fapp', 'quay.io/org/app', 'quay.io', '', '/org/app'],
  ['HTTPS://quay.io', 'HTTPS://quay.io', 'HTTPS', '', '//quay.io'],
  ['', '', '', '', ''],
  ['quay.io:abc', undefined],
  ['quay.io/%zz', undefined],
  ['quay.io#%zz', undefined],
  ['us[ab].gcr.io', undefined],
  ['[1.2.3.4]:5000', undefined],
  ['[not-ipv6]', undefined],
  ['[::1', undefined],
  ['qu ay.io', undefined],
  ['quay.io\t', undefined],
  ['quay.io^', undefined],
  ['quay%41.io', undefined],
  ['u^ser@quay.io', undefined],
]

for (const [key, expected, host, port, path] of normalized) {
  t.test(`normalizes key ${JSON.stringify(key)}`, async (t) => {
    t.same(normalizeKey(key), expected === undefined ? undefined : { key: expected, host, port, path })
  })
}

// [key as written, image name (normalized, as ImageReference.name), matches directly]
const matches: Array<[string, string, boolean]> = [
  // registry-semantics.md §4 table (the Docker Hub fallback row is a lookup, below)
  ['https://index.docker.io/v1/', 'docker.io/library/nginx', false],
  ['docker.io', 'docker.io/library/nginx', true],
  ['registry-1.docker.io', 'docker.io/library/nginx', false],
  ['https://quay.io/v2/', 'quay.io/org/app', true],
  ['quay.io/org', 'quay.io/organization/x', true],
  ['*.gcr.io', 'us.gcr.io/p/i', true],
  ['*.gcr.io', 'gcr.io/p/i', false],
  ['myreg:5000', 'myreg:5000/app', true],
  ['myreg:5000', 'myreg:5001/app', false],
  ['myreg:5000', 'myreg/app', false],
  ['http://10.0.0.1:5000', '10.0.0.1:5000/x', true],
  // paths: a plain string prefix, trailing slashes included
  ['quay.io/org/', 'quay.io/org/app', true],
  ['quay.io/org/app/', 'quay.io/org/app', false],
  ['quay.io/org/app', 'quay.io/org/app', true],
  ['quay.io/org/app', 'quay.io/org/app2', true],
  ['quay.io/org', 'quay.io/other/app', false],
  ['quay.io/v2', 'quay.io/v2org/x', true],
  ['quay.io/v2', 'quay.io/org/app', false],
  ['https://quay.io/v1/', 'quay.io/org/app', true],
  ['quay.io/V2/', 'quay.io/org/app', false],
  // ports
  ['quay.io', 'quay.io:443/org/app', false],
  ['https://quay.io:443', 'quay.io/org/app', false],
  ['localhost:5000', 'localhost:5000/team/app', true],
  ['localhost', 'localhost:5000/team/app', false],
  ['myreg:', 'myreg/app', true],
  // globs, label by label
  ['*.*', 'docker.io/library/nginx', true],
  ['*', 'localhost/app', true],
  ['*', 'docker.io/library/nginx', false],
  ['k8s.*.io', 'k8s.gcr.io/x', true],
  ['*.gcr.io', 'a.b.gcr.io/x', false],
  ['u?.gcr.io', 'us.gcr.io/x', false], // "?" starts the URL query: the key is "u"
  ['us[ab].gcr.io', 'usa.gcr.io/x', false], // url.Parse refuses "[" inside a host (Go ≥ 1.24.8)
  ['*-docker.pkg.dev', 'europe-docker.pkg.dev/p/r/i', true],
  // case: hosts are compared as written
  ['Quay.io', 'quay.io/x', false],
  ['quay.io', 'Quay.io/x', false],
  // IPv6
  ['[::1]:5000', '[::1]:5000/app', true],
  ['[::1]:5001', '[::1]:5000/app', false],
  ['[::1]', '[::1]/app', false], // no port: the bracketed host stays a glob, and "[::1]" is a character class
  ['https://[2001:db8::1]:8443/v2/', '[2001:db8::1]:8443/team/app', true],
  // schemes and decorations are dropped
  ['http://quay.io', 'quay.io/x', true],
  ['https://user:pw@quay.io/v2/', 'quay.io/x', true],
  ['quay.io?x=1', 'quay.io/x', true],
  ['ftp://quay.io', 'quay.io/x', false],
  ['HTTPS://quay.io', 'quay.io/x', false],
  ['', 'localhost/app', false],
  ['quay.io:abc', 'quay.io/x', false],
]

for (const [key, image, expected] of matches) {
  t.test(`key ${JSON.stringify(key)} ${expected ? 'matches' : 'does not match'} ${image}`, async (t) => {
    t.equal(keyMatches(key, image), expected)
  })
}

const e = (key: string, label: string, username = 'u', password = 'p'): KeyringEntry => ({
  key,
  username,
  password,
  label,
})
const labels = (entries: KeyringEntry[]): string[] => entries.map((x) => x.label)

t.test('Docker Hub fallback: an index.docker.io key serves docker.io images when nothing matched', async (t) => {
  const hub = [e('https://index.docker.io/v1/', 'hub')]
  t.same(labels(lookup(hub, 'docker.io/library/nginx')), ['hub'])
  t.same(labels(lookup(hub, 'docker.io/bitnami/redis')), ['hub'])
  t.same(labels(lookup([e('index.docker.io', 'hub')], 'docker.io/library/nginx')), ['hub'])
  t.same(labels(lookup([e('https://index.docker.io/v2/', 'hub')], 'docker.io/library/nginx')), ['hub'])
  t.same(labels(lookup(hub, 'quay.io/org/app')), [])
  t.same(labels(lookup(hub, '[::1]:5000/app')), [])
  t.same(
    labels(lookup([e('index.docker.io/library', 'hub')], 'docker.io/library/nginx')),
    [],
    'only the bare index.docker.io KEY is the fallback',
  )
})

t.test('Docker Hub fallback also serves a domain without "." or ":" (isDefaultRegistryMatch)', async (t) => {
  t.same(labels(lookup([e('https://index.docker.io/v1/', 'hub')], 'localhost/app')), ['hub'])
  t.same(labels(lookup([e('https://index.docker.io/v1/', 'hub')], 'localhost:5000/app')), [])
})

t.test('registry-1.docker.io never serves docker.io images', async (t) => {
  t.same(labels(lookup([e('https://registry-1.docker.io/v2/', 'api')], 'docker.io/library/nginx')), [])
})

t.test('a direct docker.io match wins over the fallback', async (t) => {
  const ring = [e('https://index.docker.io/v1/', 'hub'), e('docker.io', 'direct')]
  t.same(labels(lookup(ring, 'docker.io/library/nginx')), ['direct'])
  t.same(
    labels(lookup([e('https://index.docker.io/v1/', 'hub'), e('docker.io/other', 'other')], 'docker.io/library/nginx')),
    ['hub'],
  )
})

t.test('all matching keys contribute, in reverse lexical order of the normalized KEY', async (t) => {
  const ring = [
    e('quay.io', 'host'),
    e('*.io', 'glob'),
    e('quay.io/org/app', 'repo'),
    e('quay.io/org', 'org'),
    e('quay.io/o', 'o'),
    e('gcr.io', 'other'),
  ]
  t.same(labels(lookup(ring, 'quay.io/org/app')), ['repo', 'org', 'o', 'host', 'glob'])
  t.same(labels(lookup(ring, 'quay.io/elsewhere/x')), ['host', 'glob'])
})

t.test('entries with the same KEY keep the order they were added in (secrets in pod order)', async (t) => {
  const ring = [
    e('quay.io', 'first/quay.io'),
    e('quay.io/org', 'first/quay.io/org'),
    e('https://quay.io/v2/', 'second/https://quay.io/v2/'),
    e('http://quay.io', 'second/http://quay.io'),
    e('quay.io/org/', 'third/quay.io/org/'),
    e('quay.io', 'third/quay.io'),
  ]
  t.same(labels(lookup(ring, 'quay.io/org/app')), [
    'third/quay.io/org/',
    'first/quay.io/org',
    'first/quay.io',
    'second/https://quay.io/v2/',
    'second/http://quay.io',
    'third/quay.io',
  ])
})

t.test('identical credentials are not deduplicated', async (t) => {
  const ring = [
    e('quay.io', 'a', 'same', 'same'),
    e('https://quay.io', 'b', 'same', 'same'),
    e('quay.io', 'a', 'same', 'same'),
  ]
  t.same(labels(lookup(ring, 'quay.io/x')), ['a', 'b', 'a'])
})

t.test('keys the kubelet cannot parse are dropped, the rest still work', async (t) => {
  t.same(labels(lookup([e('quay.io:abc', 'bad'), e('quay.io', 'good')], 'quay.io/x')), ['good'])
})

t.test('no entries, no credentials', async (t) => {
  t.same(lookup([], 'docker.io/library/nginx'), [])
})

t.test('isDefaultRegistryMatch follows keyring.go', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['docker.io/library/nginx', true],
    ['index.docker.io/library/nginx', true],
    ['library/nginx', true],
    ['nginx', true],
    ['localhost/app', true],
    ['quay.io/org/app', false],
    ['localhost:5000/app', false],
    ['/app', false],
  ]
  for (const [image, expected] of cases) t.equal(isDefaultRegistryMatch(image), expected, image)
})

t.test('globMatch is Go path.Match', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['*', 'abc', true],
    ['*', '', true],
    ['a*c', 'abc', true],
    ['a*c', 'ab', false],
    ['a*b*c', 'aXbYc', true],
    ['*x', 'ax', true],
    ['?', 'a', true],
    ['?', 'ab', false],
    ['[a-c]', 'b', true],
    ['[a-c]*', 'b123', true],
    ['[^a-c]', 'b', false],
    ['[^a-c]', 'd', true],
    ['[!a]', '!', true], // Go has no "!" negation
    ['[\\]]', ']', true],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['', '', true],
    ['', 'a', false],
    // malformed patterns never match
    ['[]a]', 'a', false],
    ['[a-]', 'a', false],
    ['[a-c', 'b', false],
    ['[', 'a', false],
    ['a[', 'a', false],
    ['\\', 'x', false],
    ['*[', 'ab', false],
  ]
  for (const [pattern, name, expected] of cases) t.equal(globMatch(pattern, name), expected, `${pattern} ~ ${name}`)
})
