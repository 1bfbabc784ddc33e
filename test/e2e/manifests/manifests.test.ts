/**
 * manifests/ rendered with `kubectl kustomize` and decoded by kubectl (render.ts), then checked
 * against what pullguard itself needs: its flags (parsed by the real config parser), the kinds it
 * judges, the API it reads, and the timeouts the API server and pullguard keep.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import t, { type Test } from 'tap'
import { join, posix, relative } from 'node:path'
import {
  loadAllYaml,
  type V1ClusterRole,
  type V1ConfigMap,
  type V1ClusterRoleBinding,
  type V1Namespace,
  type V1PodDisruptionBudget,
  type V1Service,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node'
import { parseDuration } from '../../../src/commands/values.js'
import { parseServeConfig } from '../../../src/serve/config.js'
import { podSpecLocation } from '../../../src/admission/workloads.js'
import { decode, kustomizationDirs, kustomize, type KubeObject } from './render.js'
import {
  argsWithoutPodFiles,
  flag,
  grants,
  ofKind,
  pullguardContainer as container,
  pullguardDeployment as deployment,
  pullguardWebhook as webhook,
  selects,
  the,
} from './objects.js'

const BASE = 'manifests/base'
const CERT_MANAGER = 'manifests/overlays/cert-manager'
const WARN = 'manifests/overlays/warn'
const TOKENS = 'manifests/overlays/credential-provider-tokens'
const EVENTS = 'manifests/overlays/audit-events'
const CLOUDS = ['manifests/overlays/eks', 'manifests/overlays/gke', 'manifests/overlays/aks']
const MIRRORS = ['manifests/overlays/containerd-mirrors', 'manifests/overlays/crio-mirrors']
const NODE_POOLS = 'manifests/overlays/node-pools'
const PIN = 'manifests/overlays/pin-digests'
const ALL = [BASE, CERT_MANAGER, WARN, TOKENS, EVENTS, ...CLOUDS, ...MIRRORS, NODE_POOLS, PIN]

const IMAGE = 'ghcr.io/pullguard/pullguard:v0.1.0'
const TLS_DIR = '/etc/pullguard/tls'
/** The API server never waits longer for a webhook than this (admissionregistration validation). */
const MAX_WEBHOOK_TIMEOUT_SECONDS = 30

/** What the webhook must send pullguard: every object that carries a pod spec (src/admission/workloads.ts). */
const JUDGED: ReadonlyArray<{ group: string; resource: string; kind: string }> = [
  { group: '', resource: 'pods', kind: 'Pod' },
  { group: '', resource: 'pods/ephemeralcontainers', kind: 'Pod' },
  { group: '', resource: 'replicationcontrollers', kind: 'ReplicationController' },
  { group: '', resource: 'podtemplates', kind: 'PodTemplate' },
  { group: 'apps', resource: 'deployments', kind: 'Deployment' },
  { group: 'apps', resource: 'replicasets', kind: 'ReplicaSet' },
  { group: 'apps', resource: 'statefulsets', kind: 'StatefulSet' },
  { group: 'apps', resource: 'daemonsets', kind: 'DaemonSet' },
  { group: 'batch', resource: 'jobs', kind: 'Job' },
  { group: 'batch', resource: 'cronjobs', kind: 'CronJob' },
]

/** Read-only, and only what a decision reads; list and watch on the kinds that make pods, for the audit. */
const RBAC = [
  ...['secrets', 'serviceaccounts', 'namespaces', 'nodes'].flatMap((r) =>
    ['get', 'list', 'watch'].map((v) => `/${r}:${v}`),
  ),
  ...[
    '/pods',
    '/replicationcontrollers',
    'apps/deployments',
    'apps/statefulsets',
    'apps/daemonsets',
    'apps/replicasets',
    'batch/cronjobs',
    'batch/jobs',
  ].flatMap((r) => ['list', 'watch'].map((v) => `${r}:${v}`)),
].sort()

interface Rendered {
  yaml: string
  objects: KubeObject[]
}

/** Rendered once, up front: without kubectl one test fails saying so and the rest are skipped. */
const rendering = ((): { ok: true; manifests: Map<string, Rendered> } | { ok: false; problem: string } => {
  try {
    return {
      ok: true,
      manifests: new Map(
        ALL.map((dir) => {
          const yaml = kustomize(dir)
          return [dir, { yaml, objects: decode(yaml) }]
        }),
      ),
    }
  } catch (err) {
    return { ok: false, problem: (err as Error).message }
  }
})()

function check(
  name: string,
  body: (t: Test, m: (dir: string) => KubeObject[], yaml: (dir: string) => string) => void,
): void {
  t.test(
    name,
    { skip: rendering.ok ? false : 'manifests could not be rendered (see "kubectl renders …")' },
    async (t) => {
      if (!rendering.ok) return
      const { manifests } = rendering
      const get = (dir: string): Rendered => {
        const r = manifests.get(dir)
        if (r === undefined) throw new Error(`${dir} was not rendered`)
        return r
      }
      body(
        t,
        (dir) => get(dir).objects,
        (dir) => get(dir).yaml,
      )
    },
  )
}

