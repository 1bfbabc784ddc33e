import t from 'tap'
import { Metrics } from '../../src/server/metrics.js'

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

t.test('decisions are counted by verdict, mode and reason', async (t) => {
  const m = new Metrics({ processMetrics: false })
  m.decision({ verdict: 'denied', mode: 'enforce', reason: 'TagNotFound', seconds: 0.2 })
  t.match(await m.registry.metrics(), /pullguard_decisions_total\{verdict="denied",mode="enforce",reason="TagNotFound"\} 1/)
})
