// A credential provider that matched the image but that the kubelet does not run for the pod's
// service account (a required annotation missing): what a refusal says in each voice (the webhook's
// denial and warning, `diagnose`, the audit), the decision line, and that nothing changes when the
// image pulls anyway. Whole strings, as test/policy/fixes.test.ts compares them.
import { Writable } from 'node:stream'
import t from 'tap'
import { findingFor as auditFinding } from '../../src/auditor/finding.js'
import { findingFor as diagnoseFinding, type FixContext } from '../../src/diagnose/fixes.js'
import { workloadOf } from '../../src/diagnose/owner.js'
import { createLogger } from '../../src/log/logger.js'
import type { Assessment } from '../../src/policy/assess.js'
import { fixFor, fixLines, type FixTarget } from '../../src/policy/fixes.js'
import { createJudge } from '../../src/policy/judge.js'
import { explainGroup, groupOutcomes, groupWarning, MAX_WARNING_LENGTH } from '../../src/policy/messages.js'
import { labelsIgnored } from '../../src/policy/namespace-mode.js'
import { pullability, type ImageOutcome } from '../../src/policy/outcome.js'
import type { PodSubject } from '../../src/policy/subject.js'
import type { ProviderFailure, ProviderSkip } from '../../src/providers/providers.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'
import { NO_SIGNATURE_READS } from '../helpers/checker-stub.js'

const HOST = '123456789012.dkr.ecr.eu-west-1.amazonaws.com'
const IMAGE = `${HOST}/shop/api:1.3`
const ROLE = 'eks.amazonaws.com/role-arn'
const REGION = 'eks.amazonaws.com/sts-regional-endpoints'
const PROVIDER = 'ecr-credential-provider'

const skip = (missing = [ROLE], provider = PROVIDER): ProviderSkip => ({
  provider,
  reason: 'RequiredAnnotationMissing',
  namespace: 'shop',
  serviceAccount: 'builder',
  missing,
})

function result(code: CheckResult['code']): CheckResult {
  return code === 'Exists'
    ? { code, digest: `sha256:${'a'.repeat(64)}`, mediaType: 'x', decidedBy: 'anonymous', attempts: [] }
    : ({ code, detail: 'x', attempts: [] } as CheckResult)
}

function checked(
  code: CheckResult['code'],
  skips: ProviderSkip[],
  x: { tried?: string[]; failures?: ProviderFailure[]; image?: string } = {},
): ImageOutcome {
  const image = x.image ?? IMAGE
  return {
    kind: 'checked',
    use: { container: 'api', kind: 'container', field: 'spec.template.spec.containers[0]', image },
    ref: parseReference(image),
    result: result(code),
    tried: x.tried ?? [],
    incomplete: false,
    providers: skips.map((s) => s.provider),
    providerSkips: skips,
    ...(x.failures === undefined ? {} : { providerFailures: x.failures }),
  }
}

const admission: FixTarget = {
  voice: 'admission',
  namespace: 'shop',
  resource: 'deployment',
  name: 'api',
  specField: 'spec.template.spec',
  patchPath: ['spec', 'template', 'spec'],
  secrets: [],
  fromServiceAccount: 'yes',
  serviceAccount: { name: 'builder', imagePullSecrets: [] },
}

const ANNOTATE = `kubectl annotate serviceaccount builder -n shop ${ROLE}=VALUE`
const ADD = `add annotation "${ROLE}" to service account "builder", without which the kubelet does not run credential provider ${PROVIDER} (VALUE: what the provider's documentation says it holds, such as the cloud identity to pull as)`
const NOTE = `credential provider ${PROVIDER} was not run: service account shop/builder lacks annotation "${ROLE}", which the provider requires (requiredServiceAccountAnnotationKeys); the kubelet skips it too, logging why only at verbosity 5`
const INSTEAD = `or give the pods a pull secret for ${HOST} instead`

const admissionCases: Array<[string, ImageOutcome, string[]]> = [
  [
    'AccessDenied, nothing applied: the annotation on the account, then apply again',
    checked('AccessDenied', [skip()]),
    [`${ADD}, then apply again: ${ANNOTATE}`, INSTEAD],
  ],
  [
    "AccessDenied, a pull secret's credentials refused: the annotation all the same",
    checked('AccessDenied', [skip()], { tried: [`secret shop/regcred (key "${HOST}")`] }),
    [`${ADD}, then apply again: ${ANNOTATE}`, INSTEAD],
  ],
  [
    'RepositoryNotFoundOrDenied: the name first, then the annotation',
    checked('RepositoryNotFoundOrDenied', [skip()]),
    [
      `check the image name first (${HOST} answers the same for a repository that does not exist)`,
      `${ADD}, then apply again: ${ANNOTATE}`,
      INSTEAD,
    ],
  ],
  [
    'two annotations missing: one command sets both',
    checked('AccessDenied', [skip([ROLE, REGION])]),
    [
      `add annotations "${ROLE}" and "${REGION}" to service account "builder", without which the kubelet does not run credential provider ${PROVIDER} (each VALUE: what the provider's documentation says each holds, such as the cloud identity to pull as), then apply again: kubectl annotate serviceaccount builder -n shop ${ROLE}=VALUE ${REGION}=VALUE`,
      INSTEAD,
    ],
  ],
  [
    'two providers skipped: either one may do',
    checked('AccessDenied', [skip(), skip(['example.com/identity'], 'other-provider')]),
    [
      `${ADD}, then apply again: ${ANNOTATE}`,
      `or add annotation "example.com/identity" to service account "builder", without which the kubelet does not run credential provider other-provider (VALUE: what the provider's documentation says it holds, such as the cloud identity to pull as), then apply again: kubectl annotate serviceaccount builder -n shop example.com/identity=VALUE`,
      INSTEAD,
    ],
  ],
]

