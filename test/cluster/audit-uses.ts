// Many uses of few questions, for the audit's end-to-end tests: eight namespaces in warn mode, five
// Deployments each (no replicas, so no pod is reviewed), four running one open image and one the
// world's private image with `regcred`, the same secret copied into every namespace but the last,
// whose copy has a wrong password. 40 uses, 3 distinct questions.
import type { RunningRegistry } from '../helpers/registry.js'
import { PULLER, type World } from './e2e.js'

export const PRIVATE_PATH = '/v2/shop/api/manifests/2.4.1'

export async function createManyUses(world: World, prefix: string, image: string): Promise<void> {
  const labels = { app: 'x' }
  const items: Record<string, unknown>[] = []
  for (let n = 0; n < 8; n++) {
    const namespace = `${prefix}-${n}`
    await world.namespace(namespace, { 'pullguard.io/mode': 'warn' })
    const password = n === 7 ? 'rotated-wrong' : PULLER.password
    const auths = { [world.private.host]: { username: PULLER.username, password } }
    items.push({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/dockerconfigjson',
      metadata: { name: 'regcred', namespace },
      data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
    })
    for (let d = 0; d < 5; d++) {
      const spec =
        d < 4
          ? { containers: [{ name: 'c0', image }] }
          : {
              containers: [{ name: 'c0', image: `${world.private.host}/shop/api:2.4.1` }],
              imagePullSecrets: [{ name: 'regcred' }],
            }
      items.push({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: `d${d}`, namespace },
        spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec } },
      })
    }
  }
  const run = await world.apply({ apiVersion: 'v1', kind: 'List', items }, 'create')
  if (run.code !== 0) throw new Error(run.stderr)
}

/** Manifest HEADs for `path` the registry logged in [from, to), with this status when given. */
export function manifestHeads(
  registry: RunningRegistry,
  path: string,
  window: { from: number; to: number },
  status?: number,
): number {
  return registry
    .requests()
    .filter(
      (r) =>
        r.at >= window.from &&
        r.at < window.to &&
        r.method === 'HEAD' &&
        r.path === path &&
        (status === undefined || r.status === status),
    ).length
}