t.test('kubectl renders every kustomization under manifests/', async (t) => {
  if (!rendering.ok) return void t.fail(rendering.problem)
  t.same(ALL.slice().sort(), kustomizationDirs(), 'every kustomization under manifests/ is one these tests render')
})

check('every document is a Kubernetes object with apiVersion, kind and metadata.name', (t, m) => {
  for (const dir of ALL) {
    t.ok(m(dir).length > 0, `${dir} renders objects`)
    for (const o of m(dir))
      t.ok(
        typeof o.apiVersion === 'string' &&
          typeof o.kind === 'string' &&
          typeof o.metadata?.name === 'string' &&
          o.metadata.name !== '',
        `${dir}: ${o.kind} ${o.metadata?.name}`,
      )
  }
})

check(
  'every field of the built-in objects is one the Kubernetes API knows (no typo is silently dropped)',
  (t, m, yaml) => {
    // client-node's typed models drop fields they do not know; for built-in kinds a dropped field is a typo
    // the API server would reject (or ignore). Custom resources come back untyped, as they are.
    for (const dir of ALL) {
      const typed = loadAllYaml(yaml(dir)).map((o: unknown) => JSON.parse(JSON.stringify(o)) as KubeObject)
      t.equal(typed.length, m(dir).length, `${dir}: both decoders see the same documents`)
      for (const [i, o] of m(dir).entries())
        t.strictSame(typed[i], o, `${dir}: ${o.kind} ${o.metadata.name} survives the typed model unchanged`)
    }
  },
)

check(
  'base installs exactly the objects of a pullguard install, each in namespace pullguard when namespaced',
  (t, m) => {
    const names = m(BASE)
      .map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)
      .sort()
    t.same(names, [
      'ClusterRole//pullguard',
      'ClusterRoleBinding//pullguard',
      'Deployment/pullguard/pullguard',
      'Namespace//pullguard',
      'PodDisruptionBudget/pullguard/pullguard',
      'Role/pullguard/pullguard-audit',
      'RoleBinding/pullguard/pullguard-audit',
      'Service/pullguard/pullguard',
      'ServiceAccount/pullguard/pullguard',
      'ValidatingWebhookConfiguration//pullguard',
    ])
  },
)

check(
  'RBAC: get, list and watch on secrets, serviceaccounts, namespaces and nodes, list and watch on workloads, the audit Lease in its own namespace, bound to the ServiceAccount, nothing else',
  (t, m) => {
    for (const dir of ALL) {
      const objects = m(dir)
      const lease = the<V1ClusterRole>(objects, 'Role', 'pullguard-audit')
      t.equal(lease.metadata.namespace, 'pullguard')
      t.same(
        grants((lease.rules ?? []).map(({ resourceNames: _, ...rule }) => rule)),
        ['coordination.k8s.io/leases:create', 'coordination.k8s.io/leases:get', 'coordination.k8s.io/leases:update'],
        `${dir}: the Lease verbs, in pullguard's namespace only`,
      )
      t.same(
        (lease.rules ?? []).filter((r) => r.verbs.includes('get')).map((r) => r.resourceNames),
        [['pullguard-audit']],
        'get and update only on the one Lease',
      )
      const leaseBinding = the<V1ClusterRoleBinding>(objects, 'RoleBinding', 'pullguard-audit')
      t.same(
        [leaseBinding.metadata.namespace, leaseBinding.roleRef, leaseBinding.subjects],
        [
          'pullguard',
          { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pullguard-audit' },
          [{ kind: 'ServiceAccount', name: 'pullguard', namespace: 'pullguard' }],
        ],
      )
      t.same(
        ofKind(objects, 'Role').length + ofKind(objects, 'RoleBinding').length,
        2,
        `${dir}: no other namespaced RBAC`,
      )
      t.same(
        ofKind<V1ClusterRole>(objects, 'ClusterRole').map((r) => r.metadata.name),
        ['pullguard'],
        `${dir}: one ClusterRole`,
      )
      const role = the<V1ClusterRole>(objects, 'ClusterRole', 'pullguard')
      t.equal(role.aggregationRule, undefined, `${dir}: no aggregation`)
      // The tokens overlay adds one grant: TokenRequest, for credential provider plugins' audiences.
      const extra =
        dir === TOKENS ? ['/serviceaccounts/token:create'] : dir === EVENTS ? ['/events:create', '/events:patch'] : []
      t.same(grants(role.rules ?? []), [...RBAC, ...extra].sort(), `${dir}: exactly the grants pullguard uses`)
      const binding = the<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', 'pullguard')
      t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pullguard' })
      t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'pullguard', namespace: 'pullguard' }])
      t.equal(deployment(objects).spec?.template.spec?.serviceAccountName, 'pullguard')
      t.equal(
        deployment(objects).spec?.template.spec?.automountServiceAccountToken,
        true,
        'the token pullguard reads the API with',
      )
      t.ok(the(objects, 'ServiceAccount', 'pullguard'))
    }
  },
)

