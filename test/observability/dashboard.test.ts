// The Grafana dashboard the chart ships (files/dashboard.json), read as Grafana reads it: one
// datasource variable every query uses, unique panel ids, panels that do not overlap, and the
// views the operators' questions need. That each metric and label exists is checked against a
// running pullguard's /metrics in test/e2e/helm.test.ts.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/** Grafana's own variable syntax, not a template literal. */
const DATASOURCE = '$' + '{datasource}'

interface Panel {
  id: number
  type: string
  title: string
  description?: string
  gridPos: { x: number; y: number; w: number; h: number }
  datasource?: { type: string; uid: string }
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>
}
const FILE = fileURLToPath(new URL('../../../manifests/helm/pullguard/files/dashboard.json', import.meta.url))
const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as {
  uid: string
  title: string
  templating: { list: Array<{ name: string; type: string; query: unknown }> }
  panels: Panel[]
}
const panels = dashboard.panels.filter((p) => p.type !== 'row')

t.test(
  'a Prometheus datasource variable, used by every query; every metric filtered by the install chosen',
  async (t) => {
    t.same(
      dashboard.templating.list.map((v) => [v.name, v.type]),
      [
        ['datasource', 'datasource'],
        ['namespace', 'query'],
        ['job', 'query'],
      ],
    )
    t.equal(dashboard.templating.list[0]?.query, 'prometheus')
    for (const p of panels) {
      for (const q of p.targets ?? []) {
        for (const m of q.expr.matchAll(/\bpullguard_[a-z0-9_]+(\{[^}]*\})?/g))
          t.match(m[1] ?? '', /^\{namespace=~"\$namespace", job=~"\$job"/, `${p.title}: ${m[0]}`)
      }
    }
    for (const p of panels) {
      t.same(p.datasource, { type: 'prometheus', uid: DATASOURCE }, p.title)
      t.ok((p.targets ?? []).length > 0, `${p.title} has queries`)
      for (const q of p.targets ?? []) t.equal(q.datasource?.uid, DATASOURCE, `${p.title} ${q.refId}`)
      t.ok((p.description ?? '').length > 20, `${p.title} says what it shows`)
    }
  },
)

t.test('panel ids are unique and no two panels overlap on the grid', async (t) => {
  const ids = dashboard.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length)
  const all = dashboard.panels
  for (const [i, a] of all.entries()) {
    t.ok(a.gridPos.x >= 0 && a.gridPos.x + a.gridPos.w <= 24, `${a.title} fits the 24 columns`)
    for (const b of all.slice(i + 1)) {
      const apart =
        a.gridPos.x + a.gridPos.w <= b.gridPos.x ||
        b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
        a.gridPos.y + a.gridPos.h <= b.gridPos.y ||
        b.gridPos.y + b.gridPos.h <= a.gridPos.y
      t.ok(apart, `${a.title} and ${b.title} do not overlap`)
    }
  }
})

t.test('the views operators need, each reading the metric it is about', async (t) => {
  const exprs = (title: string): string => {
    const p = panels.find((x) => x.title === title)
    t.ok(p, `panel "${title}"`)
    return (p?.targets ?? []).map((q) => q.expr).join('\n')
  }
  t.match(exprs('Decisions by verdict'), /sum by \(verdict\) \(rate\(pullguard_decisions_total/)
  t.match(exprs('Denials and warnings by reason'), /sum by \(reason\)/)
  const latency = exprs('Review latency against the timeout')
  t.match(
    latency,
    /histogram_quantile\(0\.5, sum by \(namespace, job, le\)/,
    'installs have their own buckets: never summed together',
  )
  t.match(latency, /histogram_quantile\(0\.99, sum by \(namespace, job, le\)/)
  t.match(latency, /max by \(namespace, job\) \(pullguard_review_timeout_seconds/)
  t.match(exprs('Registry requests by host'), /sum by \(registry\)/)
  t.match(exprs('Registry latency p99 by host'), /sum by \(registry, le\)/)
  t.match(exprs('Registry errors by host and cause'), /outcome!~"2xx\|3xx\|4xx"/)
  t.match(exprs('Cache hit ratio'), /result="hit"/)
  t.match(exprs('Registry checks in flight'), /pullguard_inflight_checks/)
  t.match(exprs('Workloads whose images would no longer pull'), /pullguard_workload_image_not_pullable/)
  t.match(
    exprs('Time since the last completed pass'),
    /time\(\) - max by \(namespace, job\) \(max_over_time\(pullguard_audit_last_pass_completed_timestamp_seconds\{/,
  )
  t.match(
    exprs('Workloads whose images would no longer pull'),
    /by \(workload_namespace, kind, name, container, reason\)/,
  )
  t.match(exprs('Plugin runs by provider and outcome'), /pullguard_credential_provider_exec_duration_seconds_count/)
  t.match(exprs('Replicas ready'), /sum\(pullguard_ready\{/)
  t.match(exprs('Serving certificate expires in'), /pullguard_serving_certificate_expiry_timestamp_seconds/)
})
