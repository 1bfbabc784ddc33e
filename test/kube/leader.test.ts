// Leader election over a Lease store that behaves as the API server does (resourceVersion checks,
// 409 on a stale write), with short timings: one leader, a release on stop, a take-over only after
// the lease duration without renewals, and never two leaders.
import t from 'tap'
import { LeaderElector, microTime, type LeaseApi, type LeaseRecord } from '../../src/kube/leader.js'
import { createLogger } from '../../src/log/logger.js'

function store(): LeaseApi & { record: LeaseRecord | undefined; frozen: Set<string> } {
  let version = 0
  const s = {
    record: undefined as LeaseRecord | undefined,
    /** Holders whose writes are dropped (a replica cut off from the API server). */
    frozen: new Set<string>(),
    async read() {
      return s.record === undefined ? ('missing' as const) : { ...s.record }
    },
    async create(r: Omit<LeaseRecord, 'resourceVersion'>) {
      if (s.record !== undefined) return 'conflict' as const
      s.record = { ...r, resourceVersion: String(++version) }
      return { ...s.record }
    },
    async update(r: LeaseRecord) {
      if (s.frozen.has(r.holder)) throw new Error('connection refused')
      if (s.record === undefined || s.record.resourceVersion !== r.resourceVersion) return 'conflict' as const
      s.record = { ...r, resourceVersion: String(++version) }
      return { ...s.record }
    },
  }
  return s
}

const logger = createLogger('silent')
const fast = { leaseDurationMs: 300, renewDeadlineMs: 200, retryPeriodMs: 25 }
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

t.test('one leader; a stopped leader releases the Lease and the other takes it at once', async (t) => {
  const lease = store()
  const events: string[] = []
  const a = new LeaderElector({
    api: lease,
    identity: 'a',
    logger,
    onStart: () => events.push('a+'),
    onStop: () => events.push('a-'),
    ...fast,
  })
  const b = new LeaderElector({
    api: lease,
    identity: 'b',
    logger,
    onStart: () => events.push('b+'),
    onStop: () => events.push('b-'),
    ...fast,
  })
  a.start()
  await sleep(50)
  b.start()
  await sleep(400)
  t.same([a.isLeader, b.isLeader, lease.record?.holder], [true, false, 'a'], 'b waits while a renews')
  await a.stop()
  t.equal(lease.record?.holder, '', 'released')
  await sleep(100)
  t.same([a.isLeader, b.isLeader, lease.record?.holder], [false, true, 'b'])
  t.same(events, ['a+', 'a-', 'b+'])
  t.equal(lease.record?.transitions, 1)
  await b.stop()
})

t.test('a leader that can no longer renew steps down; the other takes over after the lease duration', async (t) => {
  const lease = store()
  const a = new LeaderElector({
    api: lease,
    identity: 'a',
    logger,
    onStart: () => undefined,
    onStop: () => undefined,
    ...fast,
  })
  const b = new LeaderElector({
    api: lease,
    identity: 'b',
    logger,
    onStart: () => undefined,
    onStop: () => undefined,
    ...fast,
  })
  a.start()
  await sleep(50)
  b.start()
  await sleep(100)
  lease.frozen.add('a')
  const cut = Date.now()
  while (!b.isLeader && Date.now() - cut < 2000) await sleep(10)
  const took = Date.now() - cut
  t.ok(b.isLeader, `b leads ${took} ms after a was cut off`)
  t.ok(took >= 250, 'not before the lease duration (300 ms) without renewals')
  t.notOk(a.isLeader, 'a stepped down (renew deadline passed)')
  await a.stop()
  await b.stop()
})

t.test('MicroTime has six fractional digits, as the API server parses it', async (t) => {
  t.equal(microTime(Date.UTC(2026, 11, 1, 14, 28, 37, 259)), '2026-12-01T14:28:37.259000Z')
})
