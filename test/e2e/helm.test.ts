// The chart installed, upgraded and uninstalled with helm into the real API server, as a platform
// team does, and pullguard run as a process with exactly the configuration the chart gave its pod
// (pod-files.ts: its args, env and mounted Secrets/ConfigMaps). The API server reaches it through the
// chart's Service (service-proxy.ts plays kube-proxy) and verifies the chart's own certificate
// against the chart's caBundle, so a wrong name, Secret or CA fails here as it would in a cluster.
// Then the dashboard's and alerts' every metric and label are looked up in that pullguard's /metrics.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load } from 'js-yaml'
import t, { type Test } from 'tap'
import { createNamespace, startControlPlane } from '../cluster/control-plane.js'
import { deploymentManifest, PULLER } from '../cluster/e2e.js'
import { runHelm } from '../cluster/helm.js'
import type { PodFiles } from '../cluster/pod-files.js'
import { waitFor } from '../cluster/processes.js'
import { startPullguardAsPod, WEBHOOK_NAME, type PullguardProcess } from '../cluster/pullguard.js'
import { freePort } from '../helpers/fake-server.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'

const CHART = fileURLToPath(new URL('../../../manifests/helm/pullguard', import.meta.url))
const NS = 'pullguard'
/** The API server reads webhook configurations through an informer: a change takes a moment. */
const EFFECT_MS = 30_000

const registryCa = await createTestCA('pullguard helm e2e registry CA')
t.teardown(() => registryCa.close())
const open = await startRegistry({ ca: registryCa, auth: { kind: 'none' } })
t.teardown(() => open.close())
const priv = await startRegistry({
  ca: registryCa,
  auth: { kind: 'htpasswd', users: { [PULLER.username]: PULLER.password } },
})
t.teardown(() => priv.close())
await seedOciManifest(open, 'team/api', '1.0')
await seedOciManifest(priv, 'cloud/api', '1.0', PULLER)
// An API server of its own, not one the e2e files share: its egress goes through this file's
// Service proxy (--egress-selector-config-file), which is how the chart's Service reaches pullguard.
const cp = await startControlPlane({ serviceProxy: true })
t.teardown(() => cp.close())
const helm = (args: readonly string[], input?: string): ReturnType<typeof runHelm> =>
  runHelm(cp.binaries.helm, args, { kubeconfig: cp.adminKubeconfig, ...(input === undefined ? {} : { input }) })

// The node's files the custom credential-provider preset mounts (this machine is the node).
const node = await mkdtemp(join(tmpdir(), 'pullguard-helm-node-'))
t.teardown(() => rm(node, { recursive: true, force: true }))
const bin = join(node, 'bin')
await mkdir(bin)
await writeTestPlugin(bin, 'cloud-credential-provider')
const providerConfig = join(node, 'credential-provider-config.yaml')
await writeFile(
  providerConfig,
  JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1',
    kind: 'CredentialProviderConfig',
    providers: [
      {
        name: 'cloud-credential-provider',
        matchImages: [priv.host],
        defaultCacheDuration: '10m',
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
        env: [
          { name: 'PLUGIN_KEY_TYPE', value: 'Registry' },
          {
            name: 'PLUGIN_AUTH',
            value: JSON.stringify({ [priv.host]: { username: PULLER.username, password: PULLER.password } }),
          },
        ],
      },
    ],
  }),
)

// What the platform team prepares: the namespace, and the registries' CA as a ConfigMap.
await createNamespace(cp, NS)
await cp.kubectlOk(['create', 'configmap', 'registry-ca', '-n', NS, `--from-file=ca.crt=${registryCa.caPath}`])
await createNamespace(cp, 'team')
await createNamespace(cp, 'legacy')
await cp.kubectlOk(['label', 'namespace', 'legacy', 'pullguard.io/mode=warn'])

const VALUES = {
  registryCA: { configMap: 'registry-ca' },
  credentialProviders: { preset: 'custom', custom: { configHostPath: providerConfig, binDirHostPath: bin } },
  audit: { interval: '2s' },
  logLevel: 'info',
  // A CA short enough that a later upgrade can make it due.
  certificates: { generate: { caDays: 3000, certDays: 730, renewDays: 30 } },
}

