// Which images are pinned to the digest pullguard verified, and to what form: only those every
// pool found at the same digest; never a digest, a Never image, an exempt or unverified one.
import t from 'tap'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import { pinnedImage, pinsFor } from '../../src/policy/pins.js'
import type { ImageUse } from '../../src/policy/subject.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`

function use(image: string, extra: Partial<ImageUse> = {}): ImageUse {
  return { container: 'app', kind: 'container', field: 'spec.containers[0]', image, ...extra }
}

function exists(u: ImageUse, digest = D1): ImageOutcome {
  const result: CheckResult = {
    code: 'Exists',
    digest,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    decidedBy: 'anonymous',
    attempts: [],
  }
  return { kind: 'checked', use: u, ref: parseReference(u.image), result, tried: [], incomplete: false }
}

function missing(u: ImageUse): ImageOutcome {
  return {
    kind: 'checked',
    use: u,
    ref: parseReference(u.image),
    result: { code: 'TagNotFound', detail: 'x', attempts: [] },
    tried: [],
    incomplete: false,
  }
}

function unreachable(u: ImageUse): ImageOutcome {
  return {
    kind: 'checked',
    use: u,
    ref: parseReference(u.image),
    result: { code: 'RegistryUnreachable', cause: 'timeout', detail: 'x', attempts: [] },
    tried: [],
    incomplete: false,
  }
}

const FORMS: Array<[string, string, string]> = [
  ['nginx:1.25', D1, `nginx@${D1}`],
  ['nginx', D1, `nginx@${D1}`],
  ['docker.io/library/nginx:latest', D1, `docker.io/library/nginx@${D1}`],
  ['host:5000/team/app:v1.2', D1, `host:5000/team/app@${D1}`],
  ['host:5000/team/app', D1, `host:5000/team/app@${D1}`],
  ['[::1]:5000/app:1', D1, `[::1]:5000/app@${D1}`],
]
for (const [image, digest, want] of FORMS) {
  t.test(`pinnedImage ${image}`, async (t) => {
    const ref = parseReference(image)
    t.equal(pinnedImage(image, ref.tag, digest), want)
  })
}

const a = use('reg.example/team/app:v1')
const CASES: Array<[string, ImageUse, ImageOutcome[][], string]> = [
  ['verified on the one pool', a, [[exists(a)]], `pin reg.example/team/app@${D1}`],
  ['verified on every pool at one digest', a, [[exists(a)], [exists(a)]], `pin reg.example/team/app@${D1}`],
  ['pools found other manifests for the tag', a, [[exists(a)], [exists(a, D2)]], 'pools-differ'],
  ['not found on one pool', a, [[exists(a)], [missing(a)]], 'unverified'],
  ['a registry that gave no answer', a, [[unreachable(a)]], 'unverified'],
  ['no outcome for the field', a, [[]], 'unverified'],
  ['already a digest', use(`reg.example/team/app@${D1}`), [[exists(use(`reg.example/team/app@${D1}`))]], 'digest'],
  ['a tag and a digest', use(`reg.example/team/app:v1@${D1}`), [[exists(a)]], 'digest'],
  ['imagePullPolicy Never', use('reg.example/team/app:v1', { neverPulled: true }), [[exists(a)]], 'never-pulled'],
  ['exempt', a, [[{ kind: 'exempt', use: a, pattern: 'reg.example/*' } as ImageOutcome]], 'exempt'],
  ['answered by a mirror', a, [[answeredBy(exists(a), 'mirror.example')]], 'mirror'],
  [
    'answered by the registry through its own hosts.toml',
    a,
    [[answeredBy(exists(a), 'reg.example')]],
    `pin reg.example/team/app@${D1}`,
  ],
  [
    "answered by the registry's own CRI-O location",
    a,
    [[answeredBy(exists(a), 'reg.example/team/app')]],
    `pin reg.example/team/app@${D1}`,
  ],
  ['a location rewritten to another repository', a, [[answeredBy(exists(a), 'reg.example/mirror/app')]], 'mirror'],
  [
    'under a signature policy (matchExact reads the name as written)',
    a,
    [[{ ...exists(a), signature: { verdict: 'accepted' } } as ImageOutcome]],
    'signature-policy',
  ],
]

function answeredBy(o: ImageOutcome, label: string): ImageOutcome {
  if (o.kind !== 'checked' || o.result.code !== 'Exists') throw new Error('not an answer')
  return { ...o, result: { ...o.result, answeredBy: label } }
}
for (const [what, u, outcomes, want] of CASES) {
  t.test(`pinsFor: ${what}`, async (t) => {
    const got = pinsFor([u], outcomes)
    const said = got.pins.length > 0 ? `pin ${got.pins[0]!.to}` : got.skipped[0]!.why
    t.equal(said, want)
    if (got.pins.length > 0) t.match(got.pins[0], { from: u.image, digest: D1, use: u })
  })
}

t.test('pinsFor: each image on its own, matched by field', async (t) => {
  const c0 = use('reg.example/a:1', { field: 'spec.containers[0]' })
  const c1 = use('reg.example/b:1', { field: 'spec.containers[1]' })
  const v0 = use('reg.example/data:1', { field: 'spec.volumes[0].image', kind: 'volume', container: 'data' })
  const got = pinsFor([c0, c1, v0], [[exists(v0, D2), missing(c1), exists(c0)]])
  t.same(
    got.pins.map((p) => [p.use.field, p.to]),
    [
      ['spec.containers[0]', `reg.example/a@${D1}`],
      ['spec.volumes[0].image', `reg.example/data@${D2}`],
    ],
  )
  t.same(
    got.skipped.map((s) => [s.use.field, s.why]),
    [['spec.containers[1]', 'unverified']],
  )
})
