// The alerts the chart ships (files/alerts.yaml), with promtool from the Debian package prometheus:
// `promtool check rules`, then `promtool test rules` on a unit test written here that makes every
// alert fire on the series it is about and stay quiet on the ones it must not page for. Every alert
// in the file needs both kinds of case, so an alert added without tests fails this file.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load } from 'js-yaml'
import t from 'tap'
import { reviewBuckets } from '../../../src/server/metrics.js'
import { requirePromtool } from '../../helpers/promtool.js'
import { helmTemplate } from '../manifests/render.js'

const RULES = fileURLToPath(new URL('../../../../manifests/helm/pullguard/files/alerts.yaml', import.meta.url))
const PROMTOOL = requirePromtool()

interface Rule {
  alert: string
  expr: string
  for?: string
  labels: Record<string, string>
  annotations: Record<string, string>
}
const rules = (load(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules)

interface Case {
  alert: string
  why: string
  series: Array<{ series: string; values: string }>
  at: string
  /** Firing alerts expected at `at`: their labels beyond the rule's own, and what `$value` prints as. */
  fires: Array<{ labels?: Record<string, string>; value?: string }>
}

const H = 3600
/** The target labels the Prometheus Operator gives an install's series: its namespace and scrape job. */
const A = 'namespace="pullguard",job="pullguard"'
const B = 'namespace="pullguard-b",job="pullguard"'
const INSTALL_A = { namespace: 'pullguard', job: 'pullguard' }
const INSTALL_B = { namespace: 'pullguard-b', job: 'pullguard' }
const CASES: Case[] = [
  {
    alert: 'PullguardNotAnswering',
    why: 'both replicas not ready for 5 minutes',
    at: '6m',
    series: [
      { series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '0x10' },
      { series: `pullguard_ready{${A},instance="10.0.0.2:8443"}`, values: '0x10' },
    ],
    fires: [{ labels: INSTALL_A }],
  },
  {
    alert: 'PullguardNotAnswering',
    why: 'no pullguard scraped at all (down, or never installed)',
    at: '6m',
    series: [],
    fires: [{}],
  },
  {
    alert: 'PullguardNotAnswering',
    why: 'one install gone dark (no series any more) while another is healthy',
    at: '20m',
    series: [
      { series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x25' },
      { series: `pullguard_ready{${B},instance="10.1.0.1:8443"}`, values: '1x4 stale' },
    ],
    fires: [{ labels: INSTALL_B }],
  },
  {
    alert: 'PullguardNotAnswering',
    why: 'a healthy install does not hide a not-ready one',
    at: '10m',
    series: [
      { series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x10' },
      { series: `pullguard_ready{${B},instance="10.1.0.1:8443"}`, values: '0x10' },
    ],
    fires: [{ labels: INSTALL_B }],
  },
  {
    alert: 'PullguardNotAnswering',
    why: 'one replica ready of two',
    at: '10m',
    series: [
      { series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x10' },
      { series: `pullguard_ready{${A},instance="10.0.0.2:8443"}`, values: '0x10' },
    ],
    fires: [],
  },
  {
    alert: 'PullguardNotAnswering',
    why: 'not ready for 4 minutes only (a rollout)',
    at: '4m',
    series: [{ series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '0x10' }],
    fires: [],
  },

  // Buckets as pullguard exports them for the timeout (reviewBuckets); per minute: `n` reviews of
  // which `slow` took between 80% and 100% of the budget, the rest under a second.
  {
    alert: 'PullguardReviewsNearTimeout',
    why: 'every review near the 8 s budget',
    at: '16m',
    series: reviews(8, 10, 10),
    fires: [{ labels: INSTALL_A, value: '7.984s' }],
  },
  {
    alert: 'PullguardReviewsNearTimeout',
    why: '2% of reviews past 80% of the budget',
    at: '16m',
    series: reviews(8, 1000, 20),
    fires: [{ labels: INSTALL_A, value: '7.2s' }],
  },
  {
    alert: 'PullguardReviewsNearTimeout',
    why: 'a 24 s timeout: its boundary at 80% still tells',
    at: '16m',
    series: reviews(24, 100, 5),
    fires: [{ labels: INSTALL_A, value: '23.04s' }],
  },
  {
    alert: 'PullguardReviewsNearTimeout',
    why: '0.5% of reviews past 80% of the budget',
    at: '16m',
    series: reviews(8, 1000, 5),
    fires: [],
  },
  {
    alert: 'PullguardReviewsNearTimeout',
    why: 'reviews under a second',
    at: '16m',
    series: reviews(8, 10, 0),
    fires: [],
  },
  { alert: 'PullguardReviewsNearTimeout', why: 'no reviews at all', at: '16m', series: reviews(8, 0, 0), fires: [] },

  {
    alert: 'PullguardRegistryFailing',
    why: '10 timeouts a minute against 2 answers',
    at: '25m',
    series: [
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="timeout"}`,
        values: '0+10x30',
      },
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="2xx"}`,
        values: '0+2x30',
      },
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="ghcr.io",outcome="2xx"}`,
        values: '0+20x30',
      },
    ],
    fires: [{ labels: { ...INSTALL_A, registry: 'registry.example:5000' } }],
  },
  {
    alert: 'PullguardRegistryFailing',
    why: '5xx answers count as failures',
    at: '25m',
    series: [
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="5xx"}`,
        values: '0+6x30',
      },
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="2xx"}`,
        values: '0+1x30',
      },
    ],
    fires: [{ labels: { ...INSTALL_A, registry: 'registry.example:5000' } }],
  },
  {
    alert: 'PullguardRegistryFailing',
    why: '404s and 401s are answers (a missing tag, a challenge), not failures',
    at: '25m',
    series: [
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="4xx"}`,
        values: '0+10x30',
      },
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="2xx"}`,
        values: '0+1x30',
      },
    ],
    fires: [],
  },
  {
    alert: 'PullguardRegistryFailing',
    why: 'one failed request in half an hour is not a failing registry',
    at: '25m',
    series: [
      {
        series: `pullguard_registry_request_duration_seconds_count{${A},registry="registry.example:5000",outcome="dns"}`,
        values: '0 1x30',
      },
    ],
    fires: [],
  },

  {
    alert: 'PullguardWorkloadNotPullable',
    why: 'the audit reports a Deployment with a deleted tag',
    at: '10m',
    series: [
      {
        series: `pullguard_workload_image_not_pullable{${A},workload_namespace="shop",kind="Deployment",name="web",container="app",reason="TagNotFound"}`,
        values: '1x15',
      },
      {
        series: `pullguard_workload_image_not_pullable{${A},workload_namespace="shop",kind="Deployment",name="web",container="sidecar",reason="TagNotFound"}`,
        values: '1x15',
      },
    ],
    fires: [
      { labels: { ...INSTALL_A, workload_namespace: 'shop', kind: 'Deployment', name: 'web', reason: 'TagNotFound' } },
    ],
  },
  {
    alert: 'PullguardWorkloadNotPullable',
    why: 'a change of audit leader (the series gone for a while) does not resolve it',
    at: '30m',
    series: [
      {
        series: `pullguard_workload_image_not_pullable{${A},workload_namespace="shop",kind="Deployment",name="web",container="app",reason="TagNotFound"}`,
        values: '1x15 stale',
      },
    ],
    fires: [
      { labels: { ...INSTALL_A, workload_namespace: 'shop', kind: 'Deployment', name: 'web', reason: 'TagNotFound' } },
    ],
  },
  {
    alert: 'PullguardWorkloadNotPullable',
    why: 'fixed an hour and more ago',
    at: '90m',
    series: [
      {
        series: `pullguard_workload_image_not_pullable{${A},workload_namespace="shop",kind="Deployment",name="web",container="app",reason="TagNotFound"}`,
        values: '1x15 stale',
      },
    ],
    fires: [],
  },
  {
    alert: 'PullguardWorkloadNotPullable',
    why: 'fixed before the alert was due',
    at: '10m',
    series: [
      {
        series: `pullguard_workload_image_not_pullable{${A},workload_namespace="shop",kind="Deployment",name="web",container="app",reason="TagNotFound"}`,
        values: '1x2 stale',
      },
    ],
    fires: [],
  },

  {
    alert: 'PullguardAuditNotCompleting',
    why: 'the last pass completed 2h20m ago with a 1h interval',
    at: '140m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.1:8443"}`, values: `${H}x150` },
      { series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.1:8443"}`, values: '0x150' },
      {
        series: `pullguard_audit_last_pass_completed_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: '0x150',
      },
    ],
    fires: [{ labels: INSTALL_A }],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: 'a leader for 2h20m that never completed a pass',
    at: '140m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.1:8443"}`, values: `${H}x150` },
      { series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.1:8443"}`, values: '0x150' },
    ],
    fires: [{ labels: INSTALL_A }],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: 'leaders change every 40 minutes and none completes a pass',
    at: '140m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.1:8443"}`, values: `${H}x150` },
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.2:8443"}`, values: `${H}x150` },
      {
        series: `pullguard_audit_last_pass_completed_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: '0x40 stale',
      },
      {
        series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: `0x40 stale _x39 ${80 * 60}x70`,
      },
      {
        series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.2:8443"}`,
        values: `_x40 ${40 * 60}x39 stale`,
      },
    ],
    fires: [{ labels: INSTALL_A }],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: 'the audit is on and no replica holds the Lease',
    at: '20m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.1:8443"}`, values: `${H}x30` },
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.2:8443"}`, values: `${H}x30` },
    ],
    fires: [{ labels: INSTALL_A }],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: 'a pass completes every hour',
    at: '140m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.1:8443"}`, values: `${H}x150` },
      { series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.1:8443"}`, values: '0x150' },
      {
        series: `pullguard_audit_last_pass_completed_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: `_x59 ${H}x59 ${2 * H}x30`,
      },
    ],
    fires: [],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: "a new leader 50 minutes after the old one's last pass",
    at: '100m',
    series: [
      { series: `pullguard_audit_interval_seconds{${A},instance="10.0.0.2:8443"}`, values: `${H}x150` },
      {
        series: `pullguard_audit_last_pass_completed_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: `_x30 ${30 * 60}x20 stale`,
      },
      {
        series: `pullguard_audit_leader_since_timestamp_seconds{${A},instance="10.0.0.2:8443"}`,
        values: `_x50 ${50 * 60}x100`,
      },
    ],
    fires: [],
  },
  {
    alert: 'PullguardAuditNotCompleting',
    why: 'the audit is off',
    at: '140m',
    series: [{ series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x150' }],
    fires: [],
  },

  {
    alert: 'PullguardCertificateExpiringSoon',
    why: 'a replica serves a certificate that expires in 10 days',
    at: '20m',
    series: [
      {
        series: `pullguard_serving_certificate_expiry_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: `${10 * 86400}x30`,
      },
      {
        series: `pullguard_serving_certificate_expiry_timestamp_seconds{${A},instance="10.0.0.2:8443"}`,
        values: `${90 * 86400}x30`,
      },
    ],
    fires: [{ labels: { ...INSTALL_A, instance: '10.0.0.1:8443' }, value: '9d 23h 40m 0s' }],
  },
  {
    alert: 'PullguardCertificateExpiringSoon',
    why: 'a certificate with 30 days left',
    at: '20m',
    series: [
      {
        series: `pullguard_serving_certificate_expiry_timestamp_seconds{${A},instance="10.0.0.1:8443"}`,
        values: `${30 * 86400}x30`,
      },
    ],
    fires: [],
  },
]

function reviews(
  timeoutSeconds: number,
  perMinute: number,
  slowPerMinute: number,
): Array<{ series: string; values: string }> {
  const buckets = reviewBuckets(timeoutSeconds)
  const series = [...buckets.map(String), '+Inf'].map((le, i) => {
    const bound = i < buckets.length ? (buckets[i] ?? 0) : Infinity
    const fast = bound >= 1 ? perMinute - slowPerMinute : 0
    const slow = bound >= timeoutSeconds ? slowPerMinute : 0
    return {
      series: `pullguard_review_duration_seconds_bucket{${A},instance="10.0.0.1:8443",le="${le}"}`,
      values: `0+${fast + slow}x20`,
    }
  })
  return [
    ...series,
    { series: `pullguard_review_timeout_seconds{${A},instance="10.0.0.1:8443"}`, values: `${timeoutSeconds}x20` },
  ]
}

// Series end with `stale` where pullguard drops them (a replica stops leading, a finding is fixed)
// or the target goes down: Prometheus then writes a staleness marker, so the series ends at once
// rather than lingering for the 5-minute lookback.

/** Only the two forms the rules use; anything else would need its own expected text. */
function expand(text: string, labels: Record<string, string>, value: string | undefined): string {
  return text.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (whole, inner: string) => {
    const label = /^\$labels\.(\w+)$/.exec(inner)
    if (label !== null) return labels[label[1] ?? ''] ?? ''
    if (inner === '$value | humanizeDuration' && value !== undefined) return value
    throw new Error(`no expected text for ${whole}`)
  })
}

function promtoolTest(cases: readonly Case[], file = RULES, ruleList: readonly Rule[] = rules): unknown {
  return {
    rule_files: [file],
    evaluation_interval: '1m',
    tests: cases.map((c) => {
      const rule = ruleList.find((r) => r.alert === c.alert)
      if (rule === undefined) throw new Error(`no alert ${c.alert}`)
      return {
        name: `${c.alert}: ${c.why}`,
        interval: '1m',
        input_series: c.series,
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: c.alert,
            exp_alerts: c.fires.map((f) => {
              const labels = { ...rule.labels, ...f.labels }
              return {
                exp_labels: labels,
                exp_annotations: Object.fromEntries(
                  Object.entries(rule.annotations).map(([k, v]) => [k, expand(v, labels, f.value)]),
                ),
              }
            }),
          },
        ],
      }
    }),
  }
}

async function runPromtoolTest(
  cases: readonly Case[],
  ruleFile?: { groups: Array<{ rules: Rule[] }> },
): Promise<{ status: number | null; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-promtool-'))
  try {
    const file = join(dir, 'alerts-test.json')
    let test = promtoolTest(cases)
    if (ruleFile !== undefined) {
      const rulesPath = join(dir, 'rules.json')
      await writeFile(rulesPath, JSON.stringify(ruleFile))
      test = promtoolTest(
        cases,
        rulesPath,
        ruleFile.groups.flatMap((g) => g.rules),
      )
    }
    await writeFile(file, JSON.stringify(test))
    const run = spawnSync(PROMTOOL, ['test', 'rules', file], { encoding: 'utf8', timeout: 60_000 })
    return { status: run.status, output: `${run.stdout}${run.stderr}` }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

t.test('promtool check rules accepts the file', async (t) => {
  const run = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' })
  t.equal(run.status, 0, run.stdout + run.stderr)
  t.match(run.stdout, `SUCCESS: ${rules.length} rules found`)
})

t.test('every alert has a severity, a summary, a description and a runbook', async (t) => {
  t.same(
    rules.map((r) => r.alert),
    [
      'PullguardNotAnswering',
      'PullguardReviewsNearTimeout',
      'PullguardRegistryFailing',
      'PullguardWorkloadNotPullable',
      'PullguardAuditNotCompleting',
      'PullguardCertificateExpiringSoon',
    ],
  )
  for (const r of rules) {
    t.match(r.labels.severity, /^(critical|warning)$/, `${r.alert} severity`)
    for (const a of ['summary', 'description', 'runbook']) t.ok((r.annotations[a] ?? '').length > 40, `${r.alert} ${a}`)
    t.match(r.expr, /pullguard_/, `${r.alert} reads pullguard's metrics`)
  }
})

t.test('every alert fires on its case and stays quiet on the others (promtool test rules)', async (t) => {
  for (const r of rules) {
    t.ok(
      CASES.some((c) => c.alert === r.alert && c.fires.length > 0),
      `${r.alert} has a case that fires`,
    )
    t.ok(
      CASES.some((c) => c.alert === r.alert && c.fires.length === 0),
      `${r.alert} has a case that stays quiet`,
    )
  }
  const run = await runPromtoolTest(CASES)
  t.equal(run.status, 0, run.output)
  t.match(run.output, 'SUCCESS')
})

t.test('the harness can fail: a quiet case expected to fire is reported', async (t) => {
  const quiet = CASES.find((c) => c.alert === 'PullguardCertificateExpiringSoon' && c.fires.length === 0)
  if (quiet === undefined) throw new Error('no quiet case')
  const run = await runPromtoolTest([
    { ...quiet, fires: [{ labels: { ...INSTALL_A, instance: '10.0.0.1:8443' }, value: '29d' }] },
  ])
  t.not(run.status, 0)
  t.match(run.output, 'FAILED')
})

t.test(
  "the chart's PrometheusRule: PullguardNotAnswering watches the release's own namespace, dark for any length of time",
  async (t) => {
    const chartRule = async (values: Record<string, unknown>): Promise<{ groups: Array<{ rules: Rule[] }> }> => {
      const docs = (await helmTemplate({ prometheusRule: { enabled: true, ...values } }))
        .split(/^---$/m)
        .map((d) => load(d) as { kind?: string; spec?: unknown } | null)
      const rule = docs.find((d) => d?.kind === 'PrometheusRule')
      if (rule?.spec === undefined) throw new Error('no PrometheusRule rendered')
      return rule.spec as { groups: Array<{ rules: Rule[] }> }
    }
    const spec = await chartRule({})
    const notAnswering = spec.groups.flatMap((g) => g.rules).find((r) => r.alert === 'PullguardNotAnswering')
    t.equal(notAnswering?.expr, '(sum(pullguard_ready{namespace="pullguard"}) or vector(0)) < 1')
    const ns = { namespace: 'pullguard' }
    const cases: Case[] = [
      {
        alert: 'PullguardNotAnswering',
        why: 'dark for a day and more',
        at: '25h',
        series: [{ series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x4 stale' }],
        fires: [{ labels: ns }],
      },
      { alert: 'PullguardNotAnswering', why: 'never scraped', at: '10m', series: [], fires: [{ labels: ns }] },
      {
        alert: 'PullguardNotAnswering',
        why: "another namespace's pullguard dark is not this release's",
        at: '30m',
        series: [
          { series: `pullguard_ready{${A},instance="10.0.0.1:8443"}`, values: '1x40' },
          { series: `pullguard_ready{${B},instance="10.1.0.1:8443"}`, values: '0x40' },
        ],
        fires: [],
      },
      ...CASES.filter((c) => c.alert !== 'PullguardNotAnswering'),
    ]
    const run = await runPromtoolTest(cases, spec)
    t.equal(run.status, 0, run.output)
    t.match(run.output, 'SUCCESS')
    const keep = (s: {
      groups: Array<{ rules: Array<Rule & { keep_firing_for?: string }> }>
    }): Array<string | undefined> =>
      s.groups
        .flatMap((g) => g.rules)
        .filter((r) => r.alert === 'PullguardWorkloadNotPullable')
        .map((r) => r.keep_firing_for)
    t.same(keep(spec), ['1h'])
    t.same(keep(await chartRule({ keepFiringFor: '' })), [undefined], 'left out for a Prometheus older than 2.42')
    t.same(keep(await chartRule({ keepFiringFor: '2h' })), ['2h'])
  },
)
