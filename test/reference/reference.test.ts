import t from 'tap'
import {
  InvalidReferenceError,
  parseReference,
  tryParseReference,
  type ImageReference,
  type InvalidReferenceReason,
} from '../../src/reference/index.js'

const H256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
const H384 = '38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b'
const H512 =
  'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e'
const S256 = `sha256:${H256}`
const HUB = 'registry-1.docker.io'
const _ = undefined

// [input, domain, path, tag, digest, registry host, reference pulled]; name and canonical are spelled
// out from domain/path below, canonical checked literally for the §1 rows.
type Valid = [string, string, string, string | undefined, string | undefined, string, string]

const valid: Valid[] = [
  // registry-semantics.md §1 table
  ['nginx', 'docker.io', 'library/nginx', _, _, HUB, 'latest'],
  ['nginx:1.25', 'docker.io', 'library/nginx', '1.25', _, HUB, '1.25'],
  ['bitnami/redis:7.2', 'docker.io', 'bitnami/redis', '7.2', _, HUB, '7.2'],
  ['docker.io/nginx', 'docker.io', 'library/nginx', _, _, HUB, 'latest'],
  ['index.docker.io/library/nginx', 'docker.io', 'library/nginx', _, _, HUB, 'latest'],
  ['localhost/app', 'localhost', 'app', _, _, 'localhost', 'latest'],
  ['localhost:5000/team/app:v1', 'localhost:5000', 'team/app', 'v1', _, 'localhost:5000', 'v1'],
  [`ghcr.io/org/app@${S256}`, 'ghcr.io', 'org/app', _, S256, 'ghcr.io', S256],
  [`quay.io/org/app:v1@${S256}`, 'quay.io', 'org/app', 'v1', S256, 'quay.io', S256],
  ['registry.example.com:8443/a/b/c:x', 'registry.example.com:8443', 'a/b/c', 'x', _, 'registry.example.com:8443', 'x'],
  ['[::1]:5000/app:v1', '[::1]:5000', 'app', 'v1', _, '[::1]:5000', 'v1'],
  ['myhost/app', 'docker.io', 'myhost/app', _, _, HUB, 'latest'],
  // no "/" means Docker Hub, whatever the name looks like
  ['localhost', 'docker.io', 'library/localhost', _, _, HUB, 'latest'],
  ['localhost:5000', 'docker.io', 'library/localhost', '5000', _, HUB, '5000'],
  ['example.com', 'docker.io', 'library/example.com', _, _, HUB, 'latest'],
  ['test.com:5000', 'docker.io', 'library/test.com', '5000', _, HUB, '5000'],
  ['192.168.1.1:5000', 'docker.io', 'library/192.168.1.1', '5000', _, HUB, '5000'],
  ['foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', _, HUB, '8080'],
  [`sha256:${H256}`, 'docker.io', 'library/sha256', H256, _, HUB, H256],
  [`${H256}:v1`, 'docker.io', `library/${H256}`, 'v1', _, HUB, 'v1'],
  // Docker Hub aliases and prefixes
  ['docker.io/library/nginx:1', 'docker.io', 'library/nginx', '1', _, HUB, '1'],
  ['index.docker.io/nginx', 'docker.io', 'library/nginx', _, _, HUB, 'latest'],
  ['docker.io/bitnami/redis', 'docker.io', 'bitnami/redis', _, _, HUB, 'latest'],
  ['registry-1.docker.io/nginx', 'registry-1.docker.io', 'nginx', _, _, HUB, 'latest'],
  ['index.docker.io:443/nginx', 'index.docker.io:443', 'nginx', _, _, 'index.docker.io:443', 'latest'],
  ['library/nginx', 'docker.io', 'library/nginx', _, _, HUB, 'latest'],
  ['a/b/c/d', 'docker.io', 'a/b/c/d', _, _, HUB, 'latest'],
  ['foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080', _, HUB, '8080'],
  // what makes the first component a domain
  ['LOCALHOST/app', 'LOCALHOST', 'app', _, _, 'LOCALHOST', 'latest'],
  ['Foo/bar', 'Foo', 'bar', _, _, 'Foo', 'latest'],
  ['Example.COM/app', 'Example.COM', 'app', _, _, 'Example.COM', 'latest'],
  ['test:5000/repo', 'test:5000', 'repo', _, _, 'test:5000', 'latest'],
  ['192.168.1.1/repo', '192.168.1.1', 'repo', _, _, '192.168.1.1', 'latest'],
  ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050', _, '192.168.1.1:5000', '5050'],
  [
    'sub-dom1.foo.com/bar/baz/quux:some-long-tag',
    'sub-dom1.foo.com',
    'bar/baz/quux',
    'some-long-tag',
    _,
    'sub-dom1.foo.com',
    'some-long-tag',
  ],
  [
    'b.gcr.io/test.example.com/my-app:test.example.com',
    'b.gcr.io',
    'test.example.com/my-app',
    'test.example.com',
    _,
    'b.gcr.io',
    'test.example.com',
  ],
  ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com', _, 'xn--n3h.com', 'xn--n3h.com'],
  ['a-b--c.d:0/x', 'a-b--c.d:0', 'x', _, _, 'a-b--c.d:0', 'latest'],
  ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo', _, _, '[2001:db8::1]', 'latest'],
  ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag', _, '[2001:db8:1:2:3:4:5:6]', 'tag'],
  [`[2001:DB8::]:5000/repo:tag@${S256}`, '[2001:DB8::]:5000', 'repo', 'tag', S256, '[2001:DB8::]:5000', S256],
  // "_" in the first component: reference.Parse falls back to a domain-less name; containerd pulls from that host
  ['my_registry.local/app', 'my_registry.local', 'app', _, _, 'my_registry.local', 'latest'],
  ['a_b.c-d---e/f.g:v', 'a_b.c-d---e', 'f.g', 'v', _, 'a_b.c-d---e', 'v'],
  // path separators
  ['a__b', 'docker.io', 'library/a__b', _, _, HUB, 'latest'],
  ['a_b-c---d/e.f__g', 'docker.io', 'a_b-c---d/e.f__g', _, _, HUB, 'latest'],
  ['0/1', 'docker.io', '0/1', _, _, HUB, 'latest'],
  // tags
  ['nginx:_x', 'docker.io', 'library/nginx', '_x', _, HUB, '_x'],
  ['nginx:1.0-ALPINE', 'docker.io', 'library/nginx', '1.0-ALPINE', _, HUB, '1.0-ALPINE'],
  [`nginx:${'t'.repeat(128)}`, 'docker.io', 'library/nginx', 't'.repeat(128), _, HUB, 't'.repeat(128)],
  // digests
  [`nginx:latest@${S256}`, 'docker.io', 'library/nginx', 'latest', S256, HUB, S256],
  [`nginx@sha384:${H384}`, 'docker.io', 'library/nginx', _, `sha384:${H384}`, HUB, `sha384:${H384}`],
  [
    `xn--7o8h.com/myimage:xn--7o8h.com@sha512:${H512}`,
    'xn--7o8h.com',
    'myimage',
    'xn--7o8h.com',
    `sha512:${H512}`,
    'xn--7o8h.com',
    `sha512:${H512}`,
  ],
  // length: 255 characters of path, measured after "library/" is added, without the domain
  ['a/'.repeat(127) + 'a', 'docker.io', 'a/'.repeat(127) + 'a', _, _, HUB, 'latest'],
  ['a'.repeat(247), 'docker.io', 'library/' + 'a'.repeat(247), _, _, HUB, 'latest'],
  ['quay.io/' + 'a'.repeat(255), 'quay.io', 'a'.repeat(255), _, _, 'quay.io', 'latest'],
]

