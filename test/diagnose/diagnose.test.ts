// The pure parts of `pullguard diagnose`, table-driven: which containers are stuck, which event
// explains them, what kind of error the runtime reported, which object a fix changes, the flags,
// and the fix lines for the cases the end-to-end test does not reach.
import t from 'tap'
import { defaultPool } from '../helpers/pools.js'
import type { ContainerState, PodEvent } from '../../src/kube/sources.js'
import { parseDiagnoseConfig } from '../../src/diagnose/config.js'
import { findingFor, neverPullFinding, type FixContext } from '../../src/diagnose/fixes.js'
import { workloadOf } from '../../src/diagnose/owner.js'
import { failingContainers, kubeletCause, kubeletEvent, type KubeletCause } from '../../src/diagnose/pull-failures.js'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'
import { loadFixture } from '../helpers/fixtures.js'

t.test('kubeletCause: the runtime errors users actually see', async (t) => {
  const cases: Array<[string, KubeletCause]> = [
    [loadFixture('api/eventlist-pod.json').items[2].message, 'not-found'],
    [
      'Failed to pull image "ghcr.io/acme/api:1.0": rpc error: code = Unknown desc = failed to pull and unpack image "ghcr.io/acme/api:1.0": failed to resolve reference "ghcr.io/acme/api:1.0": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Fapi%3Apull&service=ghcr.io: 401 Unauthorized',
      'denied',
    ],
    [
      'Failed to pull image "acme/private": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed',
      'denied',
    ],
    [
      'Failed to pull image "nginx": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/sha256:abc: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit',
      'rate-limited',
    ],
    [
      'Failed to pull image "reg.local/app:1": failed to do request: Head "https://reg.local/v2/app/manifests/1": tls: failed to verify certificate: x509: certificate signed by unknown authority',
      'tls',
    ],
    [
      'Failed to pull image "reg.local:5000/app:1": failed to do request: Head "https://reg.local:5000/v2/app/manifests/1": http: server gave HTTP response to HTTPS client',
      'tls',
    ],
    [
      'Failed to pull image "reg.corp/app:1": failed to do request: Head "https://reg.corp/v2/app/manifests/1": dial tcp: lookup reg.corp on 10.96.0.10:53: no such host',
      'network',
    ],
    [
      'Failed to pull image "reg.corp/app:1": failed to do request: Head "https://reg.corp/v2/app/manifests/1": dial tcp 10.1.2.3:443: i/o timeout',
      'network',
    ],
    ['Failed to pull image "arm/app:1": no match for platform in manifest: not found', 'platform'],
    [
      'Failed to apply default image tag "Bad:Image": couldn\'t parse image name "Bad:Image": invalid reference format',
      'invalid',
    ],
    ['Container image "local/app:dev" is not present with pull policy of Never', 'never-pull'],
    [
      'Failed to inspect image "team/app:1.0": rpc error: code = Unknown desc = short name mode is enforcing, but image name team/app:1.0 returns ambiguous list',
      'short-name',
    ],
    [
      'Failed to pull image "quay.io/team/app:1.0": SignatureValidationFailed: Source image rejected: A signature was required, but no signature exists',
      'signature',
    ],
    [
      'Failed to pull image "quay.io/team/app:1.0": rpc error: code = Unknown desc = Source image rejected: Running image docker://quay.io/team/app:1.0 is rejected by policy.',
      'signature',
    ],
    ['Failed to pull image "x": rpc error: code = Unknown desc = something new', 'other'],
  ]
  for (const [message, cause] of cases) t.equal(kubeletCause(message), cause, message.slice(0, 80))
})

t.test('failingContainers: the pull-related waiting reasons only, from every status list', async (t) => {
  const c = (name: string, list: ContainerState['list'], waitingReason?: string): ContainerState => ({
    name,
    list,
    waitingReason,
    waitingMessage: undefined,
  })
  const got = failingContainers([
    c('init', 'initContainers', 'ErrImagePull'),
    c('app', 'containers', 'ImagePullBackOff'),
    c('ok', 'containers'),
    c('crash', 'containers', 'CrashLoopBackOff'),
    c('cfg', 'containers', 'CreateContainerConfigError'),
    c('bad', 'containers', 'InvalidImageName'),
    c('never', 'containers', 'ErrImageNeverPull'),
    c('inspect', 'containers', 'ImageInspectError'),
    c('signed', 'containers', 'SignatureValidationFailed'),
    c('dbg', 'ephemeralContainers', 'ErrImagePull'),
  ])
  t.same(
    got.map((x) => `${x.list}/${x.name}:${x.reason}`),
    [
      'initContainers/init:ErrImagePull',
      'containers/app:ImagePullBackOff',
      'containers/bad:InvalidImageName',
      'containers/never:ErrImageNeverPull',
      'containers/inspect:ImageInspectError',
      'containers/signed:SignatureValidationFailed',
      'ephemeralContainers/dbg:ErrImagePull',
    ],
  )
})

