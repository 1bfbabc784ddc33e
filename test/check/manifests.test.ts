import t from 'tap'
import { InputError } from '../../src/commands/errors.js'
import { parse } from '../../src/check/manifests.js'
import { manifestObjects } from '../../src/check/objects.js'
import type { Document } from '../../src/check/manifests.js'

/** A parsed document of f.yaml, without positions. */
function doc(index: number, value: unknown): Document {
  return {
    source: 'f.yaml',
    index,
    value,
    positionOf: () => undefined,
    replaceString: () => false,
    origin: { source: 'f.yaml', text: '', edits: [] },
  }
}

t.test('parse skips empty documents and numbers the rest by position', async (t) => {
  const docs = parse('a.yaml', '---\n---\nkind: A\n---\n\n---\n[1]\n')
  t.same(
    docs.map((d) => [d.index, d.value]),
    [
      [2, { kind: 'A' }],
      [4, [1]],
    ],
  )
})

const BAD_YAML: Array<[string, string, string]> = [
  ['an unclosed flow sequence', 'a: [\n', 'x.yaml:2: invalid YAML: '],
  ['bad indentation (named where the broken mapping starts)', 'a:\n  b: 1\n   c: 2\n', 'x.yaml:2: invalid YAML: '],
  ['a tab indent', 'a:\n\tb: 1\n', 'x.yaml:2: invalid YAML: '],
]
for (const [what, text, message] of BAD_YAML) {
  t.test(`a YAML error names the file and line: ${what}`, async (t) => {
    t.throws(() => parse('x.yaml', text), {
      name: 'InputError',
      message: new RegExp(`^${message.replace(/\./g, '\\.')}`),
    })
  })
}

t.test('stdin is named (stdin) in errors', async (t) => {
  t.throws(() => parse('-', 'a: [\n'), { message: /^\(stdin\):2: / })
})

const spec = {
  containers: [{ name: 'c', image: 'nginx:1' }],
  imagePullSecrets: [{ name: 's' }],
  serviceAccountName: 'sa',
}
const OBJECTS: Array<[string, unknown, Array<[string, string, string, boolean, string[]]>, number]> = [
  [
    'a Pod',
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x' }, spec },
    [['Pod', 'x', 'p', false, ['spec.containers[0]']]],
    0,
  ],
  [
    'a Deployment gets the default namespace',
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec } } },
    [['Deployment', 'ci', 'd', true, ['spec.template.spec.containers[0]']]],
    0,
  ],
  [
    'a CronJob',
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { generateName: 'j-' },
      spec: { jobTemplate: { spec: { template: { spec } } } },
    },
    [['CronJob', 'ci', 'j-*', true, ['spec.jobTemplate.spec.template.spec.containers[0]']]],
    0,
  ],
  [
    'a Deployment in the wrong group is not a workload',
    { apiVersion: 'v1', kind: 'Deployment', metadata: { name: 'd' } },
    [],
    1,
  ],
  [
    'a List with a Service and a PodTemplate',
    {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } },
        { apiVersion: 'v1', kind: 'PodTemplate', metadata: { name: 't' }, template: { spec } },
      ],
    },
    [['PodTemplate', 'ci', 't', true, ['template.spec.containers[0]']]],
    1,
  ],
  [
    'a typed list (PodList)',
    { apiVersion: 'v1', kind: 'PodList', items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' }, spec }] },
    [['Pod', 'ci', 'a', false, ['spec.containers[0]']]],
    0,
  ],
  ['a values file', { replicas: 3 }, [], 1],
]
for (const [what, value, expected, skipped] of OBJECTS) {
  t.test(`manifestObjects: ${what}`, async (t) => {
    const got = manifestObjects([doc(1, value)], 'ci')
    t.same(
      got.objects.map((o) => [
        o.subject.kind,
        o.subject.namespace,
        o.subject.name,
        o.subject.template,
        o.subject.images.map((i) => i.field),
      ]),
      expected,
    )
    t.equal(got.skipped, skipped)
    for (const o of got.objects) t.same([o.subject.pullSecrets, o.subject.serviceAccountName], [['s'], 'sa'])
  })
}

t.test('a List item that is not an object, or a pod spec of the wrong shape, is an input error', async (t) => {
  t.throws(
    () =>
      manifestObjects(
        [doc(2, { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Pod' }, 7] })],
        'ci',
      ),
    new InputError('f.yaml: document 2 items[1] is not a Kubernetes object'),
  )
  t.same(
    manifestObjects([doc(1, [{ hosts: 'all' }]), doc(2, 'text')], 'ci'),
    { objects: [], skipped: 2 },
    'a document that is no object at all (an Ansible play, a list of hooks) is skipped, as a values file is',
  )
  t.throws(
    () =>
      manifestObjects(
        [doc(1, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: {} } })],
        'ci',
      ),
    { message: 'f.yaml: Pod p: spec.containers must be an array' },
  )
})
