import t from 'tap'
import { defaultPool } from '../helpers/pools.js'
import { parseCheckConfig } from '../../src/check/config.js'
import { ConfigError } from '../../src/commands/errors.js'
import { parseDuration } from '../../src/commands/values.js'
import { parseServeConfig } from '../../src/serve/config.js'
import { parseDiagnoseConfig } from '../../src/diagnose/config.js'
import { createTestCA } from '../helpers/pki.js'

t.test('defaults match the documented table', async (t) => {
  t.same(parseServeConfig([], {}), {
    port: 8443,
    host: '0.0.0.0',
    tls: undefined,
    mode: 'enforce',
    onRegistryError: 'allow',
    timeoutMs: 8000,
    registryCaPem: undefined,
    insecureRegistries: [],
    nodeExtraCaCertsPath: undefined,
    exemptNamespaces: ['pullguard'],
    exemptImages: [],
    nodeDockerConfigPath: undefined,
    platforms: [],
    logLevel: 'info',
    registryConcurrency: 8,
    nodePools: [defaultPool()],
    pinDigests: false,
  })
  t.equal(parseServeConfig(['--pin-digests'], {}).pinDigests, true)
  t.equal(parseServeConfig([], { PULLGUARD_PIN_DIGESTS: 'true' }).pinDigests, true)
})

t.test('pullguard exempts its own namespace by default, from POD_NAMESPACE when set', async (t) => {
  t.same(parseServeConfig([], { POD_NAMESPACE: 'platform-tools' }).exemptNamespaces, ['platform-tools'])
  t.same(
    parseServeConfig(['--exempt-namespace', 'kube-system', '--exempt-namespace', 'pullguard'], { POD_NAMESPACE: 'x' })
      .exemptNamespaces,
    ['kube-system', 'pullguard'],
  )
  t.same(parseServeConfig([], { PULLGUARD_EXEMPT_NAMESPACES: 'a,b' }).exemptNamespaces, ['a', 'b'])
  t.throws(() => parseServeConfig(['--exempt-namespace', 'Bad_NS'], {}), {
    message: /^--exempt-namespace: "Bad_NS" is not a namespace name$/,
  })
})

t.test('exempt images, node docker config and platforms', async (t) => {
  const c = parseServeConfig(
    [
      '--exempt-image',
      'registry.internal/*',
      '--platform',
      'linux/arm64',
      '--platform',
      'linux/amd64',
      '--node-docker-config',
      '/etc/node/config.json',
    ],
    {},
  )
  t.same(c.exemptImages, ['registry.internal/*'])
  t.same(c.platforms, [
    { os: 'linux', architecture: 'arm64' },
    { os: 'linux', architecture: 'amd64' },
  ])
  t.equal(c.nodeDockerConfigPath, '/etc/node/config.json')
  t.match(parseServeConfig([], { PULLGUARD_EXEMPT_IMAGES: '*/debug:*,x/*', PULLGUARD_PLATFORMS: 'linux/arm/v7' }), {
    exemptImages: ['*/debug:*', 'x/*'],
    platforms: [{ os: 'linux', architecture: 'arm', variant: 'v7' }],
  })
  t.throws(() => parseServeConfig(['--platform', 'linux/amd65'], {}), {
    message: /^--platform: invalid platform "linux\/amd65"/,
  })
})

t.test('every setting has its environment variable, and flags win', async (t) => {
  const env = {
    PULLGUARD_PORT: '9443',
    PULLGUARD_HOST: '127.0.0.1',
    PULLGUARD_MODE: 'warn',
    PULLGUARD_ON_REGISTRY_ERROR: 'deny',
    PULLGUARD_TIMEOUT: '2s',
    PULLGUARD_INSECURE_REGISTRIES: 'reg.local:5000, [::1]:5000 ,',
    PULLGUARD_LOG_LEVEL: 'debug',
    NODE_EXTRA_CA_CERTS: '/etc/extra.pem',
  }
  t.match(parseServeConfig([], env), {
    port: 9443,
    host: '127.0.0.1',
    mode: 'warn',
    onRegistryError: 'deny',
    timeoutMs: 2000,
    insecureRegistries: ['reg.local:5000', '[::1]:5000'],
    logLevel: 'debug',
    nodeExtraCaCertsPath: '/etc/extra.pem',
  })
  t.match(
    parseServeConfig(
      ['--mode', 'enforce', '--insecure-registry', 'a:1', '--insecure-registry', 'b', '--timeout', '500ms'],
      env,
    ),
    { mode: 'enforce', insecureRegistries: ['a:1', 'b'], timeoutMs: 500 },
  )
})