check('the webhook timeout is above the review budget (--timeout) and within what the API server allows', (t, m) => {
  for (const dir of ALL) {
    const args = container(m(dir)).args ?? []
    const timeout = flag(args, 'timeout')
    t.not(timeout, undefined, `${dir}: --timeout is set explicitly`)
    const budgetMs = parseDuration(timeout ?? '8s', '--timeout')
    const seconds = webhook(m(dir)).timeoutSeconds ?? 10
    t.ok(seconds * 1000 > budgetMs, `${dir}: timeoutSeconds ${seconds}s > --timeout ${timeout}`)
    t.ok(seconds <= MAX_WEBHOOK_TIMEOUT_SECONDS, `${dir}: timeoutSeconds ${seconds} ≤ ${MAX_WEBHOOK_TIMEOUT_SECONDS}`)
  }
})

check('every container argument is a flag pullguard serve accepts, with a valid value', (t, m) => {
  for (const dir of ALL) {
    const args = container(m(dir)).args ?? []
    t.equal(container(m(dir)).command, undefined, `${dir}: the image's entrypoint (node dist/cli.js serve) runs`)
    t.ok(
      args.every((a) => /^--[a-z-]+=/.test(a)),
      `${dir}: --flag=value form`,
    )
    // The TLS files exist only in the pod; they are checked against the mounts below.
    const rest = argsWithoutPodFiles(m(dir))
    t.doesNotThrow(() => parseServeConfig(rest, {}), `${dir}: ${rest.join(' ')}`)
  }
  const base = parseServeConfig(argsWithoutPodFiles(m(BASE)), {})
  t.match(base, { port: 8443, mode: 'enforce', onRegistryError: 'allow', timeoutMs: 8000 })
})

check('the Service sends 443 to the container port pullguard listens on, and selects its pods', (t, m) => {
  for (const dir of ALL) {
    const objects = m(dir)
    const service = the<V1Service>(objects, 'Service', 'pullguard')
    const ports = service.spec?.ports ?? []
    t.equal(ports.length, 1)
    const port = ports[0]
    t.equal(port?.port, 443)
    const listening = parseServeConfig(argsWithoutPodFiles(objects), {}).port
    const target = (container(objects).ports ?? []).find(
      (p) => p.name === port?.targetPort || p.containerPort === port?.targetPort,
    )
    t.not(target, undefined, `${dir}: targetPort ${String(port?.targetPort)} is a container port`)
    t.equal(target?.containerPort, listening, `${dir}: that port is --port`)
    t.same([target?.name, target?.protocol ?? 'TCP'], ['https', 'TCP'])
    t.ok(
      selects(
        { matchLabels: service.spec?.selector ?? { none: 'selector' } },
        deployment(objects).spec?.template.metadata?.labels ?? {},
      ),
      `${dir}: selector matches the pods`,
    )
  }
})

check('the image, the probes and the TLS and scratch volumes are where pullguard expects them', (t, m) => {
  for (const dir of ALL) {
    const objects = m(dir)
    const c = container(objects)
    t.equal(c.image, IMAGE, `${dir}: image`)
    t.same(c.livenessProbe?.httpGet, { path: '/healthz', port: 'https', scheme: 'HTTPS' }, `${dir}: liveness`)
    t.same(c.readinessProbe?.httpGet, { path: '/readyz', port: 'https', scheme: 'HTTPS' }, `${dir}: readiness`)
    const args = c.args ?? []
    const mounts = c.volumeMounts ?? []
    const volumes = deployment(objects).spec?.template.spec?.volumes ?? []
    const tls = mounts.find((v) => v.mountPath === TLS_DIR)
    t.equal(tls?.readOnly, true, `${dir}: TLS mounted read-only at ${TLS_DIR}`)
    t.same(volumes.find((v) => v.name === tls?.name)?.secret?.secretName, 'pullguard-tls')
    t.equal(flag(args, 'tls-cert'), `${TLS_DIR}/tls.crt`)
    t.equal(flag(args, 'tls-key'), `${TLS_DIR}/tls.key`)
    t.equal(posix.dirname(flag(args, 'tls-cert') ?? ''), tls?.mountPath)
    const tmp = mounts.find((v) => v.mountPath === '/tmp')
    t.not(volumes.find((v) => v.name === tmp?.name)?.emptyDir, undefined, `${dir}: writable /tmp`)
    t.same(
      c.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom,
      { fieldRef: { fieldPath: 'metadata.namespace' } },
      `${dir}: own namespace from the downward API`,
    )
    // Shutdown: the preStop wait, then up to --timeout + 2s for reviews in flight, inside the grace period.
    const sleep = c.lifecycle?.preStop?.exec?.command
    t.same(sleep?.[0], 'sleep', `${dir}: preStop waits for the endpoints to drop the pod`)
    const budget = Number(sleep?.[1]) + parseDuration(flag(args, 'timeout') ?? '8s', 'timeout') / 1000 + 2
    t.ok(
      budget <= (deployment(objects).spec?.template.spec?.terminationGracePeriodSeconds ?? 30),
      `${dir}: shutdown (${budget}s) fits the grace period`,
    )
  }
})

