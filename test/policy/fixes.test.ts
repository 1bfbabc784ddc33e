// The fix builder, table-driven: for every reason code, in both voices, the exact fix lines, and
// the denial entry and warning built from them. The end-to-end tests run these commands.
import t from 'tap'
import {
  claimListedSecrets,
  createSecretCommand,
  fixFor,
  fixLines,
  shellQuote,
  type FixTarget,
  type SecretState,
} from '../../src/policy/fixes.js'
import { explainGroup, groupOutcomes, groupWarning, MAX_WARNING_LENGTH } from '../../src/policy/messages.js'
import { reasonCode, type ImageOutcome, type PlatformFit } from '../../src/policy/outcome.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const HOST = 'reg.example:5000'
const use = (image: string, container = 'api', i = 0, previous?: string) => ({
  container,
  kind: 'container' as const,
  field: `spec.template.spec.containers[${i}]`,
  image,
  ...(previous === undefined ? {} : { previous }),
})

function result(code: CheckResult['code']): CheckResult {
  switch (code) {
    case 'Exists':
      return { code, digest: 'sha256:' + 'a'.repeat(64), mediaType: 'x', decidedBy: 'anonymous', attempts: [] }
    case 'RegistryUnreachable':
      return { code, cause: 'refused', detail: 'connection refused', attempts: [] }
    case 'RateLimited':
      return { code, detail: 'rate limited', retryAfterSeconds: 30, attempts: [] }
    default:
      return { code, detail: 'x', attempts: [] }
  }
}

interface Extra {
  tried?: string[]
  incomplete?: boolean
  suggestions?: string[]
  previous?: string
  previousTagExists?: boolean
  platform?: PlatformFit
  container?: string
  i?: number
}
function checked(code: CheckResult['code'], image = `${HOST}/shop/api:1.3`, x: Extra = {}): ImageOutcome {
  const o: ImageOutcome = {
    kind: 'checked',
    use: use(image, x.container, x.i, x.previous),
    ref: parseReference(image),
    result: result(code),
    tried: x.tried ?? [],
    incomplete: x.incomplete ?? false,
  }
  if (x.suggestions !== undefined) o.suggestions = x.suggestions
  if (x.previousTagExists !== undefined) o.previousTagExists = x.previousTagExists
  if (x.platform !== undefined) o.platform = x.platform
  return o
}

function withRepositories(o: ImageOutcome, names: string[]): ImageOutcome {
  return { ...o, repositorySuggestions: names } as ImageOutcome
}
function refusedCatalog(o: ImageOutcome): ImageOutcome {
  return { ...o, catalogRefused: true } as ImageOutcome
}

const REGCRED = `secret shop/regcred (key "${HOST}")`
const found = (name: string, registries = [HOST]): SecretState => ({ name, state: 'found', registries })

function target(over: Partial<FixTarget> = {}): FixTarget {
  return {
    voice: 'admission',
    namespace: 'shop',
    resource: 'deployment',
    name: 'api',
    specField: 'spec.template.spec',
    patchPath: ['spec', 'template', 'spec'],
    secrets: [],
    fromServiceAccount: 'yes',
    serviceAccount: { name: 'default', imagePullSecrets: [] },
    ...over,
  }
}
const diagnose = (over: Partial<FixTarget> = {}): FixTarget =>
  target({ voice: 'diagnose', pod: { name: 'api-7d9f-x2x9q', bare: false, platform: undefined }, ...over })

const CREATE = (name: string, ns = 'shop') =>
  `kubectl create secret docker-registry ${name} --docker-server=${HOST} --docker-username=USER --docker-password=PASSWORD -n ${ns}`
const UPDATE = (name: string) => `${CREATE(name)} --dry-run=client -o yaml | kubectl apply -f -`
const NEW = 'pull-reg-example-5000'
const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