const port = await freePort()
let pod: PodFiles | undefined
let pullguard: PullguardProcess | undefined
t.teardown(async () => {
  await pullguard?.stop()
  await pod?.close()
})

/** pullguard as the chart's pod would run it: its args (less the port and TLS, given here), env and mounted files. */
async function runAsThePod(): Promise<PullguardProcess> {
  await pullguard?.stop()
  await pod?.close()
  const token = (await cp.kubectlOk(['create', 'token', 'pullguard', '-n', NS, '--duration', '1h'])).trim()
  const started = await startPullguardAsPod(cp, {
    namespace: NS,
    port,
    kubeconfig: await cp.writeKubeconfig('pullguard-helm', token),
  })
  pod = started.pod
  pullguard = started.pullguard
  return pullguard
}

async function dryRunPod(
  namespace: string,
  image: string,
  extra: readonly string[] = [],
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return cp.kubectl([
    'run',
    'pullguard-check',
    `--image=${image}`,
    '--restart=Never',
    '--dry-run=server',
    '-n',
    namespace,
    ...extra,
  ])
}

async function tlsSecrets(): Promise<{ tls: Record<string, string>; ca: Record<string, string>; caBundle: string }> {
  const get = async (name: string): Promise<Record<string, string>> =>
    (
      JSON.parse(await cp.kubectlOk(['get', 'secret', name, '-n', NS, '-o', 'json'])) as {
        data: Record<string, string>
      }
    ).data
  const vwc = JSON.parse(await cp.kubectlOk(['get', 'validatingwebhookconfiguration', 'pullguard', '-o', 'json'])) as {
    webhooks: Array<{ clientConfig: { caBundle: string } }>
  }
  return {
    tls: await get('pullguard-tls'),
    ca: await get('pullguard-ca'),
    caBundle: vwc.webhooks[0]?.clientConfig.caBundle ?? '',
  }
}

const missing = `${open.host}/team/api:no-such-tag`

t.test(
  "helm install: the API server calls pullguard through the chart's Service, with the chart's certificate",
  async (t) => {
    const run = await helm(['install', 'pullguard', CHART, '--namespace', NS, '--values', '-'], JSON.stringify(VALUES))
    t.equal(run.status, 0, run.stderr)
    const notes = run.stdout
      .split('\n')
      .find((l) => l.includes('kubectl run pullguard-check'))
      ?.trim()
    t.equal(
      notes,
      'kubectl run pullguard-check --image=registry.k8s.io/pause:no-such-tag --restart=Never --dry-run=server -n default',
      'NOTES.txt says how to check',
    )
    await runAsThePod()
    await cp.routeService(NS, 'pullguard', 443, port)
    // The check NOTES.txt gives, with an image of this machine's registry (nothing else is reachable here).
    let denied = { code: 0 as number | null, stderr: '', stdout: '' }
    await waitFor(
      'the webhook in effect',
      async () => {
        denied = await dryRunPod('team', missing)
        return denied.stderr.includes(WEBHOOK_NAME)
      },
      EFFECT_MS,
      () => `${denied.stderr}\n${cp.apiserverLog().slice(-3000)}`,
    )
    t.not(denied.code, 0)
    t.match(denied.stderr, `admission webhook "${WEBHOOK_NAME}" denied the request`)
    t.match(denied.stderr, 'no-such-tag')
    t.match(denied.stderr, 'team/api')
    const ok = await dryRunPod('team', `${open.host}/team/api:1.0`)
    t.equal(ok.code, 0, ok.stderr)
    t.notMatch(ok.stderr, 'Warning')
    // The registry CA came from the ConfigMap the chart mounts, the plugin from the node's files.
    const cloud = await dryRunPod('team', `${priv.host}/cloud/api:1.0`)
    t.equal(cloud.code, 0, cloud.stderr)
    t.notMatch(cloud.stderr, 'Warning', "verified with the plugin's credentials")
    const clusterIp = (
      await cp.kubectlOk(['get', 'service', 'pullguard', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim()
    t.ok(
      cp.proxied().includes(`${clusterIp}:443`),
      `the API server dialled the Service's cluster IP ${clusterIp}:443 (${cp.proxied().join(', ')})`,
    )
  },
)

t.test('the dashboard and the alerts name only metrics and labels a running pullguard exports', async (t) => {
  // A workload the audit finds broken (admitted with a warning in a warn namespace).
  const legacy = await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify(deploymentManifest('legacy', 'old', [`${open.host}/team/api:gone`])),
  })
  t.equal(legacy.code, 0, legacy.stderr)
  const p = pullguard
  if (p === undefined) throw new Error('pullguard is not running')
  let text = ''
  await waitFor(
    'an audit pass with the finding',
    async () => {
      text = await p.metrics()
      return (
        text.includes('pullguard_workload_image_not_pullable{workload_namespace="legacy"') &&
        text.includes('pullguard_audit_last_pass_completed_timestamp_seconds ')
      )
    },
    30_000,
    () => text,
  )
  const exported = exportedSeries(text)
  const dashboard = JSON.parse(readFileSync(join(CHART, 'files', 'dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string; legendFormat?: string }> }>
  }
  const rules = (
    load(readFileSync(join(CHART, 'files', 'alerts.yaml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }>
    }
  ).groups.flatMap((g) => g.rules)
  const uses = [
    ...dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((target) => ({
        where: `dashboard "${p.title}"`,
        expr: target.expr,
        templates: target.legendFormat ?? '',
      })),
    ),
    ...rules.map((r) => ({
      where: `alert ${r.alert}`,
      expr: r.expr,
      templates: Object.values(r.annotations).join('\n'),
    })),
  ]
  t.ok(uses.length > 25, `${uses.length} expressions`)
  const seen = new Set<string>()
  for (const use of uses) {
    const metrics = [...use.expr.matchAll(/\bpullguard_[a-z0-9_]+/g)].map((m) => m[0])
    t.ok(metrics.length > 0, `${use.where}: reads a pullguard metric`)
    for (const m of metrics) {
      seen.add(m)
      t.ok(exported.has(m), `${use.where}: ${m} is exported`)
    }
    for (const label of labelsUsed(use.expr, use.templates)) {
      t.ok(
        metrics.some((m) => exported.get(m)?.has(label) === true),
        `${use.where}: label ${label} is on ${metrics.join(' or ')}`,
      )
    }
  }
  t.ok(seen.size >= 20, `${seen.size} metrics checked`)
})

/** `name → label names` of every sample in an exposition text. */
function exportedSeries(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line)
    if (m === null) continue
    const labels = out.get(m[1] ?? '') ?? new Set<string>()
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1] ?? '')
    out.set(m[1] ?? '', labels)
  }
  return out
}

