// An audit pass's pacing, on a virtual clock: per registry host one request at a time, at most
// qps a second, spread over the interval, a 429 pausing that host only, a hung host holding up
// only its own queue.
import t from 'tap'
import type { AuditFinding } from '../../src/auditor/finding.js'
import { runPass, type PassClock, type PassOptions } from '../../src/auditor/pass.js'
import { virtualClock } from '../helpers/virtual-clock.js'
import { auditWorkload, type AuditWorkload } from '../../src/auditor/workloads.js'
import { createLogger } from '../../src/log/logger.js'
import { labelsIgnored } from '../../src/policy/namespace-mode.js'
import { NodePools } from '../../src/policy/node-pools.js'
import type { ImageReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'
import { NO_SIGNATURE_READS } from '../helpers/checker-stub.js'

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
      ...NO_SIGNATURE_READS,
    },
    secrets: { getSecret: async () => ({ kind: 'missing' as const }) },
    serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' as const }) },
    modes: labelsIgnored(),
  }
}

/** The pass's findings, as told one by one. */
async function collect(w: readonly AuditWorkload[], options: PassOptions): Promise<AuditFinding[]> {
  const out: AuditFinding[] = []
  await runPass(w, {
    ...options,
    onFinding: (f) => {
      out.push(f)
      options.onFinding?.(f)
    },
  })
  return out
}

const times = (calls: Array<[string, number]>, host: string): number[] =>
  calls.filter(([h]) => h === host).map(([, at]) => at)

