// Plugins run as the kubelet runs them, with pullguard's bounds: real processes (test-plugin.ts),
// the request and response checked as plugin.go checks them, answers cached by cacheKeyType and
// duration as the kubelet caches them (counted in execs), single-flight and a limit on processes.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { ProviderSpec } from '../../src/providers/spec.js'
import { decodeResponse, encodeRequest } from '../../src/providers/exchange.js'
import { runPlugin } from '../../src/providers/exec.js'
import { ExecLimiter } from '../../src/providers/limiter.js'
import { CredentialProvider, registryOf } from '../../src/providers/provider.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'

const V1 = 'credentialprovider.kubelet.k8s.io/v1'
const dir = await mkdtemp(join(tmpdir(), 'pullguard-plugins-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const binary = await writeTestPlugin(dir, 'test-plugin')
let logs = 0

function provider(
  env: Record<string, string>,
  options: { clock?: { now(): number }; timeoutMs?: number; limiter?: ExecLimiter; spec?: Partial<ProviderSpec> } = {},
): { p: CredentialProvider; requests: () => unknown[] } {
  const log = join(dir, `requests-${++logs}.log`)
  const spec = {
    name: 'test-plugin',
    binary,
    matchImages: ['*.registry.io', 'registry.io'],
    defaultCacheDurationMs: 5 * 60_000,
    apiVersion: V1,
    args: [],
    env: Object.entries({ PLUGIN_LOG: log, ...env }).map(([name, value]) => ({ name, value })),
    tokenAttributes: undefined,
    ...options.spec,
  }
  const p = new CredentialProvider(spec, {
    baseEnv: { PATH: process.env['PATH'] },
    execTimeoutMs: options.timeoutMs ?? 10_000,
    limiter: options.limiter ?? new ExecLimiter(4),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  })
  return {
    p,
    requests: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as unknown)
        : [],
  }
}
const AUTH = JSON.stringify({ '*.registry.io': { username: 'u', password: 'plugin-password-1' } })

t.test("encodeRequest: the kubelet's exact bytes", async (t) => {
  t.equal(
    encodeRequest(V1, 'test.registry.io/foobar'),
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"test.registry.io/foobar"}\n',
  )
  t.equal(
    encodeRequest('credentialprovider.kubelet.k8s.io/v1beta1', 'test.registry.io/foobar', 'tok'),
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"test.registry.io/foobar"}\n',
    'older versions carry only the image',
  )
  t.equal(
    encodeRequest(V1, 'test.registry.io/foobar', 'service-account-token', { 'domain.io/annotation1': 'value1' }),
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"test.registry.io/foobar","serviceAccountToken":"service-account-token","serviceAccountAnnotations":{"domain.io/annotation1":"value1"}}\n',
  )
  t.equal(
    encodeRequest(V1, 'a.io/x', 'tok', {}),
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"a.io/x","serviceAccountToken":"tok"}\n',
  )
  t.equal(
    encodeRequest(V1, 'a.io/x', 'tok', { 'b.io/z': '2', 'a.io/y': '<&>' }),
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"a.io/x","serviceAccountToken":"tok","serviceAccountAnnotations":{"a.io/y":"\\u003c\\u0026\\u003e","b.io/z":"2"}}\n',
  )
})

const R = (o: Record<string, unknown>): string =>
  JSON.stringify({ kind: 'CredentialProviderResponse', apiVersion: V1, ...o })