const cases: Array<[string, ImageOutcome, FixTarget, string[] | undefined]> = [
  [
    'TagNotFound: the nearest tags',
    checked('TagNotFound', undefined, { suggestions: ['1.2', '1.1', '1.0'] }),
    target(),
    ['existing tags nearest to "1.3": 1.2, 1.1, 1.0'],
  ],
  [
    'TagNotFound on UPDATE: and the tag it had',
    checked('TagNotFound', undefined, {
      suggestions: ['1.2', '1.1'],
      previous: `${HOST}/shop/api:1.1`,
      previousTagExists: true,
    }),
    target(),
    ['existing tags nearest to "1.3": 1.2, 1.1; before this change it was 1.1'],
  ],
  [
    'TagNotFound on UPDATE: the old tag is gone too',
    checked('TagNotFound', undefined, {
      suggestions: ['1.2'],
      previous: `${HOST}/shop/api:0.9`,
      previousTagExists: false,
    }),
    target(),
    ['existing tags nearest to "1.3": 1.2; its tag before this change, 0.9, is gone too'],
  ],
  [
    'TagNotFound: no tag near it',
    checked('TagNotFound', undefined, { suggestions: [] }),
    target(),
    [`no existing tag of ${HOST}/shop/api is near "1.3": push that tag, or pick one that exists`],
  ],
  [
    'TagNotFound: tags not listed',
    checked('TagNotFound'),
    target(),
    [`push tag "1.3" to ${HOST}/shop/api, or use a tag that exists (pullguard could not list its tags)`],
  ],
  [
    'TagNotFound, diagnose: set image',
    checked('TagNotFound', undefined, { suggestions: ['1.2', '1.1'] }),
    diagnose(),
    [
      'existing tags nearest to "1.3": 1.2, 1.1',
      `use the nearest one: kubectl set image deployment/api -n shop api=${HOST}/shop/api:1.2`,
    ],
  ],
  [
    'TagNotFound, diagnose of a Job: where it is made',
    checked('TagNotFound', undefined, { suggestions: ['1.2'] }),
    diagnose({ resource: 'job', name: 'migrate-1', patchPath: undefined }),
    [
      'existing tags nearest to "1.3": 1.2',
      `change container "api" to ${HOST}/shop/api:1.2 in what creates job/migrate-1 (its pod template cannot be changed in place)`,
    ],
  ],
  [
    'DigestNotFound',
    checked('DigestNotFound', `${HOST}/shop/api@sha256:${'b'.repeat(64)}`),
    target(),
    [`use a digest that exists in ${HOST}/shop/api (this one was deleted or never pushed)`],
  ],
  [
    'RepositoryNotFound',
    checked('RepositoryNotFound'),
    target(),
    [`check the image name for typos: ${HOST} has no repository shop/api (pullguard could not read ${HOST}'s catalog)`],
  ],
  [
    'RepositoryNotFound: the nearest repositories of the catalog, into the field',
    withRepositories(checked('RepositoryNotFound'), ['shop/app', 'shop/apis']),
    target(),
    [`repositories of ${HOST} nearest to "shop/api": shop/app, shop/apis: use ${HOST}/shop/app:1.3`],
  ],
  [
    'RepositoryNotFound (diagnose): the nearest repository, set on the live workload',
    withRepositories(checked('RepositoryNotFound'), ['shop/app']),
    diagnose(),
    [
      `repositories of ${HOST} nearest to "shop/api": shop/app`,
      `use the nearest one: kubectl set image deployment/api -n shop api=${HOST}/shop/app:1.3`,
    ],
  ],
  [
    'RepositoryNotFound (diagnose), a catalog refused: what to check, and the command with the image to set',
    refusedCatalog(checked('RepositoryNotFound')),
    diagnose(),
    [
      `check the image name for typos: ${HOST} has no repository shop/api (${HOST} does not list its repositories to these credentials)`,
      `set the image that exists: kubectl set image deployment/api -n shop api=IMAGE`,
    ],
  ],
  [
    'RepositoryNotFound on UPDATE',
    checked('RepositoryNotFound', undefined, { previous: `${HOST}/shop/app:1.3` }),
    target(),
    [
      `check the image name for typos: ${HOST} has no repository shop/api (pullguard could not read ${HOST}'s catalog); before this change it was ${HOST}/shop/app:1.3`,
    ],
  ],
  [
    'AccessDenied, refused secret: update it in place',
    checked('AccessDenied', undefined, { tried: [REGCRED] }),
    target({ secrets: [found('regcred')], fromServiceAccount: 'no' }),
    [`update secret "regcred" in place with an account that may pull from ${HOST}: ${UPDATE('regcred')}`],
  ],
  [
    'AccessDenied, refused secret that holds other registries too: a sibling',
    checked('AccessDenied', undefined, { tried: [REGCRED] }),
    target({ secrets: [found('regcred', [HOST, 'ghcr.io'])], fromServiceAccount: 'no' }),
    [
      `secret "regcred" also holds ghcr.io, so rather than rewrite it, create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `list it in spec.template.spec.imagePullSecrets: [{name: regcred}, {name: ${NEW}}], and apply again`,
    ],
  ],
  [
    'AccessDenied, the listed secret does not exist: create it',
    checked('AccessDenied'),
    target({ secrets: [{ name: 'regcred', state: 'missing', detail: 'x' }], fromServiceAccount: 'no' }),
    [`create secret "regcred", which the pods already list: ${CREATE('regcred')}`],
  ],
  [
    'AccessDenied, the listed secret is Opaque: replace it',
    checked('AccessDenied'),
    target({
      secrets: [{ name: 'regcred', state: 'wrong-type', detail: 'x', type: 'Opaque' }],
      fromServiceAccount: 'no',
    }),
    [
      `secret "regcred" is of type Opaque, which the kubelet ignores for pulls; if nothing else reads it, replace it with a docker-registry secret: kubectl delete secret regcred -n shop && ${CREATE('regcred')}`,
    ],
  ],
  [
    'AccessDenied, a dockerconfigjson secret with no data: fill it',
    checked('AccessDenied'),
    target({
      secrets: [{ name: 'regcred', state: 'wrong-type', detail: 'x', type: 'kubernetes.io/dockerconfigjson' }],
      fromServiceAccount: 'no',
    }),
    [
      `secret "regcred" is a kubernetes.io/dockerconfigjson secret without credentials; write them into it: ${UPDATE('regcred')}`,
    ],
  ],
  [
    'AccessDenied, no secret, pods use the service account: patch it keeping its list',
    checked('AccessDenied'),
    target({
      serviceAccount: { name: 'builder', imagePullSecrets: ['other'] },
      secrets: [found('other', ['ghcr.io'])],
    }),
    [
      `"other" holds no credentials for ${HOST}: create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `give it to the pods of service account "builder", keeping the account's list, and apply again: kubectl patch serviceaccount builder -n shop -p '{"imagePullSecrets":[{"name":"other"},{"name":"${NEW}"}]}'`,
      `or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: other}, {name: ${NEW}}], and apply again`,
    ],
  ],
  [
    'AccessDenied, the template lists its own secrets: add it there',
    checked('AccessDenied'),
    target({ secrets: [found('other', ['ghcr.io'])], fromServiceAccount: 'no' }),
    [
      `"other" holds no credentials for ${HOST}: create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `list it in spec.template.spec.imagePullSecrets: [{name: other}, {name: ${NEW}}], and apply again`,
    ],
  ],
  [
    "AccessDenied, a Pod whose list equals its account's: both ways",
    checked('AccessDenied'),
    target({
      resource: 'pod',
      name: 'web',
      specField: 'spec',
      patchPath: ['spec'],
      secrets: [found('other', ['ghcr.io'])],
      fromServiceAccount: 'maybe',
      serviceAccount: { name: 'default', imagePullSecrets: ['other'] },
    }),
    [
      `"other" holds no credentials for ${HOST}: create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `list it in spec.imagePullSecrets: [{name: other}, {name: ${NEW}}], and apply again`,
      `or, if the manifest lists no pull secrets (these came from service account "default"), give it to the pods of service account "default", keeping the account's list, and apply again: kubectl patch serviceaccount default -n shop -p '{"imagePullSecrets":[{"name":"other"},{"name":"${NEW}"}]}'`,
    ],
  ],
  [
    'AccessDenied, the account could not be read',
    checked('AccessDenied'),
    target({ serviceAccount: { name: 'default', imagePullSecrets: undefined } }),
    [
      `create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `add "${NEW}" to the imagePullSecrets of service account "default" (pullguard could not read its current list), and apply again`,
      `or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: ${NEW}}], and apply again`,
    ],
  ],
  [
    "AccessDenied, the pods' service account does not exist: made with the secret",
    checked('AccessDenied'),
    target({ serviceAccount: { name: 'builder', imagePullSecrets: [], missing: true } }),
    [
      `create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `create service account "builder", which the pods name, with it, and apply again: kubectl create serviceaccount builder -n shop && kubectl patch serviceaccount builder -n shop -p '{"imagePullSecrets":[{"name":"${NEW}"}]}'`,
      `or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: ${NEW}}], and apply again`,
    ],
  ],
  [
    "AccessDenied, only the nodes' credentials were refused",
    checked('AccessDenied', undefined, { tried: [`node docker config (key "${HOST}")`] }),
    target(),
    [
      `node docker config (key "${HOST}") was refused: give the pods a pull secret`,
      `create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `give it to the pods of service account "default", keeping the account's list, and apply again: kubectl patch serviceaccount default -n shop -p '{"imagePullSecrets":[{"name":"${NEW}"}]}'`,
      `or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: ${NEW}}], and apply again`,
    ],
  ],
  [
    "AccessDenied, a credential provider plugin's credentials were refused",
    checked('AccessDenied', undefined, { tried: [`credential provider ecr-credential-provider (key "${HOST}")`] }),
    target(),
    [
      `the credentials from credential provider ecr-credential-provider were refused: give the identity the nodes' plugin uses pull access on ${HOST}; or give the pods a pull secret`,
      `create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `give it to the pods of service account "default", keeping the account's list, and apply again: kubectl patch serviceaccount default -n shop -p '{"imagePullSecrets":[{"name":"${NEW}"}]}'`,
      `or, instead of the service account, list it in spec.template.spec.imagePullSecrets: [{name: ${NEW}}], and apply again`,
    ],
  ],
  [
    'AccessDenied, diagnose, a pod listing none: the account, then the template',
    checked('AccessDenied'),
    diagnose(),
    [
      `create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `give it to the pods of service account "default", keeping the account's list: kubectl patch serviceaccount default -n shop -p '{"imagePullSecrets":[{"name":"${NEW}"}]}'`,
      'then have the pod made again with it: kubectl delete pod api-7d9f-x2x9q -n shop',
      `or, instead of the service account, list it in the pod template of deployment/api (a new rollout follows): kubectl patch deployment/api -n shop -p '{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"${NEW}"}]}}}}'`,
    ],
  ],
  [
    'AccessDenied, diagnose, a bare pod with its own list',
    checked('AccessDenied'),
    diagnose({
      resource: 'pod',
      name: 'debug',
      patchPath: undefined,
      secrets: [found('other', ['ghcr.io'])],
      fromServiceAccount: 'no',
      pod: { name: 'debug', bare: true, platform: undefined },
    }),
    [
      `"other" holds no credentials for ${HOST}: create a pull secret for ${HOST}: ${CREATE(NEW)}`,
      `list it in the imagePullSecrets of pod debug's manifest ([{name: other}, {name: ${NEW}}]) and create the pod again (a pod's imagePullSecrets cannot be changed in place)`,
    ],
  ],
  [
    'RepositoryNotFoundOrDenied: the name first, then the secret',
    checked('RepositoryNotFoundOrDenied', undefined, { tried: [REGCRED] }),
    target({ secrets: [found('regcred')], fromServiceAccount: 'no' }),
    [
      `check the image name first (${HOST} answers the same for a repository that does not exist)`,
      `update secret "regcred" in place with an account that may pull from ${HOST}: ${UPDATE('regcred')}`,
    ],
  ],
  [
    'AccessDenied with unreadable secrets: nothing to fix (not verified)',
    checked('AccessDenied', undefined, { incomplete: true }),
    target(),
    undefined,
  ],
  ['RateLimited: nothing to fix', checked('RateLimited'), target(), undefined],
  ['RegistryUnreachable: nothing to fix', checked('RegistryUnreachable'), target(), undefined],
  ['Exists: nothing to fix', checked('Exists'), target(), undefined],
  [
    "PlatformMismatch: publish, or the cluster's other nodes",
    checked('Exists', undefined, {
      platform: { verdict: 'none', missing: [arm64], available: [amd64], elsewhere: [amd64] },
    }),
    target(),
    [
      `publish ${HOST}/shop/api:1.3 for linux/arm64 (a multi-platform build)`,
      "or run it on the cluster's linux/amd64 nodes, which the image supports: set spec.template.spec.nodeSelector to kubernetes.io/os: linux, kubernetes.io/arch: amd64 (and drop node affinity that excludes them)",
    ],
  ],
  [
    'PlatformMismatch: no other nodes, only publishing helps',
    checked('Exists', undefined, {
      platform: { verdict: 'none', missing: [arm64], available: [amd64], elsewhere: [] },
    }),
    target(),
    [`publish ${HOST}/shop/api:1.3 for linux/arm64 (a multi-platform build)`],
  ],
  [
    'PlatformMismatch, diagnose: patch the nodeSelector',
    checked('Exists', undefined, { platform: { verdict: 'none', missing: [arm64], available: [amd64] } }),
    diagnose(),
    [
      `publish ${HOST}/shop/api:1.3 for linux/arm64 (a multi-platform build)`,
      `or schedule the pod onto linux/amd64 nodes, which the image supports: kubectl patch deployment/api -n shop -p '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"}}}}}'`,
    ],
  ],
  [
    'InvalidReference',
    { kind: 'invalid', use: use('Shop/API:1'), problem: 'repository name must be lowercase' },
    target(),
    ['correct the image reference'],
  ],
  [
    'InvalidReference, diagnose',
    { kind: 'invalid', use: use('Shop/API:1'), problem: 'repository name must be lowercase' },
    diagnose(),
    ['correct the image reference, then change container "api" in deployment/api'],
  ],
  [
    'MetadataHost',
    { kind: 'metadata-host', use: use('169.254.169.254/x:1'), problem: 'is a link-local address' },
    target(),
    ["use the image's real registry"],
  ],
  [
    'RegistryBlocked',
    {
      kind: 'blocked',
      use: use('blocked.example/x:1'),
      ref: parseReference('blocked.example/x:1'),
      file: '/etc/containers/registries.conf',
      prefix: 'blocked.example',
    },
    target(),
    [
      'use an image from a registry the nodes allow (or ask the cluster\'s operators about the rule for "blocked.example" in /etc/containers/registries.conf)',
    ],
  ],
  [
    'PullSecretUnparseable: write it again in place',
    {
      kind: 'broken-secret',
      use: use(`${HOST}/shop/api:1`),
      problem: { secret: 'regcred', kind: 'unparseable', detail: 'x', type: 'kubernetes.io/dockerconfigjson' },
      server: HOST,
    },
    target({
      secrets: [{ name: 'regcred', state: 'unparseable', detail: 'x', type: 'kubernetes.io/dockerconfigjson' }],
      fromServiceAccount: 'no',
    }),
    [
      `write secret "regcred" again with valid content: ${UPDATE('regcred')}`,
      'or remove "regcred" from spec.template.spec.imagePullSecrets',
    ],
  ],
  [
    'PullSecretUnparseable, a legacy dockercfg secret: replaced (its type cannot change)',
    {
      kind: 'broken-secret',
      use: use(`${HOST}/shop/api:1`),
      problem: { secret: 'old', kind: 'unparseable', detail: 'x', type: 'kubernetes.io/dockercfg' },
      server: HOST,
    },
    target({ secrets: [{ name: 'old', state: 'unparseable', detail: 'x', type: 'kubernetes.io/dockercfg' }] }),
    [
      `write secret "old" again with valid content: kubectl delete secret old -n shop && ${CREATE('old')}`,
      'or remove "old" from the imagePullSecrets of service account "default"',
    ],
  ],
  [
    'Exempt: nothing to fix',
    { kind: 'exempt', use: use(`${HOST}/shop/api:1`), pattern: `${HOST}/*` },
    target(),
    undefined,
  ],
]

