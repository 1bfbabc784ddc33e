// The judge around decide(): the label a verdict is logged and counted under, and what a review
// gets when judging itself fails.
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log/logger.js'
import { createJudge, verdictLabel, type DecisionSummary, type JudgeOptions } from '../../src/policy/judge.js'
import { labelsIgnored } from '../../src/policy/namespace-mode.js'
import type { PodSubject } from '../../src/policy/subject.js'
import type { CheckResult } from '../../src/registry/index.js'
import { NO_SIGNATURE_READS } from '../helpers/checker-stub.js'

const labels: Array<[string, Parameters<typeof verdictLabel>[0], ReturnType<typeof verdictLabel>]> = [
  ['allowed, nothing to say', { allowed: true, message: undefined, warnings: [] }, 'allowed'],
  ['allowed with a warning', { allowed: true, message: undefined, warnings: ['w'] }, 'allowed-with-warnings'],
  ['denied', { allowed: false, message: 'no', warnings: [] }, 'denied'],
  ['denied with a warning', { allowed: false, message: 'no', warnings: ['w'] }, 'denied'],
]
for (const [name, verdict, label] of labels) {
  t.test(`a verdict ${name} is labelled ${label}`, async (t) => {
    t.equal(verdictLabel(verdict), label)
  })
}

const subject: PodSubject = {
  namespace: 'team-a',
  kind: 'Pod',
  name: 'web',
  specField: 'spec',
  template: false,
  images: [{ container: 'app', kind: 'container', field: 'spec.containers[0]', image: 'reg.example:5000/app:v1' }],
  pullSecrets: [],
  serviceAccountName: undefined,
  scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
}

/** A judge whose registry answers with `answer`, with its log lines and its decisions. */
function judgeWith(answer: () => Promise<CheckResult>, extra: Partial<JudgeOptions> = {}) {
  const logs: Array<Record<string, unknown>> = []
  const decisions: DecisionSummary[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const judge = createJudge({
    checker: {
      check: answer,
      tags: async () => undefined,
      ...NO_SIGNATURE_READS,
    },
    secrets: { getSecret: async () => ({ kind: 'missing' }) },
    serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' }) },
    modes: labelsIgnored(),
    onRegistryError: 'allow',
    timeoutMs: 2000,
    logger: createLogger('info', sink),
    onDecision: (d) => decisions.push(d),
    ...extra,
  })
  return { judge, logs, decisions }
}

const exists: CheckResult = {
  code: 'Exists',
  digest: `sha256:${'a'.repeat(64)}`,
  mediaType: 'x',
  decidedBy: 'anonymous',
  attempts: [],
}

for (const [name, result, label] of [
  ['pullable', exists, 'allowed'],
  ['missing', { code: 'TagNotFound', detail: 'no such tag', attempts: [] }, 'denied'],
  [
    'unverified',
    { code: 'RegistryUnreachable', cause: 'refused', detail: 'connection refused', attempts: [] },
    'allowed-with-warnings',
  ],
] as Array<[string, CheckResult, string]>) {
  t.test(`an image ${name}: the decision line and the metrics say ${label}`, async (t) => {
    const { judge, logs, decisions } = judgeWith(async () => result)
    await judge(subject, { uid: 'u1', operation: 'CREATE', dryRun: false })
    t.match(
      logs.find((l) => l.msg === 'decision'),
      { uid: 'u1', verdict: label },
    )
    t.match(decisions, [{ verdict: label, mode: 'enforce' }])
  })
}

for (const onRegistryError of ['deny', 'allow'] as const) {
  t.test(`judging that fails is an internal error, and --on-registry-error=${onRegistryError} decides`, async (t) => {
    const { judge, logs, decisions } = judgeWith(
      async () => {
        throw new Error('a bug')
      },
      { onRegistryError },
    )
    const verdict = await judge(subject, { uid: 'u2', operation: 'CREATE', dryRun: false })
    const text = 'pullguard could not check the images of pod team-a/web (internal error)'
    t.same(
      verdict,
      onRegistryError === 'deny'
        ? { allowed: false, message: `${text}; denied by --on-registry-error=deny.`, warnings: [] }
        : { allowed: true, message: undefined, warnings: [`${text}; allowed by --on-registry-error=allow`] },
    )
    t.same(decisions, [
      {
        verdict: onRegistryError === 'deny' ? 'denied' : 'allowed-with-warnings',
        mode: 'enforce',
        reason: 'InternalError',
        seconds: 0,
      },
    ])
    t.match(
      logs.find((l) => l.msg === 'internal error while judging; applying --on-registry-error'),
      { level: 50, uid: 'u2', err: { message: 'a bug' } },
    )
  })
}
