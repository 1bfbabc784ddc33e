// The kubelet's part for a Deployment that cannot run here (no kubelet): its container's arguments
// and environment as the pod would get them, with each volume the container mounts made real on
// this machine — Secret and ConfigMap volumes written from the API server's objects, emptyDir a
// fresh folder, hostPath the path itself (this machine is the node) — and every argument that
// names a file under a mount pointed at its copy here. pullguard then runs as a process with
// exactly the configuration a chart or manifest gave its pod. A volume's `items` put only those keys
// at their paths; a mount inside another ConfigMap, Secret or emptyDir mount is made inside that
// mount's copy, as the kubelet makes the mount points of nested volumes (kubernetes#60342).
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { V1Deployment, V1Volume } from '@kubernetes/client-node'
import type { ControlPlane } from './control-plane.js'

export interface PodFiles {
  /** The container's args, with paths under mounts rewritten. */
  args: string[]
  /** The container's env: values, and the downward API's metadata.name/namespace. */
  env: Record<string, string>
  /** Local path of a mount, by mountPath. */
  local(mountPath: string): string
  /** Writes the Secret and ConfigMap volumes again from the API, as the kubelet syncs them. */
  refresh(): Promise<void>
  close(): Promise<void>
}

export async function podFiles(
  cp: ControlPlane,
  namespace: string,
  deployment: string,
  podName: string,
): Promise<PodFiles> {
  const dep = JSON.parse(
    await cp.kubectlOk(['get', 'deployment', deployment, '-n', namespace, '-o', 'json']),
  ) as V1Deployment
  const spec = dep.spec?.template.spec
  const container = spec?.containers[0]
  if (spec === undefined || container === undefined)
    throw new Error(`deployment ${namespace}/${deployment} has no container`)
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-pod-'))
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]))
  const mounts = new Map<string, string>()
  const synced: Array<{ volume: V1Volume; path: string }> = []
  /** Mounts made here (not hostPath), which a nested mount is made inside. */
  const made = new Set<string>()
  // Outer mounts first: a nested mount finds the copy of the folder it is in.
  const ordered = [...(container.volumeMounts ?? [])].sort((a, b) => a.mountPath.length - b.mountPath.length)
  for (const m of ordered) {
    const v = volumes.get(m.name)
    if (v === undefined) throw new Error(`mount ${m.name} names no volume`)
    const outer = [...mounts.keys()].filter((at) => m.mountPath.startsWith(`${at}/`)).pop()
    // A hostPath is the path itself wherever it is mounted (arguments under it are rewritten to it).
    if (v.hostPath !== undefined) mounts.set(m.mountPath, v.hostPath.path)
    else {
      if (outer !== undefined && !made.has(outer))
        throw new Error(`mount ${m.name} is inside the hostPath mount ${outer}: not made here`)
      const path =
        outer === undefined ? join(dir, m.name) : join(mounts.get(outer) ?? '', m.mountPath.slice(outer.length + 1))
      await mkdir(path, { recursive: true })
      mounts.set(m.mountPath, path)
      made.add(m.mountPath)
      if (v.secret !== undefined || v.configMap !== undefined) synced.push({ volume: v, path })
      else if (v.emptyDir === undefined)
        throw new Error(`volume ${m.name}: only secret, configMap, emptyDir and hostPath are made here`)
    }
  }
  const refresh = async (): Promise<void> => {
    for (const { volume, path } of synced) {
      const [kind, name, items] =
        volume.secret !== undefined
          ? ['secret', volume.secret.secretName ?? '', volume.secret.items]
          : ['configmap', volume.configMap?.name ?? '', volume.configMap?.items]
      const object = JSON.parse(await cp.kubectlOk(['get', kind, name, '-n', namespace, '-o', 'json'])) as {
        data?: Record<string, string>
      }
      const data = object.data ?? {}
      // Without items every key is a file of its name; with them, only those keys, at their paths.
      const files =
        items?.map((i) => ({ key: i.key, file: i.path })) ?? Object.keys(data).map((key) => ({ key, file: key }))
      for (const { key, file } of files) {
        const value = data[key]
        if (value === undefined)
          throw new Error(`${kind} ${namespace}/${name} has no key ${key} (the kubelet fails the mount)`)
        const target = join(path, file)
        await mkdir(dirname(target), { recursive: true })
        // Written whole, then renamed: a reader never sees half a file (the kubelet swaps a symlink).
        const tmp = join(dirname(target), `.${key}.tmp`)
        await writeFile(tmp, kind === 'secret' ? Buffer.from(value, 'base64') : value, { mode: 0o600 })
        await rename(tmp, target)
      }
    }
  }
  await refresh()
  // Longest mount first, so /etc/pullguard/tls wins over /etc/pullguard.
  const byLength = [...mounts.entries()].sort((a, b) => b[0].length - a[0].length)
  const rewrite = (arg: string): string => {
    const eq = arg.indexOf('=')
    if (eq < 0) return arg
    const value = arg.slice(eq + 1)
    for (const [mountPath, local] of byLength) {
      if (value === mountPath || value.startsWith(`${mountPath}/`))
        return `${arg.slice(0, eq + 1)}${local}${value.slice(mountPath.length)}`
    }
    return arg
  }
  const env: Record<string, string> = {}
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace
    else throw new Error(`env ${e.name}: only values and metadata.name/namespace are given here`)
  }
  return {
    args: (container.args ?? []).map(rewrite),
    env,
    local(mountPath) {
      const path = mounts.get(mountPath)
      if (path === undefined) throw new Error(`no mount at ${mountPath}`)
      return path
    },
    refresh,
    close: () => rm(dir, { recursive: true, force: true }),
  }
}