const durations: Array<[string, number | RegExp]> = [
  ['500ms', 500],
  ['8s', 8000],
  ['1m', 60000],
  ['1m30s', 90000],
  ['1.5s', 1500],
  ['8', /not a duration/],
  ['', /not a duration/],
  ['-1s', /not a duration/],
  ['1h', 3_600_000],
  ['1d', /not a duration/],
]
for (const [input, expected] of durations) {
  t.test(`duration ${JSON.stringify(input)}`, async (t) => {
    if (typeof expected === 'number') t.equal(parseDuration(input, '--timeout'), expected)
    else t.throws(() => parseDuration(input, '--timeout'), { name: 'ConfigError', message: expected })
  })
}

t.test('config errors name the flag or variable', async (t) => {
  t.throws(
    () => parseServeConfig(['--timeout', '50ms'], {}),
    new ConfigError('--timeout', '50ms is outside 100ms..29s (the API server waits at most 30s for a webhook)'),
  )
  t.throws(() => parseServeConfig([], { PULLGUARD_LOG_LEVEL: 'loud' }), {
    message: /^PULLGUARD_LOG_LEVEL: "loud" is not one of/,
  })
})

t.test('check and diagnose read the variables they share with serve; their flags still win', async (t) => {
  const ca = await createTestCA()
  t.teardown(() => ca.close())
  const env = {
    PULLGUARD_REGISTRY_CA: ca.caPath,
    PULLGUARD_INSECURE_REGISTRIES: 'reg.local:5000,b:1',
    PULLGUARD_TIMEOUT: '3s',
    PULLGUARD_PLATFORMS: 'linux/arm64',
    PULLGUARD_EXEMPT_IMAGES: 'docker.io/*',
    PULLGUARD_ON_REGISTRY_ERROR: 'deny',
    PULLGUARD_NODE_DOCKER_CONFIG: '/etc/node/config.json',
  }
  const shared = { registryCaPem: ca.caPem, insecureRegistries: ['reg.local:5000', 'b:1'], timeoutMs: 3000 }
  t.match(
    parseServeConfig([], env),
    {
      ...shared,
      platforms: [{ os: 'linux', architecture: 'arm64' }],
      exemptImages: ['docker.io/*'],
      onRegistryError: 'deny',
      nodeDockerConfigPath: '/etc/node/config.json',
    },
    'serve',
  )
  t.match(
    parseCheckConfig(['-f', 'x.yaml'], env, false),
    {
      ...shared,
      platforms: [{ os: 'linux', architecture: 'arm64' }],
      exemptImages: ['docker.io/*'],
      onRegistryError: 'deny',
    },
    'check',
  )
  t.match(
    parseDiagnoseConfig(['pod', 'web-1'], env),
    { ...shared, nodeDockerConfigPath: '/etc/node/config.json' },
    'diagnose',
  )
  t.match(
    parseCheckConfig(['-f', 'x.yaml', '--timeout', '20s', '--insecure-registry', 'c:2'], env, false),
    { timeoutMs: 20_000, insecureRegistries: ['c:2'] },
    'check: flags win',
  )
  t.match(
    parseDiagnoseConfig(['pod', 'web-1', '--timeout', '45s'], env),
    { timeoutMs: 45_000 },
    'diagnose: flags win, per-image limit',
  )
  for (const parse of [
    (e: Record<string, string>) => parseCheckConfig(['-f', 'x.yaml'], e, false),
    (e: Record<string, string>) => parseDiagnoseConfig(['pod', 'web-1'], e),
  ]) {
    t.throws(() => parse({ PULLGUARD_REGISTRY_CA: '/nonexistent/ca.pem' }), {
      name: 'ConfigError',
      message: /^PULLGUARD_REGISTRY_CA: cannot read \/nonexistent\/ca.pem/,
    })
    t.throws(() => parse({ PULLGUARD_TIMEOUT: '2m' }), {
      name: 'ConfigError',
      message: 'PULLGUARD_TIMEOUT: 2m is outside 100ms..60s (per image)',
    })
    t.throws(() => parse({ PULLGUARD_INSECURE_REGISTRIES: 'https://x' }), {
      name: 'ConfigError',
      message: /^PULLGUARD_INSECURE_REGISTRIES: "https:\/\/x" is not a registry host/,
    })
  }
})

