// The decision as a pure function of the per-image outcomes, the mode and --on-registry-error.
import t from 'tap'
import { POD_CONTEXT } from '../helpers/pod-target.js'
import { decide, decideUnchecked, MAX_MESSAGE_ENTRIES } from '../../src/policy/decide.js'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import { pullability } from '../../src/policy/outcome.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const ctx = POD_CONTEXT
let n = 0
function checked(code: CheckResult['code'], extra: { tried?: string[]; incomplete?: boolean } = {}): ImageOutcome {
  const image = `reg.example:5000/app${n++}:v1`
  const ref = parseReference(image)
  const result: CheckResult =
    code === 'Exists'
      ? { code, digest: 'sha256:' + 'a'.repeat(64), mediaType: 'x', decidedBy: 'anonymous', attempts: [] }
      : code === 'RegistryUnreachable'
        ? { code, cause: 'refused', detail: 'connection refused', attempts: [] }
        : code === 'RateLimited'
          ? { code, detail: 'rate limited', retryAfterSeconds: 30, attempts: [] }
          : { code, detail: 'x', attempts: [] }
  return {
    kind: 'checked',
    use: { container: `c${n}`, kind: 'container', field: `spec.containers[${n}]`, image },
    ref,
    result,
    tried: extra.tried ?? [],
    incomplete: extra.incomplete ?? false,
  }
}
const invalid = (): ImageOutcome => ({
  kind: 'invalid',
  use: { container: 'bad', kind: 'container', field: 'spec.containers[9]', image: 'Nginx' },
  problem: 'invalid image reference "Nginx": repository name must be lowercase',
})

const pullabilityCases: Array<[string, ImageOutcome, ReturnType<typeof pullability>]> = [
  ['Exists', checked('Exists'), 'pullable'],
  ['TagNotFound', checked('TagNotFound'), 'not-pullable'],
  ['DigestNotFound', checked('DigestNotFound'), 'not-pullable'],
  ['RepositoryNotFound', checked('RepositoryNotFound'), 'not-pullable'],
  ['RepositoryNotFoundOrDenied', checked('RepositoryNotFoundOrDenied'), 'not-pullable'],
  ['AccessDenied', checked('AccessDenied'), 'not-pullable'],
  ['AccessDenied with unreadable secrets', checked('AccessDenied', { incomplete: true }), 'unknown'],
  ['OrDenied with unreadable secrets', checked('RepositoryNotFoundOrDenied', { incomplete: true }), 'unknown'],
  ['TagNotFound with unreadable secrets stays a no', checked('TagNotFound', { incomplete: true }), 'not-pullable'],
  ['RateLimited', checked('RateLimited'), 'unknown'],
  ['RegistryUnreachable', checked('RegistryUnreachable'), 'unknown'],
  ['an invalid reference', invalid(), 'not-pullable'],
  // imagePullPolicy Never: only the pool's kubelet refusing every copy says no (AlwaysVerify, or off
  // the allowlist, with the pod's own credentials refused); a preloaded copy still runs by default.
  ['Never: AccessDenied, AlwaysVerify', never(checked('AccessDenied'), 'refused'), 'not-pullable'],
  [
    'Never: AccessDenied, AlwaysVerify, unreadable secrets',
    never(checked('AccessDenied', { incomplete: true }), 'refused'),
    'unknown',
  ],
  ['Never: AccessDenied, NeverVerifyPreloadedImages', never(checked('AccessDenied'), 'cached'), 'pullable'],
  ['Never: AccessDenied, NeverVerify', never(checked('AccessDenied'), 'ok'), 'pullable'],
  ['Never: RepositoryNotFoundOrDenied (a local-only name)', never(checked('RepositoryNotFoundOrDenied')), 'pullable'],
  ['Never: TagNotFound (a local build)', never(checked('TagNotFound')), 'pullable'],
  ['Never: RepositoryNotFound', never(checked('RepositoryNotFound')), 'pullable'],
  ['Never: RegistryUnreachable', never(checked('RegistryUnreachable')), 'pullable'],
  ['Never: Exists', never(checked('Exists')), 'pullable'],
  ['Never: an invalid reference', never(invalid()), 'not-pullable'],
]

