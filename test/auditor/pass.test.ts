// An audit pass's pacing, on a virtual clock: per registry host one request at a time, at most
// qps a second, spread over the interval, a 429 pausing that host only, a hung host holding up
// only its own queue.
import t from 'tap'
import { runPass, type PassClock } from '../../src/auditor/pass.js'
import { virtualClock } from '../helpers/virtual-clock.js'
import { auditWorkload, type AuditWorkload } from '../../src/auditor/workloads.js'
import { labelsIgnored } from '../../src/policy/namespace-mode.js'
import type { ImageReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const exists: CheckResult = {
  code: 'Exists',
  digest: `sha256:${'a'.repeat(64)}`,
  mediaType: 'x',
  decidedBy: 'HEAD',
  attempts: [],
}

function workloads(host: string, n: number): AuditWorkload[] {
  return Array.from(
    { length: n },
    (_, i) =>
      auditWorkload('Deployment', {
        metadata: { name: `${host}-${i}`, namespace: 'ns', uid: `${host}-${i}` },
        spec: { template: { spec: { containers: [{ name: 'c', image: `${host}/app:${i}` }] } } },
      })!,
  )
}

function assessWith(
  answer: (ref: ImageReference, signal?: AbortSignal) => Promise<CheckResult>,
  clock: PassClock,
  calls: Array<[string, number]>,
) {
  return {
    checker: {
      check: async (ref: ImageReference, _c: unknown, _n: string, signal?: AbortSignal) => {
        calls.push([ref.registryHost, clock.now()])
        return answer(ref, signal)
      },
      tags: async () => [],
    },
    secrets: { getSecret: async () => ({ kind: 'missing' as const }) },
    serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' as const }) },
    modes: labelsIgnored(),
  }
}

const times = (calls: Array<[string, number]>, host: string): number[] =>
  calls.filter(([h]) => h === host).map(([, at]) => at)

t.test('qps per host, each host on its own', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  const findings = await runPass([...workloads('a.example', 4), ...workloads('b.example', 3)], {
    assess: assessWith(async () => exists, clock, calls),
    qps: 2,
    spreadMs: 0,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock,
  })
  t.equal(findings.length, 7)
  t.ok(findings.every((f) => f.result === 'pullable'))
  t.same(times(calls, 'a.example'), [0, 500, 1000, 1500])
  t.same(times(calls, 'b.example'), [0, 500, 1000])
})

t.test('spread evenly over the interval, never in a burst', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  await runPass(workloads('a.example', 4), {
    assess: assessWith(async () => exists, clock, calls),
    qps: 2,
    spreadMs: 3_600_000,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock,
  })
  t.same(times(calls, 'a.example'), [0, 900_000, 1_800_000, 2_700_000])
})

t.test('a 429 pauses that host for its Retry-After; the other host goes on', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  let first = true
  const answer = async (ref: ImageReference): Promise<CheckResult> => {
    if (ref.registryHost === 'a.example' && first) {
      first = false
      return { code: 'RateLimited', detail: 'slow down', retryAfterSeconds: 30, attempts: [] }
    }
    return exists
  }
  const pauses = new Map<string, number>()
  const findings = await runPass([...workloads('a.example', 3), ...workloads('b.example', 3)], {
    assess: assessWith(answer, clock, calls),
    qps: 2,
    spreadMs: 0,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock,
    pauses,
  })
  t.same(times(calls, 'a.example'), [0, 30_000, 30_500], 'no request to a.example until Retry-After has passed')
  t.same(times(calls, 'b.example'), [0, 500, 1000])
  t.equal(findings.find((f) => f.workload.name === 'a.example-0')?.result, 'unverified')
  t.equal(pauses.get('a.example'), 31_000, 'the next pass starts no sooner than the spacing allows')
})

t.test(
  'a spread pass ends on time: what a paused host cannot reach in the window is unverified, unasked',
  async (t) => {
    const clock = virtualClock()
    const calls: Array<[string, number]> = []
    const answer = async (ref: ImageReference): Promise<CheckResult> =>
      ref.registryHost === 'a.example'
        ? { code: 'RateLimited', detail: 'slow down', retryAfterSeconds: 600, attempts: [] }
        : exists
    const findings = await runPass([...workloads('a.example', 3), ...workloads('b.example', 3)], {
      assess: assessWith(answer, clock, calls),
      qps: 2,
      spreadMs: 60_000,
      timeoutMs: 1000,
      signal: new AbortController().signal,
      clock,
    })
    t.same(times(calls, 'a.example'), [0], 'one request, then the pause outlasts the pass')
    t.same(times(calls, 'b.example'), [0, 20_000, 40_000])
    t.same(
      findings.filter((f) => f.workload.name.startsWith('a.')).map((f) => [f.result, f.reason]),
      [
        ['unverified', 'RateLimited'],
        ['unverified', 'RateLimited'],
        ['unverified', 'RateLimited'],
      ],
    )
    t.match(
      findings.find((f) => f.workload.name === 'a.example-2')?.problem,
      /a\.example is rate limiting \(retry after \d+s\)/,
    )
    t.ok(clock.t <= 60_000, `the pass ended within its window (${clock.t} ms)`)
  },
)

t.test('the spacing holds from one pass into the next', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  const pauses = new Map<string, number>()
  const options = {
    assess: assessWith(async () => exists, clock, calls),
    qps: 2,
    spreadMs: 0,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock,
    pauses,
  }
  await runPass(workloads('a.example', 2), options)
  await runPass(workloads('a.example', 2), options)
  t.same(times(calls, 'a.example'), [0, 500, 1000, 1500], 'the second pass waits its turn')
})

t.test('a host that hangs holds up only its own queue', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  const answer = (ref: ImageReference, signal?: AbortSignal): Promise<CheckResult> =>
    ref.registryHost === 'hang.example'
      ? new Promise((resolve) =>
          signal?.addEventListener('abort', () =>
            resolve({ code: 'RegistryUnreachable', cause: 'timeout', detail: 'no answer', attempts: [] }),
          ),
        )
      : Promise.resolve(exists)
  const done: string[] = []
  // AbortSignal.timeout does not hold the process open; here nothing else would.
  const alive = setInterval(() => undefined, 1000)
  t.teardown(() => clearInterval(alive))
  const findings = await runPass([...workloads('hang.example', 1), ...workloads('b.example', 3)], {
    assess: assessWith(answer, clock, calls),
    qps: 2,
    spreadMs: 0,
    timeoutMs: 50,
    signal: new AbortController().signal,
    clock,
    onFinding: (f) => done.push(f.workload.name),
  })
  t.same(
    done,
    ['b.example-0', 'b.example-1', 'b.example-2', 'hang.example-0'],
    'b.example finished while hang.example was still waiting',
  )
  t.equal(findings.find((f) => f.workload.name === 'hang.example-0')?.reason, 'RegistryUnreachable')
})
