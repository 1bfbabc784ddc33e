// Concurrent calls for one key share one run of the work.
import t from 'tap'
import { SingleFlight } from '../../src/async/single-flight.js'

t.test('SingleFlight runs concurrent work for one key once and shares the result', async (t) => {
  const sf = new SingleFlight<string, number>()
  let runs = 0
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const work = async () => {
    runs++
    await gate
    return 42
  }
  const all = Array.from({ length: 50 }, () => sf.run('k', work))
  t.equal(sf.inflight, 1)
  release()
  t.same(await Promise.all(all), Array(50).fill(42))
  t.equal(runs, 1)
  t.equal(sf.inflight, 0)
  t.equal(await sf.run('k', work), 42)
  t.equal(runs, 2, 'a call after completion runs again')
})

t.test('SingleFlight shares a rejection and then forgets it', async (t) => {
  const sf = new SingleFlight<string, number>()
  const p1 = sf.run('k', async () => {
    throw new Error('boom')
  })
  const p2 = sf.run('k', async () => 1)
  await t.rejects(p1, /boom/)
  await t.rejects(p2, /boom/)
  t.equal(await sf.run('k', async () => 2), 2)
})
