// The assessment memo: reused only while the namespace's revision, the other inputs and every
// registry answer it used hold; never kept when something in it was transient.
import t from 'tap'
import type { Assessment } from '../../src/policy/assess.js'
import { AssessmentMemo, memoKey } from '../../src/policy/assessment-memo.js'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import type { PodSubject } from '../../src/policy/subject.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const subject = (over: Partial<PodSubject> = {}): PodSubject => ({
  namespace: 'team-a',
  kind: 'Pod',
  name: 'web',
  specField: 'spec',
  template: false,
  images: [{ container: 'app', kind: 'container', field: 'spec.containers[0]', image: 'reg.example.com/app:1' }],
  pullSecrets: ['regcred'],
  serviceAccountName: undefined,
  scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  ...over,
})

const exists = (): CheckResult => ({
  code: 'Exists',
  digest: `sha256:${'a'.repeat(64)}`,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  decidedBy: 'HEAD',
  attempts: [],
})
const checked = (result: CheckResult, incomplete = false): ImageOutcome => ({
  kind: 'checked',
  use: subject().images[0]!,
  ref: parseReference('reg.example.com/app:1'),
  result,
  tried: ['secret team-a/regcred'],
  incomplete,
})
const assessment = (
  outcomes: ImageOutcome[],
  over: Partial<Extract<Assessment, { outcomes: unknown }>> = {},
): Assessment => ({
  mode: 'enforce',
  modeNote: undefined,
  outcomes,
  secretNames: { names: ['regcred'], source: 'pod', incomplete: false },
  secretProblems: [],
  secretsLoaded: [{ name: 'regcred', registries: ['reg.example.com'] }],
  ...over,
})

function world(): {
  memo: AssessmentMemo
  revision: Map<string, number | undefined>
  inputs: unknown[]
  expiry: Map<CheckResult, number>
  clock: { now: number }
} {
  const revision = new Map<string, number | undefined>([
    ['team-a', 1],
    ['team-b', 1],
  ])
  const inputs: unknown[] = [[], undefined]
  const expiry = new Map<CheckResult, number>()
  const clock = { now: 1000 }
  const memo = new AssessmentMemo({
    revision: (ns) => revision.get(ns),
    inputs: () => [...inputs],
    expiresAt: (r) => expiry.get(r),
    clock: { now: () => clock.now },
    maxEntries: 3,
  })
  return { memo, revision, inputs, expiry, clock }
}

t.test('kept until the first registry answer it used expires', async (t) => {
  const w = world()
  const a = exists()
  const b = exists()
  w.expiry.set(a, 5000)
  w.expiry.set(b, 3000)
  const found = assessment([checked(a), checked(b)])
  w.memo.keep(w.memo.stamp(subject())!, found)
  t.equal(w.memo.get(w.memo.stamp(subject({ name: 'web-2' }))!), found, 'the name does not matter')
  w.clock.now = 2999
  t.equal(w.memo.get(w.memo.stamp(subject())!), found)
  w.clock.now = 3000
  t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, 'gone with the earliest answer')
})

t.test(
  'with credential provider answers: kept no longer than they are cached, never after a plugin failure',
  async (t) => {
    const w = world()
    const a = exists()
    w.expiry.set(a, 10_000)
    const plugin = (reusableUntil: number, failed = false): ImageOutcome =>
      ({
        ...checked(a),
        providers: ['ecr-credential-provider'],
        providersReusableUntil: reusableUntil,
        ...(failed
          ? {
              providerFailures: [
                { provider: 'ecr-credential-provider', code: 'PluginExited' as const, problem: 'exited with status 1' },
              ],
            }
          : {}),
      }) as ImageOutcome
    const found = assessment([plugin(4000)])
    w.memo.keep(w.memo.stamp(subject())!, found)
    w.clock.now = 3999
    t.equal(w.memo.get(w.memo.stamp(subject())!), found, 'reused while the plugin answer is cached')
    w.clock.now = 4000
    t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, 'gone with the plugin answer, before the registry answer')
    for (const [name, outcome] of [
      ['an uncached plugin answer', plugin(0)],
      ['a failed plugin', plugin(0, true)],
      ['an answer for one account', plugin(0)],
    ] as const) {
      const w2 = world()
      w2.expiry.set(a, 10_000)
      w2.memo.keep(w2.memo.stamp(subject())!, assessment([outcome]))
      t.equal(w2.memo.get(w2.memo.stamp(subject())!), undefined, `${name}: not kept`)
    }
  },
)

t.test('a new revision of the namespace, or other inputs, make it stale', async (t) => {
  const w = world()
  const r = exists()
  w.expiry.set(r, 1e12)
  const found = assessment([checked(r)])
  const stamp = w.memo.stamp(subject())!
  w.memo.keep(stamp, found)
  w.revision.set('team-b', 7)
  t.equal(w.memo.get(w.memo.stamp(subject())!), found, "another namespace's change does not matter")
  w.revision.set('team-a', 2)
  t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, 'a secret, service account or label changed in team-a')

  // Kept with the stamp taken before the assessment: a change during it wins.
  w.memo.keep(stamp, found)
  t.equal(
    w.memo.get(w.memo.stamp(subject())!),
    undefined,
    'an assessment that started before the change is not served after it',
  )

  w.memo.keep(w.memo.stamp(subject())!, found)
  t.equal(w.memo.get(w.memo.stamp(subject())!), found)
  w.inputs[0] = []
  t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, 'node credentials reloaded')
  w.memo.keep(w.memo.stamp(subject())!, found)
  w.inputs[1] = [{ os: 'linux', architecture: 'arm64' }]
  t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, 'cluster platforms read')

  w.revision.set('team-a', undefined)
  t.equal(w.memo.stamp(subject()), undefined, 'no revision (copies not listed): nothing is kept or served')
})

