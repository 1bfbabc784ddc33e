// Node pools through a real kube-apiserver, installed as a platform team installs them: an overlay
// of its own on manifests/overlays/node-pools, whose pools.yaml is used as it is (a tainted gpu pool
// whose containerd hosts directory is the ConfigMap pullguard-pool-gpu, and the general pool
// pullguard runs on); that ConfigMap made with kubectl from the GPU nodes' files, only the layout of
// its keys (the volume's items) patched for this machine's registry. pullguard runs with exactly
// what the Deployment gives its pod (pod-files.ts: args, env, the pools ConfigMap and the pool's
// ConfigMap mounted inside it) and reads the Nodes with the manifests' own RBAC.
//
// The Nodes are created with kubectl and report their runtime through the status subresource, as a
// kubelet does: the gpu pool's containerd 2.1.4, the general pool's containerd 1.7.27. The GPU
// nodes pull the upstream registry through a mirror that holds an image the upstream lacks.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createNamespace, startControlPlane } from '../cluster/control-plane.js'
import {
  createServingSecret,
  installPullguard,
  podManifest,
  startPullguardAsPod,
  waitForWebhook,
  WEBHOOK_NAME,
} from '../cluster/pullguard.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { pushSchema1 } from '../helpers/schema1.js'
import { seedOciManifest } from '../helpers/seed.js'

const OVERLAY = fileURLToPath(new URL('../../../manifests/overlays/node-pools', import.meta.url))
const NS = 'ml'

const ca = await createTestCA('pullguard node pools e2e registry CA')
t.teardown(() => ca.close())
// schema1: the same registry also serves a 2015-era image (a signed Docker schema 1 manifest).
const upstream = await startRegistry({ ca, auth: { kind: 'none' }, schema1: true })
t.teardown(() => upstream.close())
await pushSchema1(upstream, 'legacy/old', '2015')
// The GPU pool's mirror: a driver build pushed only there.
const gpuMirror = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => gpuMirror.close())
await seedOciManifest(gpuMirror, 'team/cuda-app', 'v1')

// The GPU nodes' /etc/containerd/certs.d/<upstream>/ (containerd's host_port_ folder), CA beside it.
const scratch = await mkdtemp(join(tmpdir(), 'pullguard-e2e-pools-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))
const hostDir = upstream.host.replace(/:(\d+)$/, '_$1_')
const hostsToml = join(scratch, 'hosts.toml')
await writeFile(
  hostsToml,
  `server = "https://${upstream.host}"\nca = "ca.crt"\n\n[host."https://${gpuMirror.host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "ca.crt"\n`,
)
// The team's overlay: ours, with the ConfigMap's keys laid out for this registry instead of docker.io.
const team = join(scratch, 'overlay')
await mkdir(team)
await writeFile(
  join(team, 'kustomization.yaml'),
  JSON.stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [relative(team, OVERLAY)],
    patches: [
      {
        patch: JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'pullguard', namespace: 'pullguard' },
          spec: {
            template: {
              spec: {
                volumes: [
                  {
                    name: 'node-pool-file-0',
                    configMap: {
                      name: 'pullguard-pool-gpu',
                      items: [
                        { key: 'hosts.toml', path: `${hostDir}/hosts.toml` },
                        { key: 'ca.crt', path: `${hostDir}/ca.crt` },
                      ],
                    },
                  },
                ],
              },
            },
          },
        }),
      },
    ],
  }),
)

const cp = await startControlPlane()
t.teardown(() => cp.close())

// The nodes, as the kubelet registers them: labels and taints in spec, then its status.
const GPU_TAINT = { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }
const nodes = [
  { name: 'gpu-1', pool: 'gpu', taints: [GPU_TAINT], runtime: 'containerd://2.1.4' },
  { name: 'cpu-1', pool: 'general', taints: [], runtime: 'containerd://1.7.27' },
]
await cp.kubectlOk(['create', '-f', '-'], {
  input: JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: nodes.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: n.name,
        labels: {
          pool: n.pool,
          'kubernetes.io/hostname': n.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
        },
      },
      spec: { taints: n.taints },
    })),
  }),
})
for (const n of nodes) {
  const status = {
    nodeInfo: {
      containerRuntimeVersion: n.runtime,
      kubeletVersion: 'v1.37.2',
      operatingSystem: 'linux',
      architecture: 'amd64',
    },
  }
  await cp.kubectlOk([
    'patch',
    'node',
    n.name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ])
}

const installed = await installPullguard(cp, { dir: team })
// What the README's install steps make besides the manifests: the pool's ConfigMap from the GPU
// nodes' files, and the serving certificate (certs/make-certs.sh; here for the webhook's 127.0.0.1).
await cp.kubectlOk([
  'create',
  'configmap',
  'pullguard-pool-gpu',
  '-n',
  'pullguard',
  `--from-file=hosts.toml=${hostsToml}`,
  `--from-file=ca.crt=${ca.caPath}`,
])
await createServingSecret(cp)
const { pod, pullguard } = await startPullguardAsPod(cp, {
  namespace: 'pullguard',
  port: installed.port,
  kubeconfig: installed.kubeconfig,
  args: ['--registry-ca', ca.caPath, '--log-level', 'info'],
})
t.teardown(async () => {
  await pullguard.stop()
  await pod.close()
})
await createNamespace(cp, NS)
await waitForWebhook(cp, NS)

const create = (name: string, image: string, spec: Record<string, unknown> = {}): ReturnType<typeof cp.kubectl> =>
  cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(podManifest(NS, name, [image], spec)) })
async function decision(name: string): Promise<any> {
  return (await pullguard.settledLogs()).find((l) => l['msg'] === 'decision' && l['name'] === name)
}
const onGpu = { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] }
const cuda = `${upstream.host}/team/cuda-app:v1`