for (const [name, outcome, tgt, expected] of cases) {
  t.test(`${reasonCode(outcome)} (${tgt.voice}): ${name}`, async (t) => {
    const fix = fixFor(outcome, tgt)
    t.same(fix === undefined ? undefined : fixLines(fix), expected)
    if (fix === undefined) return
    const warning = groupWarning(groupOutcomes([outcome], tgt)[0]!, ' (warn mode: allowed)')
    t.ok(warning.length <= MAX_WARNING_LENGTH, `the warning fits the API server's length: ${warning.length} ${warning}`)
    t.ok(fix.short.length > 0 && !fix.short.includes('\n'))
  })
}

t.test('every reason code that is not pullable has a case above', async (t) => {
  const codes = new Set(cases.filter(([, , , e]) => e !== undefined).map(([, o]) => reasonCode(o)))
  t.same([...codes].sort(), [
    'AccessDenied',
    'DigestNotFound',
    'InvalidReference',
    'MetadataHost',
    'PlatformMismatch',
    'PullSecretUnparseable',
    'RegistryBlocked',
    'RepositoryNotFound',
    'RepositoryNotFoundOrDenied',
    'TagNotFound',
  ])
})

t.test('commands are ready to paste: quoting, Docker Hub as kubectl expects it', async (t) => {
  t.equal(shellQuote('plain-name.1'), 'plain-name.1')
  t.equal(shellQuote('{"a":1}'), `'{"a":1}'`)
  t.equal(shellQuote("it's"), `'it'\\''s'`)
  t.equal(
    createSecretCommand('pull-docker-io', 'docker.io', 'shop'),
    'kubectl create secret docker-registry pull-docker-io --docker-username=USER --docker-password=PASSWORD -n shop',
    "kubectl's default server is Docker Hub's",
  )
  const hub = fixFor(checked('AccessDenied', 'acme/private:1'), target())!
  t.equal(
    fixLines(hub)[0],
    'create a pull secret for Docker Hub: kubectl create secret docker-registry pull-docker-io --docker-username=USER --docker-password=PASSWORD -n shop',
  )
  for (const [, outcome, tgt] of cases) {
    const fix = fixFor(outcome, tgt)
    for (const step of [...(fix?.steps ?? []), ...(fix?.alternatives ?? [])]) {
      if (step.command === undefined) continue
      t.match(step.command, /^kubectl /)
      t.notMatch(
        step.command.replace(/USER|PASSWORD/g, ''),
        /<|>|\bNAME\b|\bNAMESPACE\b/,
        'no placeholder but USER and PASSWORD',
      )
      if (!step.command.startsWith('kubectl set image'))
        t.match(step.command, / -n shop( |$)/, 'always in the namespace')
    }
  }
})