/**
 * Labels an expression relies on: `by (…)`, matchers `{label=…}`, and the `{{label}}` and
 * `$labels.label` of legends and annotations. `instance`, `job` and `namespace` come from the scrape
 * itself (the target's labels), not from pullguard.
 */
function labelsUsed(expr: string, templates: string): string[] {
  const found = new Set<string>()
  for (const by of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) for (const l of (by[1] ?? '').split(',')) found.add(l.trim())
  for (const sel of expr.matchAll(/\{([^}]*)\}/g))
    for (const l of (sel[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) found.add(l[1] ?? '')
  for (const l of templates.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) found.add(l[1] ?? '')
  for (const l of templates.matchAll(/\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)/g)) found.add(l[1] ?? '')
  found.delete('')
  for (const target of ['instance', 'job', 'namespace']) found.delete(target)
  return [...found]
}

t.test('helm upgrade keeps the certificates, renews them when due, and a changed value reaches the pod', async (t) => {
  const before = await tlsSecrets()
  const warn = await helm(['upgrade', 'pullguard', CHART, '--namespace', NS, '--reuse-values', '--set', 'mode=warn'])
  t.equal(warn.status, 0, warn.stderr)
  const kept = await tlsSecrets()
  t.same(kept, before, 'the CA, the serving certificate and the caBundle are as they were')
  const again = await helm(['upgrade', 'pullguard', CHART, '--namespace', NS, '--reuse-values'])
  t.equal(again.status, 0, again.stderr)
  t.same(await tlsSecrets(), before, 'and stay so on every upgrade')
  // The rollout of the changed Deployment: pullguard runs with its new args.
  await runAsThePod()
  t.ok(pod?.args.includes('--mode=warn'), 'the upgraded Deployment runs --mode=warn')
  let warned = { code: 1 as number | null, stderr: '', stdout: '' }
  await waitFor(
    'warn mode in effect',
    async () => {
      warned = await dryRunPod('team', missing)
      return warned.code === 0
    },
    EFFECT_MS,
    () => warned.stderr,
  )
  t.match(warned.stderr, /Warning: .*no-such-tag/)

  // Due for renewal (730 days left, renewDays 800): a new serving certificate of the same CA, for
  // certDays (1000); the next upgrade keeps it (1000 days left).
  const renew = await helm([
    'upgrade',
    'pullguard',
    CHART,
    '--namespace',
    NS,
    '--reuse-values',
    '--set',
    'certificates.generate.certDays=1000,certificates.generate.renewDays=800',
  ])
  t.equal(renew.status, 0, renew.stderr)
  const renewed = await tlsSecrets()
  t.not(renewed.tls['tls.crt'], before.tls['tls.crt'], 'a new serving certificate')
  t.same(renewed.ca, before.ca, 'the same CA')
  t.equal(renewed.caBundle, before.caBundle, 'so the caBundle is unchanged')
  const keep = await helm(['upgrade', 'pullguard', CHART, '--namespace', NS, '--reuse-values'])
  t.equal(keep.status, 0, keep.stderr)
  t.same(await tlsSecrets(), renewed, 'not due again: kept')
  const cert = new X509Certificate(Buffer.from(renewed.tls['tls.crt'] ?? '', 'base64'))
  t.ok(
    cert.verify(new X509Certificate(Buffer.from(before.ca['tls.crt'] ?? '', 'base64')).publicKey),
    'signed by that CA',
  )
  // The kubelet's Secret sync; pullguard reloads the files and exports the new expiry.
  await pod?.refresh()
  const expected = Date.parse(cert.validTo) / 1000
  const p = pullguard
  if (p === undefined) throw new Error('pullguard is not running')
  let expiry = NaN
  await waitFor(
    'the renewed certificate in use',
    async () => {
      expiry = Number(/^pullguard_serving_certificate_expiry_timestamp_seconds (\S+)$/m.exec(await p.metrics())?.[1])
      return expiry === expected
    },
    15_000,
    () => `exported ${expiry}, expected ${expected}`,
  )
  const days = (expiry * 1000 - Date.now()) / 86_400_000
  t.ok(days > 999 && days <= 1000, `the exported expiry is the new certificate's (${days.toFixed(1)} days)`)
  await expectPullguardWarning(t, 'the API server accepts the renewed certificate')

  // The CA itself due (3000 days left, less than certDays + renewDays = 3500): a new CA and serving
  // certificate, and the old CA stays in the caBundle, so a replica still serving the old
  // certificate (the kubelet has not synced the Secret yet) is trusted meanwhile; with failurePolicy
  // Ignore a TLS failure would admit pods unchecked, silently. The same upgrade adds an
  // objectSelector, so the test can tell when the new configuration is in effect.
  const caRenew = await helm([
    'upgrade',
    'pullguard',
    CHART,
    '--namespace',
    NS,
    '--reuse-values',
    '--set',
    'certificates.generate.caDays=9000,certificates.generate.certDays=2000,certificates.generate.renewDays=1500',
    '--set-json',
    'webhook.objectSelector={"matchExpressions":[{"key":"skip-pullguard","operator":"DoesNotExist"}]}',
  ])
  t.equal(caRenew.status, 0, caRenew.stderr)
  const newCa = await tlsSecrets()
  t.not(newCa.ca['tls.crt'], renewed.ca['tls.crt'], 'a new CA')
  const pemOf = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8')
  const bundle = Buffer.from(newCa.caBundle, 'base64').toString('utf8')
  t.equal(
    bundle,
    pemOf(newCa.ca['tls.crt']) + pemOf(renewed.ca['tls.crt']),
    'the caBundle: the new CA, then the previous one',
  )
  t.equal(newCa.tls['ca.crt'], newCa.caBundle, "the serving Secret's ca.crt is the same bundle (for scrapers)")
  let skipped = { code: 1 as number | null, stderr: '', stdout: '' }
  await waitFor(
    'the new webhook configuration in effect',
    async () => {
      skipped = await dryRunPod('team', missing, ['--labels=skip-pullguard=true'])
      return skipped.code === 0 && !skipped.stderr.includes('no-such-tag')
    },
    EFFECT_MS,
    () => skipped.stderr,
  )
  await expectPullguardWarning(t, 'with the new caBundle, the old certificate (before the Secret sync) is trusted')
  const again2 = await helm(['upgrade', 'pullguard', CHART, '--namespace', NS, '--reuse-values'])
  t.equal(again2.status, 0, again2.stderr)
  t.same(await tlsSecrets(), newCa, 'the next upgrade keeps the CA, the previous one and the bundle')
  await pod?.refresh()
  const newest = Date.parse(new X509Certificate(Buffer.from(newCa.tls['tls.crt'] ?? '', 'base64')).validTo) / 1000
  await waitFor(
    "the new CA's certificate in use",
    async () =>
      Number(/^pullguard_serving_certificate_expiry_timestamp_seconds (\S+)$/m.exec(await p.metrics())?.[1]) === newest,
    15_000,
  )
  await expectPullguardWarning(t, 'and the new certificate after it')
})