t.test('kubeletEvent: the latest specific Warning about that container', async (t) => {
  const fixture: PodEvent[] = loadFixture('api/eventlist-pod.json').items.map((e: any) => ({
    type: e.type,
    reason: e.reason,
    message: e.message,
    fieldPath: e.involvedObject.fieldPath,
    count: e.count ?? 1,
    lastSeen: e.lastTimestamp ?? undefined,
  }))
  t.match(
    kubeletEvent(fixture, { name: 'api', list: 'containers' }),
    { reason: 'Failed', message: /^Failed to pull image .*: not found$/ },
    'not "Error: ImagePullBackOff", which is later',
  )
  t.equal(kubeletEvent(fixture, { name: 'api', list: 'initContainers' }), undefined, 'the field path names the list')
  t.equal(kubeletEvent(fixture, { name: 'proxy', list: 'containers' }), undefined)
  const ev = (message: string, lastSeen: string, type = 'Warning'): PodEvent => ({
    type,
    reason: 'Failed',
    message,
    fieldPath: 'spec.containers{a}',
    count: 1,
    lastSeen,
  })
  t.equal(
    kubeletEvent(
      [
        ev('Failed to pull image "x": old', '2026-11-25T08:00:00Z'),
        ev('Failed to pull image "x": new', '2026-11-25T09:00:00Z'),
      ],
      { name: 'a', list: 'containers' },
    )?.message,
    'Failed to pull image "x": new',
  )
  t.equal(
    kubeletEvent(
      [
        ev('Error: ImagePullBackOff', '2026-11-25T09:00:00Z'),
        ev('Back-off pulling image "x"', '2026-11-25T09:01:00Z', 'Normal'),
      ],
      { name: 'a', list: 'containers' },
    )?.message,
    'Error: ImagePullBackOff',
    'only generic ones: the latest Warning',
  )
})

t.test('workloadOf: where a fix goes', async (t) => {
  const cases: Array<
    [string, { kind: string; name: string } | undefined, Record<string, string>, string, boolean, boolean]
  > = [
    [
      'deployment from its ReplicaSet',
      { kind: 'ReplicaSet', name: 'api-5d8f7c9b6d' },
      { 'pod-template-hash': '5d8f7c9b6d' },
      'deployment/api',
      true,
      false,
    ],
    [
      'a ReplicaSet of its own (no matching hash)',
      { kind: 'ReplicaSet', name: 'api-abc' },
      { 'pod-template-hash': 'zzz' },
      'replicaset/api-abc',
      true,
      false,
    ],
    ['a ReplicaSet without the label', { kind: 'ReplicaSet', name: 'api-abc' }, {}, 'replicaset/api-abc', true, false],
    ['statefulset', { kind: 'StatefulSet', name: 'db' }, {}, 'statefulset/db', true, false],
    ['daemonset', { kind: 'DaemonSet', name: 'agent' }, {}, 'daemonset/agent', true, false],
    ['job: template immutable', { kind: 'Job', name: 'migrate-1' }, {}, 'job/migrate-1', false, false],
    ["an operator's own kind", { kind: 'Rollout', name: 'web' }, {}, 'rollout/web', false, false],
    ['bare pod: re-created, not patched', undefined, {}, 'pod/p', false, true],
  ]
  for (const [name, controller, labels, want, patchable, bare] of cases) {
    const w = workloadOf({ name: 'p', labels, controller })
    t.same([`${w.resource}/${w.name}`, w.specPath !== undefined, w.bare], [want, patchable, bare], name)
  }
})

