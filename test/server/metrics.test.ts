import t from 'tap'
import { Metrics, reviewBuckets } from '../../src/server/metrics.js'

t.test('registry hosts that never answered over HTTP never get a label of their own', async (t) => {
  const m = new Metrics({ processMetrics: false })
  for (let i = 0; i < 200; i++) m.registryRequest(`junk${i}.invalid`, 'dns', 0.01)
  m.registryRequest('registry.example.com', '2xx', 0.05)
  m.registryRequest('registry.example.com', 'timeout', 1)
  const text = await m.registry.metrics()
  t.notMatch(text, /junk/)
  t.match(text, /registry="other",outcome="dns"/)
  t.match(text, /registry="registry.example.com",outcome="timeout"/)
})

t.test('at most 50 hosts get labels; the rest are "other"', async (t) => {
  const m = new Metrics({ processMetrics: false })
  for (let i = 0; i < 80; i++) m.registryRequest(`r${i}.example`, '2xx', 0.01)
  const text = await m.registry.metrics()
  const hosts = new Set([...text.matchAll(/registry="([^"]+)"/g)].map((x) => x[1]))
  t.equal(hosts.size, 51)
  t.ok(hosts.has('other'))
})

t.test(
  "the audit's questions by result, and its requests per host: only hosts that answered get a label",
  async (t) => {
    const m = new Metrics({ processMetrics: false })
    m.registryRequest('registry.example.com', '2xx', 0.05)
    m.audit.registryRequest('registry.example.com')
    m.audit.registryRequest('registry.example.com')
    m.audit.registryRequest('never-answered.invalid')
    m.audit.questions({ pullable: 50, 'not-pullable': 2, unverified: 1 })
    let text = await m.registry.metrics()
    t.match(text, /^pullguard_audit_registry_requests_total\{registry="registry.example.com"\} 2$/m)
    t.match(text, /^pullguard_audit_registry_requests_total\{registry="other"\} 1$/m)
    t.notMatch(text, /never-answered/)
    t.match(text, /^pullguard_audit_questions\{result="pullable"\} 50$/m)
    t.match(text, /^pullguard_audit_questions\{result="not-pullable"\} 2$/m)
    m.audit.reset()
    text = await m.registry.metrics()
    t.notMatch(text, /^pullguard_audit_questions\{/m, 'a replica that stops leading drops the last pass’s questions')
    t.match(
      text,
      /^pullguard_audit_registry_requests_total\{registry="registry.example.com"\} 2$/m,
      'what it sent stays counted',
    )
  },
)

t.test('decisions are counted by verdict, mode and reason', async (t) => {
  const m = new Metrics({ processMetrics: false })
  m.decision({ verdict: 'denied', mode: 'enforce', reason: 'TagNotFound', seconds: 0.2 })
  t.match(
    await m.registry.metrics(),
    /pullguard_decisions_total\{verdict="denied",mode="enforce",reason="TagNotFound"\} 1/,
  )
})

t.test(
  "the audit's interval and leadership: the leader alone has leader_since, dropped when it stops leading",
  async (t) => {
    const m = new Metrics({ processMetrics: false })
    const unset = await m.registry.metrics()
    for (const name of [
      'pullguard_audit_interval_seconds',
      'pullguard_audit_leader_since_timestamp_seconds',
      'pullguard_audit_last_pass_completed_timestamp_seconds',
      'pullguard_audit_pass_duration_seconds',
      'pullguard_serving_certificate_expiry_timestamp_seconds',
    ]) {
      t.notMatch(unset, new RegExp(`^${name} `, 'm'), `${name}: no sample until set (not a 0 that reads as 1970)`)
    }
    m.audit.passCompleted(1_700_000_100_000, 3600)
    t.match(await m.registry.metrics(), /^pullguard_audit_last_pass_completed_timestamp_seconds 1700000100$/m)
    m.audit.reset()
    t.notMatch(
      await m.registry.metrics(),
      /^pullguard_audit_last_pass_completed_timestamp_seconds /m,
      'gone from a replica that stops leading',
    )
    m.auditInterval(3_600_000)
    m.auditLeader(1_700_000_000_000)
    let text = await m.registry.metrics()
    t.match(text, /^pullguard_audit_interval_seconds 3600$/m)
    t.match(text, /^pullguard_audit_leader_since_timestamp_seconds 1700000000$/m)
    m.auditLeader(undefined)
    text = await m.registry.metrics()
    t.notMatch(text, /^pullguard_audit_leader_since_timestamp_seconds \d/m, 'no sample once the Lease is lost')
    t.match(text, /^pullguard_audit_interval_seconds 3600$/m)
  },
)

t.test('readiness is asked at each scrape; the certificate expiry and the timeout are in seconds', async (t) => {
  const m = new Metrics({ processMetrics: false })
  let ready = false
  m.readiness(async () => ready)
  t.match(await m.registry.metrics(), /^pullguard_ready 0$/m)
  ready = true
  t.match(await m.registry.metrics(), /^pullguard_ready 1$/m)
  m.servingCertificate(Date.parse('2027-03-01T00:00:00Z'))
  const text = await m.registry.metrics()
  t.match(text, /^pullguard_serving_certificate_expiry_timestamp_seconds 1803859200$/m)
  t.match(text, /^pullguard_review_timeout_seconds 8$/m)
})

t.test('review buckets: boundaries at half, 80% and all of the budget, and 2 s past it', async (t) => {
  t.same(reviewBuckets(8), [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 6.4, 8, 10])
  t.same(reviewBuckets(24), [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 12, 24 * 0.8, 24, 26])
  t.same(reviewBuckets(0.1), [0.001, 0.005, 0.025, 0.05, 0.1 * 0.8, 0.1, 2.1])
  for (const timeout of [0.1, 1, 1.001, 3.333, 27.5, 28]) {
    const b = reviewBuckets(timeout)
    t.same(
      [...b].sort((x, y) => x - y),
      b,
      `${timeout}: ascending`,
    )
    t.equal(new Set(b).size, b.length, `${timeout}: no duplicates`)
    t.ok(b.includes(0.8 * timeout), `${timeout}: the alert's 0.8 * timeout, exactly`)
  }
  t.same(reviewBuckets(1.5), [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 0.75, 1.5 * 0.8, 1.5, 3.5])
  const m = new Metrics({ processMetrics: false, timeoutMs: 24_000 })
  m.decision({ verdict: 'allowed', mode: 'enforce', reason: 'Pullable', seconds: 20 })
  const text = await m.registry.metrics()
  t.match(text, /pullguard_review_duration_seconds_bucket\{le="19.200000000000003",verdict="allowed"\} 0/)
  t.match(text, /pullguard_review_duration_seconds_bucket\{le="24",verdict="allowed"\} 1/)
  t.match(text, /^pullguard_review_timeout_seconds 24$/m)
})

t.test('paused registries: seconds left per registry, gone once the pause is over', async (t) => {
  const m = new Metrics({ processMetrics: false })
  let pauses = new Map([['registry.example.com', 9_000]])
  m.registryPauses(() => pauses)
  t.match(
    await m.registry.metrics(),
    /^pullguard_registry_pause_remaining_seconds\{registry="registry.example.com"\} 9$/m,
  )
  pauses = new Map()
  t.notMatch(await m.registry.metrics(), /^pullguard_registry_pause_remaining_seconds\{/m)
})