t.test('normalizes valid references as distribution ParseNormalizedNamed does', async (t) => {
  for (const [input, domain, path, tag, digest, registryHost, reference] of valid) {
    const name = `${domain}/${path}`
    const expected: ImageReference = {
      input,
      domain,
      path,
      name,
      ...(tag === undefined ? {} : { tag }),
      ...(digest === undefined ? {} : { digest }),
      registryHost,
      reference,
      canonical: digest === undefined ? `${name}:${tag ?? 'latest'}` : `${name}@${digest}`,
    }
    t.strictSame({ ...parseReference(input) }, expected, input.length > 80 ? `${input.slice(0, 80)}…` : input)
  }
})

t.test('canonical forms of the §1 table', async (t) => {
  const rows: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['bitnami/redis:7.2', 'docker.io/bitnami/redis:7.2'],
    ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v1'],
    [`quay.io/org/app:v1@${S256}`, `quay.io/org/app@${S256}`],
    ['[::1]:5000/app:v1', '[::1]:5000/app:v1'],
  ]
  for (const [input, canonical] of rows) t.equal(parseReference(input).canonical, canonical, input)
})

const invalid: Array<[string, InvalidReferenceReason]> = [
  // §1 table
  ['Nginx', 'uppercase-repository'],
  ['docker/Docker', 'uppercase-repository'],
  ['nginx:', 'invalid-tag'],
  ['nginx@sha256:abc', 'invalid-digest'],
  ['a//b', 'invalid-path'],
  ['-a/b', 'invalid-path'],
  ['[::1]:5000', 'invalid-path'],
  // shape
  ['', 'empty'],
  ['a'.repeat(4097), 'too-long'],
  [' nginx', 'invalid-format'],
  ['nginx ', 'invalid-format'],
  ['ngi\tnx', 'invalid-format'],
  ['nginx\n', 'invalid-format'],
  ['nginé', 'invalid-format'],
  ['https://x/y', 'invalid-format'],
  ['docker://nginx', 'invalid-format'],
  [H256, 'invalid-format'],
  [':justtag', 'invalid-format'],
  [`@${S256}`, 'invalid-format'],
  // case
  ['UPPER', 'uppercase-repository'],
  ['docker.io/Library/nginx', 'uppercase-repository'],
  ['test:5000/Uppercase/lowercase:tag', 'uppercase-repository'],
  ['Foo/Bar', 'uppercase-repository'],
  // domains
  ['::1/app', 'invalid-domain'],
  ['fe80::1:5000/app', 'invalid-domain'],
  ['[fe80::1%eth0]:5000/repo', 'invalid-domain'],
  ['[::ffff:1.2.3.4]/repo', 'invalid-domain'],
  ['[::1/app', 'invalid-domain'],
  ['[::1]x/app', 'invalid-domain'],
  ['example.com:abc/x', 'invalid-domain'],
  ['example.com:/x', 'invalid-domain'],
  [':5000/x', 'invalid-domain'],
  ['-a.com/x', 'invalid-domain'],
  ['a-.com/x', 'invalid-domain'],
  ['a..com/x', 'invalid-domain'],
  ['nginx:1.0/foo', 'invalid-domain'],
  ['Foo_bar/x', 'invalid-domain'],
  // paths
  ['a___b', 'invalid-path'],
  ['a..b', 'invalid-path'],
  ['a._b', 'invalid-path'],
  ['a-/b', 'invalid-path'],
  ['a/', 'invalid-path'],
  ['/a', 'invalid-path'],
  ['docker.io/', 'invalid-path'],
  ['localhost:5000/', 'invalid-path'],
  ['quay.io/org//app', 'invalid-path'],
  ['quay.io/a+b', 'invalid-path'],
  ['[::1]', 'invalid-path'],
  ['[2001:db8::1]:tag', 'invalid-path'],
  ['localhost:5000:tag', 'invalid-path'],
  // length: path over 255 characters, "library/" included
  ['a/'.repeat(128) + 'a', 'too-long'],
  ['a'.repeat(252) + '/b/c', 'too-long'],
  ['a'.repeat(248), 'too-long'],
  ['quay.io/' + 'a'.repeat(256), 'too-long'],
  // tags
  ['nginx:-1', 'invalid-tag'],
  ['nginx:.1', 'invalid-tag'],
  ['nginx:a+b', 'invalid-tag'],
  [`nginx:${'t'.repeat(129)}`, 'invalid-tag'],
  [`nginx:@${S256}`, 'invalid-tag'],
  // digests
  ['nginx@', 'invalid-digest'],
  ['nginx@sha256', 'invalid-digest'],
  [`nginx@sha256:${H256.toUpperCase()}`, 'invalid-digest'],
  [`nginx@sha256:${H256}0`, 'invalid-digest'],
  [`nginx@sha256:${H256.slice(1)}`, 'invalid-digest'],
  [`nginx@sha512:${H256}`, 'invalid-digest'],
  [`nginx@sha256:${H256.slice(1)}g`, 'invalid-digest'],
  [`nginx@${S256}@${S256}`, 'invalid-digest'],
  [`nginx@-md5:${H256}`, 'invalid-digest'],
  ['nginx@md5:d41d8cd98f00b204e9800998ecf8427', 'invalid-digest'],
  ['nginx@md5:d41d8cd98f00b204e9800998ecf8427e', 'unsupported-digest-algorithm'],
  [`validname@invaliddigest:${H256}`, 'unsupported-digest-algorithm'],
  [`nginx@SHA256:${H256}`, 'unsupported-digest-algorithm'],
  [`nginx@sha256+b64:${H256}`, 'unsupported-digest-algorithm'],
]