t.test('qps per host, each host on its own', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  const findings = await collect([...workloads('a.example', 4), ...workloads('b.example', 3)], {
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
  const findings = await collect([...workloads('a.example', 3), ...workloads('b.example', 3)], {
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
    const findings = await collect([...workloads('a.example', 3), ...workloads('b.example', 3)], {
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
  const findings = await collect([...workloads('hang.example', 1), ...workloads('b.example', 3)], {
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

// ---- One question per distinct image and credentials, not per use ----

/** `n` Deployments in each namespace, all running `image`, with `secret` as their pull secret when given. */
function spread(namespaces: string[], n: number, image: string, secret?: string): AuditWorkload[] {
  return namespaces.flatMap((ns) =>
    Array.from(
      { length: n },
      (_, i) =>
        auditWorkload('Deployment', {
          metadata: { name: `d${i}`, namespace: ns, uid: `${ns}-d${i}` },
          spec: {
            template: {
              spec: {
                containers: [{ name: 'c', image }],
                ...(secret === undefined ? {} : { imagePullSecrets: [{ name: secret }] }),
              },
            },
          },
        })!,
    ),
  )
}

/** Each namespace's `regcred`: a docker config for reg.example with this password (none: no secret there). */
function secretsOf(passwords: Record<string, string>) {
  return {
    getSecret: async (namespace: string, name: string) => {
      const password = passwords[namespace]
      if (password === undefined || name !== 'regcred') return { kind: 'missing' as const }
      const auths = { 'reg.example': { username: 'robot', password } }
      return {
        kind: 'found' as const,
        object: {
          name,
          namespace,
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
        },
      }
    },
  }
}

/** A registry that lets `robot` in with `good` only, and says for each request what it was asked with. */
function registry(good: string, asked: string[], missing = new Set<string>()) {
  return {
    check: async (ref: ImageReference, credentials: readonly { password: string; label: string }[]) => {
      asked.push(`${ref.canonical} ${credentials.map((c) => c.password).join(',') || 'anonymous'}`)
      if (credentials.length > 0 && credentials[0]!.password !== good)
        return {
          code: 'AccessDenied',
          detail: `refused ${credentials[0]!.label}`,
          attempts: [{ credential: credentials[0]!.label, code: 'AccessDenied', detail: 'x' }],
        } as CheckResult
      if (missing.has(ref.canonical)) return { code: 'TagNotFound', detail: 'gone', attempts: [] } as CheckResult
      return { ...exists, decidedBy: credentials[0]?.label ?? 'anonymous' }
    },
    tags: async () => ['1.1', '0.9'],
    ...NO_SIGNATURE_READS,
  }
}

function options(
  checker: ReturnType<typeof registry>,
  passwords: Record<string, string> = {},
  extra: Partial<PassOptions> = {},
): PassOptions {
  return {
    assess: {
      checker,
      secrets: secretsOf(passwords),
      serviceAccounts: { getServiceAccount: async () => ({ kind: 'missing' as const }) },
      modes: labelsIgnored(),
    },
    qps: 1000,
    spreadMs: 0,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock: virtualClock(),
    ...extra,
  }
}

const IMAGE = 'reg.example/team/api:1.0'
const NS = ['a', 'b', 'c', 'd']

t.test('forty uses of one image with no credentials: one request', async (t) => {
  const asked: string[] = []
  const requests: string[] = []
  const findings: AuditFinding[] = []
  const summary = await runPass(spread(NS, 10, IMAGE), {
    ...options(registry('x', asked)),
    onFinding: (f) => findings.push(f),
    onRequest: (h) => requests.push(h),
  })
  t.same(asked, [`${IMAGE} anonymous`])
  t.same(requests, ['reg.example'])
  t.equal(findings.length, 40, 'every use has its finding')
  t.ok(findings.every((f) => f.result === 'pullable'))
  t.same(summary.questions, { pullable: 1, 'not-pullable': 0, unverified: 0 })
  t.same([...summary.requests], [['reg.example', 1]])
  t.equal(summary.uses, 40)
})

t.test('one secret copied into every namespace: one request', async (t) => {
  const asked: string[] = []
  await runPass(
    spread(NS, 5, IMAGE, 'regcred'),
    options(registry('good', asked), { a: 'good', b: 'good', c: 'good', d: 'good' }),
  )
  t.same(asked, [`${IMAGE} good`])
})

t.test("the nodes' credentials: one request for every namespace", async (t) => {
  const asked: string[] = []
  const o = options(registry('node', asked))
  const node = [
    { key: 'reg.example', username: 'robot', password: 'node', label: 'node docker config (key "reg.example")' },
  ]
  await runPass(spread(NS, 5, IMAGE), { ...o, assess: { ...o.assess, nodeCredentials: { entries: () => node } } })
  t.same(asked, [`${IMAGE} node`])
})

t.test(
  'a copy broken in one namespace: two questions, and only that namespace is reported, naming its own secret',
  async (t) => {
    const asked: string[] = []
    const findings: AuditFinding[] = []
    const summary = await runPass(spread(NS, 3, IMAGE, 'regcred'), {
      ...options(registry('good', asked), { a: 'good', b: 'good', c: 'rotated-wrong', d: 'good' }),
      onFinding: (f) => findings.push(f),
    })
    t.same(asked.sort(), [`${IMAGE} good`, `${IMAGE} rotated-wrong`])
    const broken = findings.filter((f) => f.result !== 'pullable')
    t.same(
      broken.map((f) => `${f.workload.namespace}/${f.workload.name}`).sort(),
      ['c/d0', 'c/d1', 'c/d2'],
      "only namespace c's workloads",
    )
    t.ok(broken.every((f) => f.reason === 'AccessDenied'))
    t.ok(
      broken.every((f) => f.problem.includes('secret c/regcred')),
      `each names its own secret: ${broken[0]?.problem}`,
    )
    t.same(summary.questions, { pullable: 1, 'not-pullable': 1, unverified: 0 })
  },
)

t.test('a missing tag: one question, and every use reported with the fix for its own workload', async (t) => {
  const asked: string[] = []
  const findings: AuditFinding[] = []
  await runPass(spread(['a', 'b'], 3, IMAGE, 'regcred'), {
    ...options(registry('good', asked, new Set([IMAGE])), { a: 'good', b: 'good' }),
    onFinding: (f) => findings.push(f),
  })
  t.same(asked, [`${IMAGE} good`], 'a copy: one question')
  t.equal(findings.length, 6)
  t.ok(findings.every((f) => f.reason === 'TagNotFound'))
  t.same(
    [...new Set(findings.map((f) => f.fix.join('\n')))].length,
    6,
    'six fixes, each for its own workload and namespace',
  )
  t.match(
    findings.find((f) => f.workload.namespace === 'b' && f.workload.name === 'd2')?.fix.join('\n'),
    /deployment\/d2 -n b/,
  )
})

t.test('spread over the interval by questions, not uses', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  const images = ['a.example/x:1', 'a.example/x:2', 'a.example/x:3', 'a.example/x:4']
  const all = images.flatMap((image) => spread(NS, 10, image).map((w) => ({ ...w, uid: `${w.uid}-${image}` })))
  await runPass(all, {
    assess: assessWith(async () => exists, clock, calls),
    qps: 2,
    spreadMs: 3_600_000,
    timeoutMs: 1000,
    signal: new AbortController().signal,
    clock,
  })
  t.same(times(calls, 'a.example'), [0, 900_000, 1_800_000, 2_700_000], '4 questions of 160 uses, a quarter hour apart')
})

t.test(
  'a paused host: its questions unverified at the end of the window for every use, without a request',
  async (t) => {
    const clock = virtualClock()
    const calls: Array<[string, number]> = []
    const answer = async (): Promise<CheckResult> => ({
      code: 'RateLimited',
      detail: 'slow down',
      retryAfterSeconds: 600,
      attempts: [],
    })
    const findings: AuditFinding[] = []
    const all = ['a.example/x:1', 'a.example/x:2'].flatMap((image) =>
      spread(NS, 5, image).map((w) => ({ ...w, uid: `${w.uid}-${image}` })),
    )
    const summary = await runPass(all, {
      assess: assessWith(answer, clock, calls),
      qps: 2,
      spreadMs: 60_000,
      timeoutMs: 1000,
      signal: new AbortController().signal,
      clock,
      onFinding: (f) => findings.push(f),
    })
    t.same(times(calls, 'a.example'), [0], 'one request; the second question is never asked')
    t.equal(findings.length, 40)
    t.ok(findings.every((f) => f.result === 'unverified' && f.reason === 'RateLimited'))
    t.same(summary.questions, { pullable: 0, 'not-pullable': 0, unverified: 2 })
    t.ok(clock.t <= 60_000, `the pass ended within its window (${clock.t} ms)`)
  },
)

t.test(
  'pages: a question answered on an earlier page is not asked again; each workload told once, in page order',
  async (t) => {
    const asked: string[] = []
    const told: string[] = []
    async function* pages(): AsyncGenerator<AuditWorkload[]> {
      yield spread(['a', 'b'], 2, IMAGE)
      yield spread(['c'], 2, IMAGE)
      yield spread(['d'], 1, 'reg.example/team/other:2')
    }
    const summary = await runPass(pages(), {
      ...options(registry('x', asked)),
      onWorkload: (w, findings) => told.push(`${w.namespace}/${w.name}:${findings.length}`),
    })
    t.same(asked, [`${IMAGE} anonymous`, 'reg.example/team/other:2 anonymous'])
    t.same(told, ['a/d0:1', 'a/d1:1', 'b/d0:1', 'b/d1:1', 'c/d0:1', 'c/d1:1', 'd/d0:1'])
    t.equal(summary.uses, 7)
  },
)

t.test(
  'a tag deleted between passes: one question each pass, and every use reported in the next, each with its own fix',
  async (t) => {
    const asked: string[] = []
    const missing = new Set<string>()
    const checker = registry('x', asked, missing)
    const uses = spread(NS, 3, IMAGE)
    const first: AuditFinding[] = []
    await runPass(uses, { ...options(checker), onFinding: (f) => first.push(f) })
    t.ok(first.length === 12 && first.every((f) => f.result === 'pullable'), 'all pullable')
    missing.add(IMAGE)
    const second: AuditFinding[] = []
    await runPass(uses, { ...options(checker), onFinding: (f) => second.push(f) })
    t.same(asked, [`${IMAGE} anonymous`, `${IMAGE} anonymous`], 'one request a pass')
    t.equal(second.length, 12)
    t.ok(second.every((f) => f.result === 'not-pullable' && f.reason === 'TagNotFound'))
    for (const f of second)
      t.match(
        f.fix.join('\n'),
        `kubectl set image deployment/${f.workload.name} -n ${f.workload.namespace} c=reg.example/team/api:1.1`,
        `${f.workload.namespace}/${f.workload.name}: its own fix`,
      )
  },
)

t.test('a slow answer does not push a spread pass back: the questions after it return to the grid', async (t) => {
  const clock = virtualClock()
  const calls: Array<[string, number]> = []
  let first = true
  const slow = async (_ref: ImageReference, signal?: AbortSignal): Promise<CheckResult> => {
    if (first) await clock.sleep(1500, signal ?? new AbortController().signal)
    first = false
    return exists
  }
  const findings: AuditFinding[] = []
  await runPass(workloads('a.example', 4), {
    assess: assessWith(slow, clock, calls),
    qps: 10,
    spreadMs: 4000,
    timeoutMs: 2000,
    signal: new AbortController().signal,
    clock,
    onFinding: (f) => findings.push(f),
  })
  t.same(times(calls, 'a.example'), [0, 1500, 2000, 3000], 'not 0, 1500, 2500, 3500')
  t.ok(
    findings.every((f) => f.result === 'pullable'),
    'every question answered within the window',
  )
})

t.test(
  'node pools: each workload judged on every pool it can land on, each pool asking through its own files',
  async (t) => {
    const clock = virtualClock()
    const viaMirror: Array<[string, number]> = []
    const direct: Array<[string, number]> = []
    // The mirror pool's files find every image; the plain pool's registry lacks the tags.
    const mirrorSide = assessWith(async () => exists, clock, viaMirror)
    const plainSide = assessWith(async () => ({ code: 'TagNotFound', detail: 'x', attempts: [] }), clock, direct)
    const shape = (name: string) => ({
      name,
      nodeLabels: { pool: name },
      taints: [],
      runtime: undefined,
      platforms: [],
      kubelet: { verificationPolicy: 'NeverVerifyPreloadedImages' as const, allowlist: [] },
    })
    const pools = new NodePools(
      [
        { ...shape('mirror'), node: { checker: mirrorSide.checker } },
        { ...shape('plain'), node: { checker: plainSide.checker } },
      ],
      undefined,
      createLogger('silent'),
    )
    const pinned = auditWorkload('Deployment', {
      metadata: { name: 'pinned', namespace: 'ns', uid: 'pinned' },
      spec: {
        template: { spec: { nodeSelector: { pool: 'plain' }, containers: [{ name: 'c', image: 'b.example/app:9' }] } },
      },
    })!
    const findings = await collect([...workloads('b.example', 3), pinned], {
      assess: plainSide,
      pools,
      qps: 100,
      spreadMs: 0,
      timeoutMs: 1000,
      signal: new AbortController().signal,
      clock,
    })
    const byName = new Map(findings.map((f) => [f.workload.name, f]))
    t.equal(findings.length, 4, 'one finding per container, not one per pool')
    t.match(byName.get('b.example-0'), {
      result: 'pullable',
      reason: 'Exists',
      pools: { pulls: ['mirror'], fails: ['plain'], unverified: [] },
      message: /tag "0" not found in b\.example\/app on node pool plain; it pulls on node pool mirror/,
    })
    t.match(byName.get('pinned'), { result: 'not-pullable', reason: 'TagNotFound' })
    t.notOk('pools' in byName.get('pinned')!, 'one pool: nothing to tell apart')
    t.equal(viaMirror.length, 3, 'the mirror pool asked each of its questions once')
    t.equal(direct.length, 4, 'the plain pool asked its own, the pinned workload’s included')
  },
)