for (const [name, outcome, expected] of admissionCases) {
  t.test(`admission: ${name}`, async (t) => {
    t.equal(pullability(outcome), 'not-pullable', 'the skip changes no verdict: the kubelet gets no credentials either')
    t.same(fixLines(fixFor(outcome, admission)!), expected)
    const warning = groupWarning(groupOutcomes([outcome], admission)[0]!, ' (warn mode: allowed)')
    t.ok(warning.length <= MAX_WARNING_LENGTH, `${warning.length}: ${warning}`)
  })
}

t.test('admission: the denial entry names the provider and the annotation, then the command', async (t) => {
  const group = groupOutcomes([checked('AccessDenied', [skip()])], admission)[0]!
  t.equal(
    explainGroup(group),
    `container "api" (spec.template.spec.containers[0]) image "${IMAGE}": ${HOST} requires credentials and no pull secret matches this registry, so the pull is anonymous; ${NOTE}. Fix:\n` +
      `    ${ADD}, then apply again: ${ANNOTATE}\n` +
      `    ${INSTEAD}`,
  )
  t.equal(
    groupWarning(group, ' (warn mode: allowed)'),
    `container "api": ${HOST} requires credentials (none matched); plugin ${PROVIDER} not run (annotation missing) (warn mode: allowed); fix: annotate service account "builder" with "${ROLE}"`,
    'an ECR image is long: the image gives way, the cause and the fix stay',
  )
  const near = checked('AccessDenied', [skip([ROLE], 'cloud')], { image: 'reg.example/api:1' })
  t.equal(
    groupWarning(groupOutcomes([near], admission)[0]!, ' (warn mode: allowed)'),
    `container "api" image "reg.example/api:1": reg.example requires credentials (none matched); plugin cloud not run (annotation missing) (warn mode: allowed); fix: ${ANNOTATE}`,
    'the command itself when it fits',
  )
  const refused = groupOutcomes(
    [checked('AccessDenied', [skip()], { tried: [`secret shop/regcred (key "${HOST}")`] })],
    admission,
  )[0]!
  t.equal(refused.problem, `${HOST} refused the credentials (tried secret shop/regcred (key "${HOST}")); ${NOTE}`)
})

t.test('a provider skipped for want of any service account: said, and the usual credential fix', async (t) => {
  const o = checked('AccessDenied', [{ provider: PROVIDER, reason: 'NoServiceAccount' }])
  const group = groupOutcomes([o], admission)[0]!
  t.equal(
    group.problem,
    `${HOST} requires credentials and no pull secret matches this registry, so the pull is anonymous; credential provider ${PROVIDER} was not run: it requires a service account (requireServiceAccount) and the pod has none; the kubelet skips it too`,
  )
  t.match(fixLines(group.fix!)[0], /^create a pull secret for /)
})

t.test('pulls anyway, or not verified: nothing to fix, and no word of the skip in the message', async (t) => {
  const pulls = checked('Exists', [skip()])
  t.equal(pullability(pulls), 'pullable')
  t.equal(fixFor(pulls, admission), undefined)
  const failed = checked('AccessDenied', [skip()], {
    failures: [
      { provider: 'other', code: 'PluginExited', problem: 'credential provider plugin other exited with status 1' },
    ],
  })
  t.equal(pullability(failed), 'unknown', "another plugin failed: the node's may still give credentials")
  t.equal(fixFor(failed, admission), undefined)
})

const ctx = (bare: boolean): FixContext => ({
  namespace: 'shop',
  pod: 'api-7d9f-x2x9q',
  workload: bare
    ? workloadOf({ name: 'api-7d9f-x2x9q', labels: {}, controller: undefined })
    : workloadOf({
        name: 'api-7d9f-x2x9q',
        labels: { 'pod-template-hash': '7d9f' },
        controller: { kind: 'ReplicaSet', name: 'api-7d9f' },
      }),
  secrets: [],
  serviceAccount: { name: 'builder', imagePullSecrets: [] },
  nodePlatform: undefined,
  node: 'n1',
})

