// Policy scopes as containers-image names them: the identity, each parent namespace, host wildcards;
// and the scopes each transport refuses when policy.json is read.
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { dockerScopes, goDigestProblem, transportScopeProblem, validDockerScope } from '../../src/signatures/scopes.js'

const DIGEST = `sha256:${'a'.repeat(64)}`

t.test('docker scopes, most specific first', async (t) => {
  const table: Array<[string, string[]]> = [
    [
      'quay.io:443/ns/repo:tag',
      ['quay.io:443/ns/repo:tag', 'quay.io:443/ns/repo', 'quay.io:443/ns', 'quay.io:443', '*.io'],
    ],
    [
      'busybox',
      ['docker.io/library/busybox:latest', 'docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io'],
    ],
    [`quay.io/ns/repo@${DIGEST}`, [`quay.io/ns/repo@${DIGEST}`, 'quay.io/ns/repo', 'quay.io/ns', 'quay.io', '*.io']],
    // CRI-O drops the tag when a digest is present
    [
      `quay.io/ns/repo:1.0@${DIGEST}`,
      [`quay.io/ns/repo@${DIGEST}`, 'quay.io/ns/repo', 'quay.io/ns', 'quay.io', '*.io'],
    ],
    [
      'a.b.example.com/x/y:1',
      [
        'a.b.example.com/x/y:1',
        'a.b.example.com/x/y',
        'a.b.example.com/x',
        'a.b.example.com',
        '*.b.example.com',
        '*.example.com',
        '*.com',
      ],
    ],
    ['localhost:5000/app:v', ['localhost:5000/app:v', 'localhost:5000/app', 'localhost:5000']],
    ['localhost/app', ['localhost/app:latest', 'localhost/app', 'localhost']],
    ['10.0.0.1:5000/app:v', ['10.0.0.1:5000/app:v', '10.0.0.1:5000/app', '10.0.0.1:5000', '*.0.0.1', '*.0.1', '*.1']],
    ['[::1]:5000/app:v', ['[::1]:5000/app:v', '[::1]:5000/app', '[::1]:5000']],
  ]
  for (const [ref, want] of table) t.same(dockerScopes(parseReference(ref)), want, ref)
})

t.test('docker scopes are never refused: containers-image v5.38 validates nothing', async (t) => {
  for (const scope of [
    '*.example.com',
    '*.example.com/ns',
    'Quay.io/x',
    'not a scope',
    'docker.io/library/nginx:latest',
  ])
    t.equal(validDockerScope(scope), undefined, scope)
})

t.test('other transports refuse what their ValidatePolicyConfigurationScope refuses', async (t) => {
  const table: Array<[string, string, string | undefined]> = [
    ['dir', '/var/images', undefined],
    ['dir', 'relative', 'Invalid scope relative: Must be an absolute path'],
    ['dir', '/', 'Invalid scope "/": Use the generic default scope ""'],
    ['dir', '/a/../b/', 'Invalid scope /a/../b/: Uses non-canonical format, perhaps try /b'],
    ['sif', '/a//b', 'Invalid scope /a//b: Uses non-canonical format, perhaps try /a/b'],
    ['oci', '/srv/oci:img', undefined],
    ['oci', 'srv', 'Invalid scope srv: must be an absolute path'],
    ['oci-archive', '/x/./y', 'Invalid scope /x/./y: Uses non-canonical path format, perhaps try with path /x/y'],
    ['docker-archive', '/x.tar', 'docker-archive: does not support any scopes except the default "" one'],
    ['tarball', '/x.tar', 'tarball: does not support any scopes except the default "" one'],
    ['docker-archive', '', undefined],
    ['docker-daemon', DIGEST, `docker-daemon: can not use algo:digest value ${DIGEST} as a namespace`],
    ['docker-daemon', 'busybox:latest', undefined],
    ['openshift', 'cluster/ns/stream:tag', undefined],
    ['openshift', 'cluster/ns/stream/extra', 'Invalid scope name cluster/ns/stream/extra'],
    ['containers-storage', '[overlay@/var/lib/containers/storage]docker.io/library/busybox', undefined],
    ['containers-storage', '[/var/lib/containers/storage]', undefined],
    ['containers-storage', 'docker.io/library/busybox', 'invalid reference'],
    ['containers-storage', '[overlay@relative]x', 'path name is not absolute'],
    ['containers-storage', `[/s]x@${'b'.repeat(64)}`, undefined],
    [
      'containers-storage',
      '[/s]x@nope',
      'nope is neither a valid digest(invalid checksum digest format) nor a valid ID(invalid checksum digest length)',
    ],
    ['ostree', 'anything at all', undefined],
    ['docker', 'anything at all', undefined],
    ['no-such-transport', 'relative', undefined],
  ]
  for (const [transport, scope, want] of table)
    t.equal(transportScopeProblem(transport, scope), want, `${transport}:${scope}`)
})

t.test('go-digest Parse', async (t) => {
  const table: Array<[string, string | undefined]> = [
    [DIGEST, undefined],
    [`sha512:${'0'.repeat(128)}`, undefined],
    [`sha256:${'A'.repeat(64)}`, 'invalid checksum digest format'],
    ['sha256:abc', 'invalid checksum digest length'],
    [`md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
    ['sha256', 'invalid checksum digest format'],
    [':abc', 'invalid checksum digest format'],
    ['Bad:x', 'invalid checksum digest format'],
  ]
  for (const [s, want] of table) t.equal(goDigestProblem(s), want, s)
})
