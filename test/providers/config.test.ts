// The credential provider config as the kubelet reads and validates it (vectors from the kubelet's
// config_test.go and from running its v1.37 code), and matchImages as it matches them (keyring_test.go).
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { decodeProviderConfig, loadProviderConfig } from '../../src/providers/config.js'
import type { ProviderSpec } from '../../src/providers/spec.js'
import { formatGoDuration, parseGoDuration } from '../../src/go/duration.js'
import { imageAllowed } from '../../src/providers/spec.js'
import { qualifiedNameErrors, validateProviders } from '../../src/providers/validate.js'

const V1 = 'credentialprovider.kubelet.k8s.io/v1'
const base: ProviderSpec = {
  name: 'foobar',
  matchImages: ['a.io'],
  defaultCacheDurationMs: 60_000,
  apiVersion: V1,
  args: [],
  env: [],
  tokenAttributes: undefined,
}
const ta = {
  serviceAccountTokenAudience: 'aud',
  cacheType: 'ServiceAccount',
  requireServiceAccount: true as boolean | undefined,
  requiredServiceAccountAnnotationKeys: [] as string[],
  optionalServiceAccountAnnotationKeys: [] as string[],
}

const validation: Array<[string, ProviderSpec[], string[]]> = [
  ['valid', [base], []],
  ['no providers', [], ['providers: Required value: at least 1 item in plugins is required']],
  [
    'empty matchImages',
    [{ ...base, matchImages: [] }],
    ['providers.matchImages: Required value: at least 1 item in matchImages is required'],
  ],
  [
    'no defaultCacheDuration',
    [{ ...base, defaultCacheDurationMs: undefined }],
    ['providers.defaultCacheDuration: Required value'],
  ],
  [
    'name with /',
    [{ ...base, name: 'foo/../bar' }],
    [`providers.name: Invalid value: "foo/../bar": provider name cannot contain '/'`],
  ],
  ['name .', [{ ...base, name: '.' }], [`providers.name: Invalid value: ".": provider name cannot be '.'`]],
  ['name ..', [{ ...base, name: '..' }], [`providers.name: Invalid value: "..": provider name cannot be '..'`]],
  [
    'name with space',
    [{ ...base, name: 'foo bar' }],
    ['providers.name: Invalid value: "foo bar": provider name cannot contain spaces'],
  ],
  ['duplicate name', [base, base], ['providers.name: Duplicate value: "foobar"']],
  ['no apiVersion', [{ ...base, apiVersion: '' }], ['providers.apiVersion: Required value']],
  [
    'unknown apiVersion',
    [{ ...base, apiVersion: 'credentialprovider.kubelet.k8s.io/v1alpha0' }],
    [
      'providers.apiVersion: Unsupported value: "credentialprovider.kubelet.k8s.io/v1alpha0": supported values: "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1"',
    ],
  ],
  [
    'negative duration',
    [{ ...base, defaultCacheDurationMs: -60_000 }],
    ['providers.defaultCacheDuration: Invalid value: "-1m0s": must be greater than or equal to 0'],
  ],
  [
    'bad match image',
    [{ ...base, matchImages: ['%invalid%'] }],
    [
      `providers.matchImages: Invalid value: "%invalid%": match image is invalid: parse "https://%invalid%": not a URL Go's url.Parse accepts`,
    ],
  ],
  [
    'token: no audience',
    [{ ...base, tokenAttributes: { ...ta, serviceAccountTokenAudience: '' } }],
    ['providers.tokenAttributes.serviceAccountTokenAudience: Required value'],
  ],
  [
    'token: no cacheType',
    [{ ...base, tokenAttributes: { ...ta, cacheType: '' } }],
    [
      'providers.tokenAttributes.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token',
    ],
  ],
  [
    'token: bad cacheType',
    [{ ...base, tokenAttributes: { ...ta, cacheType: 'invalid-cache-type' } }],
    [
      'providers.tokenAttributes.cacheType: Unsupported value: "invalid-cache-type": supported values: "ServiceAccount", "Token"',
    ],
  ],
  [
    'token: no requireServiceAccount',
    [{ ...base, tokenAttributes: { ...ta, requireServiceAccount: undefined } }],
    ['providers.tokenAttributes.requireServiceAccount: Required value'],
  ],
  [
    'token: bad required key',
    [{ ...base, tokenAttributes: { ...ta, requiredServiceAccountAnnotationKeys: ['cantendwithadash-'] } }],
    [
      `providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Invalid value: "cantendwithadash-": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    ],
  ],
  [
    'token: duplicate required key',
    [
      {
        ...base,
        tokenAttributes: {
          ...ta,
          requiredServiceAccountAnnotationKeys: ['now-with-dashes/simple', 'now-with-dashes/simple'],
        },
      },
    ],
    ['providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Duplicate value: "now-with-dashes/simple"'],
  ],
  [
    'token: key both required and optional',
    [
      {
        ...base,
        tokenAttributes: {
          ...ta,
          requiredServiceAccountAnnotationKeys: ['now-with-dashes/simple-2'],
          optionalServiceAccountAnnotationKeys: ['now-with-dashes/simple-2'],
        },
      },
    ],
    [
      'providers.tokenAttributes: Invalid value: ["now-with-dashes/simple-2"]: annotation keys cannot be both required and optional',
    ],
  ],
  [
    'token: required keys without requireServiceAccount',
    [
      {
        ...base,
        tokenAttributes: { ...ta, requireServiceAccount: false, requiredServiceAccountAnnotationKeys: ['a.io/x'] },
      },
    ],
    [
      'providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set',
    ],
  ],
  [
    'token: not the v1 exec API',
    [{ ...base, apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1', tokenAttributes: ta }],
    [
      'providers.tokenAttributes: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version',
    ],
  ],
]
for (const [name, providers, errors] of validation) {
  t.test(`validate: ${name}`, async (t) => t.same(validateProviders(providers), errors))
}

t.test('annotation keys: IsQualifiedName on the lower-cased key', async (t) => {
  t.same(qualifiedNameErrors('foo.io/bar'), [])
  t.same(qualifiedNameErrors('eks.amazonaws.com/ecr-role-arn'), [])
  t.same(qualifiedNameErrors('/x'), ['prefix part must be non-empty'])
  t.equal(qualifiedNameErrors('a.io/').length, 2)
  t.same(qualifiedNameErrors('a'.repeat(64)), ['name part must be no more than 63 bytes'])
  t.match(qualifiedNameErrors('a/b/c')[0], /^a valid label key must consist of/)
  t.match(qualifiedNameErrors('-bad.io/x')[0], /^prefix part a lowercase RFC 1123 subdomain/)
})

const durations: Array<[string, number | string]> = [
  ['10m', 600_000],
  ['12h0m0s', 43_200_000],
  ['0s', 0],
  ['0', 0],
  ['1.5s', 1500],
  ['-1m', -60_000],
  ['100ms', 100],
  ['1h30m', 5_400_000],
  ['10 minutes', 'time: unknown unit " minutes" in duration "10 minutes"'],
  ['10', 'time: missing unit in duration "10"'],
  ['', 'time: invalid duration ""'],
  ['.s', 'time: invalid duration ".s"'],
]
for (const [text, expected] of durations) {
  t.test(`Go duration ${JSON.stringify(text)}`, async (t) =>
    t.same(
      parseGoDuration(text),
      typeof expected === 'number' ? { ok: true, ms: expected } : { ok: false, error: expected },
    ),
  )
}
t.test('Go duration strings in messages', async (t) => {
  t.same([-60_000, 43_200_000, 1500, 0, -1000].map(formatGoDuration), ['-1m0s', '12h0m0s', '1.5s', '0s', '-1s'])
})

// keyring_test.go TestURLsMatch, then vectors from running URLsMatchStr.
const matching: Array<[string, string, boolean]> = [
  ['*.kubernetes.io', 'prefix.kubernetes.io', true],
  ['prefix.*.io', 'prefix.kubernetes.io', true],
  ['prefix.kubernetes.*', 'prefix.kubernetes.io', true],
  ['*-good.kubernetes.io', 'prefix-good.kubernetes.io', true],
  ['*.kubernetes.io/blah', 'prefix.kubernetes.io/blah', true],
  ['prefix.*.io/foo', 'prefix.kubernetes.io/foo/bar', true],
  ['*.kubernetes.io:1111/blah', 'prefix.kubernetes.io:1111/blah', true],
  ['prefix.*.io:1111/foo', 'prefix.kubernetes.io:1111/foo/bar', true],
  ['*.kubernetes.io', 'kubernetes.io', false],
  ['*.*.kubernetes.io', 'prefix.kubernetes.io', false],
  ['*.*.kubernetes.io', 'kubernetes.io', false],
  ['*kubernetes.io', 'a.kubernetes.io', false],
  ['*kubernetes.io', 'kubernetes.io', true],
  ['*.*.*.kubernetes.io', 'a.b.c.kubernetes.io', true],
  ['kubernetes.io', 'kubernetes.com', false],
  ['k*.io', 'quay.io', false],
  ['*.kubernetes.io:1234/blah', 'prefix.kubernetes.io:1111/blah', false],
  ['prefix.*.io/foo', 'prefix.kubernetes.io:1111/foo/bar', false],
  ['registry.io', 'registry.io/foo/bar', true],
  ['registry.io', 'registry.io:5000/foo', false],
  ['registry.io:5000', 'registry.io/foo', false],
  ['registry.io:5000', 'registry.io:5000/foo', true],
  ['registry.io:*', 'registry.io:5000/foo', false],
  ['registry.io/foo', 'registry.io/foobar', true],
  ['registry.io/foo/', 'registry.io/foo', false],
  ['registry.io/*', 'registry.io/foo', false],
  ['Registry.IO', 'registry.io/foo', false],
  ['*', 'registry.io', false],
  ['*', 'localhost/foo', true],
  ['*.*', 'registry.io/foo', true],
  ['*.io', 'registry.k8s.io/foo', false],
  ['https://registry.io', 'registry.io/foo', false],
  ['http://registry.io', 'registry.io/foo', false],
  ['registry.io.', 'registry.io/foo', false],
  ['[::1]:5000', '[::1]:5000/foo', true],
  ['*.dkr.ecr.*.amazonaws.com', '123456789012.dkr.ecr.us-east-1.amazonaws.com/repo', true],
  ['*.dkr.ecr.*.amazonaws.com', '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/repo', false],
  ['*.azurecr.io', 'myreg.azurecr.io/app', true],
  ['*.gcr.io', 'gcr.io/proj/app', false],
  ['gcr.io', 'gcr.io/proj/app', true],
  ['*-docker.pkg.dev', 'us-central1-docker.pkg.dev/p/r/i', true],
  ['docker.io', 'docker.io/library/nginx', true],
  ['index.docker.io', 'docker.io/library/nginx', false],
  ['user@registry.io', 'registry.io/foo', true],
  ['%invalid%', 'registry.io', false],
]
for (const [glob, image, expected] of matching) {
  t.test(`matchImages ${JSON.stringify(glob)} ~ ${JSON.stringify(image)}`, async (t) =>
    t.equal(imageAllowed([glob], image), expected),
  )
}

t.test('decode: strict, as the kubelet decodes', async (t) => {
  const doc = (providers: string, version = 'v1'): string =>
    `apiVersion: kubelet.config.k8s.io/${version}\nkind: CredentialProviderConfig\nproviders:\n${providers}`
  const p =
    '- name: test\n  matchImages: ["a.io"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n'
  t.match(decodeProviderConfig(doc(p), 'c.yaml'), [
    { name: 'test', matchImages: ['a.io'], defaultCacheDurationMs: 600_000, apiVersion: V1, args: [], env: [] },
  ])
  const json = JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'CredentialProviderConfig',
    providers: [
      {
        name: 'x',
        matchImages: ['b.io'],
        defaultCacheDuration: '1m',
        apiVersion: V1,
        args: ['get'],
        env: [{ name: 'A', value: 'b' }],
      },
    ],
  })
  t.match(
    decodeProviderConfig(json, 'c.json'),
    [{ name: 'x', args: ['get'], env: [{ name: 'A', value: 'b' }] }],
    'JSON, v1beta1',
  )
  t.match(decodeProviderConfig(`${doc(p)}---\nnot: read\n`, 'c.yaml'), [{ name: 'test' }], 'only the first document')
  const bad: Array<[string, RegExp]> = [
    [doc(`${p}  unknownField: 1\n`), /strict decoding error: unknown field "providers\[0\]\.unknownField"/],
    [doc(p.replace('matchImages', 'matchimages')), /unknown field "providers\[0\]\.matchimages"/],
    [doc(`${p}  tokenAttributes: {}\n`, 'v1beta1'), /unknown field "providers\[0\]\.tokenAttributes"/],
    [
      doc(p.replace('defaultCacheDuration: 10m', 'defaultCacheDuration: 0')),
      /cannot unmarshal number into Go struct field CredentialProvider\.providers\.defaultCacheDuration of type string/,
    ],
    [doc(p.replace('10m', '"10 minutes"')), /time: unknown unit " minutes" in duration "10 minutes"/],
    [doc(p.replace('["a.io"]', '"a.io"')), /cannot unmarshal string/],
    [doc(`${p}  name: again\n`), /strict decoding error: .*duplicated mapping key/],
    ['kind: CredentialProviderConfig\nproviders: []\n', /Object 'apiVersion' is missing/],
    ['apiVersion: kubelet.config.k8s.io/v1\nproviders: []\n', /Object 'Kind' is missing/],
    ['', /Object 'Kind' is missing/],
    [
      doc(p).replace('kind: CredentialProviderConfig', 'kind: WrongKind'),
      /no kind "WrongKind" is registered for version "kubelet.config.k8s.io\/v1"/,
    ],
    [
      doc(p).replace('kubelet.config.k8s.io', 'foobar'),
      /no kind "CredentialProviderConfig" is registered for version "foobar\/v1"/,
    ],
    [`${doc(p)}foo: bar\n`, /unknown field "foo"/],
  ]
  for (const [text, message] of bad)
    t.throws(() => decodeProviderConfig(text, 'c.yaml'), { name: 'ProviderConfigError', message }, String(message))
  t.same(
    decodeProviderConfig(doc('').replace('providers:\n', 'providers:\n'), 'c.yaml'),
    [],
    'null providers decode to none (validation then says so)',
  )
})

t.test('load: a file or a directory of files, then validation and the binaries', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-providers-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const bin = join(dir, 'bin')
  await mkdir(bin)
  for (const name of ['one', 'two']) {
    await writeFile(join(bin, name), '#!/bin/sh\n')
    await chmod(join(bin, name), 0o755)
  }
  await writeFile(join(bin, 'noexec'), '#!/bin/sh\n')
  const provider = (name: string): string =>
    `apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: ${name}\n  matchImages: ["${name}.io"]\n  defaultCacheDuration: 1m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n`
  const confDir = join(dir, 'conf.d')
  await mkdir(confDir)
  await writeFile(join(confDir, '20-two.yml'), provider('two'))
  await writeFile(
    join(confDir, '10-one.json'),
    JSON.stringify({
      apiVersion: 'kubelet.config.k8s.io/v1',
      kind: 'CredentialProviderConfig',
      providers: [{ name: 'one', matchImages: ['one.io'], defaultCacheDuration: '1m', apiVersion: V1 }],
    }),
  )
  await writeFile(join(confDir, 'README.txt'), 'not read')
  const loaded = loadProviderConfig(confDir, bin)
  t.same(
    loaded.providers.map((p) => [p.name, p.binary]),
    [
      ['one', join(bin, 'one')],
      ['two', join(bin, 'two')],
    ],
    'files merged in byte order',
  )
  t.same(loaded.files, [join(confDir, '10-one.json'), join(confDir, '20-two.yml')])
  await writeFile(join(dir, 'dup.yaml'), provider('one'))
  await writeFile(join(confDir, '30-dup.yaml'), provider('one'))
  t.throws(() => loadProviderConfig(confDir, bin), {
    message: 'duplicate provider name "one" found in configuration file(s)',
  })
  await writeFile(join(dir, 'missing.yaml'), provider('three'))
  t.throws(() => loadProviderConfig(join(dir, 'missing.yaml'), bin), {
    message: `plugin binary executable ${join(bin, 'three')} did not exist or is not executable (provider "three")`,
  })
  await writeFile(join(dir, 'noexec.yaml'), provider('noexec'))
  t.throws(() => loadProviderConfig(join(dir, 'noexec.yaml'), bin), {
    message: /noexec did not exist or is not executable/,
  })
  t.throws(() => loadProviderConfig(join(dir, 'dup.yaml'), join(dir, 'nope')), {
    message: `plugin binary directory ${join(dir, 'nope')} did not exist`,
  })
  t.throws(() => loadProviderConfig(join(dir, 'absent.yaml'), bin), {
    message: /^unable to access path ".*absent.yaml": ENOENT$/,
  })
  const empty = join(dir, 'empty.d')
  await mkdir(empty)
  t.throws(() => loadProviderConfig(empty, bin), {
    message: `no configuration files found in directory ${JSON.stringify(empty)}`,
  })
  await writeFile(join(dir, 'invalid.yaml'), provider('one').replace('  defaultCacheDuration: 1m\n', ''))
  t.throws(() => loadProviderConfig(join(dir, 'invalid.yaml'), bin), {
    message: 'failed to validate credential provider config: providers.defaultCacheDuration: Required value',
  })
  await writeFile(
    join(dir, 'two-errors.yaml'),
    provider('one').replace('  defaultCacheDuration: 1m\n', '').replace('["one.io"]', '[]'),
  )
  t.throws(() => loadProviderConfig(join(dir, 'two-errors.yaml'), bin), {
    message:
      'failed to validate credential provider config: [providers.matchImages: Required value: at least 1 item in matchImages is required, providers.defaultCacheDuration: Required value]',
  })
})
