// The Helm chart (manifests/helm/pullguard), rendered by helm v4 built from its Go module:
// - `helm lint --strict` over the value sets users pick;
// - for the same settings it renders exactly the objects of manifests/base and of each overlay
//   (Helm's own labels and annotations aside), so every check of manifests.test.ts holds for it too;
// - values.schema.json refuses wrong types, unknown modes and misspelt keys at install time;
// - a matrix of values: timeouts, names and namespaces, certificates three ways, images, flags,
//   and the ServiceMonitor, PrometheusRule and dashboard.
// Installing, upgrading and uninstalling into a real API server is test/e2e/helm.test.ts.
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type {
  V1ConfigMap,
  V1Deployment,
  V1Namespace,
  V1Secret,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node'
import { dump, load } from 'js-yaml'
import t from 'tap'
import { parseServeConfig } from '../../../src/serve/config.js'
import { argsWithoutPodFiles, flag, ofKind, the } from './objects.js'
import { CHART_DIR, decode, helm, helmTemplate, kustomize, REPO_ROOT, type KubeObject } from './render.js'

const HELM_LABELS = [
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/managed-by',
  'helm.sh/chart',
]

/** Helm's own labels and annotations removed; objects in a stable order. */
function comparable(objects: readonly KubeObject[]): KubeObject[] {
  return objects
    .map((o) => {
      const c = structuredClone(o)
      for (const l of HELM_LABELS) delete c.metadata.labels?.[l]
      const annotations = c.metadata.annotations ?? {}
      for (const a of Object.keys(annotations))
        if (a.startsWith('helm.sh/') || a.startsWith('meta.helm.sh/')) delete annotations[a]
      if (Object.keys(annotations).length === 0) delete c.metadata.annotations
      return c
    })
    .sort((a, b) =>
      `${a.kind}/${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
        `${b.kind}/${b.metadata.namespace ?? ''}/${b.metadata.name}`,
      ),
    )
}

async function render(values: unknown, options: { release?: string; namespace?: string } = {}): Promise<KubeObject[]> {
  return decode(await helmTemplate(values, options))
}

function containerOf(
  objects: readonly KubeObject[],
  name = 'pullguard',
): NonNullable<NonNullable<V1Deployment['spec']>['template']['spec']>['containers'][number] {
  const c = the<V1Deployment>(objects, 'Deployment', name).spec?.template.spec?.containers[0]
  if (c === undefined) throw new Error('no container')
  return c
}

/** The base's settings: the namespace made by the chart, and the Secret pullguard-tls made elsewhere (certs/make-certs.sh). */
const AS_BASE = { namespace: { create: true }, certificates: { source: 'secret', secret: { name: 'pullguard-tls' } } }

const SAME_AS: ReadonlyArray<{ dir: string; values: Record<string, unknown> }> = [
  { dir: 'manifests/base', values: AS_BASE },
  { dir: 'manifests/overlays/warn', values: { ...AS_BASE, mode: 'warn' } },
  {
    dir: 'manifests/overlays/cert-manager',
    values: { namespace: { create: true }, certificates: { source: 'cert-manager' } },
  },
  {
    dir: 'manifests/overlays/eks',
    values: {
      ...AS_BASE,
      credentialProviders: { preset: 'eks', eks: { roleArn: 'arn:aws:iam::111122223333:role/pullguard-ecr-read' } },
    },
  },
  {
    dir: 'manifests/overlays/gke',
    values: {
      ...AS_BASE,
      credentialProviders: { preset: 'gke', gke: { serviceAccount: 'pullguard@my-project.iam.gserviceaccount.com' } },
    },
  },
  { dir: 'manifests/overlays/aks', values: { ...AS_BASE, credentialProviders: { preset: 'aks' } } },
  {
    dir: 'manifests/overlays/credential-provider-tokens',
    values: { ...AS_BASE, credentialProviders: { serviceAccountTokens: true } },
  },
  { dir: 'manifests/overlays/audit-events', values: { ...AS_BASE, audit: { events: true } } },
  { dir: 'manifests/overlays/containerd-mirrors', values: { ...AS_BASE, registryMirrors: { source: 'containerd' } } },
  { dir: 'manifests/overlays/crio-mirrors', values: { ...AS_BASE, registryMirrors: { source: 'crio' } } },
  { dir: 'manifests/overlays/pin-digests', values: { ...AS_BASE, pinDigests: { enabled: true } } },
]

t.test('for the same settings the chart renders the objects kustomize renders', async (t) => {
  for (const { dir, values } of SAME_AS) {
    t.same(
      comparable(await render(values)),
      comparable(decode(kustomize(dir))),
      `${dir} = helm template with ${JSON.stringify(values)}`,
    )
  }
})

/** The overlay's own pools.yaml and the team's ConfigMap it mounts for the gpu pool, as chart values. */
const NODE_POOLS = {
  pools: (
    load(readFileSync(join(REPO_ROOT, 'manifests', 'overlays', 'node-pools', 'pools.yaml'), 'utf8')) as {
      pools: unknown[]
    }
  ).pools,
  files: [
    {
      mountPath: 'gpu/certs.d',
      configMap: { name: 'pullguard-pool-gpu', items: [{ key: 'docker.io', path: 'docker.io/hosts.toml' }] },
    },
  ],
}

t.test(
  'node pools: the chart renders the objects of manifests/overlays/node-pools, each tool rolling the pods its own way when the pools change',
  async (t) => {
    const chart = await render({ ...AS_BASE, nodePools: NODE_POOLS })
    const overlay = decode(kustomize('manifests/overlays/node-pools'))
    // kustomize names the ConfigMap for its content (and the Deployment follows the name); the chart
    // keeps the name and puts the content's checksum on the pod template. Both roll the pods on a change.
    const generated = ofKind<V1ConfigMap>(overlay, 'ConfigMap')[0]?.metadata?.name ?? ''
    t.match(generated, /^pullguard-node-pools-[a-z0-9]{10}$/)
    const renamed = JSON.parse(
      JSON.stringify(overlay).replaceAll(`"${generated}"`, '"pullguard-node-pools"'),
    ) as KubeObject[]
    const template = the<V1Deployment>(chart, 'Deployment', 'pullguard').spec?.template
    t.match(template?.metadata?.annotations?.['checksum/node-pools'], /^[a-f0-9]{64}$/)
    const annotations = template?.metadata?.annotations ?? {}
    delete annotations['checksum/node-pools']
    if (Object.keys(annotations).length === 0) delete template?.metadata?.annotations
    // The pools file: the overlay's text with its comments, the chart's rendered from the values.
    for (const objects of [chart, renamed]) {
      const cm = the<V1ConfigMap>(objects, 'ConfigMap', 'pullguard-node-pools')
      // Compared as what it says: the same YAML, keys sorted.
      cm.data = { 'pools.yaml': dump(load(cm.data?.['pools.yaml'] ?? ''), { sortKeys: true }) }
    }
    t.same(comparable(chart), comparable(renamed))
  },
)

t.test('node pools: the pods roll when the pools change, and only then', async (t) => {
  const checksum = async (values: Record<string, unknown>): Promise<string | undefined> =>
    the<V1Deployment>(await render(values), 'Deployment', 'pullguard').spec?.template.metadata?.annotations?.[
      'checksum/node-pools'
    ]
  const first = await checksum({ nodePools: NODE_POOLS })
  t.equal(await checksum({ nodePools: NODE_POOLS, mode: 'warn' }), first, 'another setting: the same pools file')
  const renamedPool = structuredClone(NODE_POOLS)
  ;(renamedPool.pools[1] as { name: string }).name = 'general-purpose'
  t.not(await checksum({ nodePools: renamedPool }), first, 'a changed pool: a new checksum')
  t.equal(await checksum({}), undefined, 'no pools: no annotation')
})

t.test('the comparison sees a difference: another mode differs from the base', async (t) => {
  t.notSame(comparable(await render({ ...AS_BASE, mode: 'warn' })), comparable(decode(kustomize('manifests/base'))))
})

const EVERYTHING = {
  replicas: 3,
  mode: 'warn',
  onRegistryError: 'deny',
  timeout: '12s',
  logLevel: 'debug',
  exemptNamespaces: ['pullguard', 'kube-system'],
  exemptImages: ['registry.internal/*'],
  insecureRegistries: ['registry.lab:5000'],
  platforms: ['linux/amd64', 'linux/arm64'],
  registryCA: { configMap: 'registry-ca' },
  nodeDockerConfig: { secretName: 'node-pull-credentials' },
  credentialProviders: {
    preset: 'custom',
    serviceAccountTokens: true,
    custom: {
      configHostPath: '/etc/kubernetes/credential-provider.yaml',
      binDirHostPath: '/opt/credential-providers',
      extraHostFiles: ['/etc/kubernetes/cloud.json'],
    },
  },
  audit: { interval: '30m', registryQps: '5', events: true },
  registryMirrors: { source: 'containerd', containerdHostPath: '/etc/containerd/mirrors.d' },
  registryConcurrency: '4',
  serviceMonitor: { enabled: true },
  prometheusRule: { enabled: true },
  dashboard: { enabled: true },
  extraArgs: ['--platform=linux/s390x'],
  extraEnv: [{ name: 'HTTPS_PROXY', value: 'http://proxy.internal:3128' }],
  podDisruptionBudget: { minAvailable: 2 },
  nodePools: {
    pools: [
      {
        name: 'gpu',
        nodeLabels: { pool: 'gpu' },
        taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
        runtime: 'containerd://2.1.4',
        platforms: ['linux/amd64'],
        imagePullCredentialsVerificationPolicy: 'AlwaysVerify',
        containerdHostsDir: 'gpu/certs.d',
        nodeDockerConfig: 'gpu/docker/config.json',
      },
      { name: 'general', fromFlags: true },
    ],
    files: [
      {
        mountPath: 'gpu/certs.d',
        configMap: { name: 'gpu-hosts', items: [{ key: 'docker.io', path: 'docker.io/hosts.toml' }] },
      },
      { mountPath: 'gpu/docker', secret: { secretName: 'gpu-pull-credentials' } },
    ],
  },
}

t.test('helm lint --strict passes for the defaults and the value sets users pick', async (t) => {
  const sets: Array<Record<string, unknown>> = [
    {},
    ...SAME_AS.map((s) => s.values),
    { ...AS_BASE, nodePools: NODE_POOLS },
    EVERYTHING,
    {
      certificates: {
        source: 'cert-manager',
        certManager: { issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'corp-ca' } },
      },
    },
  ]
  for (const values of sets) {
    const run = await helm(['lint', '--strict', CHART_DIR, '--namespace', 'pullguard', '--values', '-'], {
      input: JSON.stringify(values),
    })
    t.equal(run.status, 0, `${JSON.stringify(values)}: ${run.stdout}${run.stderr}`)
    t.match(run.stdout, '1 chart(s) linted, 0 chart(s) failed')
  }
})

t.test('values.schema.json refuses wrong types, unknown modes and misspelt keys at install time', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ mode: 'block' }, "at '/mode': value must be one of 'enforce', 'warn'"],
    [{ onRegistryError: 'ignore' }, "at '/onRegistryError': value must be one of 'allow', 'deny'"],
    [{ replicas: 'two' }, "at '/replicas': got string, want integer"],
    [{ timeout: 8 }, "at '/timeout': got number, want string"],
    [{ timeout: '8 seconds' }, "at '/timeout'"],
    [{ audit: { events: 'yes' } }, "at '/audit/events': got string, want boolean"],
    [{ audit: { intervall: '1h' } }, "additional properties 'intervall' not allowed"],
    [
      { credentialProviders: { preset: 'azure' } },
      "at '/credentialProviders/preset': value must be one of 'none', 'eks', 'gke', 'aks', 'custom'",
    ],
    [
      { certificates: { source: 'vault' } },
      "at '/certificates/source': value must be one of 'generate', 'cert-manager', 'secret'",
    ],
    [{ webhook: { failurePolicy: 'ignore' } }, "at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'"],
    [{ exemptNamespaces: ['Kube_System'] }, "at '/exemptNamespaces/0'"],
    [{ extraArgs: ['mode=warn'] }, "at '/extraArgs/0'"],
    [{ image: { digest: 'latest' } }, "at '/image/digest'"],
    [{ modes: 'warn' }, "additional properties 'modes' not allowed"],
    [{ audit: { registryQps: 500 } }, "at '/audit/registryQps'"],
    [
      { certificates: { certManager: { issuerRef: { kind: 'ClusterIssuer' } } } },
      "at '/certificates/certManager/issuerRef'",
    ],
    [{ certificates: { generate: { renewDays: 0 } } }, "at '/certificates/generate/renewDays'"],
    [
      { registryMirrors: { source: 'docker' } },
      "at '/registryMirrors/source': value must be one of 'none', 'containerd', 'crio'",
    ],
    [{ registryMirrors: { containerdHostPath: 'etc/containerd/certs.d' } }, "at '/registryMirrors/containerdHostPath'"],
    [{ registryConcurrency: '0' }, "at '/registryConcurrency'"],
    [{ registryConcurrency: '300' }, "at '/registryConcurrency'"],
    [{ nodePools: { pools: [{ name: 'gpu', hostsDir: 'gpu' }] } }, "additional properties 'hostsDir' not allowed"],
    [
      { nodePools: { pools: [{ name: 'gpu', nodeLabels: { gpu: true } }] } },
      "at '/nodePools/pools/0/nodeLabels/gpu': got boolean, want string",
    ],
    [{ nodePools: { pools: [{ name: 'GPU' }] } }, "at '/nodePools/pools/0/name'"],
    [
      { nodePools: { pools: [{ name: 'gpu', taints: [{ key: 'gpu', effect: 'NoEffect' }] }] } },
      "at '/nodePools/pools/0/taints/0/effect'",
    ],
    [
      { nodePools: { pools: [{ name: 'gpu' }], files: [{ mountPath: '/etc/containerd', configMap: { name: 'x' } }] } },
      "at '/nodePools/files/0/mountPath'",
    ],
    [
      { nodePools: { pools: [{ name: 'gpu' }], files: [{ mountPath: 'gpu/../..', configMap: { name: 'x' } }] } },
      "at '/nodePools/files/0/mountPath'",
    ],
    [
      {
        nodePools: {
          pools: [{ name: 'gpu' }],
          files: [{ mountPath: 'gpu', configMap: { name: 'x' }, secret: { secretName: 'y' } }],
        },
      },
      "at '/nodePools/files/0': 'oneOf' failed",
    ],
  ]
  for (const [values, message] of cases) {
    const run = await helm(['template', 'pullguard', CHART_DIR, '--namespace', 'pullguard', '--values', '-'], {
      input: JSON.stringify(values),
    })
    t.not(run.status, 0, JSON.stringify(values))
    t.match(run.stderr, "values don't meet the specifications of the schema", JSON.stringify(values))
    t.match(run.stderr, message, JSON.stringify(values))
  }
})

t.test('settings the schema cannot judge fail the render with a message naming the value', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [
      { timeout: '29s' },
      "timeout 29s is outside 100ms..28s: the webhook's timeoutSeconds (the timeout + 2s) may be at most 30",
    ],
    [{ timeout: '50ms' }, 'timeout 50ms is outside 100ms..28s'],
    [
      { credentialProviders: { preset: 'custom' } },
      'credentialProviders.custom.configHostPath is required with preset custom',
    ],
    [{ certificates: { source: 'secret' } }, 'certificates.secret.name is required with certificates.source=secret'],
    [
      { certificates: { generate: { certDays: 365, renewDays: 400 } } },
      'certificates.generate.renewDays (400) must be less than certDays (365): otherwise every upgrade makes a new certificate',
    ],
    [
      { certificates: { generate: { caDays: 700 } } },
      'certificates.generate.caDays (700) must be more than certDays + renewDays (760)',
    ],
    [{ audit: { interval: '500ms' } }, 'audit.interval 500ms is shorter than 1s (0 turns the audit off)'],
    [{ audit: { registryQps: '0.001' } }, 'audit.registryQps 0.001 is outside 0.01..100'],
    [
      { registryMirrors: { source: 'containerd', configMap: { name: 'hosts' } } },
      'registryMirrors.configMap.items is required with source containerd',
    ],
    [
      { nodePools: { files: [{ mountPath: 'gpu', configMap: { name: 'x' } }] } },
      'nodePools.files needs nodePools.pools',
    ],
    [
      { nodePools: { pools: [{ name: 'gpu', containerdHostsDir: 'gpu/certs.d' }] } },
      'nodePools.pools[0] (gpu).containerdHostsDir gpu/certs.d is under no nodePools.files mountPath',
    ],
    [
      {
        registryMirrors: { source: 'containerd' },
        nodePools: { pools: [{ name: 'gpu', containerdHostsDir: '/etc/containerd/certs.d/gpu' }] },
      },
      "nodePools.pools[0] (gpu).containerdHostsDir /etc/containerd/certs.d/gpu is on the hostPath mount /etc/containerd/certs.d: those are the files of the node pullguard runs on, not the pool's",
    ],
  ]
  for (const [values, message] of cases) {
    const run = await helm(['template', 'pullguard', CHART_DIR, '--namespace', 'pullguard', '--values', '-'], {
      input: JSON.stringify(values),
    })
    t.not(run.status, 0, JSON.stringify(values))
    t.match(run.stderr, message)
  }
})

t.test("the webhook's timeoutSeconds stays above pullguard's --timeout", async (t) => {
  for (const [timeout, seconds] of [
    ['8s', 10],
    ['1500ms', 4],
    ['20s', 22],
    ['27.5s', 30],
    ['28s', 30],
    ['1m', undefined],
    ['100ms', 3],
  ] as const) {
    if (seconds === undefined) {
      await t.rejects(render({ timeout }), { message: /outside 100ms\.\.28s/ }, `${timeout} is refused`)
      continue
    }
    const objects = await render({ timeout })
    const hook = the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard')
      .webhooks?.[0]
    t.equal(hook?.timeoutSeconds, seconds, `--timeout=${timeout} → timeoutSeconds ${seconds}`)
    const config = parseServeConfig(argsWithoutPodFiles(objects), {})
    t.ok((hook?.timeoutSeconds ?? 0) * 1000 >= config.timeoutMs + 2000, `${timeout}: 2 s of room`)
  }
})

t.test('every setting becomes a flag pullguard serve accepts, and the mounts it names', async (t) => {
  const objects = await render(EVERYTHING)
  const c = containerOf(objects)
  const args = c.args ?? []
  const config = parseServeConfig(argsWithoutPodFiles(objects), {})
  t.match(config, {
    mode: 'warn',
    onRegistryError: 'deny',
    timeoutMs: 12_000,
    exemptNamespaces: ['pullguard', 'kube-system'],
    exemptImages: ['registry.internal/*'],
    insecureRegistries: ['registry.lab:5000'],
  })
  t.same(
    config.platforms?.map((p) => `${p.os}/${p.architecture}`),
    ['linux/amd64', 'linux/arm64', 'linux/s390x'],
  )
  t.match(config.audit, { intervalMs: 30 * 60_000, qps: 5, events: true })
  t.equal(flag(args, 'log-level'), 'debug')
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.name, m]))
  const volumes = new Map(
    (the<V1Deployment>(objects, 'Deployment', 'pullguard').spec?.template.spec?.volumes ?? []).map((v) => [v.name, v]),
  )
  t.equal(flag(args, 'registry-ca'), '/etc/pullguard/registry-ca/ca.crt')
  t.equal(mounts.get('registry-ca')?.mountPath, '/etc/pullguard/registry-ca')
  t.equal(volumes.get('registry-ca')?.configMap?.name, 'registry-ca')
  t.equal(flag(args, 'node-docker-config'), '/etc/pullguard/node-docker-config/.dockerconfigjson')
  t.equal(volumes.get('node-docker-config')?.secret?.secretName, 'node-pull-credentials')
  t.equal(flag(args, 'image-credential-provider-config'), '/etc/pullguard/credential-provider/config')
  t.equal(flag(args, 'image-credential-provider-bin-dir'), '/opt/credential-providers')
  t.same(volumes.get('credential-provider-config')?.hostPath, {
    path: '/etc/kubernetes/credential-provider.yaml',
    type: 'File',
  })
  t.same(volumes.get('credential-provider-file-0')?.hostPath, { path: '/etc/kubernetes/cloud.json', type: 'File' })
  t.equal(mounts.get('credential-provider-file-0')?.mountPath, '/etc/kubernetes/cloud.json')
  t.equal(flag(args, 'containerd-hosts-dir'), '/etc/containerd/mirrors.d')
  t.equal(mounts.get('registry-mirrors')?.mountPath, '/etc/containerd/mirrors.d', "at the node's own path")
  t.same(volumes.get('registry-mirrors')?.hostPath, { path: '/etc/containerd/mirrors.d', type: 'Directory' })
  t.equal(config.registryConcurrency, 4)
  t.equal(flag(args, 'node-pools'), '/etc/pullguard/pools/pools.yaml')
  t.same(
    [
      mounts.get('node-pools')?.mountPath,
      mounts.get('node-pool-file-0')?.mountPath,
      mounts.get('node-pool-file-1')?.mountPath,
    ],
    ['/etc/pullguard/pools', '/etc/pullguard/pools/gpu/certs.d', '/etc/pullguard/pools/gpu/docker'],
    "each pool's files mounted inside the pools folder, where pools.yaml's relative paths point",
  )
  t.same(volumes.get('node-pools')?.configMap, { name: 'pullguard-node-pools' })
  t.same(volumes.get('node-pool-file-0')?.configMap, EVERYTHING.nodePools.files[0]?.configMap)
  t.same(volumes.get('node-pool-file-1')?.secret, { secretName: 'gpu-pull-credentials', defaultMode: 288 })
  t.same(
    load(the<V1ConfigMap>(objects, 'ConfigMap', 'pullguard-node-pools').data?.['pools.yaml'] ?? ''),
    { pools: EVERYTHING.nodePools.pools },
    'the pools file is the values',
  )
  // pullguard reads it as the pod would: the folder as mounted, with the Secret's config.json.
  const pools = await mkdtemp(join(tmpdir(), 'pullguard-chart-pools-'))
  t.teardown(() => rm(pools, { recursive: true, force: true }))
  await writeFile(
    join(pools, 'pools.yaml'),
    the<V1ConfigMap>(objects, 'ConfigMap', 'pullguard-node-pools').data?.['pools.yaml'] ?? '',
  )
  await mkdir(join(pools, 'gpu', 'certs.d'), { recursive: true })
  await mkdir(join(pools, 'gpu', 'docker'))
  await writeFile(join(pools, 'gpu', 'docker', 'config.json'), '{"auths": {}}')
  const pooled = parseServeConfig(
    [...argsWithoutPodFiles(objects), `--node-pools=${join(pools, 'pools.yaml')}`],
    {},
  ).nodePools
  t.match(pooled, [
    {
      name: 'gpu',
      runtime: 'containerd://2.1.4',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      kubelet: { verificationPolicy: 'AlwaysVerify' },
      node: {
        nodeDockerConfigPath: join(pools, 'gpu', 'docker', 'config.json'),
        mirrors: { kind: 'containerd', dir: join(pools, 'gpu', 'certs.d') },
      },
    },
    { name: 'general', nodeKey: 'flags' },
  ])
  for (const m of mounts.values()) if (m.name !== 'tmp') t.equal(m.readOnly, true, `${m.name} is read-only`)
  t.match(c.env, [
    { name: 'POD_NAME' },
    { name: 'POD_NAMESPACE' },
    { name: 'NODE_OPTIONS', value: '--max-old-space-size=320' },
    { name: 'HTTPS_PROXY', value: 'http://proxy.internal:3128' },
  ])
  t.equal(the<V1Deployment>(objects, 'Deployment', 'pullguard').spec?.replicas, 3)
  t.match(the<KubeObject & { spec: unknown }>(objects, 'PodDisruptionBudget', 'pullguard').spec, { minAvailable: 2 })
  // hostPath needs the privileged level on the namespace the chart makes.
  const ns = the<V1Namespace>(await render({ ...EVERYTHING, namespace: { create: true } }), 'Namespace', 'pullguard')
  t.match(ns.metadata?.labels, {
    'pod-security.kubernetes.io/enforce': 'privileged',
    'pod-security.kubernetes.io/warn': 'restricted',
    'pullguard.io/mode': 'off',
  })
  t.match(grantsOf(objects), ['/events:create', '/events:patch', '/serviceaccounts/token:create'])
})

function grantsOf(objects: readonly KubeObject[]): string[] {
  const role = the<KubeObject & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> }>(
    objects,
    'ClusterRole',
    'pullguard',
  )
  return role.rules
    .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))))
    .filter((g) => /events|token/.test(g))
    .sort()
}

t.test(
  "the nodes' registry files from a ConfigMap instead: no hostPath, so the namespace stays restricted",
  async (t) => {
    const crio = await render({
      namespace: { create: true },
      registryMirrors: { source: 'crio', configMap: { name: 'node-registries' } },
    })
    const c = containerOf(crio)
    t.equal(flag(c.args ?? [], 'registries-conf'), '/etc/pullguard/registry-mirrors/registries.conf')
    const volumes = the<V1Deployment>(crio, 'Deployment', 'pullguard').spec?.template.spec?.volumes ?? []
    t.same(volumes.find((v) => v.name === 'registry-mirrors')?.configMap, { name: 'node-registries' })
    t.equal(volumes.filter((v) => v.hostPath !== undefined).length, 0)
    t.equal(
      the<V1Namespace>(crio, 'Namespace', 'pullguard').metadata?.labels?.['pod-security.kubernetes.io/enforce'],
      'restricted',
    )
    const items = [{ key: 'docker.io', path: 'docker.io/hosts.toml' }]
    const containerd = await render({
      registryMirrors: { source: 'containerd', configMap: { name: 'node-hosts', items } },
    })
    t.equal(flag(containerOf(containerd).args ?? [], 'containerd-hosts-dir'), '/etc/pullguard/registry-mirrors')
    t.same(
      the<V1Deployment>(containerd, 'Deployment', 'pullguard').spec?.template.spec?.volumes?.find(
        (v) => v.name === 'registry-mirrors',
      )?.configMap,
      { name: 'node-hosts', items },
    )
    t.equal(flag(c.args ?? [], 'crio-config'), undefined, "from a ConfigMap, CRI-O's own folder is not read")
    const crioHost = await render({ registryMirrors: { source: 'crio', crioHostPath: '/etc/crio/registries.conf' } })
    t.equal(
      flag(containerOf(crioHost).args ?? [], 'registries-conf'),
      '/etc/crio/registries.conf',
      'a hostPath file: its folder is mounted, the flag names the file',
    )
    t.equal(flag(containerOf(crioHost).args ?? [], 'crio-config'), '/etc/crio/crio.conf')
    t.equal(
      the<V1Deployment>(crioHost, 'Deployment', 'pullguard').spec?.template.spec?.volumes?.filter(
        (v) => v.hostPath?.path === '/etc/crio',
      ).length,
      1,
      "CRI-O's folder is registries.conf's here: mounted once",
    )
    const noCrio = await render({ registryMirrors: { source: 'crio', crioConfigHostPath: '' } })
    t.equal(flag(containerOf(noCrio).args ?? [], 'crio-config'), undefined, 'crioConfigHostPath "" reads none')
    t.same(
      the<V1Deployment>(crioHost, 'Deployment', 'pullguard').spec?.template.spec?.volumes?.find(
        (v) => v.name === 'registry-mirrors',
      )?.hostPath,
      { path: '/etc/crio', type: 'Directory' },
    )
  },
)

t.test('the grace period covers the preStop, a review that just arrived and exiting', async (t) => {
  const grace = async (values: Record<string, unknown>): Promise<number | undefined> =>
    the<V1Deployment>(await render(values), 'Deployment', 'pullguard').spec?.template.spec
      ?.terminationGracePeriodSeconds
  t.equal(await grace({}), 30, "the base's 30 for the default 8s")
  t.equal(await grace({ timeout: '24s' }), 41, '5 s preStop + 24 s + 2 s + 10 s')
  t.equal(await grace({ timeout: '24s', terminationGracePeriodSeconds: 90 }), 90, 'or as set')
})

t.test('pullguard can be a subchart: the global values Helm passes down are accepted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-umbrella-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'charts'))
  await cp(CHART_DIR, join(dir, 'charts', 'pullguard'), { recursive: true })
  // As umbrella charts include a dependency: a condition on pullguard.enabled, and global values.
  await writeFile(
    join(dir, 'Chart.yaml'),
    JSON.stringify({
      apiVersion: 'v2',
      name: 'platform',
      version: '1.0.0',
      dependencies: [{ name: 'pullguard', version: '0.1.0', condition: 'pullguard.enabled' }],
    }),
  )
  await writeFile(
    join(dir, 'values.yaml'),
    JSON.stringify({ global: { imageRegistry: 'mirror.internal' }, pullguard: { enabled: true, mode: 'warn' } }),
  )
  const run = await helm(['template', 'platform', dir, '--namespace', 'pullguard'])
  t.equal(run.status, 0, run.stderr)
  t.match(run.stdout, '- --mode=warn')
})

t.test('the audit interval 0 turns the audit off', async (t) => {
  t.equal(parseServeConfig(argsWithoutPodFiles(await render({ audit: { interval: '0' } })), {}).audit, undefined)
  t.equal(parseServeConfig(argsWithoutPodFiles(await render({ audit: { interval: 0 } })), {}).audit, undefined)
})

t.test('the image: the appVersion by default, a tag, or a digest that wins over the tag', async (t) => {
  t.equal(containerOf(await render({})).image, 'ghcr.io/pullguard/pullguard:v0.1.0')
  t.equal(
    containerOf(await render({ image: { repository: 'mirror.internal/pullguard', tag: 'v0.1.1' } })).image,
    'mirror.internal/pullguard:v0.1.1',
  )
  const digest = `sha256:${'a'.repeat(64)}`
  t.equal(containerOf(await render({ image: { tag: 'v9', digest } })).image, `ghcr.io/pullguard/pullguard@${digest}`)
})

t.test('another release name and namespace: every name and reference follows', async (t) => {
  const objects = await render({ certificates: { source: 'generate' } }, { release: 'guard', namespace: 'security' })
  for (const o of objects) {
    if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding' && o.kind !== 'ValidatingWebhookConfiguration')
      t.equal(o.metadata.namespace, 'security', `${o.kind} ${o.metadata.name}`)
    t.match(o.metadata.name, /^guard-pullguard/, `${o.kind} ${o.metadata.name}`)
  }
  const vwc = the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'guard-pullguard')
  const hook = vwc.webhooks?.[0]
  t.same(hook?.clientConfig.service, { namespace: 'security', name: 'guard-pullguard', path: '/validate', port: 443 })
  t.same(hook?.namespaceSelector?.matchExpressions?.[1], {
    key: 'kubernetes.io/metadata.name',
    operator: 'NotIn',
    values: ['security'],
  })
  const binding = the<KubeObject & { subjects: unknown[] }>(objects, 'ClusterRoleBinding', 'guard-pullguard')
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'guard-pullguard', namespace: 'security' }])
  const dep = the<V1Deployment>(objects, 'Deployment', 'guard-pullguard')
  t.equal(dep.spec?.template.spec?.serviceAccountName, 'guard-pullguard')
  t.equal(dep.spec?.template.spec?.volumes?.find((v) => v.name === 'tls')?.secret?.secretName, 'guard-pullguard-tls')
  const cert = new X509Certificate(
    Buffer.from(the<V1Secret>(objects, 'Secret', 'guard-pullguard-tls').data?.['tls.crt'] ?? '', 'base64'),
  )
  t.equal(cert.subjectAltName, 'DNS:guard-pullguard.security.svc, DNS:guard-pullguard.security.svc.cluster.local')
})

t.test(
  'generated certificates: a CA, and a serving certificate for the Service signed by it and named in the caBundle',
  async (t) => {
    const objects = await render({})
    const ca = the<V1Secret>(objects, 'Secret', 'pullguard-ca')
    const tls = the<V1Secret>(objects, 'Secret', 'pullguard-tls')
    t.equal(tls.type, 'kubernetes.io/tls')
    const caCert = new X509Certificate(Buffer.from(ca.data?.['tls.crt'] ?? '', 'base64'))
    const serving = new X509Certificate(Buffer.from(tls.data?.['tls.crt'] ?? '', 'base64'))
    t.ok(caCert.ca, 'the CA is a CA')
    t.ok(serving.verify(caCert.publicKey), 'the serving certificate is signed by the CA')
    t.notOk(serving.ca)
    t.equal(serving.subjectAltName, 'DNS:pullguard.pullguard.svc, DNS:pullguard.pullguard.svc.cluster.local')
    t.ok(
      serving.checkPrivateKey(createPrivateKey(Buffer.from(tls.data?.['tls.key'] ?? '', 'base64'))),
      "tls.key is the certificate's key",
    )
    t.equal(tls.data?.['ca.crt'], ca.data?.['tls.crt'])
    const hook = the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard')
      .webhooks?.[0]
    t.equal(hook?.clientConfig.caBundle, ca.data?.['tls.crt'], 'the caBundle is the CA')
    const days = (Date.parse(serving.validTo) - Date.now()) / 86_400_000
    t.ok(days > 729 && days <= 731, `the serving certificate lasts certDays (730): ${days.toFixed(1)}`)
    // A full serving certificate, renewed renewDays early, always fits in the CA.
    t.ok(
      Date.parse(serving.validTo) + 30 * 86_400_000 < Date.parse(caCert.validTo),
      `the serving certificate ends ${serving.validTo}, well before the CA (${caCert.validTo})`,
    )
    // helm template cannot read the Secrets back, so each render makes new ones; the install test
    // shows that an upgrade keeps them.
    t.not(the<V1Secret>(await render({}), 'Secret', 'pullguard-tls').data?.['tls.crt'], tls.data?.['tls.crt'])
  },
)

t.test('certificates from an existing Secret: its name is mounted and the caBundle given is set', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
  const objects = await render({ certificates: { source: 'secret', secret: { name: 'corp-tls', caBundle: pem } } })
  t.same(ofKind(objects, 'Secret'), [], 'the chart makes no Secret')
  t.equal(
    the<V1Deployment>(objects, 'Deployment', 'pullguard').spec?.template.spec?.volumes?.find((v) => v.name === 'tls')
      ?.secret?.secretName,
    'corp-tls',
  )
  t.equal(
    the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard').webhooks?.[0]
      ?.clientConfig.caBundle,
    Buffer.from(pem).toString('base64'),
  )
})

t.test(
  'cert-manager with your own issuer: only the serving Certificate, issued by it, and the CA injected',
  async (t) => {
    const issuerRef = { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'corp-ca' }
    const objects = await render({ certificates: { source: 'cert-manager', certManager: { issuerRef } } })
    t.same(ofKind(objects, 'Issuer'), [])
    const certs = ofKind<KubeObject & { spec: { issuerRef: unknown; dnsNames: string[]; secretName: string } }>(
      objects,
      'Certificate',
    )
    t.equal(certs.length, 1)
    t.same(certs[0]?.spec.issuerRef, issuerRef)
    t.same(certs[0]?.spec.dnsNames, ['pullguard.pullguard.svc', 'pullguard.pullguard.svc.cluster.local'])
    const vwc = the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard')
    t.equal(vwc.metadata?.annotations?.['cert-manager.io/inject-ca-from'], 'pullguard/pullguard-tls')
    t.equal(vwc.webhooks?.[0]?.clientConfig.caBundle, undefined)
  },
)

t.test('ServiceMonitor, PrometheusRule and dashboard: off by default, and what they ship when on', async (t) => {
  const kinds = (objects: readonly KubeObject[]): string[] => objects.map((o) => o.kind)
  const off = await render({})
  t.notOk(
    kinds(off).includes('ServiceMonitor') ||
      kinds(off).includes('PrometheusRule') ||
      off.some((o) => o.kind === 'ConfigMap'),
  )
  const on = await render({
    serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    prometheusRule: { enabled: true },
    dashboard: { enabled: true, namespace: 'monitoring', annotations: { grafana_folder: 'Platform' } },
  })
  const sm = the<KubeObject & { spec: { endpoints: Array<Record<string, unknown>>; selector: unknown } }>(
    on,
    'ServiceMonitor',
    'pullguard',
  )
  t.equal(sm.metadata.labels?.['release'], 'kube-prometheus-stack')
  t.same(sm.spec.selector, {
    matchLabels: { 'app.kubernetes.io/name': 'pullguard', 'app.kubernetes.io/component': 'webhook' },
  })
  t.equal(
    sm.spec.endpoints[0]?.['honorLabels'],
    undefined,
    "target labels win (the audit's workload label is workload_namespace)",
  )
  t.match(sm.spec.endpoints[0], {
    port: 'https',
    scheme: 'https',
    path: '/metrics',
    tlsConfig: { serverName: 'pullguard.pullguard.svc', ca: { secret: { name: 'pullguard-tls', key: 'ca.crt' } } },
  })
  const rule = the<KubeObject & { spec: { groups: Array<{ rules: Array<Record<string, unknown>> }> } }>(
    on,
    'PrometheusRule',
    'pullguard',
  )
  const file = load(readFileSync(join(CHART_DIR, 'files', 'alerts.yaml'), 'utf8')) as {
    groups: Array<{ rules: Array<Record<string, unknown>> }>
  }
  const own = file.groups[0]?.rules.find((r) => r['alert'] === 'PullguardNotAnswering')
  if (own === undefined) throw new Error('no PullguardNotAnswering in the file')
  own['expr'] = '(sum(pullguard_ready{namespace="pullguard"}) or vector(0)) < 1'
  own['labels'] = { ...(own['labels'] as object), namespace: 'pullguard' }
  t.same(
    rule.spec,
    file,
    'the PrometheusRule is files/alerts.yaml, Prometheus templates untouched, with PullguardNotAnswering on this release',
  )
  const cm = the<V1ConfigMap>(on, 'ConfigMap', 'pullguard-dashboard')
  t.equal(cm.metadata?.namespace, 'monitoring')
  t.equal(cm.metadata?.labels?.['grafana_dashboard'], '1')
  t.equal(cm.metadata?.annotations?.['grafana_folder'], 'Platform')
  t.same(
    JSON.parse(cm.data?.['pullguard.json'] ?? ''),
    JSON.parse(readFileSync(join(CHART_DIR, 'files', 'dashboard.json'), 'utf8')),
  )
})

t.test('NOTES.txt says how to check that it works, in the mode installed', async (t) => {
  const enforce = await helm(
    ['install', 'pullguard', CHART_DIR, '--dry-run=client', '--namespace', 'pullguard', '--values', '-'],
    { input: '{}' },
  )
  t.equal(enforce.status, 0, enforce.stderr)
  t.match(
    enforce.stdout,
    'kubectl run pullguard-check --image=registry.k8s.io/pause:no-such-tag --restart=Never --dry-run=server -n default',
  )
  t.match(enforce.stdout, 'pullguard denies it')
  const warn = await helm(
    ['install', 'pullguard', CHART_DIR, '--dry-run=client', '--namespace', 'pullguard', '--values', '-'],
    { input: JSON.stringify({ mode: 'warn', certificates: { source: 'secret', secret: { name: 'x' } } }) },
  )
  t.match(warn.stdout, 'pullguard (warn mode) admits it with a warning')
  t.match(warn.stdout, 'WARNING: certificates.secret.caBundle is empty')
  t.notMatch(enforce.stdout, 'WARNING')
  t.notMatch(enforce.stdout, 'pod-security')
  const eks = await helm(
    ['install', 'pullguard', CHART_DIR, '--dry-run=client', '--namespace', 'pullguard', '--values', '-'],
    { input: JSON.stringify({ credentialProviders: { preset: 'eks' } }) },
  )
  t.match(
    eks.stdout,
    'kubectl label namespace pullguard pod-security.kubernetes.io/enforce=privileged',
    'a hostPath preset says how to let its pods in',
  )
})

t.test(
  "pinDigests: the mutating webhook gets the chart's caBundle, the release's names and the validating webhook's selectors",
  async (t) => {
    const objects = await render(
      {
        pinDigests: { enabled: true },
        webhook: {
          namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['shop'] }] },
          objectSelector: { matchLabels: { 'pullguard.io/skip': 'false' } },
        },
      },
      { release: 'guard', namespace: 'security' },
    )
    const mutating = objects.find((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as {
      metadata: { name: string }
      webhooks: Array<Record<string, any>>
    }
    t.equal(mutating.metadata.name, 'guard-pullguard')
    const hook = mutating.webhooks[0]!
    t.same(hook.clientConfig.service, { namespace: 'security', name: 'guard-pullguard', path: '/mutate', port: 443 })
    const validating = the<V1ValidatingWebhookConfiguration>(
      objects,
      'ValidatingWebhookConfiguration',
      'guard-pullguard',
    )
    t.equal(hook.clientConfig.caBundle, validating.webhooks?.[0]?.clientConfig.caBundle, 'the same CA')
    t.ok(hook.clientConfig.caBundle.length > 0)
    t.same(hook.namespaceSelector.matchExpressions.at(-1), { key: 'team', operator: 'In', values: ['shop'] })
    t.same(hook.namespaceSelector.matchExpressions[0], { key: 'pullguard.io/pin', operator: 'In', values: ['digest'] })
    t.same(hook.objectSelector, { matchLabels: { 'pullguard.io/skip': 'false' } }, 'what is not checked is not pinned')
    t.equal(objects.filter((o) => o.kind === 'MutatingWebhookConfiguration').length, 1)
    t.equal((await render({})).filter((o) => o.kind === 'MutatingWebhookConfiguration').length, 0, 'off by default')
  },
)