check('the pod runs non-root, read-only, unprivileged, with no capabilities and seccomp RuntimeDefault', (t, m) => {
  for (const dir of ALL) {
    const spec = deployment(m(dir)).spec?.template.spec
    const pod = spec?.securityContext ?? {}
    const own = container(m(dir)).securityContext ?? {}
    // The container's setting wins over the pod's (PodSecurityContext docs).
    const effective = {
      runAsNonRoot: own.runAsNonRoot ?? pod.runAsNonRoot,
      runAsUser: own.runAsUser ?? pod.runAsUser,
      runAsGroup: own.runAsGroup ?? pod.runAsGroup,
      seccomp: (own.seccompProfile ?? pod.seccompProfile)?.type,
    }
    t.same(effective, { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccomp: 'RuntimeDefault' }, dir)
    t.equal(own.readOnlyRootFilesystem, true, `${dir}: read-only root filesystem`)
    t.equal(own.allowPrivilegeEscalation, false, `${dir}: no privilege escalation`)
    t.strictSame(own.capabilities, { drop: ['ALL'] }, `${dir}: all capabilities dropped, none added`)
    t.equal(own.privileged, undefined, `${dir}: not privileged`)
    t.equal(spec?.hostNetwork, undefined, `${dir}: no host network`)
    t.equal(
      spec?.priorityClassName,
      undefined,
      'system-cluster-critical is refused outside kube-system on some clusters',
    )
  }
})