t.test('what is never kept', async (t) => {
  const cached = exists()
  const uncached = exists()
  const cases: Array<[string, Assessment]> = [
    ['a result the cache does not hold (registry error, rate limit, timeout)', assessment([checked(uncached)])],
    ['an image judged while a pull secret could not be read', assessment([checked(cached, true)])],
    [
      'an unreadable service account',
      assessment([checked(cached)], {
        secretNames: { names: [], source: 'none', incomplete: true, warning: 'could not be read' },
      }),
    ],
    [
      'a secret problem (answered from a short-lived memory of its own)',
      assessment([checked(cached)], { secretProblems: [{ secret: 'gone', kind: 'missing', detail: 'not found' }] }),
    ],
    [
      'a mode that fell back because the namespace could not be read',
      assessment([checked(cached)], { modeNote: 'namespace could not be read' }),
    ],
    ['an exempt namespace', { mode: 'exempt' }],
  ]
  for (const [name, a] of cases) {
    const w = world()
    w.expiry.set(cached, 1e12)
    w.memo.keep(w.memo.stamp(subject())!, a)
    t.equal(w.memo.get(w.memo.stamp(subject())!), undefined, name)
    t.equal(w.memo.size, 0, name)
  }
})

t.test('kept without registry answers: mode off, all images invalid or exempt', async (t) => {
  const w = world()
  const off: Assessment = { mode: 'off', modeNote: undefined }
  w.memo.keep(w.memo.stamp(subject())!, off)
  t.equal(w.memo.get(w.memo.stamp(subject())!), off)
  const invalid = assessment([{ kind: 'invalid', use: subject().images[0]!, problem: 'bad' }])
  const other = subject({
    images: [{ container: 'x', kind: 'container', field: 'spec.containers[0]', image: 'UPPER/case' }],
  })
  w.memo.keep(w.memo.stamp(other)!, invalid)
  t.equal(w.memo.get(w.memo.stamp(other)!), invalid)
  w.clock.now += 5 * 60_000
  t.equal(w.memo.get(w.memo.stamp(other)!), undefined, 'still bounded in time')
})

t.test('bounded in entries', async (t) => {
  const w = world()
  const r = exists()
  w.expiry.set(r, 1e12)
  for (let i = 0; i < 10; i++)
    w.memo.keep(w.memo.stamp(subject({ name: `p${i}`, pullSecrets: [`s${i}`] }))!, assessment([checked(r)]))
  t.equal(w.memo.size, 3)
})

t.test('the key: everything an assessment reads, nothing else', async (t) => {
  const base = memoKey(subject())
  const differs: Array<[string, Partial<PodSubject>]> = [
    ['namespace', { namespace: 'team-b' }],
    ['template (service account secrets apply)', { template: true }],
    ['service account', { serviceAccountName: 'builder' }],
    ['pull secrets', { pullSecrets: ['regcred', 'other'] }],
    ['no pull secrets', { pullSecrets: [] }],
    [
      'image',
      {
        images: [{ container: 'app', kind: 'container', field: 'spec.containers[0]', image: 'reg.example.com/app:2' }],
      },
    ],
    [
      'imagePullPolicy Never (judged otherwise)',
      {
        images: [
          {
            container: 'app',
            kind: 'container',
            field: 'spec.containers[0]',
            image: 'reg.example.com/app:1',
            neverPulled: true,
          },
        ],
      },
    ],
    [
      'container name (messages name it)',
      {
        images: [{ container: 'web', kind: 'container', field: 'spec.containers[0]', image: 'reg.example.com/app:1' }],
      },
    ],
    ['nodeSelector', { scheduling: { nodeSelector: { 'kubernetes.io/arch': 'arm64' }, nodeSelectorTerms: [] } }],
    [
      'affinity',
      {
        scheduling: {
          nodeSelector: {},
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] }] }],
        },
      },
    ],
  ]
  for (const [name, over] of differs) t.not(memoKey(subject(over)), base, name)
  t.equal(memoKey(subject({ name: 'y', kind: 'Deployment' })), base, 'name, kind: message only')
})

t.test('an oversized spec is not kept', async (t) => {
  const w = world()
  const images = Array.from({ length: 200 }, (_, i) => ({
    container: `c${i}`,
    kind: 'container' as const,
    field: `spec.containers[${i}]`,
    image: `reg.example.com/app-${i}:1`,
  }))
  t.equal(w.memo.stamp(subject({ images })), undefined)
})

t.test('the key cannot be forged from separators inside values', async (t) => {
  const image = (name: string) => ({
    container: 'app',
    kind: 'container' as const,
    field: 'spec.containers[0]',
    image: name,
  })
  const keys = [
    memoKey(subject({ pullSecrets: ['a', 'b'] })),
    memoKey(subject({ pullSecrets: ['a,b'] })),
    memoKey(subject({ pullSecrets: ['a1:b'] })),
    memoKey(subject({ images: [image('x'), image('y')] })),
    memoKey(subject({ images: [image('x4:app9:container18:spec.containers[0]1:y')] })),
    memoKey(subject({ serviceAccountName: '-' })),
    memoKey(subject({ serviceAccountName: undefined })),
  ]
  t.equal(new Set(keys).size, keys.length)
})
