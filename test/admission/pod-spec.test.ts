import t from 'tap'
import { newImages, readPodSpec } from '../../src/admission/pod-spec.js'
import { ReviewDecodeError } from '../../src/admission/review.js'
import type { ImageUse } from '../../src/policy/subject.js'

t.test('reads init, regular and ephemeral containers in pull order with their field paths', async (t) => {
  const spec = {
    containers: [
      { name: 'web', image: 'nginx:1.25' },
      { name: 'side', image: 'envoy:v1' },
    ],
    initContainers: [{ name: 'migrate', image: 'migrate:v3' }],
    ephemeralContainers: [{ name: 'debug', image: 'busybox:1.36' }],
    imagePullSecrets: [{ name: 'regcred' }, { name: '' }, {}, { name: 'ghcr' }],
  }
  t.same(readPodSpec(spec, 'spec'), {
    images: [
      { container: 'migrate', kind: 'container', field: 'spec.initContainers[0]', image: 'migrate:v3' },
      { container: 'web', kind: 'container', field: 'spec.containers[0]', image: 'nginx:1.25' },
      { container: 'side', kind: 'container', field: 'spec.containers[1]', image: 'envoy:v1' },
      { container: 'debug', kind: 'container', field: 'spec.ephemeralContainers[0]', image: 'busybox:1.36' },
    ],
    imagePullSecrets: ['regcred', 'ghcr'],
    serviceAccountName: undefined,
    scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  })
})

t.test(
  'marks imagePullPolicy Never, reads image volumes, the service account and scheduling constraints',
  async (t) => {
    const spec = {
      serviceAccount: 'legacy',
      serviceAccountName: 'builder',
      containers: [
        { name: 'local', image: 'dev:local', imagePullPolicy: 'Never' },
        { name: 'app', image: 'app:v1', imagePullPolicy: 'Always' },
      ],
      volumes: [
        { name: 'config', configMap: { name: 'x' } },
        { name: 'models', image: { reference: 'models:v2', pullPolicy: 'IfNotPresent' } },
        { name: 'cached', image: { reference: 'cached:v1', pullPolicy: 'Never' } },
      ],
      nodeSelector: { 'kubernetes.io/arch': 'arm64', disk: 'ssd' },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }],
          },
        },
      },
    }
    t.same(readPodSpec(spec, 'spec.template.spec'), {
      images: [
        {
          container: 'local',
          kind: 'container',
          field: 'spec.template.spec.containers[0]',
          image: 'dev:local',
          neverPulled: true,
        },
        { container: 'app', kind: 'container', field: 'spec.template.spec.containers[1]', image: 'app:v1' },
        { container: 'models', kind: 'volume', field: 'spec.template.spec.volumes[1].image', image: 'models:v2' },
        {
          container: 'cached',
          kind: 'volume',
          field: 'spec.template.spec.volumes[2].image',
          image: 'cached:v1',
          neverPulled: true,
        },
      ],
      imagePullSecrets: [],
      serviceAccountName: 'builder',
      scheduling: {
        nodeSelector: { 'kubernetes.io/arch': 'arm64', disk: 'ssd' },
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }],
      },
    })
  },
)

t.test('reads tolerations, spec.nodeName and matchFields (a DaemonSet pod pinned to its node)', async (t) => {
  const spec = {
    containers: [{ name: 'a', image: 'x' }],
    nodeName: 'node-1',
    tolerations: [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { operator: 'Exists' },
      { key: 'k', value: 'v', tolerationSeconds: 30 },
    ],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] }],
        },
      },
    },
  }
  t.same(readPodSpec(spec, 'spec').scheduling, {
    nodeSelector: {},
    nodeSelectorTerms: [
      { matchExpressions: [], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] },
    ],
    tolerations: [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { operator: 'Exists' },
      { key: 'k', value: 'v' },
    ],
    nodeName: 'node-1',
  })
})

t.test('the prefix names template paths', async (t) => {
  t.same(
    readPodSpec({ containers: [{ name: 'a', image: 'x' }] }, 'spec.template.spec').images[0]?.field,
    'spec.template.spec.containers[0]',
  )
})

t.test('an absent spec or absent lists are empty, a container without image is skipped', async (t) => {
  t.same(readPodSpec(undefined, 'spec').images, [])
  t.same(readPodSpec({ containers: [{ name: 'noimage' }] }, 'spec').images, [])
})

const bad: Array<[string, unknown, RegExp]> = [
  ['spec not an object', 'x', /^spec must be an object$/],
  ['containers not a list', { containers: {} }, /^spec.containers must be an array$/],
  ['container not an object', { initContainers: [null] }, /^spec.initContainers\[0\] must be an object$/],
  ['imagePullSecrets not a list', { imagePullSecrets: 'regcred' }, /^spec.imagePullSecrets must be an array$/],
  [
    'a pull secret ref not an object',
    { imagePullSecrets: ['regcred'] },
    /^spec.imagePullSecrets\[0\] must be an object$/,
  ],
]
for (const [name, spec, reason] of bad) {
  t.test(`refuses a spec with ${name}`, async (t) => {
    let caught: unknown
    try {
      readPodSpec(spec, 'spec')
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ReviewDecodeError, 'a ReviewDecodeError')
    t.match((caught as ReviewDecodeError).reason, reason)
  })
}

t.test('newImages keeps only images the old object did not have', async (t) => {
  const old: ImageUse[] = [{ container: 'web', kind: 'container', field: 'spec.containers[0]', image: 'nginx:1.25' }]
  const cur: ImageUse[] = [
    { container: 'web', kind: 'container', field: 'spec.containers[0]', image: 'nginx:1.25' },
    { container: 'debug', kind: 'container', field: 'spec.ephemeralContainers[0]', image: 'busybox:1.36' },
    { container: 'web2', kind: 'container', field: 'spec.containers[1]', image: 'nginx:1.26' },
  ]
  t.same(
    newImages(cur, old).map((u) => u.image),
    ['busybox:1.36', 'nginx:1.26'],
  )
  t.same(newImages(cur, cur), [])
})