check(
  'two replicas, spread over nodes and zones without blocking scheduling, kept by a PodDisruptionBudget',
  (t, m) => {
    for (const dir of ALL) {
      const objects = m(dir)
      const d = deployment(objects)
      const labels = d.spec?.template.metadata?.labels ?? {}
      t.equal(d.spec?.replicas, 2, `${dir}: replicas`)
      t.ok(selects(d.spec?.selector ?? {}, labels), `${dir}: the selector matches the template`)
      const spread = d.spec?.template.spec?.topologySpreadConstraints ?? []
      t.same(spread.map((c) => c.topologyKey).sort(), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'])
      for (const c of spread)
        t.ok(
          c.whenUnsatisfiable === 'ScheduleAnyway' && selects(c.labelSelector ?? {}, labels),
          `${dir}: ${c.topologyKey} spread is soft and counts pullguard pods`,
        )
      const anti = d.spec?.template.spec?.affinity?.podAntiAffinity
      t.equal(anti?.requiredDuringSchedulingIgnoredDuringExecution, undefined)
      t.ok(
        anti?.preferredDuringSchedulingIgnoredDuringExecution?.some(
          (p) =>
            p.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
            selects(p.podAffinityTerm.labelSelector ?? {}, labels),
        ),
      )
      t.strictSame(
        container(objects).resources,
        { requests: { cpu: '50m', memory: '256Mi' }, limits: { memory: '512Mi' } },
        `${dir}: resources`,
      )
      const nodeOptions = container(objects).env?.find((e) => e.name === 'NODE_OPTIONS')?.value
      t.equal(nodeOptions, '--max-old-space-size=320', `${dir}: the heap capped below the memory limit`)
      // node refuses most V8 flags in NODE_OPTIONS, and then exits before pullguard runs at all.
      const accepted = spawnSync(process.execPath, ['-e', '0'], {
        env: { ...process.env, NODE_OPTIONS: nodeOptions ?? '' },
        encoding: 'utf8',
      })
      t.equal(accepted.status, 0, `${dir}: node starts with this NODE_OPTIONS ${accepted.stderr}`)
      const pdb = the<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget', 'pullguard')
      t.equal(pdb.spec?.minAvailable, 1, `${dir}: minAvailable`)
      t.ok(
        selects(pdb.spec?.selector ?? { matchLabels: { none: 'selector' } }, labels),
        `${dir}: the budget covers the pods`,
      )
    }
  },
)

check('the webhook sends CREATE and UPDATE of every object that carries a pod spec, and nothing else', (t, m) => {
  for (const { group, kind } of JUDGED)
    t.not(podSpecLocation(group, kind), undefined, `pullguard judges ${group}/${kind}`)
  for (const dir of ALL) {
    const rules = webhook(m(dir)).rules ?? []
    const sent = rules
      .flatMap(
        (r) =>
          r.apiGroups?.flatMap(
            (g) => r.resources?.flatMap((res) => r.operations?.map((op) => `${g}/${res}:${op}`) ?? []) ?? [],
          ) ?? [],
      )
      .sort()
    t.same(
      sent,
      JUDGED.flatMap(({ group, resource }) => [`${group}/${resource}:CREATE`, `${group}/${resource}:UPDATE`]).sort(),
      dir,
    )
    for (const r of rules) {
      t.same(r.apiVersions, ['v1'], 'the v1 shapes pullguard reads; matchPolicy Equivalent converts others')
      t.equal(r.scope, 'Namespaced')
    }
  }
})

check(
  'the webhook calls the Service at /validate, v1 reviews, no side effects, fails open, caBundle left to cert-manager or the script',
  (t, m) => {
    for (const dir of ALL) {
      const w = webhook(m(dir))
      const service = the<V1Service>(m(dir), 'Service', 'pullguard')
      t.same(
        w.clientConfig.service,
        {
          namespace: service.metadata?.namespace,
          name: service.metadata?.name,
          path: '/validate',
          port: service.spec?.ports?.[0]?.port,
        },
        dir,
      )
      t.equal(w.clientConfig.url, undefined)
      t.equal(
        w.clientConfig.caBundle,
        undefined,
        `${dir}: an applied manifest must not overwrite the injected caBundle`,
      )
      t.equal(w.name, 'pullguard.pullguard.io')
      t.same(w.admissionReviewVersions, ['v1'])
      t.equal(w.sideEffects, 'None', `${dir}: sideEffects`)
      t.equal(w.failurePolicy, 'Ignore', `${dir}: failurePolicy`)
      t.equal(w.matchPolicy, 'Equivalent', `${dir}: matchPolicy`)
      t.equal(w.objectSelector, undefined, 'pod labels are not a way around pullguard')
      // matchConditions may only spare UPDATEs (pullguard judges only new images then); every CREATE is sent.
      for (const c of w.matchConditions ?? []) t.match(c.expression, /^request\.operation != 'UPDATE' \|\|/, c.name)
    }
  },
)

check("namespaces labelled pullguard.io/mode=off and pullguard's own namespace are never sent", (t, m) => {
  for (const dir of ALL) {
    const selector = webhook(m(dir)).namespaceSelector ?? {}
    // The API server adds kubernetes.io/metadata.name to every namespace.
    const ns = (name: string, labels: Record<string, string> = {}): Record<string, string> => ({
      'kubernetes.io/metadata.name': name,
      ...labels,
    })
    t.ok(selects(selector, ns('team-a')), `${dir}: an unlabelled namespace is judged`)
    t.ok(selects(selector, ns('team-a', { 'pullguard.io/mode': 'warn' })), 'warn is judged')
    t.ok(selects(selector, ns('team-a', { 'pullguard.io/mode': 'enforce' })), 'enforce is judged')
    t.notOk(selects(selector, ns('team-a', { 'pullguard.io/mode': 'off' })), 'off is not sent')
    t.notOk(
      selects(selector, ns('pullguard', { 'pullguard.io/mode': 'enforce' })),
      "pullguard's namespace is not sent, whatever its labels",
    )
    const own = the<V1Namespace>(m(dir), 'Namespace', 'pullguard')
    t.equal(own.metadata?.labels?.['pullguard.io/mode'], 'off')
    t.notOk(selects(selector, ns('pullguard', own.metadata?.labels)))
    t.equal(deployment(m(dir)).metadata?.namespace, 'pullguard')
  }
})

check(
  "cert-manager overlay: a CA chain issues pullguard-tls for the Service's DNS names and the CA is injected",
  (t, m) => {
    const objects = m(CERT_MANAGER)
    const vwc = the<V1ValidatingWebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'pullguard')
    t.equal(vwc.metadata?.annotations?.['cert-manager.io/inject-ca-from'], 'pullguard/pullguard-tls')
    interface IssuerRef {
      group?: string
      kind?: string
      name: string
    }
    type Certificate = KubeObject & {
      spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; issuerRef: IssuerRef; usages?: string[] }
    }
    type Issuer = KubeObject & { spec: { selfSigned?: object; ca?: { secretName: string } } }
    const issuer = (ref: IssuerRef): Issuer => {
      t.same(
        [ref.group ?? 'cert-manager.io', ref.kind ?? 'Issuer'],
        ['cert-manager.io', 'Issuer'],
        `${ref.name} is an Issuer of this overlay`,
      )
      return the<Issuer>(objects, 'Issuer', ref.name)
    }
    const serving = the<Certificate>(objects, 'Certificate', 'pullguard-tls')
    t.equal(serving.metadata.namespace, 'pullguard')
    t.equal(serving.spec.secretName, 'pullguard-tls', 'the Secret the Deployment mounts')
    t.same(serving.spec.dnsNames, ['pullguard.pullguard.svc', 'pullguard.pullguard.svc.cluster.local'])
    t.not(serving.spec.isCA, true)
    t.ok(serving.spec.usages?.includes('server auth'))
    const caIssuer = issuer(serving.spec.issuerRef)
    const ca = ofKind<Certificate>(objects, 'Certificate').find(
      (c) => c.spec.secretName === caIssuer.spec.ca?.secretName,
    )
    t.equal(ca?.spec.isCA, true, 'the serving certificate is signed by a CA certificate of this overlay')
    t.not(issuer(ca?.spec.issuerRef ?? { name: '?' }).spec.selfSigned, undefined, 'which is self-signed')
    for (const o of objects.filter((o) => o.apiVersion.startsWith('cert-manager.io/')))
      t.equal(o.metadata.namespace, 'pullguard', `${o.kind} ${o.metadata.name}`)
    const key = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
    const added = objects.filter((o) => !m(BASE).some((b) => key(b) === key(o)))
    t.same(
      added.map(key).sort(),
      [
        'Certificate/pullguard/pullguard-ca',
        'Certificate/pullguard/pullguard-tls',
        'Issuer/pullguard/pullguard-ca',
        'Issuer/pullguard/pullguard-selfsigned',
      ],
      'adds only the cert-manager objects',
    )
    for (const b of m(BASE)) {
      const o = structuredClone(objects.find((o) => key(o) === key(b)))
      if (o?.kind === 'ValidatingWebhookConfiguration') delete o.metadata.annotations
      t.strictSame(o, b, `${key(b)} as in the base, but for the inject annotation`)
    }
  },
)