function never(o: ImageOutcome, verdict: 'ok' | 'cached' | 'refused' = 'ok'): ImageOutcome {
  const neverPull =
    verdict === 'ok'
      ? { kind: verdict, policy: 'NeverVerify' as const }
      : verdict === 'refused'
        ? { kind: verdict, needs: '', policy: 'AlwaysVerify' as const }
        : {
            kind: verdict,
            needs: 'only a preloaded copy (not one the kubelet pulled)',
            policy: 'NeverVerifyPreloadedImages' as const,
          }
  return { ...o, use: { ...o.use, neverPulled: true }, ...(o.kind === 'checked' ? { neverPull } : {}) } as ImageOutcome
}

t.test('Never: a refused credential is denied with why the kubelet will not share its copy', async (t) => {
  const v = decide([never(checked('AccessDenied'), 'refused')], 'enforce', 'allow', ctx)
  t.equal(v.allowed, false)
  t.match(
    v.message,
    `with imagePullPolicy Never the nodes' kubelet (imagePullCredentialsVerificationPolicy AlwaysVerify) gives a pod a copy on the node only if a record of its own credentials pulling it matches, so every node reports ErrImageNeverPull`,
  )
})

t.test(
  'Never under the default policy: allowed, with a warning saying a preloaded copy is the only one it gets',
  async (t) => {
    const v = decide([never(checked('AccessDenied'), 'cached')], 'enforce', 'allow', ctx)
    t.equal(v.allowed, true)
    t.match(v.warnings, [
      /\(imagePullPolicy Never, NeverVerifyPreloadedImages\): the kubelet gives this pod only a preloaded copy \(not one the kubelet pulled\), else ErrImageNeverPull$/,
    ])
  },
)
for (const [name, outcome, expected] of pullabilityCases) {
  t.test(`${name} is ${expected}`, async (t) => {
    t.equal(pullability(outcome), expected)
  })
}

t.test('enforce: all pullable → allowed, nothing to say', async (t) => {
  t.same(decide([checked('Exists'), checked('Exists')], 'enforce', 'allow', ctx), {
    allowed: true,
    message: undefined,
    warnings: [],
  })
})

t.test('enforce: one missing tag → denied, the message lists only that image', async (t) => {
  const missing = checked('TagNotFound')
  const v = decide([checked('Exists'), missing], 'enforce', 'allow', ctx)
  t.equal(v.allowed, false)
  t.match(
    v.message,
    /^pullguard refused pod team-a\/web: 1 of 2 images cannot be pulled\.\n- container "c\d+" \(spec\.containers\[\d+\]\) image "reg\.example:5000\/app\d+:v1": tag "v1" does not exist/,
  )
  t.equal(v.message!.split('\n').length, 2)
  t.same(v.warnings, [])
})

t.test('enforce + allow: registry errors alone → allowed with one warning each', async (t) => {
  const v = decide([checked('RegistryUnreachable'), checked('RateLimited')], 'enforce', 'allow', ctx)
  t.equal(v.allowed, true)
  t.match(v.warnings, [
    /unreachable \(refused: connection refused\); allowed by --on-registry-error=allow/,
    /rate limiting \(retry after 30s\); allowed by/,
  ])
})

t.test('enforce + deny: registry errors → denied, said as "could not be verified"', async (t) => {
  const v = decide([checked('RegistryUnreachable')], 'enforce', 'deny', ctx)
  t.equal(v.allowed, false)
  t.match(v.message, /1 of 1 image could not be verified\.\n.*Denied by --on-registry-error=deny\./)
})

