// The one worker pool: results in order, never more than the limit at once, lanes one item at a
// time each, pacing that holds no place, and a signal that stops what has not started.
import t from 'tap'
import { pool } from '../../src/async/pool.js'

/** A promise and the hand that settles it. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => (open = resolve))
  return { promise, open }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('results come in the items’ order, whatever finishes first', async (t) => {
  const out = await pool([30, 10, 20, 0], { limit: 2 }, async (ms) => {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return ms * 2
  })
  t.same(out, [60, 20, 40, 0])
})

t.test('no item: no work, an empty list', async (t) => {
  t.same(await pool([], { limit: 4 }, async () => 1), [])
})

t.test('never more than the limit at once, and items start in order', async (t) => {
  const started: number[] = []
  let running = 0
  let most = 0
  const gates = Array.from({ length: 7 }, () => gate())
  const done = pool([0, 1, 2, 3, 4, 5, 6], { limit: 3 }, async (i) => {
    started.push(i)
    most = Math.max(most, ++running)
    await gates[i]!.promise
    running--
    return i
  })
  await tick()
  t.same(started, [0, 1, 2])
  gates[1]!.open()
  await tick()
  t.same(started, [0, 1, 2, 3], 'the next item takes the free place')
  for (const g of gates) g.open()
  t.same(await done, [0, 1, 2, 3, 4, 5, 6])
  t.equal(most, 3)
})

t.test('a failure rejects the pool with it', async (t) => {
  await t.rejects(
    pool([1, 2, 3], { limit: 2 }, async (i) => {
      if (i === 2) throw new Error('boom')
      return i
    }),
    /boom/,
  )
})

t.test('a lane runs its items one after another, in order; lanes go side by side', async (t) => {
  const events: string[] = []
  const gates = new Map(['a0', 'a1', 'b0'].map((k) => [k, gate()]))
  const items = ['a0', 'b0', 'a1']
  const done = pool(items, { limit: 4, lane: (k) => k[0]! }, async (k) => {
    events.push(`start ${k}`)
    await gates.get(k)!.promise
    events.push(`end ${k}`)
    return k
  })
  await tick()
  t.same(events, ['start a0', 'start b0'], 'a1 waits for a0, not for b0')
  gates.get('a1')!.open()
  gates.get('b0')!.open()
  await tick()
  t.same(events, ['start a0', 'start b0', 'end b0'])
  gates.get('a0')!.open()
  t.same(await done, ['a0', 'b0', 'a1'])
  t.same(events.slice(3), ['end a0', 'start a1', 'end a1'])
})

t.test('the limit holds across lanes', async (t) => {
  let running = 0
  let most = 0
  await pool(['a', 'b', 'c', 'd', 'e'], { limit: 2, lane: (k) => k }, async () => {
    most = Math.max(most, ++running)
    await tick()
    running--
  })
  t.equal(most, 2)
})

t.test('pacing waits before an item’s turn without holding a place', async (t) => {
  const slow = gate()
  const events: string[] = []
  const done = pool(
    ['slow', 'fast'],
    { limit: 1, lane: (k) => k, pace: async (k) => (k === 'slow' ? slow.promise : undefined) },
    async (k) => {
      events.push(k)
      return k
    },
  )
  await tick()
  t.same(events, ['fast'], 'the lane still pacing holds up no other')
  slow.open()
  t.same(await done, ['slow', 'fast'])
  t.same(events, ['fast', 'slow'])
})

t.test('once the signal aborts, nothing more starts, and waiting for a place stops', async (t) => {
  const stop = new AbortController()
  const first = gate()
  const started: string[] = []
  const done = pool(['a', 'b', 'c'], { limit: 1, lane: (k) => k, signal: stop.signal }, async (k) => {
    started.push(k)
    if (k === 'a') await first.promise
    return k
  })
  await tick()
  t.same(started, ['a'], 'b and c wait for the one place')
  stop.abort()
  first.open()
  t.same(await done, ['a', undefined, undefined], 'what had not started has no result')
  t.same(started, ['a'])
})

t.test('an aborted signal starts nothing', async (t) => {
  const started: number[] = []
  const out = await pool([1, 2], { limit: 2, signal: AbortSignal.abort() }, async (i) => started.push(i))
  t.same(started, [])
  t.same(out, [undefined, undefined])
})

t.test('refuses a limit that is not positive', async (t) => {
  await t.rejects(
    pool([1], { limit: 0 }, async (i) => i),
    RangeError,
  )
})