t.test('parseDiagnoseConfig: targets and flags', async (t) => {
  t.same(parseDiagnoseConfig(['pod', 'web-1', '-n', 'team-a'], {}).target, {
    kind: 'pod',
    name: 'web-1',
    namespace: 'team-a',
  })
  t.same(
    parseDiagnoseConfig(['pod', 'web-1'], {}).target,
    { kind: 'pod', name: 'web-1', namespace: undefined },
    'namespace from the kubeconfig later',
  )
  t.same(parseDiagnoseConfig(['namespace', 'team-a'], {}).target, { kind: 'namespace', namespace: 'team-a' })
  t.same(parseDiagnoseConfig(['ns', '-n', 'team-a'], {}).target, { kind: 'namespace', namespace: 'team-a' })
  t.same(parseDiagnoseConfig(['namespace', '-A'], {}).target, { kind: 'all-namespaces' })
  t.same(parseDiagnoseConfig(['namespace', '--all-namespaces', '-o', 'json', '--timeout', '2s'], {}), {
    target: { kind: 'all-namespaces' },
    kubeconfigPath: undefined,
    timeoutMs: 2000,
    registryCaPem: undefined,
    insecureRegistries: [],
    nodeExtraCaCertsPath: undefined,
    nodeDockerConfigPath: undefined,
    output: 'json',
    registryConcurrency: 8,
    nodePools: [defaultPool()],
  })
  const bad: Array<[string[], RegExp]> = [
    [[], /what to diagnose is required/],
    [['pod'], /a pod name is required/],
    [['pod', 'Bad_Name'], /not a pod name/],
    [['pod', 'a', 'b'], /unexpected argument "b"/],
    [['pod', 'a', '-A'], /--all-namespaces: applies to `diagnose namespace` only/],
    [['namespace', 'a', '-A'], /cannot be combined/],
    [['namespace', 'a', '-n', 'b'], /--namespace: names b, but the argument names a/],
    [['namespace', 'Team'], /not a namespace name/],
    [['deployment', 'x'], /unknown target "deployment"/],
    [['pod', 'a', '--timeout', '2m'], /--timeout: 2m is outside/],
    [['pod', 'a', '-o', 'yaml'], /--output/],
    [['pod', 'a', '--bogus'], /unknown flag --bogus/],
  ]
  for (const [argv, message] of bad)
    t.throws(() => parseDiagnoseConfig(argv, {}), { name: 'ConfigError', message }, argv.join(' '))
})

const HOST = 'reg.example.com'
const use = { container: 'app', kind: 'container' as const, field: 'spec.containers[0]', image: `${HOST}/team/app:1.0` }
function checked(
  result: Partial<CheckResult> & { code: CheckResult['code'] },
  extra: Partial<Extract<ImageOutcome, { kind: 'checked' }>> = {},
): ImageOutcome {
  return {
    kind: 'checked',
    use,
    ref: parseReference(use.image),
    result: { attempts: [], detail: '', ...result } as CheckResult,
    tried: [],
    incomplete: false,
    ...extra,
  }
}
function ctx(over: Partial<FixContext> = {}): FixContext {
  return {
    namespace: 'team',
    pod: 'app-1',
    workload: workloadOf({
      name: 'app-1',
      labels: { 'pod-template-hash': 'h1' },
      controller: { kind: 'ReplicaSet', name: 'app-h1' },
    }),
    secrets: [],
    serviceAccount: { name: 'default', imagePullSecrets: [] },
    nodePlatform: undefined,
    node: 'n1',
    ...over,
  }
}
const create = (name: string): string =>
  `kubectl create secret docker-registry ${name} --docker-server=${HOST} --docker-username=USER --docker-password=PASSWORD -n team`

