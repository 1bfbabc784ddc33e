// signedIdentity matching as containers-image's policy_reference_match.go does it, for tagged and
// digested images, including cosign's usual repository-only docker-reference.
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import {
  dockerImageName,
  identityMatches,
  parseDockerReference,
  remapPrefixProblem,
} from '../../src/signatures/identity.js'
import type { SignedIdentity } from '../../src/signatures/policy.js'

const D = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`

const exact: SignedIdentity = { type: 'matchExact' }
const repoDigestOrExact: SignedIdentity = { type: 'matchRepoDigestOrExact' }
const repository: SignedIdentity = { type: 'matchRepository' }

t.test('every identity type against tagged and digested images', async (t) => {
  const table: Array<[SignedIdentity, string, string, boolean]> = [
    // matchExact: the same reference, tag or digest included
    [exact, 'quay.io/ns/app:1', 'quay.io/ns/app:1', true],
    [exact, 'quay.io/ns/app:1', 'quay.io/ns/app:2', false],
    [exact, 'quay.io/ns/app:1', 'quay.io/ns/app', false],
    [exact, `quay.io/ns/app@${D}`, `quay.io/ns/app@${D}`, true],
    [exact, `quay.io/ns/app@${D}`, `quay.io/ns/app@${D2}`, false],
    [exact, 'busybox', 'docker.io/library/busybox:latest', true], // both sides normalized
    [exact, 'busybox:latest', 'index.docker.io/library/busybox:latest', true],
    [exact, `app:1@${D}`, `docker.io/library/app@${D}`, true], // CRI-O drops the tag next to a digest
    [exact, `app:1@${D}`, `docker.io/library/app:1@${D}`, false],
    // matchRepoDigestOrExact (the default): exact for tags, the repository for digests, never a bare name
    [repoDigestOrExact, 'quay.io/ns/app:1', 'quay.io/ns/app:1', true],
    [repoDigestOrExact, 'quay.io/ns/app:1', 'quay.io/ns/app:2', false],
    [repoDigestOrExact, 'quay.io/ns/app:1', 'quay.io/ns/app', false], // cosign's claim, tagged pull
    [repoDigestOrExact, `quay.io/ns/app@${D}`, 'quay.io/ns/app', false], // cosign's claim, digest pull: still no
    [repoDigestOrExact, `quay.io/ns/app@${D}`, 'quay.io/ns/app:anything', true],
    [repoDigestOrExact, `quay.io/ns/app@${D}`, `quay.io/ns/app@${D2}`, true], // the digest is checked elsewhere
    [repoDigestOrExact, `quay.io/ns/app@${D}`, 'quay.io/ns/other:1', false],
    // matchRepository: the repository only, bare names included
    [repository, 'quay.io/ns/app:1', 'quay.io/ns/app', true],
    [repository, `quay.io/ns/app@${D}`, 'quay.io/ns/app:9', true],
    [repository, 'quay.io/ns/app:1', 'quay.io/ns/app2', false],
    [repository, 'quay.io/ns/app:1', 'not a reference', false],
    // exactReference: the signature must claim exactly the configured reference, whatever is pulled
    [{ type: 'exactReference', dockerReference: 'quay.io/ns/app:1' }, 'other.io/x:9', 'quay.io/ns/app:1', true],
    [{ type: 'exactReference', dockerReference: 'quay.io/ns/app:1' }, 'other.io/x:9', 'quay.io/ns/app', false],
    [{ type: 'exactReference', dockerReference: `quay.io/ns/app@${D}` }, 'x:1', `quay.io/ns/app@${D}`, true],
    // exactRepository: the configured repository
    [{ type: 'exactRepository', dockerRepository: 'quay.io/ns/app' }, 'other.io/x:9', 'quay.io/ns/app', true],
    [{ type: 'exactRepository', dockerRepository: 'quay.io/ns/app' }, 'other.io/x:9', 'quay.io/ns/app:7', true],
    [{ type: 'exactRepository', dockerRepository: 'quay.io/ns/app' }, 'other.io/x:9', 'quay.io/ns/app2', false],
    // remapIdentity: the prefix rewritten, then matchRepoDigestOrExact
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/quay', signedPrefix: 'quay.io' },
      'mirror.internal/quay/ns/app:1',
      'quay.io/ns/app:1',
      true,
    ],
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/quay', signedPrefix: 'quay.io' },
      'mirror.internal/quay/ns/app:1',
      'quay.io/ns/app',
      false,
    ],
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/quay', signedPrefix: 'quay.io' },
      `mirror.internal/quay/ns/app@${D}`,
      'quay.io/ns/app:x',
      true,
    ],
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/quay', signedPrefix: 'quay.io' },
      'mirror.internal/quayx/app:1',
      'quay.io/x/app:1',
      false,
    ],
    // not under the prefix: matched unchanged
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/quay', signedPrefix: 'quay.io' },
      'ghcr.io/o/a:1',
      'ghcr.io/o/a:1',
      true,
    ],
    // whole-name prefix
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/app', signedPrefix: 'quay.io/ns/app' },
      'mirror.internal/app:1',
      'quay.io/ns/app:1',
      true,
    ],
    // the rewritten reference must already be canonical ("busybox" is not; docker.io/library/busybox is)
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/bb', signedPrefix: 'docker.io/busybox' },
      'mirror.internal/bb:1',
      'docker.io/library/busybox:1',
      false,
    ],
    [
      { type: 'remapIdentity', prefix: 'mirror.internal/bb', signedPrefix: 'docker.io/library/busybox' },
      'mirror.internal/bb:1',
      'busybox:1',
      true,
    ],
  ]
  for (const [identity, image, signed, want] of table) {
    t.equal(
      identityMatches(identity, parseReference(image), signed),
      want,
      `${identity.type}: ${image} signed as ${signed}`,
    )
  }
})

t.test("containers-image's own (older) reference parser for signed references", async (t) => {
  const table: Array<[string, boolean]> = [
    ['quay.io/ns/app:1', true],
    ['[::1]:5000/app:1', false], // no IPv6 hosts
    ['Registry/app:1', false], // upper case without "." or ":" is a path
    ['Registry.io/app:1', true],
    [`quay.io/${'a'.repeat(250)}:1`, false], // 255 characters for host + path
    ['my_registry.local/app:1', true],
  ]
  for (const [s, ok] of table) t.equal(parseDockerReference(s).ok, ok, s)
  t.notOk(identityMatches(repository, parseReference('[::1]:5000/app:1'), '[::1]:5000/app'), 'IPv6 claims never match')
})

t.test('remapIdentity prefixes', async (t) => {
  const table: Array<[string, boolean]> = [
    ['quay.io', true],
    ['quay.io:443', true],
    ['quay.io/ns', true],
    ['quay.io/ns/app', true],
    ['localhost:5000/x', true],
    ['busybox', true], // a host name by the grammar; containers-image lets it through
    ['ns/shortname', true], // not caught either (FIXME in containers-image)
    ['quay.io/', false],
    ['quay.io/NS', false],
    ['https://quay.io', false],
    ['[::1]:5000', false],
    ['', false],
  ]
  for (const [prefix, ok] of table) t.equal(remapPrefixProblem(prefix) === undefined, ok, prefix)
})

t.test('image names in messages are docker transport names', async (t) => {
  t.equal(dockerImageName(parseReference('nginx')), 'docker://nginx:latest')
  t.equal(dockerImageName(parseReference('docker.io/team/app:1')), 'docker://team/app:1')
  t.equal(dockerImageName(parseReference(`quay.io/ns/app:1@${D}`)), `docker://quay.io/ns/app@${D}`)
})
