// Where the scheduler may put a pod, held against a node's labels and taints with the scheduler's
// semantics (component-helpers nodeaffinity.go, corev1 ToleratesTaint), and against a pool known
// only by its file (labels it does not name may be on its nodes).
import t from 'tap'
import type { Taint } from '../../src/pools/pool.js'
import {
  requirementMatches,
  schedulable,
  tolerates,
  type NodeFacts,
  type PodScheduling,
  type Toleration,
} from '../../src/pools/scheduling.js'

const pod = (p: Partial<PodScheduling>): PodScheduling => ({ nodeSelector: {}, nodeSelectorTerms: [], ...p })
const node = (labels: Record<string, string>, taints: Taint[] = [], partial = false, name?: string): NodeFacts => ({
  labels,
  taints,
  partial,
  ...(name === undefined ? {} : { name }),
})

t.test('label requirements on a known node and on a pool known by its file', async (t) => {
  const table: Array<[string, string, string[] | undefined, string | undefined, boolean, boolean]> = [
    // [operator, key, values, node has, partial, matches]
    ['In', 'pool', ['gpu'], 'gpu', false, true],
    ['In', 'pool', ['gpu'], 'cpu', false, false],
    ['In', 'pool', ['gpu'], undefined, false, false],
    ['In', 'pool', ['gpu'], undefined, true, true],
    ['In', 'pool', [], undefined, true, false],
    ['NotIn', 'pool', ['gpu'], 'cpu', false, true],
    ['NotIn', 'pool', ['gpu'], 'gpu', false, false],
    ['NotIn', 'pool', ['gpu'], undefined, false, true],
    ['Exists', 'gpu', undefined, 'x', false, true],
    ['Exists', 'gpu', undefined, undefined, false, false],
    ['Exists', 'gpu', undefined, undefined, true, true],
    ['DoesNotExist', 'gpu', undefined, 'x', false, false],
    ['DoesNotExist', 'gpu', undefined, undefined, false, true],
    ['DoesNotExist', 'gpu', undefined, 'x', true, false],
    ['Gt', 'cores', ['8'], '16', false, true],
    ['Gt', 'cores', ['8'], '8', false, false],
    ['Lt', 'cores', ['8'], '4', false, true],
    ['Gt', 'cores', ['8'], 'many', false, false],
    ['Gt', 'cores', ['x'], '16', false, false],
    ['Gt', 'cores', ['8', '9'], '16', false, false],
    ['Gt', 'cores', ['8'], undefined, false, false],
    ['Gt', 'cores', ['8'], undefined, true, true],
  ]
  for (const [operator, key, values, have, partial, want] of table)
    t.equal(
      requirementMatches({ key, operator, ...(values === undefined ? {} : { values }) }, have, partial),
      want,
      `${key} ${operator} ${JSON.stringify(values ?? [])} on ${have ?? '(absent)'}${partial ? ' (partial)' : ''}`,
    )
})

t.test('nodeSelector and required node affinity together', async (t) => {
  const gpu = node({ pool: 'gpu', 'kubernetes.io/arch': 'amd64' }, [], false, 'gpu-1')
  t.ok(schedulable(pod({}), gpu), 'no constraint: anywhere')
  t.ok(schedulable(pod({ nodeSelector: { pool: 'gpu' } }), gpu))
  t.notOk(schedulable(pod({ nodeSelector: { pool: 'cpu' } }), gpu))
  t.notOk(schedulable(pod({ nodeSelector: { zone: 'a' } }), gpu), 'a label the node lacks')
  t.ok(schedulable(pod({ nodeSelector: { zone: 'a' } }), node({ pool: 'gpu' }, [], true)), 'a pool may have it')
  const terms = (...t: PodScheduling['nodeSelectorTerms']): PodScheduling => pod({ nodeSelectorTerms: t })
  t.ok(
    schedulable(
      terms(
        { matchExpressions: [{ key: 'pool', operator: 'In', values: ['cpu'] }] },
        { matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] },
      ),
      gpu,
    ),
    'terms are ORed',
  )
  t.notOk(
    schedulable(
      terms({
        matchExpressions: [
          { key: 'pool', operator: 'In', values: ['gpu'] },
          { key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] },
        ],
      }),
      gpu,
    ),
    'requirements in a term are ANDed',
  )
  t.notOk(schedulable(terms({ matchExpressions: [] }), gpu), 'an empty term matches nothing')
  t.notOk(
    schedulable(
      pod({
        nodeSelector: { pool: 'cpu' },
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'Exists' }] }],
      }),
      gpu,
    ),
    'nodeSelector and affinity must both hold',
  )
  const daemon = terms({
    matchExpressions: [],
    matchFields: [{ key: 'metadata.name', operator: 'In', values: ['gpu-1'] }],
  })
  t.ok(schedulable(daemon, gpu), 'a DaemonSet pod pinned to its node by name')
  t.notOk(schedulable(daemon, node({ pool: 'gpu' }, [], false, 'gpu-2')), 'not on another node')
  t.notOk(schedulable(daemon, node({ pool: 'gpu' }, [], true)), 'nor on a pool without nodes')
})

t.test('tolerations against taints (ToleratesTaint)', async (t) => {
  const taint: Taint = { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }
  const table: Array<[Toleration, boolean]> = [
    [{ key: 'nvidia.com/gpu', operator: 'Equal', value: 'present', effect: 'NoSchedule' }, true],
    [{ key: 'nvidia.com/gpu', value: 'present' }, true],
    [{ key: 'nvidia.com/gpu', operator: 'Exists' }, true],
    [{ operator: 'Exists' }, true],
    [{ key: 'nvidia.com/gpu', value: 'absent' }, false],
    [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoExecute' }, false],
    [{ key: 'other', operator: 'Exists' }, false],
    [{ operator: 'Equal', value: 'present' }, false],
  ]
  for (const [toleration, want] of table) t.equal(tolerates(toleration, taint), want, JSON.stringify(toleration))
  const tainted = node({}, [taint, { key: 'soft', effect: 'PreferNoSchedule' }])
  t.notOk(schedulable(pod({}), tainted), 'a NoSchedule taint keeps an intolerant pod off')
  t.ok(
    schedulable(pod({ tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }] }), tainted),
    'PreferNoSchedule only steers',
  )
  t.notOk(
    schedulable(
      pod({ tolerations: [{ operator: 'Exists', effect: 'NoSchedule' }] }),
      node({}, [{ key: 'x', effect: 'NoExecute' }]),
    ),
    'NoExecute needs its own toleration',
  )
})
