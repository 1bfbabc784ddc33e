// Providers in service-account mode (tokenAttributes) whose pod the kubelet would not run them for
// (plugin.go pluginProvider.provide): a required annotation missing from the account, or no account
// with requireServiceAccount. No exec and no token, as on the node, and the provider says why.
// Real plugin processes (test-plugin.ts); the API is an in-test ServiceAccountAccess.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { ServiceAccountObject } from '../../src/kube/sources.js'
import { createLogger } from '../../src/log/logger.js'
import { ExecLimiter } from '../../src/providers/limiter.js'
import { CredentialProvider, type Provided } from '../../src/providers/provider.js'
import { CredentialProviders } from '../../src/providers/providers.js'
import { ServiceAccountTokens, type ServiceAccountAccess } from '../../src/providers/service-account-tokens.js'
import type { TokenAttributes } from '../../src/providers/spec.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'

const V1 = 'credentialprovider.kubelet.k8s.io/v1'
const AUDIENCE = 'registry.cloud.example'
const ROLE = 'cloud.example.com/role'
const REGION = 'cloud.example.com/region'
const TIER = 'cloud.example.com/tier'
const dir = await mkdtemp(join(tmpdir(), 'pullguard-sa-skips-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const binary = await writeTestPlugin(dir, 'cloud-plugin')
const AUTH = JSON.stringify({ 'a.registry.io': { username: 'u', password: 'plugin-password' } })

/** A JWT-shaped token the test plugin can read the audience and subject of (it checks no signature). */
function jwt(namespace: string, name: string): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'none' })}.${part({ aud: [AUDIENCE], sub: `system:serviceaccount:${namespace}:${name}` })}.sig`
}

/** Service accounts by `namespace/name`, and every TokenRequest made. */
function api(accounts: Record<string, Record<string, string>>): ServiceAccountAccess & { tokenRequests: string[] } {
  const tokenRequests: string[] = []
  return {
    tokenRequests,
    getServiceAccount: async (namespace, name) => {
      const annotations = accounts[`${namespace}/${name}`]
      if (annotations === undefined) return { kind: 'missing' }
      const object: ServiceAccountObject = { namespace, name, uid: `uid-${name}`, imagePullSecrets: [], annotations }
      return { kind: 'found', object }
    },
    createServiceAccountToken: async (namespace, name) => {
      tokenRequests.push(`${namespace}/${name}`)
      return { kind: 'found', object: { token: jwt(namespace, name), expiresAt: Date.now() + 3_600_000 } }
    },
  }
}

let logs = 0
function provider(
  tokenAttributes: Partial<TokenAttributes>,
  access: ServiceAccountAccess,
): { p: CredentialProvider; requests: () => Array<{ serviceAccountAnnotations?: unknown }> } {
  const log = join(dir, `requests-${++logs}.log`)
  const p = new CredentialProvider(
    {
      name: 'cloud-plugin',
      binary,
      matchImages: ['a.registry.io'],
      defaultCacheDurationMs: 0,
      apiVersion: V1,
      args: [],
      env: Object.entries({ PLUGIN_LOG: log, PLUGIN_AUTH: AUTH }).map(([name, value]) => ({ name, value })),
      tokenAttributes: {
        serviceAccountTokenAudience: AUDIENCE,
        cacheType: 'ServiceAccount',
        requireServiceAccount: true,
        requiredServiceAccountAnnotationKeys: [],
        optionalServiceAccountAnnotationKeys: [],
        ...tokenAttributes,
      },
    },
    {
      baseEnv: { PATH: process.env['PATH'] },
      execTimeoutMs: 10_000,
      limiter: new ExecLimiter(4),
      tokens: new ServiceAccountTokens(access),
    },
  )
  const requests = (): Array<{ serviceAccountAnnotations?: unknown }> =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { serviceAccountAnnotations?: unknown })
      : []
  return { p, requests }
}

const credentials = { kind: 'credentials', entries: [{ key: 'a.registry.io', password: 'plugin-password' }] }
const cases: Array<{
  name: string
  tokenAttributes: Partial<TokenAttributes>
  accounts: Record<string, Record<string, string>>
  image?: string
  serviceAccountName?: string
  expected: Partial<Provided> | Record<string, unknown>
  /** The annotations the plugin received, when it ran. */
  sent?: Record<string, string>
}> = [
  {
    name: 'the required annotation present: run, with it and the optional one present',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [ROLE], optionalServiceAccountAnnotationKeys: [REGION] },
    accounts: { 'shop/builder': { [ROLE]: 'puller', [REGION]: 'eu', other: 'x' } },
    expected: credentials,
    sent: { [REGION]: 'eu', [ROLE]: 'puller' },
  },
  {
    name: 'the required annotation missing: skipped, naming the account and the key',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [ROLE] },
    accounts: { 'shop/builder': { other: 'x' } },
    expected: {
      kind: 'skipped',
      skip: {
        provider: 'cloud-plugin',
        reason: 'RequiredAnnotationMissing',
        namespace: 'shop',
        serviceAccount: 'builder',
        missing: [ROLE],
      },
    },
  },
  {
    name: 'several missing: every one, in config order (the kubelet names the first)',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [TIER, ROLE, REGION] },
    accounts: { 'shop/builder': { [ROLE]: 'puller' } },
    expected: {
      kind: 'skipped',
      skip: {
        provider: 'cloud-plugin',
        reason: 'RequiredAnnotationMissing',
        namespace: 'shop',
        serviceAccount: 'builder',
        missing: [TIER, REGION],
      },
    },
  },
  {
    name: 'a required annotation with an empty value is present (the kubelet checks the key only)',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [ROLE] },
    accounts: { 'shop/builder': { [ROLE]: '' } },
    expected: credentials,
    sent: { [ROLE]: '' },
  },
  {
    name: 'an optional annotation missing changes nothing',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [ROLE], optionalServiceAccountAnnotationKeys: [REGION] },
    accounts: { 'shop/builder': { [ROLE]: 'puller' } },
    expected: credentials,
    sent: { [ROLE]: 'puller' },
  },
  {
    name: 'an image outside matchImages: nothing, whatever the account lacks',
    tokenAttributes: { requiredServiceAccountAnnotationKeys: [ROLE] },
    accounts: { 'shop/builder': {} },
    image: 'b.registry.io/app',
    expected: { kind: 'none' },
  },
  {
    name: 'no service account with requireServiceAccount: skipped (static pods on the node)',
    tokenAttributes: { requireServiceAccount: true },
    accounts: {},
    serviceAccountName: '',
    expected: { kind: 'skipped', skip: { provider: 'cloud-plugin', reason: 'NoServiceAccount' } },
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const access = api(c.accounts)
    const { p, requests } = provider(c.tokenAttributes, access)
    const got = await p.provide(c.image ?? 'a.registry.io/app', undefined, {
      namespace: 'shop',
      serviceAccountName: c.serviceAccountName ?? 'builder',
    })
    if (c.expected.kind === 'credentials') t.match(got, c.expected)
    else t.same(got, c.expected)
    if (c.sent === undefined) {
      t.equal(p.execs, 0, 'no exec')
      t.same(access.tokenRequests, [], 'no token requested')
    } else {
      t.equal(p.execs, 1)
      t.same(requests()[0]?.serviceAccountAnnotations, c.sent, 'the annotations the provider names')
    }
  })
}

t.test('no service account without requireServiceAccount: run without a token', async (t) => {
  const access = api({})
  const { p, requests } = provider({ requireServiceAccount: false }, access)
  t.match(await p.provide('a.registry.io/app', undefined, { namespace: 'shop', serviceAccountName: '' }), credentials)
  t.same(access.tokenRequests, [])
  t.equal(requests().length, 1)
})

t.test('the skip reaches ProvidedCredentials; annotating the account lets the plugin run', async (t) => {
  const config = join(dir, 'providers.yaml')
  await writeFile(
    config,
    JSON.stringify({
      apiVersion: 'kubelet.config.k8s.io/v1',
      kind: 'CredentialProviderConfig',
      providers: [
        {
          name: 'cloud-plugin',
          matchImages: ['a.registry.io'],
          defaultCacheDuration: '0s',
          apiVersion: V1,
          tokenAttributes: {
            serviceAccountTokenAudience: AUDIENCE,
            cacheType: 'ServiceAccount',
            requireServiceAccount: true,
            requiredServiceAccountAnnotationKeys: [ROLE],
          },
          env: [
            { name: 'PLUGIN_AUTH', value: AUTH },
            { name: 'PLUGIN_EXPECT_AUDIENCE', value: AUDIENCE },
            { name: 'PLUGIN_EXPECT_SUBJECT', value: 'system:serviceaccount:shop:builder' },
          ],
        },
      ],
    }),
  )
  const accounts: Record<string, Record<string, string>> = { 'shop/builder': {} }
  const providers = new CredentialProviders({
    configPath: config,
    binDir: dir,
    baseEnv: { PATH: process.env['PATH'] },
    logger: createLogger('silent'),
    watch: false,
    serviceAccounts: api(accounts),
  })
  t.teardown(() => providers.close())
  const pod = { namespace: 'shop', serviceAccountName: 'builder' }
  t.same(await providers.provide('a.registry.io/app', undefined, pod), {
    entries: [],
    failures: [],
    skipped: [
      {
        provider: 'cloud-plugin',
        reason: 'RequiredAnnotationMissing',
        namespace: 'shop',
        serviceAccount: 'builder',
        missing: [ROLE],
      },
    ],
    matched: ['cloud-plugin'],
    reusableUntil: Number.POSITIVE_INFINITY,
  })
  accounts['shop/builder'] = { [ROLE]: 'puller' }
  t.match(await providers.provide('a.registry.io/app', undefined, pod), {
    entries: [{ password: 'plugin-password' }],
    failures: [],
    skipped: [],
  })
})
