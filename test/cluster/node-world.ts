// The node tier's world: a control plane of its own, a real node (node.ts) registered with it, the
// suite's registries (distribution, one test CA) named for what they play, and pullguard installed
// from manifests/base and configured as the node is: the same hosts.toml folder, the same docker
// config, the same credential provider plugin, the same kubelet image verification (KEP-2535). Every
// image is runnable (the static pause program in a real layer), so whatever the node pulls also starts.
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { createTestCA, type TestCA } from '../helpers/pki.js'
import { startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { pushSchema1 } from '../helpers/schema1.js'
import { seedOciIndex, seedOciManifest, type ImageContents, type Platform, type PushAuth } from '../helpers/seed.js'
import { tarArchive } from '../helpers/tar.js'
import { writeTestPlugin } from '../helpers/test-plugin.js'
import { ensureNodeBinaries } from './binaries.js'
import { createNamespace, startOwnControlPlane, type OwnControlPlane } from './control-plane.js'
import { startNode, type ImageVerification, type Node } from './node.js'
import { waitFor } from './processes.js'
import { installPullguard, startPullguard, waitForWebhook, type Installed, type PullguardProcess } from './pullguard.js'

export const PULLER: PushAuth = { username: 'puller', password: 'Puller-Pass-1' }
/** Known only to the node's own docker config. */
export const NODE_USER: PushAuth = { username: 'node', password: 'Node-Pass-1' }
/** Known only to the credential provider plugin. */
export const PLUGIN_USER: PushAuth = { username: 'cloud', password: 'Cloud-Pass-1' }
export const PROVIDER = 'cloud-credential-provider'
export const PAUSE = 'pause:3.10'

/**
 * The registries, by the part they play:
 * - open: anonymous pulls; the pause image and the public cases;
 * - private: htpasswd, PULLER may read (pull secrets);
 * - nodeCreds: htpasswd, only the node's docker config knows NODE_USER;
 * - plugin: htpasswd, only the credential provider plugin knows PLUGIN_USER;
 * - mirror: anonymous, a mirror (hosts.toml) of upstreamResolve and upstreamPullOnly;
 * - upstreamResolve: its hosts.toml lets the mirror resolve tags and pull;
 * - upstreamPullOnly: its hosts.toml lets the mirror only pull (by digest), tags resolve upstream;
 * - legacy: anonymous, takes Docker schema 1 pushes (test/helpers/schema1.ts), as registries that
 *   still serve 2015-era images do.
 */
export const REGISTRY_NAMES = [
  'open',
  'private',
  'nodeCreds',
  'plugin',
  'mirror',
  'upstreamResolve',
  'upstreamPullOnly',
  'legacy',
] as const
export type RegistryName = (typeof REGISTRY_NAMES)[number]

export interface NodeWorld {
  cp: OwnControlPlane
  node: Node
  ca: TestCA
  registries: Record<RegistryName, RunningRegistry>
  installed: Installed
  /** pullguard as it runs now (setImageVerification starts another). */
  readonly pullguard: PullguardProcess
  /** `name:repo:tag` → the image reference (`open:team/app:1.0` → `127.0.0.1:PORT/team/app:1.0`). */
  ref(spec: string): string
  /** Pushes a runnable image: `open:team/app:1.0`; with `platforms`, an index of one child per platform. */
  push(spec: string, options?: { platforms?: Platform[]; platform?: Platform }): Promise<{ digest: string }>
  /** Pushes a runnable image as a Docker schema 1 signed manifest (`legacy:old/app:1.0`; the legacy registry only). */
  pushSchema1(spec: string): Promise<{ digest: string }>
  /** The registry's name for a host:port, for messages and tables that must not change with ports. */
  nameOf(host: string): RegistryName | undefined
  namespace(name: string): Promise<void>
  /**
   * The kubelet restarted with this image verification, and pullguard with the same flags
   * (--image-pull-credentials-verification-policy, --preloaded-images-verification-allowlist);
   * undefined: both at their default, NeverVerifyPreloadedImages.
   */
  setImageVerification(verification: ImageVerification | undefined): Promise<void>
  /** Waits until the Node's status.images names every one of these references (`open:team/app:1.0`). */
  nodeLists(specs: readonly string[]): Promise<void>
  /** Every name in the Node's status.images. */
  nodeImages(): Promise<string[]>
}

export interface NodeWorldOptions {
  /**
   * Images pushed (`private:shop/api:1.0`) and pulled onto the node before its kubelet starts, with
   * their registry's credentials, as `crictl pull --creds` pulls: the kubelet has no record of them.
   */
  preload?: readonly string[]
  /**
   * pullguard installed from manifests/overlays/pin-digests (its mutating webhook, --pin-digests),
   * and the open registry's access log kept, to see what the node asks for.
   */
  pinDigests?: boolean
}

const AMD64: Platform = { os: 'linux', architecture: 'amd64' }

function credentialsFor(reg: RegistryName): PushAuth | undefined {
  switch (reg) {
    case 'private':
      return PULLER
    case 'nodeCreds':
      return NODE_USER
    case 'plugin':
      return PLUGIN_USER
    default:
      return undefined
  }
}

function dockerConfig(host: string, auth: PushAuth): string {
  return JSON.stringify({
    auths: { [host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } },
  })
}

/** The kubelet lists the node's images every 30 s (images/image_gc_manager.go) and reports them every 2 s here. */
const NODE_IMAGES_TIMEOUT_MS = 45_000

export async function startNodeWorld(t: Test, options: NodeWorldOptions = {}): Promise<NodeWorld> {
  const binaries = await ensureNodeBinaries()
  const contents: ImageContents = {
    layers: [tarArchive([{ name: 'pause', data: readFileSync(binaries.pause), mode: 0o755 }])],
    entrypoint: ['/pause'],
  }
  const ca = await createTestCA('pullguard node-tier registry CA')
  t.teardown(() => ca.close())
  const registries = {} as Record<RegistryName, RunningRegistry>
  for (const name of REGISTRY_NAMES) {
    const auth = credentialsFor(name)
    const reg = await startRegistry({
      ca,
      auth: auth === undefined ? { kind: 'none' } : { kind: 'htpasswd', users: { [auth.username]: auth.password } },
      schema1: name === 'legacy',
      accessLog: name === 'open' && options.pinDigests === true,
    })
    t.teardown(() => reg.close())
    registries[name] = reg
  }
  const dir = await mkdtemp(join(tmpdir(), 'pullguard-node-world-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  // containerd's hosts folder, which pullguard reads too: every registry trusted by a ca.crt, and the
  // two upstreams mirrored by `mirror` with and without `resolve`.
  const hostsDir = join(dir, 'certs.d')
  for (const name of REGISTRY_NAMES) {
    const host = registries[name].host
    await mkdir(join(hostsDir, host), { recursive: true })
    await writeFile(join(hostsDir, host, 'ca.crt'), ca.caPem)
  }
  const mirrorHosts = (upstream: RegistryName, capabilities: string[]): string =>
    [
      `server = "${registries[upstream].origin}"`,
      `ca = ${JSON.stringify(ca.caPath)}`,
      '',
      `[host."${registries.mirror.origin}"]`,
      `  capabilities = ${JSON.stringify(capabilities)}`,
      `  ca = ${JSON.stringify(ca.caPath)}`,
      '',
    ].join('\n')
  await writeFile(
    join(hostsDir, registries.upstreamResolve.host, 'hosts.toml'),
    mirrorHosts('upstreamResolve', ['pull', 'resolve']),
  )
  await writeFile(
    join(hostsDir, registries.upstreamPullOnly.host, 'hosts.toml'),
    mirrorHosts('upstreamPullOnly', ['pull']),
  )

  // The node's own docker config and the credential provider plugin, one file each for both.
  const nodeDockerConfig = join(dir, 'config.json')
  const nodeConfigText = dockerConfig(registries.nodeCreds.host, NODE_USER)
  await writeFile(nodeDockerConfig, nodeConfigText, { mode: 0o600 })
  const bin = join(dir, 'bin')
  await mkdir(bin)
  await writeTestPlugin(bin, PROVIDER)
  const providers = join(dir, 'providers.yaml')
  await writeFile(
    providers,
    JSON.stringify({
      apiVersion: 'kubelet.config.k8s.io/v1',
      kind: 'CredentialProviderConfig',
      providers: [
        {
          name: PROVIDER,
          matchImages: [registries.plugin.host],
          defaultCacheDuration: '1m',
          apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
          env: [
            {
              name: 'PLUGIN_AUTH',
              value: JSON.stringify({
                [registries.plugin.host]: { username: PLUGIN_USER.username, password: PLUGIN_USER.password },
              }),
            },
          ],
        },
      ],
    }),
  )

  const nameOf = (host: string): RegistryName | undefined => REGISTRY_NAMES.find((n) => registries[n].host === host)
  const ref = (spec: string): string => {
    const [name, ...rest] = spec.split(':')
    const reg = registries[name as RegistryName]
    if (reg === undefined) throw new Error(`no registry named ${name} (${spec})`)
    return `${reg.host}/${rest.join(':')}`
  }
  const push = async (
    spec: string,
    options: { platforms?: Platform[]; platform?: Platform } = {},
  ): Promise<{ digest: string }> => {
    const [name, repository, tag] = spec.split(':') as [RegistryName, string, string]
    const reg = registries[name]
    const auth = credentialsFor(name)
    if (options.platforms !== undefined) return seedOciIndex(reg, repository, tag, options.platforms, auth, contents)
    return seedOciManifest(reg, repository, tag, auth, contents, options.platform ?? AMD64)
  }
  await push(`open:${PAUSE}`)
  const preload = []
  for (const spec of options.preload ?? []) {
    await push(spec)
    const auth = credentialsFor(spec.split(':')[0] as RegistryName)
    preload.push({ image: ref(spec), ...(auth === undefined ? {} : { auth }) })
  }

  const cp = await startOwnControlPlane()
  t.teardown(() => cp.close())
  // The node before pullguard: pullguard reads the cluster's platforms from the Node objects.
  const node = await startNode(cp, {
    pauseImage: ref(`open:${PAUSE}`),
    hostsDir,
    dockerConfig: nodeConfigText,
    credentialProviders: { config: providers, binDir: bin },
    preload,
  })
  t.teardown(() => node.stop())
  const installed = await installPullguard(
    cp,
    options.pinDigests === true ? { dir: 'manifests/overlays/pin-digests' } : {},
  )
  const startOurs = (verification: ImageVerification | undefined): Promise<PullguardProcess> =>
    startPullguard(cp, {
      ...installed,
      args: [
        '--log-level',
        'info',
        ...(options.pinDigests === true ? ['--pin-digests'] : []),
        '--containerd-hosts-dir',
        hostsDir,
        '--node-docker-config',
        nodeDockerConfig,
        '--image-credential-provider-config',
        providers,
        '--image-credential-provider-bin-dir',
        bin,
        ...(verification === undefined
          ? []
          : [
              '--image-pull-credentials-verification-policy',
              verification.policy,
              ...(verification.allowlist ?? []).flatMap((a) => ['--preloaded-images-verification-allowlist', a]),
            ]),
      ],
    })
  let pullguard = await startOurs(undefined)
  t.teardown(() => pullguard.stop())
  await createNamespace(cp, 'node-probe')
  await waitForWebhook(cp, 'node-probe')
  const nodeImages = async (): Promise<string[]> => {
    const got = JSON.parse(await cp.kubectlOk(['get', 'node', node.name, '-o', 'json'])) as {
      status?: { images?: Array<{ names?: string[] }> }
    }
    return (got.status?.images ?? []).flatMap((i) => i.names ?? [])
  }
  return {
    cp,
    node,
    ca,
    registries,
    installed,
    get pullguard() {
      return pullguard
    },
    ref,
    push,
    pushSchema1: (spec) => {
      const [name, repository, tag] = spec.split(':') as [RegistryName, string, string]
      return pushSchema1(registries[name], repository, tag, { contents })
    },
    nameOf,
    namespace: (name) => createNamespace(cp, name),
    async setImageVerification(verification) {
      // While pullguard is down the API server admits pods unchecked (the webhook's failurePolicy is
      // Ignore): create none until this returns.
      const [next] = await Promise.all([
        pullguard.stop().then(() => startOurs(verification)),
        node.restartKubelet(verification),
      ])
      pullguard = next
    },
    nodeImages,
    async nodeLists(specs) {
      const wanted = specs.map(ref)
      let listed: string[] = []
      await waitFor(
        `node ${node.name} lists ${wanted.join(', ')} in status.images`,
        async () => {
          listed = await nodeImages()
          return wanted.every((w) => listed.includes(w))
        },
        NODE_IMAGES_TIMEOUT_MS,
        () => `status.images: ${listed.join(', ')}`,
      )
    },
  }
}