check('credential-provider-tokens overlay: the base plus create on serviceaccounts/token, nothing else', (t, m) => {
  const expected = structuredClone(m(BASE))
  const role = expected.find((o) => o.kind === 'ClusterRole') as unknown as V1ClusterRole
  role.rules = [...(role.rules ?? []), { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] }]
  t.strictSame(m(TOKENS), expected)
})

check(
  "cloud overlays: the node's credential provider binary and config mounted read-only from the host, named by the kubelet's flags",
  (t, m) => {
    const expected: Record<string, { config: string; binDir: string; annotation?: string }> = {
      'manifests/overlays/eks': {
        config: '/etc/eks/image-credential-provider/config.json',
        binDir: '/etc/eks/image-credential-provider',
        annotation: 'eks.amazonaws.com/role-arn',
      },
      'manifests/overlays/gke': {
        config: '/etc/pullguard/credential-provider/cri-auth-config.yaml',
        binDir: '/home/kubernetes/bin',
        annotation: 'iam.gke.io/gcp-service-account',
      },
      'manifests/overlays/aks': {
        config: '/etc/pullguard/credential-provider/credential-provider-config.yaml',
        binDir: '/var/lib/kubelet/credential-provider',
      },
    }
    for (const dir of CLOUDS) {
      const want = expected[dir]!
      const objects = m(dir)
      const c = container(objects)
      t.equal(flag(c.args ?? [], 'image-credential-provider-config'), want.config, `${dir}: config flag`)
      t.equal(flag(c.args ?? [], 'image-credential-provider-bin-dir'), want.binDir, `${dir}: bin dir flag`)
      const volumes = deployment(objects).spec?.template.spec?.volumes ?? []
      for (const path of [want.config, want.binDir]) {
        const mount = (c.volumeMounts ?? []).find((v) => path === v.mountPath || path.startsWith(`${v.mountPath}/`))
        t.ok(mount?.readOnly === true, `${dir}: ${path} is on a read-only mount`)
        t.ok(
          volumes.find((v) => v.name === mount?.name)?.hostPath !== undefined,
          `${dir}: ${path} comes from the node (hostPath)`,
        )
      }
      t.match(
        the(objects, 'Namespace', 'pullguard').metadata.labels,
        {
          'pod-security.kubernetes.io/enforce': 'privileged',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
        `${dir}: hostPath needs privileged; restricted still warns`,
      )
      if (want.annotation !== undefined)
        t.ok(
          the(objects, 'ServiceAccount', 'pullguard').metadata.annotations?.[want.annotation],
          `${dir}: workload identity annotation`,
        )
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${dir}: the container stays locked down`)
    }
  },
)

check(
  "mirror overlays: the nodes' containerd hosts directory or registries.conf, read-only from the host at the node's own path",
  (t, m) => {
    // registries.conf's folder is mounted, not the file: a bind-mounted file keeps its old version once the node's is replaced.
    const expected: Record<string, { flag: string; path: string; mount: string }> = {
      'manifests/overlays/containerd-mirrors': {
        flag: 'containerd-hosts-dir',
        path: '/etc/containerd/certs.d',
        mount: '/etc/containerd/certs.d',
      },
      'manifests/overlays/crio-mirrors': {
        flag: 'registries-conf',
        path: '/etc/containers/registries.conf',
        mount: '/etc/containers',
      },
    }
    for (const dir of MIRRORS) {
      const want = expected[dir]!
      const objects = m(dir)
      const c = container(objects)
      t.equal(flag(c.args ?? [], want.flag), want.path, `${dir}: --${want.flag}`)
      const mount = (c.volumeMounts ?? []).find(
        (v) => want.path === v.mountPath || want.path.startsWith(`${v.mountPath}/`),
      )
      t.ok(mount?.readOnly === true, `${dir}: ${want.path} is on a read-only mount`)
      t.equal(mount?.mountPath, want.mount, `${dir}: mounted at ${want.mount}`)
      const volume = (deployment(objects).spec?.template.spec?.volumes ?? []).find((v) => v.name === mount?.name)
      t.equal(
        volume?.hostPath?.path,
        mount?.mountPath,
        `${dir}: at the same path as on the node (a hosts.toml's absolute ca paths resolve)`,
      )
      t.match(
        the(objects, 'Namespace', 'pullguard').metadata.labels,
        { 'pod-security.kubernetes.io/enforce': 'privileged', 'pod-security.kubernetes.io/warn': 'restricted' },
        `${dir}: hostPath needs privileged; restricted still warns`,
      )
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${dir}: the container stays locked down`)
    }
    // CRI-O's own folder too: crio.conf, its drop-ins and per-namespace policies, at the node's path.
    const crio = m('manifests/overlays/crio-mirrors')
    const c = container(crio)
    t.equal(flag(c.args ?? [], 'crio-config'), '/etc/crio/crio.conf')
    t.equal(flag(c.args ?? [], 'crio-config-dir'), '/etc/crio/crio.conf.d')
    const mount = (c.volumeMounts ?? []).find((v) => v.mountPath === '/etc/crio')
    t.equal(mount?.readOnly, true, '/etc/crio is mounted read-only')
    t.same((deployment(crio).spec?.template.spec?.volumes ?? []).find((v) => v.name === mount?.name)?.hostPath, {
      path: '/etc/crio',
      type: 'Directory',
    })
  },
)

check('audit-events overlay: the base plus --audit-events and create/patch on events, nothing else', (t, m) => {
  const expected = structuredClone(m(BASE))
  deployment(expected).spec?.template.spec?.containers[0]?.args?.push('--audit-events=true')
  const role = expected.find((o) => o.kind === 'ClusterRole') as unknown as V1ClusterRole
  role.rules = [...(role.rules ?? []), { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }]
  t.strictSame(m(EVENTS), expected)
  t.match(parseServeConfig(argsWithoutPodFiles(m(EVENTS)), {}).audit, { intervalMs: 3_600_000, events: true, qps: 2 })
})

check(
  'pin-digests overlay: the base plus --pin-digests=true and a mutating webhook for Pods only, opt-in by label, never a gate, called again after later webhooks',
  (t, m) => {
    const objects = m(PIN)
    const expected = structuredClone(m(BASE))
    deployment(expected).spec?.template.spec?.containers[0]?.args?.push('--pin-digests=true')
    t.strictSame(
      objects.filter((o) => o.kind !== 'MutatingWebhookConfiguration'),
      expected,
    )
    t.equal(parseServeConfig(argsWithoutPodFiles(objects), {}).pinDigests, true)
    const configs = ofKind<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration')
    t.same(
      configs.map((c) => c.metadata.name),
      ['pullguard'],
      'named like the validating one, which certs/make-certs.sh patches too',
    )
    const hooks = configs[0]?.webhooks ?? []
    t.equal(hooks.length, 1)
    const hook = hooks[0]!
    const validating = webhook(expected)
    t.match(hook, {
      name: 'pin.pullguard.io',
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      reinvocationPolicy: 'IfNeeded',
      matchPolicy: 'Equivalent',
      timeoutSeconds: validating.timeoutSeconds,
      clientConfig: { service: { namespace: 'pullguard', name: 'pullguard', path: '/mutate', port: 443 } },
    })
    t.same(hook.namespaceSelector?.matchExpressions, [
      { key: 'pullguard.io/pin', operator: 'In', values: ['digest'] },
      { key: 'pullguard.io/mode', operator: 'NotIn', values: ['off'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['pullguard'] },
    ])
    t.same(hook.rules, [
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['UPDATE'],
        resources: ['pods/ephemeralcontainers'],
        scope: 'Namespaced',
      },
    ])
  },
)

check('warn overlay: the base with --mode=warn, nothing else', (t, m) => {
  const expected = structuredClone(m(BASE))
  const args = deployment(expected).spec?.template.spec?.containers[0]?.args ?? []
  const i = args.indexOf('--mode=enforce')
  t.not(i, -1)
  args[i] = '--mode=warn'
  t.strictSame(m(WARN), expected)
  t.equal(parseServeConfig(argsWithoutPodFiles(m(WARN)), {}).mode, 'warn')
})

check(
  "node-pools overlay: the base plus the pools file's ConfigMap and the gpu pool's ConfigMap mounted inside its folder, nothing else",
  (t, m) => {
    const objects = m(NODE_POOLS)
    const configMaps = ofKind<V1ConfigMap>(objects, 'ConfigMap')
    t.equal(configMaps.length, 1, 'the pools file; the pool files are the team’s own ConfigMaps')
    const pools = configMaps[0]!
    t.match(
      pools.metadata.name,
      /^pullguard-node-pools-[a-z0-9]{10}$/,
      'named for its content: a new pools.yaml (read when pullguard starts) rolls the pods',
    )
    t.equal(pools.metadata.namespace, 'pullguard')
    const expected = structuredClone(m(BASE))
    const spec = deployment(expected).spec?.template.spec
    spec?.containers[0]?.args?.push('--node-pools=/etc/pullguard/pools/pools.yaml')
    spec?.containers[0]?.volumeMounts?.push(
      { name: 'node-pools', mountPath: '/etc/pullguard/pools', readOnly: true },
      { name: 'node-pool-file-0', mountPath: '/etc/pullguard/pools/gpu/certs.d', readOnly: true },
    )
    spec?.volumes?.push(
      { name: 'node-pools', configMap: { name: pools.metadata.name } },
      {
        name: 'node-pool-file-0',
        configMap: { name: 'pullguard-pool-gpu', items: [{ key: 'docker.io', path: 'docker.io/hosts.toml' }] },
      },
    )
    t.strictSame(
      objects.filter((o) => o.kind !== 'ConfigMap'),
      expected,
    )
    t.equal(
      the(objects, 'Namespace', 'pullguard').metadata.labels?.['pod-security.kubernetes.io/enforce'],
      'restricted',
      'no hostPath: the namespace stays restricted',
    )
  },
)

check(
  "node-pools overlay: pullguard reads its pools.yaml, and each pool's files lie on a ConfigMap or Secret mounted under the pools folder",
  (t, m) => {
    const objects = m(NODE_POOLS)
    const pools = ofKind<V1ConfigMap>(objects, 'ConfigMap')[0]
    const dir = mkdtempSync(join(tmpdir(), 'pullguard-pools-'))
    try {
      // The pod's /etc/pullguard/pools, here: pools.yaml, and the mount point the kubelet makes for the gpu pool's ConfigMap.
      writeFileSync(join(dir, 'pools.yaml'), pools?.data?.['pools.yaml'] ?? '')
      mkdirSync(join(dir, 'gpu', 'certs.d'), { recursive: true })
      const config = parseServeConfig([...argsWithoutPodFiles(objects), `--node-pools=${join(dir, 'pools.yaml')}`], {})
      t.match(config.nodePools, [
        {
          name: 'gpu',
          nodeLabels: { pool: 'gpu' },
          taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
          node: { mirrors: { kind: 'containerd', dir: join(dir, 'gpu', 'certs.d') } },
        },
        { name: 'general', nodeLabels: {}, nodeKey: 'flags' },
      ])
      const c = container(objects)
      const volumes = deployment(objects).spec?.template.spec?.volumes ?? []
      for (const pool of config.nodePools) {
        if (pool.nodeKey === 'flags') continue
        const paths = [
          pool.node.nodeDockerConfigPath,
          pool.node.mirrors?.kind === 'containerd' ? pool.node.mirrors.dir : pool.node.mirrors?.file,
        ].filter((p): p is string => p !== undefined)
        t.ok(paths.length > 0, `${pool.name} has files of its own`)
        for (const path of paths) {
          const inPod = posix.join(posix.dirname(flag(c.args ?? [], 'node-pools') ?? ''), relative(dir, path))
          const mount = (c.volumeMounts ?? [])
            .filter((v) => inPod === v.mountPath || inPod.startsWith(`${v.mountPath}/`))
            .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
          const volume = volumes.find((v) => v.name === mount?.name)
          t.ok(
            mount?.mountPath.startsWith('/etc/pullguard/pools/') === true &&
              (volume?.configMap !== undefined || volume?.secret !== undefined),
            `${pool.name}: ${inPod} is on a ConfigMap or Secret mounted under /etc/pullguard/pools (${mount?.name})`,
          )
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
)