t.test('refuses invalid references with a stable reason', async (t) => {
  for (const [input, reason] of invalid) {
    const result = tryParseReference(input)
    const label = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input)
    if (result.ok) {
      t.fail(`${label} should be invalid, parsed as ${result.ref.canonical}`)
      continue
    }
    t.equal(result.error.reason, reason, label)
    t.equal(result.error.code, 'InvalidReference')
    t.equal(result.error.input, input)
  }
})

t.test('parseReference throws InvalidReferenceError', async (t) => {
  t.throws(() => parseReference('Nginx'), InvalidReferenceError)
  t.throws(() => parseReference('a//b'), { code: 'InvalidReference', reason: 'invalid-path' })
})

t.test('messages say what is wrong and where', async (t) => {
  const message = (input: string): string => {
    const result = tryParseReference(input)
    return result.ok ? '' : result.error.message
  }
  t.equal(message('Nginx'), 'invalid image reference "Nginx": repository name must be lowercase')
  t.equal(
    message('nginx@sha256:abc'),
    'invalid image reference "nginx@sha256:abc": sha256 digest must be 64 lower-case hex characters, got 3',
  )
  t.equal(message('nginx:'), 'invalid image reference "nginx:": tag is empty')
  t.equal(message(''), 'invalid image reference "": image reference is empty')
  t.match(message(`nginx:${'t'.repeat(129)}`), /tag must be at most 128 characters, got 129$/)
  t.match(message('a___b'), /path component "a___b" contains "___"/)
  t.match(message('-a/b'), /path component "-a" must start with a lower-case letter or digit/)
  t.match(message('a//b'), /empty component/)
  t.match(message('[::1]:5000'), /must be followed by "\/" and a repository path/)
  t.match(message('fe80::1:5000/app'), /write it in brackets/)
  t.match(message('https://x/y'), /no URL scheme; remove "https:\/\/"/)
  t.match(message(`nginx@SHA256:${H256}`), /"SHA256" is not supported \(algorithm names are lower case\)/)
  t.match(message('a'.repeat(248)), /repository path must be at most 255 characters, got 256/)
  t.match(message('nginx\n'), /"\\n" at position 6/)
})

t.test('long and hostile input is cut in the message and refused quickly', async (t) => {
  const long = tryParseReference('a'.repeat(100_000))
  t.equal(long.ok, false)
  if (!long.ok) t.ok(long.error.message.length < 400, 'message stays short')
  const started = process.hrtime.bigint()
  for (const evil of [
    'a-'.repeat(2000) + '!',
    'a.'.repeat(2000) + '_',
    `[${':'.repeat(4000)}`,
    `x@${'a'.repeat(4000)}:`,
  ]) {
    t.equal(tryParseReference(evil).ok, false)
  }
  t.ok(process.hrtime.bigint() - started < 100_000_000n, 'under 100 ms')
})

t.test('results are frozen', async (t) => {
  t.ok(Object.isFrozen(parseReference('nginx')))
})
