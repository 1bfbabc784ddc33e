// The JSONPatch that pins a Pod: a test and a replace per image, for every container field and
// image volumes, and the pinned-from annotation, added or merged with an earlier invocation's.
import t from 'tap'
import { imagePointer, pinPatch, PINNED_FROM, type PatchOp } from '../../src/admission/pin-patch.js'
import type { Pin } from '../../src/policy/pins.js'
import type { ImageUse } from '../../src/policy/subject.js'

const D = `sha256:${'d'.repeat(64)}`

function pin(field: string, from: string, kind: ImageUse['kind'] = 'container'): Pin {
  const name = from.replace(/:[^:/]+$/, '')
  return { use: { container: 'c', kind, field, image: from }, from, to: `${name}@${D}`, digest: D }
}

const POINTERS: Array<[string, ImageUse['kind'], string]> = [
  ['spec.containers[0]', 'container', '/spec/containers/0/image'],
  ['spec.initContainers[2]', 'container', '/spec/initContainers/2/image'],
  ['spec.ephemeralContainers[1]', 'container', '/spec/ephemeralContainers/1/image'],
  ['spec.volumes[3].image', 'volume', '/spec/volumes/3/image/reference'],
  ['spec.containers[10]', 'container', '/spec/containers/10/image'],
]
for (const [field, kind, want] of POINTERS) {
  t.test(`imagePointer ${field}`, async (t) => t.equal(imagePointer(pin(field, 'r.example/a:1', kind)), want))
}

/** RFC 6902 as the API server applies it (test, replace, add on objects), enough to check a patch's effect. */
function apply(doc: any, ops: readonly PatchOp[]): any {
  const out = structuredClone(doc)
  for (const op of ops) {
    const steps = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    const last = steps.pop()!
    let at = out
    for (const s of steps) at = at[s]
    if (op.op === 'test') {
      if (JSON.stringify(at[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`)
    } else if (op.op === 'replace') {
      if (!(last in at)) throw new Error(`replace of a missing ${op.path}`)
      at[last] = op.value
    } else at[last] = op.value
  }
  return out
}

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'n' },
  spec: {
    initContainers: [{ name: 'i', image: 'r.example/init:1' }],
    containers: [
      { name: 'a', image: 'r.example/a:1' },
      { name: 'b', image: 'r.example/b:2' },
    ],
    ephemeralContainers: [{ name: 'dbg', image: 'r.example/busybox:1.36' }],
    volumes: [{ name: 'v', image: { reference: 'r.example/data:3', pullPolicy: 'IfNotPresent' } }],
  },
}

t.test('every container field and an image volume, with the annotation created', async (t) => {
  const pins = [
    pin('spec.initContainers[0]', 'r.example/init:1'),
    pin('spec.containers[1]', 'r.example/b:2'),
    pin('spec.ephemeralContainers[0]', 'r.example/busybox:1.36'),
    pin('spec.volumes[0].image', 'r.example/data:3', 'volume'),
  ]
  const ops = pinPatch(pod, pins)
  t.same(ops.slice(0, 2), [
    { op: 'test', path: '/spec/initContainers/0/image', value: 'r.example/init:1' },
    { op: 'replace', path: '/spec/initContainers/0/image', value: `r.example/init@${D}` },
  ])
  const after = apply(pod, ops)
  t.equal(after.spec.initContainers[0].image, `r.example/init@${D}`)
  t.equal(after.spec.containers[0].image, 'r.example/a:1', 'an image without a pin is left as written')
  t.equal(after.spec.containers[1].image, `r.example/b@${D}`)
  t.equal(after.spec.ephemeralContainers[0].image, `r.example/busybox@${D}`)
  t.same(after.spec.volumes[0].image, { reference: `r.example/data@${D}`, pullPolicy: 'IfNotPresent' })
  t.same(JSON.parse(after.metadata.annotations[PINNED_FROM]), {
    'spec.initContainers[0].image': 'r.example/init:1',
    'spec.containers[1].image': 'r.example/b:2',
    'spec.ephemeralContainers[0].image': 'r.example/busybox:1.36',
    'spec.volumes[0].image.reference': 'r.example/data:3',
  })
})

t.test(
  'existing annotations are kept; an earlier map is merged, a field pinned again records its new origin',
  async (t) => {
    const earlier = {
      ...pod,
      metadata: {
        ...pod.metadata,
        annotations: {
          team: 'shop',
          [PINNED_FROM]: JSON.stringify({
            'spec.containers[0].image': 'docker.io/a:1',
            'spec.containers[1].image': 'r.example/b:2',
          }),
        },
      },
    }
    const ops = pinPatch(earlier, [pin('spec.containers[0]', 'r.example/a:1')])
    t.same(ops.at(-1), {
      op: 'add',
      path: '/metadata/annotations/pullguard.io~1pinned-from',
      value: JSON.stringify({
        'spec.containers[0].image': 'r.example/a:1',
        'spec.containers[1].image': 'r.example/b:2',
      }),
    })
    const after = apply(earlier, ops)
    t.equal(after.metadata.annotations.team, 'shop')
  },
)

t.test('an annotation edited into no map starts a new one; no pins, no patch', async (t) => {
  const edited = { ...pod, metadata: { ...pod.metadata, annotations: { [PINNED_FROM]: 'not json' } } }
  const ops = pinPatch(edited, [pin('spec.containers[0]', 'r.example/a:1')])
  t.same(JSON.parse(String(ops.at(-1)!.value)), { 'spec.containers[0].image': 'r.example/a:1' })
  t.same(pinPatch(pod, []), [])
})

t.test('the test op makes a patch of a changed image fail whole', async (t) => {
  const moved = structuredClone(pod)
  moved.spec.containers[1]!.image = 'r.example/b:3'
  t.throws(() => apply(moved, pinPatch(moved, [pin('spec.containers[1]', 'r.example/b:2')])), /test failed/)
})