t.test('enforce + allow: a denial and a registry error → denied for the one, warned for the other', async (t) => {
  const v = decide(
    [
      checked('AccessDenied', { tried: ['secret team-a/regcred (key "reg.example:5000")'] }),
      checked('RegistryUnreachable'),
    ],
    'enforce',
    'allow',
    ctx,
  )
  t.equal(v.allowed, false)
  t.match(v.message, /refused the credentials \(tried secret team-a\/regcred/)
  t.equal(v.warnings.length, 1)
})

t.test('warn: everything is allowed, one warning per image that is not pullable', async (t) => {
  const v = decide(
    [checked('TagNotFound'), invalid(), checked('RegistryUnreachable'), checked('Exists')],
    'warn',
    'deny',
    ctx,
  )
  t.equal(v.allowed, true)
  t.equal(v.warnings.length, 3)
  for (const w of v.warnings) t.match(w, /\(warn mode: allowed\)(; fix: [^;]+)?$/)
})

t.test('an anonymous denial says no secret matched and gives the create-secret command', async (t) => {
  const v = decide([checked('AccessDenied')], 'enforce', 'allow', ctx)
  t.match(
    v.message,
    /requires credentials and no pull secret matches this registry[\s\S]*kubectl create secret docker-registry pull-reg-example-5000 --docker-server=reg\.example:5000 --docker-username=USER --docker-password=PASSWORD -n team-a/,
  )
})

t.test('all pullable: no fix target is needed', async (t) => {
  t.same(decide([checked('Exists')], 'enforce', 'deny', { object: 'pod team-a/web', target: undefined }), {
    allowed: true,
    message: undefined,
    warnings: [],
  })
  t.throws(
    () => decide([checked('TagNotFound')], 'enforce', 'deny', { object: 'pod team-a/web', target: undefined }),
    /fix target/,
  )
})

t.test(`a denial has at most ${MAX_MESSAGE_ENTRIES} entries; the rest are counted`, async (t) => {
  const many = Array.from({ length: 14 }, () => checked('TagNotFound'))
  const v = decide(many, 'enforce', 'allow', ctx)
  const lines = v.message!.split('\n')
  t.equal(lines.length, 1 + MAX_MESSAGE_ENTRIES + 1)
  t.equal(lines.at(-1), "- … and 4 more images (each with its fix in pullguard's decision log)")
})

t.test('the same cause and fix in several containers is one entry, and one warning in warn mode', async (t) => {
  const image = 'reg.example:5000/shop/api:1'
  const same = [0, 1, 2].map(
    (i): ImageOutcome => ({
      kind: 'checked',
      use: { container: `c${i}`, kind: 'container', field: `spec.containers[${i}]`, image },
      ref: parseReference(image),
      result: { code: 'RepositoryNotFound', detail: 'x', attempts: [] },
      tried: [],
      incomplete: false,
    }),
  )
  const v = decide(same, 'enforce', 'allow', ctx)
  t.equal(
    v.message,
    `pullguard refused pod team-a/web: 3 of 3 images cannot be pulled.\n- container "c0" (spec.containers[0]) image "${image}", container "c1" (spec.containers[1]) image "${image}" and container "c2" (spec.containers[2]) image "${image}": repository reg.example:5000/shop/api does not exist. Fix: check the image name for typos: reg.example:5000 has no repository shop/api (pullguard could not read reg.example:5000's catalog).`,
  )
  const w = decide(same, 'warn', 'allow', ctx)
  t.same(w.warnings, [
    `containers "c0", "c1", "c2" image "${image}": repository does not exist (warn mode: allowed); fix: check the image name`,
  ])
})

t.test('nothing could be checked: --on-registry-error=deny denies the object', async (t) => {
  t.same(decideUnchecked('pod team-a/web', 'deny'), {
    allowed: false,
    message:
      'pullguard could not check the images of pod team-a/web (internal error); denied by --on-registry-error=deny.',
    warnings: [],
  })
})

t.test('nothing could be checked: --on-registry-error=allow allows it with a warning', async (t) => {
  t.same(decideUnchecked('deployment team-b/api', 'allow'), {
    allowed: true,
    message: undefined,
    warnings: [
      'pullguard could not check the images of deployment team-b/api (internal error); allowed by --on-registry-error=allow',
    ],
  })
})
