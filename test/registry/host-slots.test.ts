// The per-registry request cap: at most `limit` in flight per host, the rest in order, a waiter
// leaving when its deadline fires, and nothing kept for a host once it is idle.
import t from 'tap'
import { HostSlots } from '../../src/registry/host-slots.js'

t.test('at most the limit in flight per host; the rest go in arrival order as slots free up', async (t) => {
  const slots = new HostSlots(2)
  const order: string[] = []
  const a = await slots.acquire('reg', undefined)
  const b = await slots.acquire('reg', undefined)
  const other = await slots.acquire('other', undefined)
  t.same(slots.current().get('reg'), { active: 2, queued: 0 }, 'another host has slots of its own')
  const waiting = ['c', 'd'].map((name) =>
    slots.acquire('reg', undefined).then((release) => {
      order.push(name)
      return release
    }),
  )
  await new Promise((r) => setImmediate(r))
  t.same(slots.current().get('reg'), { active: 2, queued: 2 })
  t.same(order, [], 'nobody past the cap')
  a()
  a() // a second release of the same slot changes nothing
  const c = await waiting[0]!
  t.same(order, ['c'])
  t.same(slots.current().get('reg'), { active: 2, queued: 1 })
  b()
  const d = await waiting[1]!
  t.same(order, ['c', 'd'])
  c()
  d()
  other()
  t.same([...slots.current()], [], 'idle hosts are forgotten (hosts come from pod specs)')
})

t.test(
  'a waiter whose deadline fires leaves the queue with a timeout, and the next one still gets its turn',
  async (t) => {
    const slots = new HostSlots(1)
    const held = await slots.acquire('reg', undefined)
    // Not AbortSignal.timeout: its timer does not keep the test's event loop alive.
    const deadline = new AbortController()
    setTimeout(() => deadline.abort(), 20)
    const gone = slots.acquire('reg', deadline.signal)
    const next = slots.acquire('reg', undefined)
    await t.rejects(gone, { name: 'TransportError', reason: 'timeout', message: /free request slot to reg/ })
    t.same(slots.current().get('reg'), { active: 1, queued: 1 })
    held()
    const release = await next
    release()
    t.same([...slots.current()], [])
  },
)

t.test('an already aborted signal waits for nothing when the host is full', async (t) => {
  const slots = new HostSlots(1)
  const held = await slots.acquire('reg', undefined)
  await t.rejects(slots.acquire('reg', AbortSignal.abort()), { name: 'TransportError', message: /free request slot/ })
  t.same(slots.current().get('reg'), { active: 1, queued: 0 })
  held()
})

t.test('the limit must be a positive whole number', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => new HostSlots(bad), RangeError)
})
