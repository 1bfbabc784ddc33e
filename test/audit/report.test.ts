// The audit report written as it is known: the JSON in pieces is the one document a whole report
// would be (parsed back, and byte for byte as JSON.stringify lays it out), the table one block per
// broken workload, the summary last with the exit status.
import t from 'tap'
import { AuditReportWriter, type AuditReport } from '../../src/audit/report.js'
import type { AuditFinding } from '../../src/auditor/finding.js'
import { auditWorkload, type AuditWorkload } from '../../src/auditor/workloads.js'

function workload(name: string, images: string[]): AuditWorkload {
  return auditWorkload('Deployment', {
    metadata: { name, namespace: 'ns', uid: name },
    spec: { template: { spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } } },
  })!
}

function finding(w: AuditWorkload, i: number, result: AuditFinding['result']): AuditFinding {
  const use = w.subject.images[i]!
  return {
    workload: { kind: w.kind, namespace: w.namespace, name: w.name, uid: w.uid, scaledToZero: w.scaledToZero },
    container: use.container,
    field: use.field,
    image: use.image,
    result,
    reason: result === 'pullable' ? 'Exists' : 'TagNotFound',
    problem: result === 'pullable' ? 'pullable' : 'tag "2" not found',
    message: result === 'pullable' ? '' : 'broken',
    fix: result === 'pullable' ? [] : ['push it', 'or pick another'],
  }
}

function written(
  output: 'table' | 'json',
  feed: Array<[AuditWorkload, AuditFinding[]]>,
): { text: string; summary: AuditReport['summary'] } {
  let text = ''
  const writer = new AuditReportWriter({ kind: 'all-namespaces' }, output, (s) => (text += s))
  for (const [w, f] of feed) writer.workload(w, f)
  return { summary: writer.end({ questions: 2, registryRequests: 3 }), text }
}

const ok = workload('ok', ['r.example/a:1'])
const two = workload('two', ['r.example/a:1', 'r.example/b:2', 'r.example/c:2'])
const feeds: Array<[string, Array<[AuditWorkload, AuditFinding[]]>, AuditReport['summary']['exitCode']]> = [
  ['nothing', [], 0],
  ['all pullable', [[ok, [finding(ok, 0, 'pullable')]]], 0],
  [
    'broken containers, answered out of pod order',
    [
      [ok, [finding(ok, 0, 'pullable')]],
      [two, [finding(two, 2, 'not-pullable'), finding(two, 0, 'pullable'), finding(two, 1, 'unverified')]],
    ],
    1,
  ],
  ['only unverified', [[ok, [finding(ok, 0, 'unverified')]]], 3],
]

for (const [name, feed, exitCode] of feeds) {
  t.test(`json, ${name}: the same document as a whole report`, async (t) => {
    const { text, summary } = written('json', feed)
    const parsed = JSON.parse(text) as AuditReport
    t.equal(summary.exitCode, exitCode)
    t.equal(text, JSON.stringify(parsed, null, 2) + '\n', 'laid out as JSON.stringify lays it out')
    t.same(parsed.summary, summary)
    t.match(summary, { questions: 2, registryRequests: 3 })
    t.equal(parsed.summary.workloads, feed.length)
    t.equal(
      parsed.summary.images,
      feed.reduce((n, [, f]) => n + f.length, 0),
    )
    const fields = parsed.workloads.flatMap((w) => w.images.map((i) => i.field))
    t.same(
      fields,
      name.includes('broken')
        ? ['spec.template.spec.containers[1]', 'spec.template.spec.containers[2]']
        : name === 'only unverified'
          ? ['spec.template.spec.containers[0]']
          : [],
    )
  })
}

t.test('table: one block per broken workload, its containers in pod order, the summary last', async (t) => {
  const { text } = written('table', feeds[2]![1])
  t.equal(
    text,
    [
      'deployment ns/two',
      '  container "c1" (spec.template.spec.containers[1]): unverified',
      '    image:    r.example/b:2',
      '    reason:   TagNotFound: tag "2" not found',
      '    fix:      push it',
      '              or pick another',
      '  container "c2" (spec.template.spec.containers[2]): not-pullable',
      '    image:    r.example/c:2',
      '    reason:   TagNotFound: tag "2" not found',
      '    fix:      push it',
      '              or pick another',
      '',
      '4 images in 2 workloads (all namespaces): 2 pullable, 1 not pullable, 1 unverified',
      '',
    ].join('\n'),
  )
})

t.test('node pools: a container that pulls on some pools only is listed with where it fails; exit 0', async (t) => {
  const w = workload('split', ['r.example/a:1'])
  const f: AuditFinding = {
    ...finding(w, 0, 'pullable'),
    pools: { pulls: ['gpu'], fails: ['general', 'spare'], unverified: [] },
    message:
      'container "c0" image "r.example/a:1": tag "1" not found on node pools general, spare; it pulls on node pool gpu',
  }
  const { text, summary } = written('table', [[w, [f]]])
  t.equal(summary.exitCode, 0)
  t.match(text, '    pools:    pulls on gpu; fails on general, spare\n')
  t.match(text, '    but:      container "c0" image "r.example/a:1": tag "1" not found on node pools general, spare')
  const json = JSON.parse(written('json', [[w, [f]]]).text) as AuditReport
  t.same(json.workloads[0]!.images[0]!.pools, { pulls: ['gpu'], fails: ['general', 'spare'], unverified: [] })
})