/**
 * The webhook was called and answered: in warn mode pullguard admits a missing tag with its warning.
 * (An existing image proves nothing here: with failurePolicy Ignore a failed call admits it too.)
 */
async function expectPullguardWarning(t: Test, what: string): Promise<void> {
  let run = { code: 1 as number | null, stderr: '', stdout: '' }
  await waitFor(
    what,
    async () => {
      run = await dryRunPod('team', missing)
      return run.code === 0 && /Warning: .*no-such-tag/.test(run.stderr)
    },
    EFFECT_MS,
    () => `${run.stderr}\n${cp.apiserverLog().slice(-2000)}`,
  )
  t.match(run.stderr, /Warning: .*no-such-tag/, what)
}

t.test('helm uninstall removes everything the chart made; pods are then admitted without pullguard', async (t) => {
  const run = await helm(['uninstall', 'pullguard', '--namespace', NS])
  t.equal(run.status, 0, run.stderr)
  for (const [kind, name] of [
    ['validatingwebhookconfiguration', 'pullguard'],
    ['clusterrole', 'pullguard'],
    ['clusterrolebinding', 'pullguard'],
  ] as const) {
    const get = await cp.kubectl(['get', kind, name])
    t.match(get.stderr, 'NotFound', `${kind} ${name} is gone`)
  }
  const left = await cp.kubectlOk([
    'get',
    'deployments,services,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets,configmaps',
    '-n',
    NS,
    '-l',
    'app.kubernetes.io/instance=pullguard',
    '-o',
    'name',
  ])
  t.equal(left.trim(), '', 'nothing of the release is left in its namespace')
  t.match(
    await cp.kubectlOk(['get', 'configmap', 'registry-ca', '-n', NS, '-o', 'name']),
    'configmap/registry-ca',
    'what the team made itself stays',
  )
  let unchecked = { code: 1 as number | null, stderr: '', stdout: '' }
  await waitFor(
    'the webhook gone',
    async () => {
      unchecked = await dryRunPod('team', missing)
      return unchecked.code === 0
    },
    EFFECT_MS,
    () => unchecked.stderr,
  )
  t.notMatch(unchecked.stderr, 'pullguard')
})

t.test(
  "namespace.create with --create-namespace: the release namespace gets the base's labels and outlives the release",
  async (t) => {
    const run = await helm([
      'install',
      'pullguard',
      CHART,
      '--namespace',
      'guarded',
      '--create-namespace',
      '--set',
      'namespace.create=true,certificates.source=secret,certificates.secret.name=pullguard-tls',
    ])
    t.equal(run.status, 0, run.stderr)
    const ns = JSON.parse(await cp.kubectlOk(['get', 'namespace', 'guarded', '-o', 'json'])) as {
      metadata: { labels: Record<string, string> }
    }
    t.match(ns.metadata.labels, {
      'pullguard.io/mode': 'off',
      'pod-security.kubernetes.io/enforce': 'restricted',
      'app.kubernetes.io/managed-by': 'Helm',
    })
    const gone = await helm(['uninstall', 'pullguard', '--namespace', 'guarded'])
    t.equal(gone.status, 0, gone.stderr)
    t.match(gone.stdout, 'kept due to the resource policy')
    t.match(
      await cp.kubectlOk(['get', 'namespace', 'guarded', '-o', 'name']),
      'namespace/guarded',
      'uninstall keeps the namespace and what else is in it',
    )
  },
)