t.test(
  "fix lines (the shared fix builder in diagnose's voice; its own table is in test/policy/fixes.test.ts)",
  async (t) => {
    const denied = checked({ code: 'AccessDenied' })
    t.same(
      findingFor(
        denied,
        ctx({ secrets: [{ name: 'old', state: 'wrong-type', detail: 'type Opaque', type: 'Opaque' }] }),
        'denied',
      ).fixes,
      [
        `secret "old" is of type Opaque, which the kubelet ignores for pulls; if nothing else reads it, replace it with a docker-registry secret: kubectl delete secret old -n team && ${create('old')}`,
      ],
      'a listed secret of the wrong type is re-created under its name',
    )

    const other = findingFor(
      denied,
      ctx({ secrets: [{ name: 'hub', state: 'found', registries: ['https://index.docker.io/v1/'] }] }),
      'denied',
    )
    t.same(
      other.fixes,
      [
        `"hub" holds no credentials for ${HOST}: create a pull secret for ${HOST}: ${create('pull-reg-example-com')}`,
        `list it in the pod template of deployment/app (a new rollout follows): kubectl patch deployment/app -n team -p '{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"hub"},{"name":"pull-reg-example-com"}]}}}}'`,
      ],
      'pod lists its own secrets: no service-account route (the account\'s secrets would not be copied); the patch keeps "hub" whether the template or the account listed it',
    )

    const bare = ctx({
      workload: workloadOf({ name: 'app-1', labels: {}, controller: undefined }),
      serviceAccount: { name: 'runner', imagePullSecrets: undefined },
    })
    t.same(findingFor(denied, bare, undefined).fixes, [
      `create a pull secret for ${HOST}: ${create('pull-reg-example-com')}`,
      'add "pull-reg-example-com" to the imagePullSecrets of service account "runner" (pullguard could not read its current list)',
      'then delete pod app-1 and create it again from its manifest (nothing re-creates a bare pod)',
      "or, instead of the service account, list it in the imagePullSecrets of pod app-1's manifest ([{name: pull-reg-example-com}]) and create the pod again (a pod's imagePullSecrets cannot be changed in place)",
    ])

    const refused = findingFor(
      checked({ code: 'AccessDenied' }, { tried: ['secret team/regcred (key "reg.example.com")'] }),
      ctx({ secrets: [{ name: 'regcred', state: 'found', registries: [HOST] }] }),
      'denied',
    )
    t.equal(refused.now, `${HOST} refused the credentials (tried secret team/regcred (key "reg.example.com"))`)
    t.same(refused.fixes, [
      `update secret "regcred" in place with an account that may pull from ${HOST}: ${create('regcred')} --dry-run=client -o yaml | kubectl apply -f -`,
    ])

    const nodeOnly = findingFor(
      checked({ code: 'RepositoryNotFoundOrDenied' }, { tried: ['node docker config (key "reg.example.com")'] }),
      ctx(),
      'denied',
    )
    t.same(nodeOnly.fixes, [
      `check the image name first (${HOST} answers the same for a repository that does not exist)`,
      `node docker config (key "reg.example.com") was refused: give the pods a pull secret`,
      `create a pull secret for ${HOST}: ${create('pull-reg-example-com')}`,
      `give it to the pods of service account "default", keeping the account's list: kubectl patch serviceaccount default -n team -p '{"imagePullSecrets":[{"name":"pull-reg-example-com"}]}'`,
      'then have the pod made again with it: kubectl delete pod app-1 -n team',
      `or, instead of the service account, list it in the pod template of deployment/app (a new rollout follows): kubectl patch deployment/app -n team -p '{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"pull-reg-example-com"}]}}}}'`,
    ])

    const broken: ImageOutcome = {
      kind: 'broken-secret',
      use,
      problem: { secret: 'regcred', kind: 'unparseable', detail: 'not JSON', type: 'kubernetes.io/dockerconfigjson' },
    }
    t.same(
      findingFor(
        broken,
        ctx({
          secrets: [
            { name: 'regcred', state: 'unparseable', detail: 'not JSON', type: 'kubernetes.io/dockerconfigjson' },
          ],
        }),
        undefined,
      ),
      {
        verdict: 'still-broken',
        reason: 'PullSecretUnparseable',
        now: 'pull secret "regcred" exists but does not parse (not JSON); the kubelet fails every pull of this pod while it is listed',
        fixes: [
          `write secret "regcred" again with valid content: ${create('regcred')} --dry-run=client -o yaml | kubectl apply -f -`,
          'or remove "regcred" from the imagePullSecrets of deployment/app',
        ],
      },
    )

    t.same(findingFor(checked({ code: 'TagNotFound' }, { suggestions: [] }), ctx(), 'not-found').fixes, [
      `no existing tag of ${HOST}/team/app is near "1.0": push that tag, or pick one that exists`,
    ])
    t.same(findingFor(checked({ code: 'TagNotFound' }), ctx(), 'not-found').fixes, [
      `push tag "1.0" to ${HOST}/team/app, or use a tag that exists (pullguard could not list its tags)`,
    ])
    t.same(findingFor(checked({ code: 'RepositoryNotFound' }), ctx(), 'not-found').fixes, [
      `check the image name for typos: ${HOST} has no repository team/app (pullguard could not read ${HOST}'s catalog)`,
      'set the image that exists: kubectl set image deployment/app -n team app=IMAGE',
    ])

    const unreachable = findingFor(
      checked({ code: 'RegistryUnreachable', cause: 'timeout', detail: 'no answer within 4000 ms' }),
      ctx(),
      'network',
    )
    t.same(
      [unreachable.verdict, unreachable.now],
      ['unknown', `could not be verified from here: ${HOST} is unreachable (timeout: no answer within 4000 ms)`],
    )

    const exists = checked({
      code: 'Exists',
      digest: 'sha256:' + 'a'.repeat(64),
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      decidedBy: 'HEAD',
    })
    t.same(findingFor(exists, ctx(), 'network').fixes, [
      `the node could not reach ${HOST}, and pullguard can from where it runs: check DNS, routes, firewall rules and proxy settings for ${HOST} on node n1`,
    ])
    t.same(findingFor(exists, ctx(), 'not-found').verdict, 'pulls-now')

    t.same(neverPullFinding('app', 'local/app:dev', ctx()), {
      verdict: 'still-broken',
      reason: 'ImageNeverPulled',
      now: 'imagePullPolicy is Never and "local/app:dev" is not present on node n1; the kubelet will not pull it',
      fixes: [
        'load the image onto the nodes beforehand, or let the kubelet pull it: set imagePullPolicy: IfNotPresent on container "app" in deployment/app',
      ],
    })
  },
)