t.test('containers with the same cause and fix share one entry; the fix is said once', async (t) => {
  const tgt = target({ secrets: [found('regcred')], fromServiceAccount: 'no' })
  const a = checked('AccessDenied', `${HOST}/shop/api:1`, { tried: [REGCRED], container: 'api', i: 0 })
  const b = checked('AccessDenied', `${HOST}/shop/worker:1`, { tried: [REGCRED], container: 'worker', i: 1 })
  const c = checked('TagNotFound', `${HOST}/shop/api:9`, { suggestions: ['1'], container: 'sidecar', i: 2 })
  const groups = groupOutcomes([a, c, b], tgt)
  t.equal(groups.length, 2)
  t.equal(
    explainGroup(groups[0]!),
    `container "api" (spec.template.spec.containers[0]) image "${HOST}/shop/api:1" and container "worker" (spec.template.spec.containers[1]) image "${HOST}/shop/worker:1": ${HOST} refused the credentials (tried ${REGCRED}). Fix:\n` +
      `    update secret "regcred" in place with an account that may pull from ${HOST}: ${UPDATE('regcred')}`,
  )
  t.equal(
    explainGroup(groups[1]!),
    `container "sidecar" (spec.template.spec.containers[2]) image "${HOST}/shop/api:9": tag "9" does not exist in ${HOST}/shop/api. Fix: existing tags nearest to "9": 1.`,
  )
  t.equal(
    groupWarning(groups[0]!, ' (warn mode: allowed)'),
    `containers "api", "worker" (images "${HOST}/shop/api:1", "${HOST}/shop/worker:1"): ${HOST} refused the credentials (1 tried) (warn mode: allowed); fix: update secret "regcred" with an account that may pull it`,
  )
})

