// The one eviction: least recently set leaves first, and the bound holds.
import t from 'tap'
import { BoundedMap } from '../../src/cache/bounded-map.js'

t.test('holds its bound under churn, evicting the oldest', async (t) => {
  const m = new BoundedMap<number, number>(100)
  for (let i = 0; i < 10_000; i++) m.set(i, i)
  t.equal(m.size, 100)
  t.equal(m.get(9_899), undefined)
  t.equal(m.get(9_900), 9_900)
  t.same([...m.keys()].slice(0, 2), [9_900, 9_901], 'oldest first')
})

t.test('setting a key again makes it the newest; reading it does not', async (t) => {
  const m = new BoundedMap<string, number>(2)
  m.set('a', 1)
  m.set('b', 2)
  m.set('a', 3)
  m.get('b')
  m.set('c', 4)
  t.equal(m.get('b'), undefined)
  t.equal(m.get('a'), 3)
  t.same([...m.values()], [3, 4])
})

t.test('is told of what the bound pushes out, not of what is deleted or cleared', async (t) => {
  const evicted: Array<[string, number]> = []
  const m = new BoundedMap<string, number>(2, (k, v) => evicted.push([k, v]))
  m.set('a', 1)
  m.set('b', 2)
  m.set('c', 3)
  m.delete('b')
  m.set('d', 4)
  m.clear()
  t.same(evicted, [['a', 1]])
  t.equal(m.size, 0)
})

t.test('refuses a bound that is not positive', async (t) => {
  t.throws(() => new BoundedMap(0), RangeError)
  t.throws(() => new BoundedMap(Number.NaN), RangeError)
})