const responses: Array<[string, string, unknown]> = [
  [
    'Registry, 1m, one auth',
    R({
      cacheKeyType: 'Registry',
      cacheDuration: '1m',
      auth: { '*.registry.io': { username: 'user', password: 'password' } },
    }),
    {
      ok: true,
      response: {
        cacheKeyType: 'Registry',
        cacheDurationMs: 60_000,
        auth: [{ key: '*.registry.io', username: 'user', password: 'password' }],
      },
    },
  ],
  [
    'no cacheKeyType',
    R({ auth: {} }),
    { ok: false, problem: 'credential provider plugin did not return a valid cacheKeyType: ' },
  ],
  [
    'cacheKeyType in the wrong case',
    R({ cacheKeyType: 'image' }),
    { ok: false, problem: 'credential provider plugin did not return a valid cacheKeyType: image' },
  ],
  [
    '0s',
    R({ cacheKeyType: 'Image', cacheDuration: '0s' }),
    { ok: true, response: { cacheKeyType: 'Image', cacheDurationMs: 0, auth: [] } },
  ],
  [
    'null duration',
    R({ cacheKeyType: 'Image', cacheDuration: null }),
    { ok: true, response: { cacheKeyType: 'Image', cacheDurationMs: undefined, auth: [] } },
  ],
  [
    'numeric duration',
    R({ cacheKeyType: 'Image', cacheDuration: 60 }),
    { ok: false, problem: 'error decoding credential provider plugin response from stdout' },
  ],
  [
    'unknown field',
    R({ cacheKeyType: 'Image', extra: 1 }),
    { ok: false, problem: 'error decoding credential provider plugin response from stdout' },
  ],
  [
    'wrong-case field',
    R({ CacheKeyType: 'Image' }),
    { ok: false, problem: 'error decoding credential provider plugin response from stdout' },
  ],
  [
    'no password',
    R({ cacheKeyType: 'Image', auth: { 'a.io': { username: 'u' } } }),
    {
      ok: true,
      response: {
        cacheKeyType: 'Image',
        cacheDurationMs: undefined,
        auth: [{ key: 'a.io', username: 'u', password: '' }],
      },
    },
  ],
  [
    'an auth field inside auth',
    R({ cacheKeyType: 'Image', auth: { 'a.io': { username: 'u', password: 'p', auth: 'x' } } }),
    { ok: false, problem: 'error decoding credential provider plugin response from stdout' },
  ],
  [
    'auth null',
    R({ cacheKeyType: 'Image', auth: null }),
    { ok: true, response: { cacheKeyType: 'Image', cacheDurationMs: undefined, auth: [] } },
  ],
  [
    'wrong kind',
    JSON.stringify({ kind: 'WrongKind', apiVersion: V1, cacheKeyType: 'Image' }),
    { ok: false, problem: 'error decoding credential provider plugin response from stdout' },
  ],
  [
    'no apiVersion',
    JSON.stringify({ kind: 'CredentialProviderResponse', cacheKeyType: 'Image' }),
    {
      ok: false,
      problem:
        'apiVersion from credential plugin response did not match expected apiVersion:credentialprovider.kubelet.k8s.io/v1, actual apiVersion:',
    },
  ],
  [
    'another apiVersion',
    R({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1', cacheKeyType: 'Image' }),
    {
      ok: false,
      problem:
        'apiVersion from credential plugin response did not match expected apiVersion:credentialprovider.kubelet.k8s.io/v1, actual apiVersion:credentialprovider.kubelet.k8s.io/v1beta1',
    },
  ],
  [
    'not JSON',
    'not json password=hunter2',
    { ok: false, problem: 'error reading GVK from response: not a single JSON value' },
  ],
  ['empty', '', { ok: false, problem: 'error reading GVK from response: not a single JSON value' }],
  [
    'trailing newline',
    `${R({ cacheKeyType: 'Global' })}\n`,
    { ok: true, response: { cacheKeyType: 'Global', cacheDurationMs: undefined, auth: [] } },
  ],
  [
    'trailing garbage',
    `${R({ cacheKeyType: 'Global' })} garbage`,
    { ok: false, problem: 'error reading GVK from response: not a single JSON value' },
  ],
  [
    'an array',
    '[]',
    {
      ok: false,
      problem:
        'apiVersion from credential plugin response did not match expected apiVersion:credentialprovider.kubelet.k8s.io/v1, actual apiVersion:',
    },
  ],
]
for (const [name, stdout, expected] of responses) {
  t.test(`decodeResponse: ${name}`, async (t) => t.same(decodeResponse(stdout, V1), expected))
}

t.test(
  'exec: an answer, a failing exit, a hang (its whole process group killed), too much output, stderr never shown',
  async (t) => {
    const spec = (env: Record<string, string>): Parameters<typeof runPlugin>[0] => ({
      name: 'test-plugin',
      binary,
      args: [],
      env: Object.entries(env).map(([name, value]) => ({ name, value })),
    })
    const stdin = encodeRequest(V1, 'a.registry.io/app')
    const base = { baseEnv: { PATH: process.env['PATH'] }, timeoutMs: 5_000 }
    const ok = await runPlugin(spec({ PLUGIN_AUTH: AUTH }), stdin, base)
    t.match(ok, { ok: true })
    const failed = await runPlugin(
      spec({ PLUGIN_MODE: 'exit1', PLUGIN_SECRET_ON_STDERR: 'stderr-secret' }),
      stdin,
      base,
    )
    t.same(failed, {
      ok: false,
      code: 'PluginExited',
      problem: 'credential provider plugin test-plugin exited with status 1',
    })
    const started = Date.now()
    const hung = await runPlugin(spec({ PLUGIN_MODE: 'hang' }), stdin, { ...base, timeoutMs: 400 })
    t.same(hung, {
      ok: false,
      code: 'PluginTimedOut',
      problem: 'credential provider plugin test-plugin did not answer within 400 ms',
    })
    t.ok(Date.now() - started < 2_000, 'answered at the limit, not when the grandchild lets go of stdout')
    const huge = await runPlugin(spec({ PLUGIN_MODE: 'huge' }), stdin, base)
    t.same(huge, {
      ok: false,
      code: 'PluginOutputTooLarge',
      problem: 'credential provider plugin test-plugin wrote more than 1048576 bytes',
    })
    const missing = await runPlugin({ ...spec({}), binary: join(dir, 'absent') }, stdin, base)
    t.same(missing, {
      ok: false,
      code: 'PluginStartFailed',
      problem: 'credential provider plugin test-plugin could not be started (ENOENT)',
    })
    t.notMatch(JSON.stringify([ok, failed, hung, huge]), 'stderr-secret')
  },
)

t.test('exec: the process environment plus the configured env, a later entry winning', async (t) => {
  const log = join(dir, 'env.log')
  const r = await runPlugin(
    {
      name: 'env-dump',
      binary,
      args: [],
      env: [
        { name: 'PLUGIN_LOG', value: log },
        { name: 'PLUGIN_AUTH', value: '{}' },
        { name: 'PLUGIN_AUTH', value: AUTH },
      ],
    },
    encodeRequest(V1, 'a.registry.io/x'),
    { baseEnv: { PATH: process.env['PATH'], PLUGIN_KEY_TYPE: 'Global' }, timeoutMs: 5_000 },
  )
  t.ok(r.ok)
  const decoded = r.ok ? decodeResponse(r.stdout, V1) : undefined
  t.match(
    decoded,
    { ok: true, response: { cacheKeyType: 'Global', auth: [{ key: '*.registry.io', password: 'plugin-password-1' }] } },
    'PLUGIN_KEY_TYPE from the process env, PLUGIN_AUTH from the last config entry',
  )
})

t.test('matchImages gate: an image outside them never runs the plugin', async (t) => {
  const { p, requests } = provider({ PLUGIN_AUTH: AUTH })
  t.same(await p.provide('docker.io/library/nginx'), { kind: 'none' })
  t.equal(p.execs, 0)
  t.same(requests(), [])
})

t.test('cacheKeyType decides what an answer is reused for (execs counted)', async (t) => {
  const asks = ['a.registry.io/foo', 'a.registry.io/foo', 'a.registry.io/bar', 'b.registry.io/foo']
  for (const [type, execs] of [
    ['Image', 3],
    ['Registry', 2],
    ['Global', 1],
  ] as const) {
    const { p, requests } = provider({ PLUGIN_AUTH: AUTH, PLUGIN_KEY_TYPE: type, PLUGIN_DURATION: '1m' })
    for (const image of asks)
      t.match(await p.provide(image), {
        kind: 'credentials',
        entries: [
          {
            key: '*.registry.io',
            username: 'u',
            password: 'plugin-password-1',
            label: 'credential provider test-plugin (key "*.registry.io")',
          },
        ],
      })
    t.equal(p.execs, execs, `${type}: ${execs} execs`)
    t.same(
      requests().map((r) => (r as { image: string }).image),
      [
        ...new Set(
          type === 'Image'
            ? asks
            : type === 'Registry'
              ? ['a.registry.io/foo', 'b.registry.io/foo']
              : ['a.registry.io/foo'],
        ),
      ],
      'the plugin got the repository names',
    )
  }
})

t.test("durations: the response's, else the default; 0 is not cached; valid until just past expiry", async (t) => {
  let now = 1_000_000
  const clock = { now: () => now }
  const cases: Array<[string | undefined, number, number[]]> = [
    [undefined, 0, [1, 2, 3, 4]],
    [undefined, 5 * 60_000, [1, 1, 1, 1]],
    ['0s', 5 * 60_000, [1, 2, 3, 4]],
    ['-1m', 5 * 60_000, [1, 2, 3, 4]],
    ['1m', 0, [1, 1, 1, 2]],
  ]
  for (const [duration, defaultMs, expected] of cases) {
    now = 1_000_000
    const { p } = provider(
      { PLUGIN_AUTH: AUTH, ...(duration === undefined ? {} : { PLUGIN_DURATION: duration }) },
      { clock, spec: { defaultCacheDurationMs: defaultMs } },
    )
    const seen: number[] = []
    for (const at of [0, 0, 60_000, 60_001]) {
      now = 1_000_000 + at
      await p.provide('a.registry.io/foo')
      seen.push(p.execs)
    }
    t.same(seen, expected, `cacheDuration ${duration ?? '(none)'}, default ${defaultMs} ms`)
  }
})

t.test('concurrent reviews of one image share one exec; the limit bounds processes across images', async (t) => {
  const { p } = provider({ PLUGIN_AUTH: AUTH, PLUGIN_KEY_TYPE: 'Image', PLUGIN_DELAY_MS: '300' })
  const all = await Promise.all(Array.from({ length: 20 }, () => p.provide('a.registry.io/foo')))
  t.equal(p.execs, 1)
  t.ok(all.every((r) => r.kind === 'credentials'))
  const limiter = new ExecLimiter(2)
  const { p: q } = provider({ PLUGIN_AUTH: AUTH, PLUGIN_KEY_TYPE: 'Image', PLUGIN_DELAY_MS: '200' }, { limiter })
  let peak = 0
  const timer = setInterval(() => (peak = Math.max(peak, limiter.running)), 10)
  await Promise.all(['a', 'b', 'c', 'd', 'e'].map((x) => q.provide(`${x}.registry.io/app`)))
  clearInterval(timer)
  t.equal(q.execs, 5)
  t.equal(peak, 2, 'never more than 2 plugin processes')
})

t.test('a failed exec or a refused answer is never cached, and names the plugin', async (t) => {
  for (const [mode, code] of [
    ['exit1', 'PluginExited'],
    ['garbage', 'PluginBadResponse'],
    ['wrongkind', 'PluginBadResponse'],
    ['wrongversion', 'PluginBadResponse'],
    ['badkeytype', 'PluginBadResponse'],
    ['huge', 'PluginOutputTooLarge'],
  ] as const) {
    const { p } = provider({ PLUGIN_MODE: mode, PLUGIN_AUTH: AUTH })
    const first = await p.provide('a.registry.io/foo')
    t.match(
      first,
      { kind: 'failed', provider: 'test-plugin', code, problem: /credential provider plugin test-plugin/ },
      mode,
    )
    t.notMatch(JSON.stringify(first), 'plugin-password-1', `${mode}: no credential in the problem`)
    await p.provide('a.registry.io/foo')
    t.equal(p.execs, 2, `${mode}: run again next time`)
  }
})

t.test('a hanging plugin: the caller gets its answer at its deadline; the exec ends at the exec limit', async (t) => {
  const { p } = provider({ PLUGIN_MODE: 'hang' }, { timeoutMs: 1_500 })
  const started = Date.now()
  const r = await p.provide('a.registry.io/foo', AbortSignal.timeout(300))
  t.ok(Date.now() - started < 1_000, `answered in ${Date.now() - started} ms`)
  t.match(r, { kind: 'failed', code: 'PluginTimedOut', provider: 'test-plugin' })
  t.equal(registryOf('registry.io:5000/a/b'), 'registry.io:5000')
})

t.test('the provider config is reloaded when it changes; a bad change keeps the last good one', async (t) => {
  const { CredentialProviders } = await import('../../src/providers/providers.js')
  const { writeFile } = await import('node:fs/promises')
  const { Writable } = await import('node:stream')
  const { createLogger } = await import('../../src/log/logger.js')
  const lines: string[] = []
  const logger = createLogger(
    'info',
    new Writable({
      write(c: Buffer, _e, done) {
        lines.push(c.toString())
        done()
      },
    }),
  )
  const path = join(dir, 'reloaded.yaml')
  const write = (password: string, extra = ''): Promise<void> =>
    writeFile(
      path,
      `apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: test-plugin\n  matchImages: ["*.registry.io"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  env:\n  - {name: PLUGIN_AUTH, value: '${JSON.stringify({ '*.registry.io': { username: 'u', password } })}'}\n${extra}`,
    )
  await write('first-password')
  const providers = new CredentialProviders({
    configPath: path,
    binDir: dir,
    baseEnv: { PATH: process.env['PATH'] },
    logger,
  })
  t.teardown(() => providers.close())
  t.match(await providers.provide('a.registry.io/x'), {
    entries: [{ password: 'first-password' }],
    failures: [],
    matched: ['test-plugin'],
  })
  await write('second-password')
  // The config's stat is polled every 5 s.
  const deadline = Date.now() + 12_000
  let seen = ''
  while (Date.now() < deadline) {
    seen = (await providers.provide('a.registry.io/x')).entries[0]?.password ?? ''
    if (seen === 'second-password') break
    await new Promise((r) => setTimeout(r, 250))
  }
  t.equal(seen, 'second-password', 'the new config is used, its answers not mixed with the old cache')
  t.ok(lines.some((l) => l.includes('credential provider config reloaded')))
  await write('third-password', '  unknownField: 1\n')
  providers.reload()
  t.match(
    await providers.provide('a.registry.io/x'),
    { entries: [{ password: 'second-password' }] },
    'a bad config keeps the last good one',
  )
  t.ok(
    lines.some(
      (l) =>
        l.includes('credential provider config could not be reloaded; keeping the previous version') &&
        l.includes('unknown field'),
    ),
  )
})

t.test('the exec queue is bounded: past it a run is refused at once, never queued without end', async (t) => {
  const limiter = new ExecLimiter(1, 2)
  const first = await limiter.acquire()
  const waiting = [limiter.acquire(), limiter.acquire()]
  t.equal(await limiter.acquire(), undefined, 'the third waiter is refused')
  first?.()
  const second = await waiting[0]
  t.type(second, 'function', 'waiters are served in order')
  second?.()
  ;(await waiting[1])?.()
  t.equal(limiter.running, 0)
})

t.test("a shared TokenRequest is not failed by the first caller's deadline", async (t) => {
  const { ServiceAccountTokens } = await import('../../src/providers/service-account-tokens.js')
  let requests = 0
  const tokens = new ServiceAccountTokens({
    getServiceAccount: async () => ({ kind: 'missing' }),
    createServiceAccountToken: async (_ns, _name, _req, signal) => {
      requests++
      t.equal(signal, undefined, "the shared request carries no caller's signal")
      await new Promise((r) => setTimeout(r, 200))
      return { kind: 'found', object: { token: 'tok', expiresAt: Date.now() + 3_600_000 } }
    },
  })
  const account = { name: 'sa', namespace: 'ns', uid: 'u', imagePullSecrets: [], annotations: {} }
  const [hurried, patient] = await Promise.all([
    tokens.token(account, 'aud', AbortSignal.timeout(20)),
    tokens.token(account, 'aud'),
  ])
  t.match(hurried, { kind: 'error', detail: /time ran out/ })
  t.same(patient, { kind: 'found', object: 'tok' })
  t.same(await tokens.token(account, 'aud'), { kind: 'found', object: 'tok' }, 'then reused')
  t.equal(requests, 1)
})