t.test('a warning carries the command when it fits, the words when it does not', async (t) => {
  const missing = checked('AccessDenied', 'r.io/a:1')
  const g = groupOutcomes(
    [missing],
    target({ secrets: [{ name: 'rc', state: 'missing', detail: 'x' }], fromServiceAccount: 'no' }),
  )[0]!
  t.equal(
    groupWarning(g, ' (warn mode: allowed)'),
    'container "api" image "r.io/a:1": r.io requires credentials (none matched) (warn mode: allowed); fix: kubectl create secret docker-registry rc --docker-server=r.io --docker-username=USER --docker-password=PASSWORD -n shop',
  )
  const long = checked('AccessDenied', `${HOST}/${'x'.repeat(40)}:1`)
  const g2 = groupOutcomes(
    [long],
    target({ secrets: [{ name: 'rc', state: 'missing', detail: 'x' }], fromServiceAccount: 'no' }),
  )[0]!
  const w = groupWarning(g2, ' (warn mode: allowed)')
  t.ok(w.length <= MAX_WARNING_LENGTH, w)
  t.equal(
    w,
    `container "api" image "${HOST}/${'x'.repeat(40)}:1": ${HOST} requires credentials (none matched) (warn mode: allowed); fix: create the listed secret "rc" (type docker-registry, for ${HOST})`,
  )
  const longer = checked('AccessDenied', `${HOST}/${'x'.repeat(200)}:1`)
  const w2 = groupWarning(
    groupOutcomes(
      [longer],
      target({ secrets: [{ name: 'rc', state: 'missing', detail: 'x' }], fromServiceAccount: 'no' }),
    )[0]!,
    ' (warn mode: allowed)',
  )
  t.equal(
    w2,
    `container "api": ${HOST} requires credentials (none matched) (warn mode: allowed); fix: create the listed secret "rc" (type docker-registry, for ${HOST})`,
    'the image left out, the container named',
  )
})

