import t from 'tap'
import { ExpiringMap, TtlCache } from '../../src/cache/ttl-cache.js'

t.test('TtlCache returns values until they expire', async (t) => {
  let now = 1000
  const c = new TtlCache<string, number>({ maxEntries: 10, clock: { now: () => now } })
  c.set('a', 1, 2000)
  t.equal(c.get('a'), 1)
  now = 1999
  t.equal(c.get('a'), 1)
  now = 2000
  t.equal(c.get('a'), undefined)
  t.equal(c.size, 0, 'expired entry removed on read')
})

t.test('TtlCache does not store an entry that is already expired', async (t) => {
  const c = new TtlCache<string, number>({ maxEntries: 10, clock: { now: () => 5000 } })
  c.set('a', 1, 5000)
  t.equal(c.size, 0)
})

t.test('TtlCache holds its bound under churn, evicting the oldest', async (t) => {
  const c = new TtlCache<number, number>({ maxEntries: 100, clock: { now: () => 0 } })
  for (let i = 0; i < 10_000; i++) c.set(i, i, 1e9)
  t.equal(c.size, 100)
  t.equal(c.get(9_899), undefined)
  t.equal(c.get(9_900), 9_900)
  t.equal(c.get(9_999), 9_999)
})

t.test('TtlCache re-set moves a key to the newest position', async (t) => {
  const c = new TtlCache<string, number>({ maxEntries: 2, clock: { now: () => 0 } })
  c.set('a', 1, 10)
  c.set('b', 2, 10)
  c.set('a', 3, 10)
  c.set('c', 4, 10)
  t.equal(c.get('b'), undefined)
  t.equal(c.get('a'), 3)
})

t.test('TtlCache rejects a non-positive bound', async (t) => {
  t.throws(() => new TtlCache({ maxEntries: 0 }), RangeError)
})

t.test('ExpiringMap serves entries that carry their own expiry until it, and holds its bound', async (t) => {
  let now = 1000
  const m = new ExpiringMap<string, { until: number }>({
    maxEntries: 2,
    clock: { now: () => now },
    expiresAt: (e) => e.until,
  })
  const a = { until: 2000 }
  m.set('a', a)
  t.equal(m.get('a'), a, 'the entry itself, not a copy')
  m.set('b', { until: 3000 })
  m.set('c', { until: 3000 })
  t.equal(m.get('a'), undefined, 'the oldest left for the bound')
  now = 3000
  t.equal(m.get('b'), undefined)
  t.equal(m.size, 1, 'expired entry removed on read')
})

t.test('ExpiringMap does not store an entry already expired, and drops what the key held', async (t) => {
  const m = new ExpiringMap<string, number>({ maxEntries: 10, clock: { now: () => 5000 }, expiresAt: (until) => until })
  m.set('a', 6000)
  m.set('a', 5000)
  t.equal(m.get('a'), undefined)
  t.equal(m.size, 0)
})