t.test(
  'the credential provider flags: both or neither, validated at start, the same variables for every command',
  async (t) => {
    const { mkdtemp, writeFile, chmod, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-cp-config-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, 'ecr-credential-provider'), '#!/bin/sh\n')
    await chmod(join(dir, 'ecr-credential-provider'), 0o755)
    const config = join(dir, 'config.json')
    await writeFile(
      config,
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1',
        kind: 'CredentialProviderConfig',
        providers: [
          {
            name: 'ecr-credential-provider',
            matchImages: ['*.dkr.ecr.*.amazonaws.com'],
            defaultCacheDuration: '12h0m0s',
            apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
          },
        ],
      }),
    )
    const env = { PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_CONFIG: config, PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR: dir }
    const expected = { configPath: config, binDir: dir, env }
    t.same(parseServeConfig([], env).credentialProviders, expected, 'serve')
    t.same(parseCheckConfig(['-f', 'x.yaml'], env, false).credentialProviders, expected, 'check')
    t.same(parseDiagnoseConfig(['pod', 'p'], env).credentialProviders, expected, 'diagnose')
    t.equal(parseServeConfig([], {}).credentialProviders, undefined)
    t.throws(() => parseServeConfig(['--image-credential-provider-config', config], {}), {
      message: '--image-credential-provider-bin-dir: is required when --image-credential-provider-config is set',
    })
    t.throws(() => parseDiagnoseConfig(['pod', 'p'], { PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR: dir }), {
      message:
        '--image-credential-provider-config: is required when PULLGUARD_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR is set',
    })
    t.throws(
      () =>
        parseCheckConfig(
          [
            '-f',
            'x',
            '--image-credential-provider-config',
            config,
            '--image-credential-provider-bin-dir',
            join(dir, 'none'),
          ],
          {},
          false,
        ),
      { message: `--image-credential-provider-config: plugin binary directory ${join(dir, 'none')} did not exist` },
    )
  },
)

t.test(
  "mirrors: one runtime's file, read at start; --registry-concurrency bounded; the same variables for every command",
  async (t) => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = await mkdtemp(join(tmpdir(), 'pullguard-mirrors-config-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const conf = join(dir, 'registries.conf')
    await writeFile(conf, '[[registry]]\nprefix = "docker.io"\nlocation = "mirror.internal/hub"\n')
    t.same(parseServeConfig(['--containerd-hosts-dir', dir], {}).mirrors, { kind: 'containerd', dir })
    t.same(parseCheckConfig(['-f', 'x.yaml'], { PULLGUARD_REGISTRIES_CONF: conf }, false).mirrors, {
      kind: 'registries-conf',
      file: conf,
    })
    t.same(parseDiagnoseConfig(['pod', 'p'], { PULLGUARD_CONTAINERD_HOSTS_DIR: dir }).mirrors, {
      kind: 'containerd',
      dir,
    })
    t.equal(parseServeConfig([], {}).mirrors, undefined)
    t.throws(() => parseServeConfig(['--containerd-hosts-dir', dir, '--registries-conf', conf], {}), {
      message: /^--containerd-hosts-dir: cannot be combined with --registries-conf/,
    })
    t.throws(() => parseServeConfig(['--containerd-hosts-dir', join(dir, 'missing')], {}), {
      name: 'ConfigError',
      message: /^--containerd-hosts-dir: .*cannot read the directory: ENOENT/,
    })
    await writeFile(join(dir, 'broken.conf'), '[[registry]\n')
    t.throws(() => parseServeConfig([], { PULLGUARD_REGISTRIES_CONF: join(dir, 'broken.conf') }), {
      name: 'ConfigError',
      message: /^PULLGUARD_REGISTRIES_CONF: .*broken\.conf/,
    })
    t.equal(parseServeConfig([], {}).registryConcurrency, 8)
    t.equal(parseServeConfig(['--registry-concurrency', '2'], {}).registryConcurrency, 2)
    for (const bad of ['0', '1.5', '257', 'many'])
      t.throws(
        () => parseServeConfig(['--registry-concurrency', bad], {}),
        { name: 'ConfigError', message: /^--registry-concurrency: .* between 1 and 256/ },
        bad,
      )
  },
)