t.test("a refused Docker Hub secret (kubectl's default key) is updated in place, not given a sibling", async (t) => {
  const hub = checked('AccessDenied', 'acme/private:1', {
    tried: ['secret shop/hub (key "https://index.docker.io/v1/")'],
  })
  t.same(
    fixLines(
      fixFor(hub, target({ secrets: [found('hub', ['https://index.docker.io/v1/'])], fromServiceAccount: 'no' }))!,
    ),
    [
      'update secret "hub" in place with an account that may pull from registry-1.docker.io: kubectl create secret docker-registry hub --docker-username=USER --docker-password=PASSWORD -n shop --dry-run=client -o yaml | kubectl apply -f -',
    ],
  )
  const scoped = checked('AccessDenied', undefined, { tried: [`secret shop/regcred (key "https://${HOST}/v2/")`] })
  t.equal(
    fixFor(
      scoped,
      target({ secrets: [found('regcred', [`https://${HOST}/v2/`, `${HOST}/shop`])], fromServiceAccount: 'no' }),
    )!.steps.length,
    1,
    "keys with a scheme or a path are this registry's too",
  )
})

t.test('one missing listed secret needed by two registries: the first writes it, the other gets its own', async (t) => {
  const a = checked('AccessDenied', `${HOST}/shop/api:1`, { container: 'api', i: 0 })
  const b = checked('AccessDenied', 'other.example/shop/worker:1', { container: 'worker', i: 1 })
  const secrets: SecretState[] = [{ name: 'regcred', state: 'missing', detail: 'x' }]
  const claims = claimListedSecrets([a, b], secrets, 'shop')
  t.same([...claims], [['regcred', HOST]])
  const tgt = target({ secrets, fromServiceAccount: 'no', secretServers: claims })
  t.same(fixLines(fixFor(a, tgt)!), [`create secret "regcred", which the pods already list: ${CREATE('regcred')}`])
  t.same(fixLines(fixFor(b, tgt)!), [
    'create a pull secret for other.example: kubectl create secret docker-registry pull-other-example --docker-server=other.example --docker-username=USER --docker-password=PASSWORD -n shop',
    'list it in spec.template.spec.imagePullSecrets: [{name: regcred}, {name: pull-other-example}], and apply again',
  ])
})

