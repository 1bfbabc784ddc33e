// Which pool each node belongs to (the first whose labels it carries), and which pools a pod can
// land on: by its nodes when the pool has some, by its file when it is scaled to zero, the bound
// node's pool for spec.nodeName, and every pool when none takes it.
import t from 'tap'
import { assignNodes, placePod } from '../../src/pools/placement.js'
import type { NodeSummary, PoolShape } from '../../src/pools/pool.js'

const shape = (name: string, nodeLabels: Record<string, string>, extra: Partial<PoolShape> = {}): PoolShape => ({
  name,
  nodeLabels,
  taints: [],
  runtime: undefined,
  platforms: [],
  kubelet: { verificationPolicy: 'NeverVerifyPreloadedImages', allowlist: [] },
  ...extra,
})
const node = (name: string, labels: Record<string, string>, extra: Partial<NodeSummary> = {}): NodeSummary => ({
  name,
  labels,
  taints: [],
  platform: { os: 'linux', architecture: 'amd64' },
  runtime: 'containerd://2.1.4',
  ...extra,
})

const gpu = shape(
  'gpu',
  { pool: 'gpu' },
  { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] },
)
const general = shape('general', { pool: 'general' })
const rest = shape('rest', {})

t.test('nodes go to the first pool whose labels they carry; the rest are unpooled', async (t) => {
  const nodes = [node('g1', { pool: 'gpu', zone: 'a' }), node('c1', { pool: 'general' }), node('x1', { pool: 'other' })]
  const { pools, unpooled } = assignNodes([gpu, general], nodes)
  t.same(
    pools.map((p) => [p.shape.name, p.nodes.map((n) => n.name)]),
    [
      ['gpu', ['g1']],
      ['general', ['c1']],
    ],
  )
  t.same(
    unpooled.map((n) => n.name),
    ['x1'],
  )
  t.same(
    assignNodes([gpu, rest], nodes).pools.map((p) => p.nodes.map((n) => n.name)),
    [['g1'], ['c1', 'x1']],
    'a pool without labels takes what is left',
  )
})

t.test('a pod lands where its scheduling allows', async (t) => {
  const nodes = [
    node('g1', { pool: 'gpu' }, { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] }),
    node('c1', { pool: 'general' }),
  ]
  const { pools } = assignNodes([gpu, general], nodes)
  const names = (p: ReturnType<typeof placePod>): string[] => p.pools.map((x) => x.shape.name)
  t.same(
    names(placePod({ nodeSelector: {}, nodeSelectorTerms: [] }, pools)),
    ['general'],
    'tainted pool needs a toleration',
  )
  const tolerant = {
    nodeSelector: {},
    nodeSelectorTerms: [],
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }],
  }
  t.same(names(placePod(tolerant, pools)), ['gpu', 'general'])
  t.same(names(placePod({ ...tolerant, nodeSelector: { pool: 'gpu' } }, pools)), ['gpu'])
  const bound = placePod({ nodeSelector: { pool: 'general' }, nodeSelectorTerms: [], nodeName: 'g1' }, pools)
  t.same([names(bound), bound.how], [['gpu'], 'bound'], 'spec.nodeName: the scheduler is not asked')
  const nowhere = placePod({ nodeSelector: { pool: 'none' }, nodeSelectorTerms: [] }, pools)
  t.same([names(nowhere), nowhere.how], [['gpu', 'general'], 'anywhere'], 'no pool takes it: judged on all')
})

t.test('a pool scaled to zero counts, by the labels, taints and platforms of its file', async (t) => {
  const arm = shape('arm', { pool: 'arm' }, { platforms: [{ os: 'linux', architecture: 'arm64' }] })
  const { pools } = assignNodes(
    [arm, general],
    [node('c1', { pool: 'general', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' })],
  )
  const names = (sel: Record<string, string>): string[] =>
    placePod({ nodeSelector: sel, nodeSelectorTerms: [] }, pools).pools.map((p) => p.shape.name)
  t.same(names({}), ['arm', 'general'])
  t.same(names({ 'kubernetes.io/arch': 'arm64' }), ['arm'], 'its platform gives its arch label')
  t.same(names({ 'kubernetes.io/arch': 'amd64' }), ['general'])
  t.same(
    names({ zone: 'a' }),
    ['arm', 'general'],
    'a label its file does not name may be on its nodes, even where its nodes now lack it (an autoscaler adds others)',
  )
})

t.test('a pool counts by its file when its nodes now carry a passing taint or other labels', async (t) => {
  const { pools } = assignNodes(
    [general],
    [node('c1', { pool: 'general', zone: 'a' }, { taints: [{ key: 'karpenter.sh/disrupted', effect: 'NoSchedule' }] })],
  )
  t.same(placePod({ nodeSelector: {}, nodeSelectorTerms: [] }, pools).how, 'scheduled')
  t.same(placePod({ nodeSelector: { zone: 'c' }, nodeSelectorTerms: [] }, pools).how, 'scheduled')
})

t.test('a pool that takes the nodes left cannot hold a node with an earlier pool’s labels', async (t) => {
  const { pools } = assignNodes([gpu, rest], [node('g1', { pool: 'gpu' }), node('c1', { pool: 'general' })])
  const tolerant = [{ key: 'nvidia.com/gpu', operator: 'Exists' }]
  const names = (pod: Parameters<typeof placePod>[0]): string[] => placePod(pod, pools).pools.map((p) => p.shape.name)
  t.same(names({ nodeSelector: { pool: 'gpu' }, nodeSelectorTerms: [], tolerations: tolerant }), ['gpu'])
  t.same(
    names({
      nodeSelector: {},
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] }],
      tolerations: tolerant,
    }),
    ['gpu'],
    'an affinity term that requires the label',
  )
  t.same(
    names({
      nodeSelector: {},
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu', 'other'] }] }],
      tolerations: tolerant,
    }),
    ['gpu', 'rest'],
    'a term that allows other values: the pool of the nodes left may hold one',
  )
  t.same(names({ nodeSelector: { zone: 'a' }, nodeSelectorTerms: [], tolerations: tolerant }), ['gpu', 'rest'])
})

t.test('a pod bound to a node no pool holds now is judged on every pool, taints or not', async (t) => {
  const { pools } = assignNodes([gpu, general], [node('c1', { pool: 'general' })])
  const p = placePod({ nodeSelector: {}, nodeSelectorTerms: [], nodeName: 'gpu-new' }, pools)
  t.same([p.pools.map((x) => x.shape.name), p.how], [['gpu', 'general'], 'anywhere'])
})

t.test('a cordoned or not-ready node still counts for its pool', async (t) => {
  const { pools } = assignNodes(
    [general],
    [node('c1', { pool: 'general' }, { taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] })],
  )
  t.same(placePod({ nodeSelector: {}, nodeSelectorTerms: [] }, pools).how, 'scheduled')
})
