// Waiting for shared work no longer than this caller's deadline, without cutting the work short.
import { getEventListeners } from 'node:events'
import t from 'tap'
import { within } from '../../src/async/deadline.js'

t.test('without a signal, the work itself', async (t) => {
  const work = Promise.resolve(1)
  t.equal(
    within(work, undefined, () => 0),
    work,
  )
})

t.test('an aborted signal answers at once', async (t) => {
  t.equal(await within(new Promise<number>(() => undefined), AbortSignal.abort(), () => 0), 0)
})

t.test('an abort while waiting answers for this caller; the work goes on for the others', async (t) => {
  let finish!: (n: number) => void
  const work = new Promise<number>((resolve) => (finish = resolve))
  const mine = new AbortController()
  const short = within(work, mine.signal, () => -1)
  const long = within(work, new AbortController().signal, () => -2)
  mine.abort()
  t.equal(await short, -1)
  finish(7)
  t.equal(await long, 7)
})

t.test('work that ends first gives its value or its error, and stops listening', async (t) => {
  const signal = new AbortController().signal
  t.equal(await within(Promise.resolve(3), signal, () => 0), 3)
  await t.rejects(
    within(Promise.reject(new Error('boom')), signal, () => 0),
    /boom/,
  )
  t.equal(getEventListeners(signal, 'abort').length, 0)
})