t.test('an unparseable secret in a pod that pulls from two registries says so', async (t) => {
  const o: ImageOutcome = {
    kind: 'broken-secret',
    use: use(`${HOST}/shop/api:1`),
    problem: { secret: 'regcred', kind: 'unparseable', detail: 'x' },
    server: HOST,
    servers: [HOST, 'ghcr.io'],
  }
  t.equal(
    fixLines(fixFor(o, target({ fromServiceAccount: 'no' }))!)[0],
    `write secret "regcred" again with valid content for ${HOST} (the pods also pull from ghcr.io: if "regcred" held credentials for it, give each its own secret too): ${UPDATE('regcred')}`,
  )
})

t.test('no tag near it on UPDATE, and the old tag is gone too', async (t) => {
  const o = checked('TagNotFound', undefined, {
    suggestions: [],
    previous: `${HOST}/shop/api:0.9`,
    previousTagExists: false,
  })
  t.same(fixLines(fixFor(o, target())!), [
    `no existing tag of ${HOST}/shop/api is near "1.3": push that tag, or pick one that exists; its tag before this change, 0.9, is gone too`,
  ])
})

t.test("diagnose, a pod whose list equals its account's: the account route also retries the pod", async (t) => {
  const lines = fixLines(
    fixFor(
      checked('AccessDenied'),
      diagnose({
        secrets: [found('other', ['ghcr.io'])],
        fromServiceAccount: 'maybe',
        serviceAccount: { name: 'default', imagePullSecrets: ['other'] },
      }),
    )!,
  )
  t.equal(lines.at(-1), 'then have the pod made again with it: kubectl delete pod api-7d9f-x2x9q -n shop')
  t.match(
    lines.at(-2),
    /^or, if the pod template lists no pull secrets \(these came from service account "default"\), give it to the pods/,
  )
})

