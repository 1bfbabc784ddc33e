// The auditor's state across passes, on a virtual clock: series appear for broken containers and
// go when fixed, deleted, renamed or when this replica stops leading; Events are made once per
// workload, updated, made again when expired, and count only what was written.
import t from 'tap'
import { Auditor, type AuditObserver, type NotPullableSeries } from '../../src/auditor/auditor.js'
import { AuditEvents, eventName, type EventSink } from '../../src/auditor/events.js'
import { auditWorkload, type AuditWorkload } from '../../src/auditor/workloads.js'
import { createLogger } from '../../src/log/logger.js'
import { labelsIgnored } from '../../src/policy/namespace-mode.js'
import type { ImageReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'
import { virtualClock } from '../helpers/virtual-clock.js'
import { NO_SIGNATURE_READS } from '../helpers/checker-stub.js'

const exists: CheckResult = {
  code: 'Exists',
  digest: `sha256:${'a'.repeat(64)}`,
  mediaType: 'x',
  decidedBy: 'HEAD',
  attempts: [],
}
const missing: CheckResult = { code: 'TagNotFound', detail: 'x', attempts: [] }

function deployment(name: string, image: string, container = 'c0', uid = `uid-${name}`): AuditWorkload {
  return auditWorkload('Deployment', {
    metadata: { name, namespace: 'ns', uid },
    spec: { template: { spec: { containers: [{ name: container, image }] } } },
  })!
}

function observer(): AuditObserver & {
  series: Map<string, NotPullableSeries>
  resets: number
  passes: number
  passQuestions: Array<Record<string, number>>
  requests: string[]
  moved: Array<Map<string, number>>
} {
  const o = {
    series: new Map<string, NotPullableSeries>(),
    resets: 0,
    passes: 0,
    passQuestions: [] as Array<Record<string, number>>,
    requests: [] as string[],
    moved: [] as Array<Map<string, number>>,
    tagMoved: (counts: ReadonlyMap<string, number>) => o.moved.push(new Map(counts)),
    notPullable: (s: NotPullableSeries, present: boolean) =>
      present ? o.series.set(JSON.stringify(s), s) : o.series.delete(JSON.stringify(s)),
    images: () => undefined,
    questions: (counts: Record<string, number>) => o.passQuestions.push(counts),
    registryRequest: (host: string) => o.requests.push(host),
    passCompleted: () => o.passes++,
    reset: () => {
      o.series.clear()
      o.resets++
    },
  }
  return o
}

function world(answer: (ref: ImageReference) => CheckResult) {
  const clock = virtualClock()
  const obs = observer()
  let workloads: AuditWorkload[] = []
  const auditor = new Auditor({
    workloads: () => workloads,
    current: (w) => workloads.find((x) => x.name === w.name && x.kind === w.kind),
    assess: {
      checker: {
        check: async (ref: ImageReference) => answer(ref),
        tags: async () => ['1.0'],
        ...NO_SIGNATURE_READS,
      },
      secrets: { getSecret: async () => ({ kind: 'missing' as const }) },
      serviceAccounts: {
        getServiceAccount: async () => ({
          kind: 'found' as const,
          object: { name: 'default', namespace: 'ns', imagePullSecrets: [], uid: 'sa', annotations: {} },
        }),
      },
      modes: labelsIgnored(),
    },
    intervalMs: 10_000,
    qps: 10,
    timeoutMs: 1000,
    logger: createLogger('silent'),
    observer: obs,
    clock,
  })
  /** Runs until `passes` more passes have completed. */
  const passes = async (n: number): Promise<void> => {
    const target = obs.passes + n
    while (obs.passes < target) await new Promise((r) => setImmediate(r))
  }
  return { auditor, obs, set: (w: AuditWorkload[]) => (workloads = w), passes }
}

const names = (obs: { series: Map<string, NotPullableSeries> }): string[] =>
  [...obs.series.values()].map((s) => `${s.name}/${s.container}:${s.reason}`).sort()

t.test('series follow the findings, and go when fixed, deleted or renamed', async (t) => {
  let broken = new Set(['reg.example/a:2', 'reg.example/b:2'])
  const w = world((ref) => (broken.has(`${ref.domain}/${ref.path}:${ref.tag}`) ? missing : exists))
  w.set([deployment('a', 'reg.example/a:2'), deployment('b', 'reg.example/b:2'), deployment('ok', 'reg.example/ok:1')])
  w.auditor.start()
  await w.passes(1)
  t.same(names(w.obs), ['a/c0:TagNotFound', 'b/c0:TagNotFound'])
  broken = new Set(['reg.example/b:2'])
  w.set([deployment('a', 'reg.example/a:2'), deployment('b', 'reg.example/b:2', 'renamed')])
  await w.passes(2)
  t.same(names(w.obs), ['b/renamed:TagNotFound'], "a fixed; b's old container name gone with it; ok deleted")
  w.auditor.forget({ kind: 'Deployment', namespace: 'ns', name: 'b' })
  t.same(names(w.obs), [], 'the watch said it was deleted: gone at once, not at the next pass')
  w.set([])
  await w.passes(1)
  t.same(names(w.obs), [], 'deleted')
  await w.auditor.stop()
})

t.test('a replica that stops leading drops every series; started again, it audits again', async (t) => {
  const w = world(() => missing)
  w.set([deployment('a', 'reg.example/a:2')])
  w.auditor.start()
  await w.passes(1)
  t.equal(w.obs.series.size, 1)
  await w.auditor.stop()
  t.equal(w.obs.series.size, 0)
  t.equal(w.obs.resets, 1)
  w.auditor.start()
  await w.passes(1)
  t.equal(w.obs.series.size, 1, 'leading again')
  // Lost and regained at once: the start waits for the stop.
  const stopping = w.auditor.stop()
  w.auditor.start()
  await stopping
  await w.passes(1)
  t.equal(w.obs.series.size, 1, 'audits after a stop and start in quick succession')
  await w.auditor.stop()
})

t.test("a pinned pod is audited at its digest, and its tag's move is told, not found", async (t) => {
  const d1 = `sha256:${'1'.repeat(64)}`
  const d2 = `sha256:${'2'.repeat(64)}`
  let tagNow = d1
  const w = world((ref) => {
    if (ref.digest === d1) return { ...exists, digest: d1 }
    if (ref.tag === '1') return { ...exists, digest: tagNow }
    return missing
  })
  const pod = auditWorkload('Pod', {
    metadata: {
      name: 'web-5d8f-x',
      namespace: 'ns',
      uid: 'pod-1',
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', uid: 'rs', controller: true }],
      annotations: { 'pullguard.io/pinned-from': JSON.stringify({ 'spec.containers[0].image': 'reg.example/web:1' }) },
    },
    spec: { containers: [{ name: 'c0', image: `reg.example/web@${d1}` }] },
    status: { phase: 'Running' },
  })!
  w.set([pod, deployment('web', 'reg.example/web:1')])
  w.auditor.start()
  await w.passes(1)
  t.same(names(w.obs), [], 'the pinned digest and the tag both pull')
  t.same(w.obs.moved.at(-1), new Map(), 'the tag still names the pinned manifest')
  tagNow = d2
  await w.passes(2)
  t.same(w.obs.moved.at(-1), new Map([['ns', 1]]), 'the tag moved: told per namespace')
  t.same(names(w.obs), [], 'not a finding: the pod pulls its digest')
  await w.auditor.stop()
})

function sink(): EventSink & { calls: string[]; existing: Map<string, number>; failNext: boolean } {
  const s = {
    calls: [] as string[],
    existing: new Map<string, number>(),
    failNext: false,
    async create(_w: { namespace: string }, name: string) {
      if (s.failNext) {
        s.failNext = false
        throw new Error('connection refused')
      }
      s.calls.push(`create ${name}`)
      if (s.existing.has(name)) return 'exists' as const
      s.existing.set(name, 1)
      return 'created' as const
    },
    async update(_ns: string, name: string, change: { count: number }) {
      s.calls.push(`update ${name} ${change.count}`)
      if (!s.existing.has(name)) return 'gone' as const
      s.existing.set(name, change.count)
      return 'updated' as const
    },
  }
  return s
}

t.test(
  'Events: made once, updated each pass, made again when expired, one per workload whoever writes it',
  async (t) => {
    const s = sink()
    const events = new AuditEvents(s, createLogger('silent'))
    const w = { kind: 'Deployment' as const, namespace: 'ns', name: 'api', uid: 'u-1' }
    const name = eventName(w)
    const signal = new AbortController().signal
    t.match(name, /^api\.[0-9a-f]{16}$/)
    await events.report(w, ['broken'], signal)
    await events.report(w, ['broken'], signal)
    s.existing.delete(name)
    await events.report(w, ['broken'], signal)
    t.same(s.calls, [`create ${name}`, `update ${name} 2`, `update ${name} 3`, `create ${name}`])
    s.failNext = true
    await events.report(w, [], signal)
    await events.report(w, ['broken again'], signal)
    await events.report(w, ['broken again'], signal)
    t.same(
      s.calls.slice(4),
      [`create ${name}`, `update ${name} 1`],
      'a failed write is not counted; broken again, the existing Event is taken over from 1',
    )
    const other = new AuditEvents(s, createLogger('silent'))
    await other.report(w, ['broken'], signal)
    t.same(s.calls.slice(6), [`create ${name}`, `update ${name} 1`], 'a new leader updates the same Event')
  },
)

t.test('each pass tells the observer its distinct questions and every request it made', async (t) => {
  const w = world((ref) => (ref.tag === '2' ? missing : exists))
  w.set([
    deployment('a', 'reg.example/app:1'),
    deployment('b', 'reg.example/app:1'),
    deployment('c', 'reg.example/app:1'),
    deployment('d', 'other.example/app:2'),
  ])
  w.auditor.start()
  await w.passes(1)
  await w.auditor.stop()
  t.same(w.obs.passQuestions[0], { pullable: 1, 'not-pullable': 1, unverified: 0 }, 'four uses, two questions')
  t.same(
    w.obs.requests.sort(),
    ['other.example', 'other.example', 'reg.example'],
    'one check each, and the missing tag’s listing',
  )
})
