// Which API objects the audit judges, and as what: table-driven over every kind, owners and states.
import t from 'tap'
import { auditWorkload, patchPath, type WorkloadKind } from '../../src/auditor/workloads.js'

const container = { containers: [{ name: 'c0', image: 'reg.example/app:1' }] }
const tpl = { template: { spec: container } }
const meta = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'x',
  namespace: 'ns',
  uid: 'u1',
  ...extra,
})
const owner = (kind: string, controller = true): Record<string, unknown> =>
  meta({ ownerReferences: [{ apiVersion: 'v1', kind, name: 'o', uid: 'o1', controller }] })

const cases: Array<[string, WorkloadKind, Record<string, unknown>, 'kept' | 'skipped', string?]> = [
  [
    'a Deployment',
    'Deployment',
    { metadata: meta(), spec: { replicas: 3, ...tpl } },
    'kept',
    'spec.template.spec.containers[0]',
  ],
  ['a StatefulSet', 'StatefulSet', { metadata: meta(), spec: tpl }, 'kept'],
  ['a DaemonSet', 'DaemonSet', { metadata: meta(), spec: tpl }, 'kept'],
  ['a ReplicaSet of its own', 'ReplicaSet', { metadata: meta(), spec: tpl }, 'kept'],
  [
    'a ReplicaSet of a Deployment: its owner is audited',
    'ReplicaSet',
    { metadata: owner('Deployment'), spec: tpl },
    'skipped',
  ],
  ['a ReplicaSet of another controller (an operator)', 'ReplicaSet', { metadata: owner('Rollout'), spec: tpl }, 'kept'],
  ['a ReplicationController', 'ReplicationController', { metadata: meta(), spec: tpl }, 'kept'],
  [
    'a CronJob',
    'CronJob',
    { metadata: meta(), spec: { jobTemplate: { spec: tpl } } },
    'kept',
    'spec.jobTemplate.spec.template.spec.containers[0]',
  ],
  ['an active Job', 'Job', { metadata: meta(), spec: tpl, status: { active: 1 } }, 'kept'],
  [
    'an active Job of a CronJob (it may make pods again)',
    'Job',
    { metadata: owner('CronJob'), spec: tpl, status: { active: 1 } },
    'kept',
  ],
  [
    'a completed Job',
    'Job',
    { metadata: meta(), spec: tpl, status: { completionTime: '2026-11-30T00:00:00Z' } },
    'skipped',
  ],
  [
    'a failed Job',
    'Job',
    { metadata: meta(), spec: tpl, status: { conditions: [{ type: 'Failed', status: 'True' }] } },
    'skipped',
  ],
  [
    'a bare Pod',
    'Pod',
    { metadata: meta(), spec: container, status: { phase: 'Running' } },
    'kept',
    'spec.containers[0]',
  ],
  ['a Pod of a ReplicaSet', 'Pod', { metadata: owner('ReplicaSet'), spec: container }, 'skipped'],
  [
    'a pinned Pod of a ReplicaSet: audited at its digest, which its owner no longer names',
    'Pod',
    {
      metadata: {
        ...owner('ReplicaSet'),
        annotations: {
          'pullguard.io/pinned-from': JSON.stringify({ 'spec.containers[0].image': 'reg.example/app:1' }),
        },
      },
      spec: { containers: [{ name: 'c0', image: `reg.example/app@sha256:${'a'.repeat(64)}` }] },
      status: { phase: 'Running' },
    },
    'kept',
    'spec.containers[0]',
  ],
  [
    'a Pod of a ReplicaSet whose pinned-from annotation is no map',
    'Pod',
    { metadata: { ...owner('ReplicaSet'), annotations: { 'pullguard.io/pinned-from': 'x' } }, spec: container },
    'skipped',
  ],
  ['a Pod of a Job', 'Pod', { metadata: owner('Job'), spec: container }, 'skipped'],
  ["a Pod of an operator's own kind", 'Pod', { metadata: owner('Workflow'), spec: container }, 'kept'],
  ['a Pod with a non-controller owner', 'Pod', { metadata: owner('ReplicaSet', false), spec: container }, 'kept'],
  ['a Pod that succeeded', 'Pod', { metadata: meta(), spec: container, status: { phase: 'Succeeded' } }, 'skipped'],
  ['no uid', 'Deployment', { metadata: { name: 'x', namespace: 'ns' }, spec: tpl }, 'skipped'],
  [
    'a malformed pod spec',
    'Deployment',
    { metadata: meta(), spec: { template: { spec: { containers: 'nope' } } } },
    'skipped',
  ],
]
for (const [name, kind, object, want, field] of cases) {
  t.test(`${kind}: ${name}`, async (t) => {
    const w = auditWorkload(kind, object)
    t.equal(w === undefined ? 'skipped' : 'kept', want)
    if (w === undefined) return
    t.match(w, {
      kind,
      namespace: 'ns',
      name: 'x',
      uid: 'u1',
      subject: { namespace: 'ns', kind, name: 'x', template: kind !== 'Pod' },
    })
    if (field !== undefined) t.equal(w.subject.images[0]?.field, field)
  })
}