t.test(
  "pullguard may list and get the Nodes with the manifests' RBAC, and reads the pools file with the gpu pool's ConfigMap inside its folder",
  async (t) => {
    for (const verb of ['list', 'get']) {
      const can = await cp.kubectl(['auth', 'can-i', verb, 'nodes', '--as=system:serviceaccount:pullguard:pullguard'])
      t.equal(can.stdout.trim(), 'yes', `${verb} nodes`)
    }
    t.equal(
      await cp.kubectlOk(['get', 'node', 'gpu-1', '-o', 'jsonpath={.status.nodeInfo.containerRuntimeVersion}']),
      'containerd://2.1.4',
      'the status the kubelet would write is stored',
    )
    const folder = pod.local('/etc/pullguard/pools')
    t.ok(pod.args.includes(`--node-pools=${folder}/pools.yaml`), pod.args.join(' '))
    t.equal(
      pod.local('/etc/pullguard/pools/gpu/certs.d'),
      join(folder, 'gpu', 'certs.d'),
      "where pools.yaml's containerdHostsDir: gpu/certs.d points",
    )
  },
)

t.test('a pod for the GPU pool whose image only that pool’s mirror serves is allowed', async (t) => {
  const run = await create('train', cuda, { ...onGpu, nodeSelector: { pool: 'gpu' } })
  t.same([run.code, run.stdout, run.stderr], [0, 'pod/train created\n', ''])
  const line = await decision('train')
  t.match(line, {
    verdict: 'allowed',
    pools: {
      how: 'scheduled',
      judged: [{ pool: 'gpu', runtimes: ['containerd 2.1.4'], starts: 'pulls', reasons: ['Exists'] }],
    },
  })
  t.equal(line?.pools.judged.length, 1, 'judged on the gpu pool only')
  t.match(line, { images: [{ reason: 'Exists', answeredBy: gpuMirror.host }] })
})

t.test('the same pod without a nodeSelector is allowed, with a warning naming the pool where it fails', async (t) => {
  const run = await create('train-anywhere', cuda, onGpu)
  t.same([run.code, run.stdout], [0, 'pod/train-anywhere created\n'], run.stderr)
  const warnings = run.stderr.split('\n').filter((l) => l.startsWith('Warning: '))
  t.equal(warnings.length, 1, run.stderr)
  t.match(warnings[0], 'team/cuda-app')
  t.match(warnings[0], /on node pool general; it pulls on node pool gpu/)
  t.match(await decision('train-anywhere'), {
    verdict: 'allowed',
    pools: {
      how: 'scheduled',
      judged: [
        { pool: 'gpu', starts: 'pulls' },
        { pool: 'general', runtimes: ['containerd 1.7.27'], starts: 'fails' },
      ],
    },
  })
})

t.test('a pod that fails on every pool it can land on is denied, naming each', async (t) => {
  const run = await create('nowhere', `${upstream.host}/team/nowhere:v1`, onGpu)
  t.equal(run.code, 1)
  t.match(run.stderr, `admission webhook "${WEBHOOK_NAME}" denied the request`)
  t.match(
    run.stderr,
    `pullguard refused pod ${NS}/nowhere: it cannot start on any node pool it can land on (gpu, general)`,
  )
  // Each pool as its nodes pull: the GPU nodes ask their mirror first (the pool's ConfigMap).
  t.match(
    run.stderr,
    `On node pool gpu:\n- container "c0" (spec.containers[0]) image "${upstream.host}/team/nowhere:v1"`,
  )
  t.match(run.stderr, `(asked ${gpuMirror.host}, then ${upstream.host}, as the nodes' runtime does)`)
  t.match(
    run.stderr,
    `On node pool general:\n- container "c0" (spec.containers[0]) image "${upstream.host}/team/nowhere:v1"`,
  )
  t.match(await decision('nowhere'), {
    verdict: 'denied',
    pools: {
      judged: [
        { pool: 'gpu', starts: 'fails' },
        { pool: 'general', starts: 'fails' },
      ],
    },
  })
  const get = await cp.kubectl(['get', 'pod', 'nowhere', '-n', NS])
  t.match(get.stderr, 'NotFound', 'nothing was created')
})

t.test('a schema 1 image is denied on the containerd 2.1 pool and allowed on the 1.7 pool', async (t) => {
  const legacy = `${upstream.host}/legacy/old:2015`
  const onNew = await create('legacy-gpu', legacy, { ...onGpu, nodeSelector: { pool: 'gpu' } })
  t.equal(onNew.code, 1)
  t.match(onNew.stderr, `pullguard refused pod ${NS}/legacy-gpu`)
  t.match(onNew.stderr, `${legacy} (sha256:`)
  t.match(onNew.stderr, 'is a Docker schema 1 manifest, which containerd 2.1.4 refuses')
  t.match(await decision('legacy-gpu'), {
    verdict: 'denied',
    pools: { judged: [{ pool: 'gpu', runtimes: ['containerd 2.1.4'], reasons: ['Schema1Unsupported'] }] },
  })
  const onOld = await create('legacy-general', legacy, { nodeSelector: { pool: 'general' } })
  t.same([onOld.code, onOld.stdout, onOld.stderr], [0, 'pod/legacy-general created\n', ''])
  t.match(await decision('legacy-general'), {
    verdict: 'allowed',
    pools: { judged: [{ pool: 'general', runtimes: ['containerd 1.7.27'], starts: 'pulls' }] },
  })
})

t.test(
  'after all of it pullguard warned of nothing: the Node list was read, and every node is in a pool',
  async (t) => {
    const warned = (await pullguard.settledLogs()).filter((l) => typeof l['level'] === 'number' && l['level'] >= 40)
    t.same(warned, [])
  },
)