t.test('warnings never lose their fix: long names give way, then the cause is cut', async (t) => {
  const tgt = target({
    secrets: [{ name: 'a-very-long-listed-secret-name-for-the-registry', state: 'missing', detail: 'x' }],
    fromServiceAccount: 'no',
  })
  const many = Array.from({ length: 8 }, (_, i) =>
    checked('AccessDenied', `${HOST}/shop/${'service'.repeat(4)}-${i}:1.0`, {
      container: `container-with-a-long-name-${i}`,
      i,
    }),
  )
  const g = groupOutcomes(many, tgt)
  t.equal(g.length, 1)
  const w = groupWarning(g[0]!, ' (warn mode: allowed)')
  t.ok(w.length <= MAX_WARNING_LENGTH, `${w.length}`)
  t.equal(
    w,
    `8 containers: ${HOST} requires credentials (none matched) (warn mode: allowed); fix: create the listed secret "a-very-long-listed-secret-name-for-the-registry" (type docker-registry, for ${HOST})`,
  )
  const longHost = `${'r'.repeat(70)}.example`
  const one = checked('AccessDenied', `${longHost}/a:1`)
  const w2 = groupWarning(
    groupOutcomes(
      [one],
      target({ secrets: [{ name: 's'.repeat(50), state: 'missing', detail: 'x' }], fromServiceAccount: 'no' }),
    )[0]!,
    ' (warn mode: allowed)',
  )
  t.ok(w2.length <= MAX_WARNING_LENGTH, `${w2.length}`)
  t.match(
    w2,
    /…; fix: create the listed secret "s{50}" \(type docker-registry, for r+\.example\)$/,
    'the cause is cut, the fix kept',
  )
})

t.test('a denial entry names at most a few containers in full', async (t) => {
  const image = `${HOST}/shop/api:1`
  const same = Array.from({ length: 30 }, (_, i) => checked('RepositoryNotFound', image, { container: `c${i}`, i }))
  const entry = explainGroup(groupOutcomes(same, target())[0]!)
  t.equal(
    entry,
    `container "c0" (spec.template.spec.containers[0]) image "${image}", container "c1" (spec.template.spec.containers[1]) image "${image}", container "c2" (spec.template.spec.containers[2]) image "${image}" and 27 more ("c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", …): repository ${HOST}/shop/api does not exist. Fix: check the image name for typos: ${HOST} has no repository shop/api (pullguard could not read ${HOST}'s catalog).`,
  )
})