t.test('scaled to zero: replicas 0, or a suspended CronJob', async (t) => {
  t.equal(auditWorkload('Deployment', { metadata: meta(), spec: { replicas: 0, ...tpl } })?.scaledToZero, true)
  t.equal(auditWorkload('StatefulSet', { metadata: meta(), spec: { replicas: 1, ...tpl } })?.scaledToZero, false)
  t.equal(
    auditWorkload('CronJob', { metadata: meta(), spec: { suspend: true, jobTemplate: { spec: tpl } } })?.scaledToZero,
    true,
  )
  t.equal(auditWorkload('Deployment', { metadata: meta(), spec: tpl })?.scaledToZero, false, 'unset replicas means 1')
})

t.test('where a fix patches the live object', async (t) => {
  t.same(patchPath('Deployment'), ['spec', 'template', 'spec'])
  t.same(patchPath('CronJob'), ['spec', 'jobTemplate', 'spec', 'template', 'spec'])
  t.equal(patchPath('Job'), undefined, "a Job's template is immutable")
  t.equal(patchPath('Pod'), undefined, "a pod's imagePullSecrets cannot change")
})

t.test('a pinned pod keeps where each digest came from', async (t) => {
  const from = { 'spec.containers[0].image': 'reg.example/app:1' }
  const w = auditWorkload('Pod', {
    metadata: { ...owner('ReplicaSet'), annotations: { 'pullguard.io/pinned-from': JSON.stringify(from) } },
    spec: { containers: [{ name: 'c0', image: `reg.example/app@sha256:${'a'.repeat(64)}` }] },
  })
  t.same(w?.subject.pinnedFrom, from)
  t.equal(auditWorkload('Pod', { metadata: meta(), spec: container })?.subject.pinnedFrom, undefined)
})

t.test(
  "a controller's pinned pod is audited for its pinned images only; an entry of another repository is no pin",
  async (t) => {
    const digest = `sha256:${'b'.repeat(64)}`
    const w = auditWorkload('Pod', {
      metadata: {
        ...owner('ReplicaSet'),
        annotations: {
          'pullguard.io/pinned-from': JSON.stringify({
            'spec.containers[0].image': 'reg.example/sidecar:2',
            'spec.containers[1].image': 'reg.example/app:1',
          }),
        },
      },
      spec: {
        containers: [
          // A sidecar inserted at index 0 after pinning: the entry for index 0 named another image.
          { name: 'vault', image: `reg.example/vault@${digest}` },
          { name: 'app', image: `reg.example/app@${digest}` },
          { name: 'log', image: 'reg.example/log:3' },
        ],
      },
    })
    t.same(
      w?.subject.images.map((u) => u.image),
      [`reg.example/app@${digest}`],
      'the unpinned images are its owner template’s to audit, once',
    )
    t.same(
      w?.pinnedTags?.images.map((u) => [u.field, u.image]),
      [['spec.containers[1]', 'reg.example/app:1']],
    )
  },
)
