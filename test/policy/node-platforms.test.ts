// The cluster's platforms: fixed by --platform, or read from the Nodes and refreshed without ever
// holding a review past its deadline.
import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import t from 'tap'
import type { Lookup, NodeSource } from '../../src/kube/sources.js'
import { NodePlatforms } from '../../src/policy/node-platforms.js'
import { formatPlatform, type Platform } from '../../src/policy/platforms.js'
import { createLogger } from '../../src/log/logger.js'

type Answer = Lookup<Array<{ os: string; architecture: string }>>

/** Answers from a queue (the last one repeats); `gate` holds answers back until released. */
function nodeSource(...answers: Answer[]): NodeSource & {
  calls: number
  signals: Array<AbortSignal | undefined>
  gate: Promise<void> | undefined
  answers: Answer[]
} {
  const s = {
    calls: 0,
    signals: [] as Array<AbortSignal | undefined>,
    gate: undefined as Promise<void> | undefined,
    answers,
    async listNodePlatforms(signal?: AbortSignal): Promise<Answer> {
      s.calls++
      s.signals.push(signal)
      if (s.gate !== undefined) await s.gate
      const next = s.answers.length > 1 ? s.answers.shift() : s.answers[0]
      if (next === undefined) throw new Error('no answer queued')
      return next
    },
  }
  return s
}
const found = (...pairs: string[]): Answer => ({
  kind: 'found',
  object: pairs.map((x) => {
    const [os = '', architecture = ''] = x.split('/')
    return { os, architecture }
  }),
})
const names = (list: readonly Platform[]): string[] => list.map(formatPlatform)

function logger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>)
      done()
    },
  })
  return { log: createLogger('info', stream), lines }
}
function clock(start = 1_000_000): { now(): number; advance(ms: number): void } {
  let now = start
  return {
    now: () => now,
    advance: (ms) => {
      now += ms
    },
  }
}
// Lets the background read (a few microtasks) finish.
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
// AbortSignal.timeout does not keep the process alive; a review's deadline in these tests must.
function deadline(ms: number): AbortSignal {
  const c = new AbortController()
  setTimeout(() => c.abort(), ms)
  return c.signal
}

t.test('--platform values are used as given (normalized, distinct) and the Nodes are never read', async (t) => {
  const source = nodeSource(found('linux/s390x'))
  const fixed = [
    { os: 'linux', architecture: 'x86_64' },
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ]
  const np = new NodePlatforms(source, fixed, logger().log)
  t.same(names(await np.platforms()), ['linux/amd64', 'linux/arm/v7'])
  t.same(names(await np.platforms()), ['linux/amd64', 'linux/arm/v7'])
  t.equal(source.calls, 0)
})

t.test('reads the Nodes on first use, normalized and distinct, then serves that list', async (t) => {
  const source = nodeSource(found('linux/amd64', 'Linux/x86_64', 'linux/arm64'))
  const { log, lines } = logger()
  const np = new NodePlatforms(source, [], log, { clock: clock() })
  t.same(names(await np.platforms()), ['linux/amd64', 'linux/arm64'])
  t.same(names(await np.platforms()), ['linux/amd64', 'linux/arm64'])
  t.equal(source.calls, 1)
  t.ok(source.signals[0] instanceof AbortSignal, 'the read carries its own bound')
  t.match(lines, [{ level: 30, platforms: ['linux/amd64', 'linux/arm64'], msg: /read from the Node objects/ }])
})

t.test('concurrent first reviews share one read', async (t) => {
  const source = nodeSource(found('linux/amd64'))
  const np = new NodePlatforms(source, [], logger().log, { clock: clock() })
  const all = await Promise.all([np.platforms(), np.platforms(), np.platforms()])
  t.same(all.map(names), [['linux/amd64'], ['linux/amd64'], ['linux/amd64']])
  t.equal(source.calls, 1)
})

t.test('refreshes after the interval in the background, serving the old list meanwhile', async (t) => {
  const c = clock()
  const source = nodeSource(found('linux/amd64'), found('linux/amd64', 'linux/arm64'))
  const np = new NodePlatforms(source, [], logger().log, { clock: c, refreshMs: 600_000 })
  t.same(names(await np.platforms()), ['linux/amd64'])
  c.advance(599_999)
  t.same(names(await np.platforms()), ['linux/amd64'])
  t.equal(source.calls, 1, 'not due yet')
  c.advance(1)
  let release!: () => void
  source.gate = new Promise((resolve) => {
    release = resolve
  })
  t.same(names(await np.platforms()), ['linux/amd64'], 'stale list at once, not waiting for the read')
  t.same(names(await np.platforms()), ['linux/amd64'])
  t.equal(source.calls, 2, 'one background read, however many reviews')
  release()
  await settle()
  t.same(names(await np.platforms()), ['linux/amd64', 'linux/arm64'])
  t.equal(source.calls, 2)
})

t.test('defaults to a 10-minute refresh', async (t) => {
  const c = clock()
  const source = nodeSource(found('linux/amd64'))
  const np = new NodePlatforms(source, [], logger().log, { clock: c })
  await np.platforms()
  c.advance(10 * 60_000 - 1)
  await np.platforms()
  t.equal(source.calls, 1)
  c.advance(1)
  await np.platforms()
  await settle()
  t.equal(source.calls, 2)
})