t.test('diagnose: the annotation, then the next retry (or a delete to retry at once)', async (t) => {
  const o = checked('AccessDenied', [skip()])
  t.same(diagnoseFinding(o, ctx(false), 'denied'), {
    verdict: 'still-broken',
    reason: 'AccessDenied',
    now: `${HOST} requires credentials, and no pull secret of this pod holds any for it`,
    fixes: [
      `${ADD}: ${ANNOTATE}`,
      "the kubelet reads the account again at the pod's next pull retry (up to 5 minutes apart); to retry at once: kubectl delete pod api-7d9f-x2x9q -n shop",
      INSTEAD,
    ],
  })
  t.same(diagnoseFinding(o, ctx(true), 'denied').fixes, [
    `${ADD}: ${ANNOTATE}`,
    "the kubelet reads the account again at the pod's next pull retry (up to 5 minutes apart)",
    INSTEAD,
  ])
})

t.test('audit: the annotation for the live workload', async (t) => {
  const o = checked('AccessDenied', [skip()])
  const subject: PodSubject = {
    namespace: 'shop',
    kind: 'Deployment',
    name: 'api',
    specField: 'spec.template.spec',
    template: true,
    images: [o.use],
    pullSecrets: [],
    serviceAccountName: 'builder',
    scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  }
  const found: Assessment = {
    mode: 'enforce',
    modeNote: undefined,
    outcomes: [o],
    secretNames: {
      names: [],
      source: 'service-account',
      incomplete: false,
      account: { name: 'builder', imagePullSecrets: [] },
    },
    secretProblems: [],
    secretsLoaded: [],
  }
  const finding = await auditFinding(
    { kind: 'Deployment', namespace: 'shop', name: 'api', uid: 'u1', scaledToZero: false, subject },
    subject,
    found,
    { serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' }) } },
    AbortSignal.timeout(1000),
  )
  t.match(finding, {
    result: 'not-pullable',
    reason: 'AccessDenied',
    problem: `${HOST} requires credentials and no pull secret matches this registry, so the pull is anonymous; ${NOTE}`,
    message: `container "api": ${HOST} requires credentials (none matched); plugin ${PROVIDER} not run (annotation missing); fix: annotate service account "builder" with "${ROLE}"`,
    fix: [`${ADD}: ${ANNOTATE}`, INSTEAD],
  })
})

/** A judge whose plugins skip the one provider, and whose registry answers `code`. */
function judged(code: CheckResult['code']) {
  const logs: Array<Record<string, any>> = []
  const judge = createJudge({
    checker: { check: async () => result(code), tags: async () => undefined, ...NO_SIGNATURE_READS },
    secrets: { getSecret: async () => ({ kind: 'missing' }) },
    serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' }) },
    credentialProviders: {
      provide: async () => ({
        entries: [],
        failures: [],
        skipped: [skip()],
        matched: [PROVIDER],
        reusableUntil: Number.POSITIVE_INFINITY,
      }),
    },
    modes: labelsIgnored(),
    onRegistryError: 'allow',
    timeoutMs: 2000,
    logger: createLogger(
      'info',
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line))
          done()
        },
      }),
    ),
  })
  const subject: PodSubject = {
    namespace: 'shop',
    kind: 'Pod',
    name: 'api',
    specField: 'spec',
    template: false,
    images: [{ container: 'api', kind: 'container', field: 'spec.containers[0]', image: IMAGE }],
    pullSecrets: [],
    serviceAccountName: 'builder',
    scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  }
  return { verdict: judge(subject, { uid: 'u1', operation: 'CREATE', dryRun: false }), logs }
}

t.test('the decision line carries the skip, with the fix when the image will not pull', async (t) => {
  const denied = judged('AccessDenied')
  t.match(await denied.verdict, { allowed: false, message: new RegExp(`${NOTE.replace(/[.()]/g, '\\$&')}`) })
  const line = denied.logs.find((l) => l.msg === 'decision')
  t.same(line?.images[0]?.providerSkips, [
    { provider: PROVIDER, reason: 'RequiredAnnotationMissing', serviceAccount: 'shop/builder', missing: [ROLE] },
  ])
  t.same(line?.images[0]?.fix, [`${ADD}, then apply again: ${ANNOTATE}`, INSTEAD])

  const allowed = judged('Exists')
  t.same(await allowed.verdict, { allowed: true, message: undefined, warnings: [] }, 'pulls anyway: nothing said')
  const note = allowed.logs.find((l) => l.msg === 'decision')
  t.same(note?.images[0]?.providerSkips, [
    { provider: PROVIDER, reason: 'RequiredAnnotationMissing', serviceAccount: 'shop/builder', missing: [ROLE] },
  ])
  t.equal(note?.images[0]?.fix, undefined)
})
