// The node itself: up and registered within seconds, running what it pulled, and gone without a
// trace when stopped, twice in a row; and a crashed run's node (its processes killed, nothing put
// back) swept by the next one, which leaves the host as it found it.
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ensureNodeBinaries } from '../cluster/binaries.js'
import { createNamespace, startOwnControlPlane } from '../cluster/control-plane.js'
import { hostSnapshot, NODE_ROOT, startNode, type Node } from '../cluster/node.js'
import { podOutcomes } from '../cluster/pod-outcome.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { tarArchive } from '../helpers/tar.js'

const binaries = await ensureNodeBinaries()
const ca = await createTestCA('pullguard node test CA')
t.teardown(() => ca.close())
const open = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => open.close())
const contents = {
  layers: [tarArchive([{ name: 'pause', data: readFileSync(binaries.pause), mode: 0o755 }])],
  entrypoint: ['/pause'],
}
await seedOciManifest(open, 'pause', '3.10', undefined, contents)
await seedOciManifest(open, 'team/app', '1.0', undefined, contents)
const dir = await mkdtemp(join(tmpdir(), 'pullguard-node-test-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const hostsDir = join(dir, 'certs.d')
await mkdir(join(hostsDir, open.host), { recursive: true })
await writeFile(join(hostsDir, open.host, 'ca.crt'), ca.caPem)
const cp = await startOwnControlPlane()
t.teardown(() => cp.close())
const options = { pauseImage: `${open.host}/pause:3.10`, hostsDir }

/** A pod on the node that must run; how long from create to Running. */
async function runPod(node: Node, namespace: string, name: string): Promise<number> {
  const started = Date.now()
  await cp.kubectlOk(['create', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: {
        nodeName: node.name,
        hostNetwork: true,
        automountServiceAccountToken: false,
        containers: [{ name: 'c', image: `${open.host}/team/app:1.0` }],
      },
    }),
  })
  const outcome = (await podOutcomes(cp, namespace, [name], 60_000)).get(name)
  if (outcome?.kind !== 'running') throw new Error(`${name}: ${JSON.stringify(outcome)}`)
  return Date.now() - started
}

const before = hostSnapshot()
t.same(before.processes, [], 'no node runs on this machine before the tests')

for (const round of [1, 2]) {
  t.test(`round ${round}: up, registered, running a pod, and gone without a trace`, async (t) => {
    const started = Date.now()
    const node = await startNode(cp, options)
    const upMs = Date.now() - started
    try {
      t.comment(`node registered ${upMs} ms after startNode (containerd, then the kubelet)`)
      const ready = JSON.parse(await cp.kubectlOk(['get', 'node', node.name, '-o', 'json'])) as {
        status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string; architecture: string } }
      }
      t.equal(ready.status.nodeInfo.kubeletVersion, 'v1.37.2')
      t.equal(ready.status.nodeInfo.containerRuntimeVersion, 'containerd://2.4.2')
      t.equal(ready.status.nodeInfo.architecture, 'amd64')
      const during = hostSnapshot()
      t.ok(during.processes.length >= 2, 'containerd and the kubelet run under the node folder')
      await createNamespace(cp, `round-${round}`)
      const ms = await runPod(node, `round-${round}`, 'app')
      t.comment(`pod Running ${ms} ms after kubectl create`)
      const running = hostSnapshot()
      t.ok(running.mounts.length > 0, 'the pod has mounts (its rootfs, its volumes)')
      t.ok(running.cgroups.length > 0, 'the pod has cgroups under kubepods')
    } finally {
      await node.stop()
    }
    t.same(hostSnapshot(), before, 'no process, mount, cgroup, host path or changed sysctl is left')
    await cp.kubectlOk(['delete', 'node', node.name])
  })
}

t.test('a crashed run is swept by the next node, which then leaves nothing', async (t) => {
  const crashed = await startNode(cp, options)
  await createNamespace(cp, 'crash')
  await runPod(crashed, 'crash', 'app')
  await crashed.crash()
  const left = hostSnapshot()
  t.ok(left.processes.length > 0, 'the shim outlives its containerd')
  t.ok(left.mounts.length > 0, "the pod's mounts are left")
  t.ok(left.cgroups.length > 0, "the pod's cgroups are left")
  t.notSame(left.sysctls, before.sysctls, 'the sysctls the kubelet set are left')
  const next = await startNode(cp, options)
  t.same(
    hostSnapshot().processes.filter((p) => p.includes('containerd-shim')),
    [],
    "the sweep stopped the crashed node's shims",
  )
  await next.stop()
  t.same(hostSnapshot(), before, 'after the sweep and the stop, the host is as it was')
  t.notOk(existsSync(NODE_ROOT), `${NODE_ROOT} is removed`)
})