t.test('an API error keeps the last list, warns, and retries after the pause, not on every review', async (t) => {
  const c = clock()
  const source = nodeSource(
    found('linux/amd64'),
    { kind: 'error', detail: 'the Kubernetes API answered HTTP 503' },
    found('linux/arm64'),
  )
  const { log, lines } = logger()
  const np = new NodePlatforms(source, [], log, { clock: c, refreshMs: 1000, retryMs: 200 })
  await np.platforms()
  c.advance(1000)
  t.same(names(await np.platforms()), ['linux/amd64'])
  await settle()
  t.same(names(await np.platforms()), ['linux/amd64'], 'kept after the failed read')
  t.equal(source.calls, 2)
  t.match(lines.at(-1), {
    level: 40,
    detail: 'the Kubernetes API answered HTTP 503',
    keeping: ['linux/amd64'],
    msg: /list nodes.*--platform/,
  })
  c.advance(199)
  await np.platforms()
  t.equal(source.calls, 2, 'no retry during the pause')
  c.advance(1)
  await np.platforms()
  await settle()
  t.equal(source.calls, 3)
  t.same(names(await np.platforms()), ['linux/arm64'])
})

t.test(
  'before any list exists the answer is [] (unknown), and a failed first read is not retried per review',
  async (t) => {
    const c = clock()
    const source = nodeSource(
      {
        kind: 'forbidden',
        detail: 'nodes is forbidden: User "system:serviceaccount:pullguard:pullguard" cannot list resource "nodes"',
      },
      found('linux/amd64'),
    )
    const { log, lines } = logger()
    const np = new NodePlatforms(source, [], log, { clock: c, retryMs: 30_000 })
    t.same(await np.platforms(), [])
    t.same(await np.platforms(), [])
    t.equal(source.calls, 1)
    t.match(lines, [{ level: 40, detail: /cannot list resource "nodes"/, keeping: /nothing/ }])
    c.advance(30_000)
    t.same(names(await np.platforms()), ['linux/amd64'], 'the retry is waited for: there is no list to serve meanwhile')
    t.equal(source.calls, 2)
  },
)

t.test('a slow first read holds a review no longer than its signal; a later review gets the list', async (t) => {
  const source = nodeSource(found('linux/amd64'))
  let release!: () => void
  source.gate = new Promise((resolve) => {
    release = resolve
  })
  const np = new NodePlatforms(source, [], logger().log, { clock: clock() })
  const started = Date.now()
  t.same(await np.platforms(deadline(50)), [])
  t.ok(Date.now() - started < 1000, 'answered at the deadline')
  t.ok(source.signals[0]?.aborted === false, "the review's deadline does not cut the shared read short")
  release()
  await settle()
  t.same(names(await np.platforms()), ['linux/amd64'])
  t.equal(source.calls, 1)
})

t.test('an already-aborted signal gets [] at once', async (t) => {
  const source = nodeSource(found('linux/amd64'))
  source.gate = new Promise(() => undefined)
  const np = new NodePlatforms(source, [], logger().log, { clock: clock() })
  t.same(await np.platforms(AbortSignal.abort()), [])
})

t.test('a read that never ends is abandoned after the read timeout, so later refreshes still happen', async (t) => {
  const c = clock()
  const source: NodeSource & { calls: number } = {
    calls: 0,
    listNodePlatforms(signal?: AbortSignal): Promise<Answer> {
      source.calls++
      if (source.calls > 1) return Promise.resolve(found('linux/arm64'))
      return new Promise((resolve) =>
        signal?.addEventListener('abort', () =>
          resolve({ kind: 'error', detail: 'aborted by the caller before the API answered' }),
        ),
      )
    },
  }
  const np = new NodePlatforms(source, [], logger().log, { clock: c, readTimeoutMs: 30, retryMs: 0 })
  t.same(await np.platforms(deadline(5)), [])
  await new Promise((resolve) => setTimeout(resolve, 80))
  t.same(names(await np.platforms()), ['linux/arm64'])
  t.equal(source.calls, 2)
})

t.test('a source that throws is an error, not a crash', async (t) => {
  const { log, lines } = logger()
  const np = new NodePlatforms({ listNodePlatforms: () => Promise.reject(new TypeError('boom')) }, [], log, {
    clock: clock(),
  })
  t.same(await np.platforms(), [])
  t.match(lines, [{ level: 40, detail: 'the node source failed (TypeError)' }])
})

t.test(
  'a cluster whose nodes have not reported yet is unknown ([]), and is read again at the next refresh',
  async (t) => {
    const c = clock()
    const source = nodeSource(found(), found('linux/amd64'))
    const np = new NodePlatforms(source, [], logger().log, { clock: c, refreshMs: 1000 })
    t.same(await np.platforms(), [])
    c.advance(1000)
    await np.platforms()
    await settle()
    t.same(names(await np.platforms()), ['linux/amd64'])
  },
)
