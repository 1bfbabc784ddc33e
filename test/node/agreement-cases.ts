// The agreement tier's cases (agreement.test.ts), by the kubelet configuration they run under: each
// phase restarts the kubelet with its imagePullCredentialsVerificationPolicy (KEP-2535) and pullguard
// with the same flag, in a namespace of its own. A case's pod is bound to the node (spec.nodeName).
import type { ImageVerification } from '../cluster/node.js'
import { PLUGIN_USER, PROVIDER, PULLER, type NodeWorld } from '../cluster/node-world.js'

/** Pulled onto the node through the CRI before the kubelet starts: no kubelet pull record, so "preloaded". */
export const PRELOADED = 'private:shop/api:preloaded'

export interface Case {
  /** The row's words. */
  what: string
  /** Unique across phases: rows are found by it. */
  pod: string
  /** Container images as `registry:repo:tag` (or `…@digest`), and the pod spec beyond them. */
  images: string[]
  spec?: Record<string, unknown>
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never'
  /**
   * The pod of an earlier phase that put this case's images on the node (`preload`: PRELOADED):
   * it must have run, and the node must list the images in status.images before this pod is created.
   */
  present?: string
  /**
   * admitted: no warning, and the pod runs. warned: admitted with a warning matching `warns`; the
   * node may run it or fail, and a failure must be the one the warning names. denied: the pod,
   * created without pullguard, fails as `node` says.
   */
  expect: 'admitted' | 'warned' | 'denied'
  warns?: RegExp
  /** What the node does: Running, or a phrase of its failure. */
  node: 'Running' | string
}

export interface Phase {
  /** The kubelet's setting and pullguard's flags; undefined: both at their default (NeverVerifyPreloadedImages). */
  verification: ImageVerification | undefined
  namespace: string
  cases: Case[]
}

/** pullguard's warning for a `Never` image whose pull the registry refuses the pod (policy NeverVerifyPreloadedImages). */
const ONLY_PRELOADED = /gives this pod only a preloaded copy \(not one the kubelet pulled\), else ErrImageNeverPull/
/** Its warning under AlwaysVerify for a `Never` image the pod's credentials can read. */
const ONLY_KUBELET_PULLED =
  /gives this pod only a copy the kubelet pulled with this pod's secret, node credentials or anonymously, never a preloaded one, else ErrImageNeverPull/
const NEVER_PULL = 'ErrImageNeverPull: Container image "(private|open)/[^"]+" is not present with pull policy of Never'

export function phases(w: NodeWorld, digest: string): Phase[] {
  const volumeSpec = (image: string): Record<string, unknown> => ({
    volumes: [{ name: 'data', image: { reference: w.ref(image), pullPolicy: 'IfNotPresent' } }],
  })
  return [
    {
      verification: undefined,
      namespace: 'agree',
      cases: [
        { what: 'public image', pod: 'public', images: ['open:team/app:1.0'], expect: 'admitted', node: 'Running' },
        { what: 'missing tag', pod: 'missing-tag', images: ['open:team/app:9.9'], expect: 'denied', node: 'not found' },
        {
          what: 'missing repository',
          pod: 'missing-repo',
          images: ['open:team/nothing:1.0'],
          expect: 'denied',
          node: 'not found',
        },
        {
          what: 'private, no pull secret',
          pod: 'private-none',
          images: ['private:shop/locked:1.0'],
          expect: 'denied',
          node: 'no basic auth credentials',
        },
        {
          what: 'private, its pull secret',
          pod: 'private-secret',
          images: ['private:shop/api:1.0'],
          spec: { imagePullSecrets: [{ name: 'private-pull' }] },
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'private, a pull secret with a wrong password',
          pod: 'private-wrong',
          images: ['private:shop/locked:1.0'],
          spec: { imagePullSecrets: [{ name: 'private-wrong' }] },
          expect: 'denied',
          node: '401 Unauthorized',
        },
        {
          what: 'private, the right password in a secret of the wrong type (Opaque)',
          pod: 'private-opaque',
          images: ['private:shop/locked:1.0'],
          spec: { imagePullSecrets: [{ name: 'private-opaque' }] },
          expect: 'denied',
          node: 'no basic auth credentials',
        },
        {
          what: "the node's own docker config (the kubelet's config.json)",
          pod: 'node-config',
          images: ['nodeCreds:node/app:1.0'],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: `a credential provider plugin (${PROVIDER}), configured alike on the kubelet and pullguard`,
          pod: 'plugin',
          images: ['plugin:cloud/app:1.0'],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a pod secret that fails (wrong password) before the plugin that works',
          pod: 'plugin-after-secret',
          images: ['plugin:cloud/other:1.0'],
          spec: { imagePullSecrets: [{ name: 'plugin-wrong' }] },
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a hosts.toml mirror (pull, resolve) holding an image its upstream lacks',
          pod: 'mirror-resolve',
          images: ['upstreamResolve:mirrored/app:1.0'],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a hosts.toml mirror without resolve holding an image its upstream lacks',
          pod: 'mirror-pull-only',
          images: ['upstreamPullOnly:mirrored/app:1.0'],
          expect: 'denied',
          node: 'not found',
        },
        {
          what: 'an index for linux/amd64 and linux/arm64',
          pod: 'multi-platform',
          images: ['open:multi/app:1.0'],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'an index with only linux/arm64 (the node is linux/amd64)',
          pod: 'arm64-index',
          images: ['open:arm/index:1.0'],
          expect: 'denied',
          node: 'no match for platform',
        },
        {
          // containerd matches platforms only among an index's entries: a lone manifest is pulled whatever
          // its config says (here its binary is the node's own, so it even runs), and pullguard agrees.
          what: 'a single linux/arm64 manifest, no index (the node is linux/amd64)',
          pod: 'arm64-manifest',
          images: ['open:arm/single:1.0'],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a digest reference',
          pod: 'digest',
          images: [`open:team/digest@${digest}`],
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a digest the repository does not have',
          pod: 'digest-missing',
          images: [`open:team/digest@sha256:${'0'.repeat(64)}`],
          expect: 'denied',
          node: 'not found',
        },
        {
          what: 'an image volume',
          pod: 'image-volume',
          images: ['open:vol/runner:1.0'],
          spec: volumeSpec('open:vol/data:1.0'),
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'an image volume whose tag is missing',
          pod: 'image-volume-missing',
          images: ['open:vol/runner:1.0'],
          spec: volumeSpec('open:vol/data:9.9'),
          expect: 'denied',
          node: 'not found',
        },
        {
          // containerd 2.1 removed schema 1 pulls; pullguard reads the node's runtime from its Node.
          what: 'a Docker schema 1 image (the node runs containerd 2.4.2)',
          pod: 'schema1',
          images: ['legacy:old/app:1.0'],
          expect: 'denied',
          node: 'ErrImagePull: rpc error: code = InvalidArgument desc = failed to pull and unpack image "legacy/old/app:1.0": schema 1 image manifests are no longer supported: invalid argument',
        },
        {
          what: '`Never`, an image the node does not hold (in no pod before, not in its status.images)',
          pod: 'never-absent',
          images: ['open:team/app:2.0'],
          pullPolicy: 'Never',
          expect: 'warned',
          warns: new RegExp(
            `node ${w.node.name} does not list it in status\\.images .*the kubelet reports ErrImageNeverPull`,
          ),
          node: NEVER_PULL,
        },
        {
          // The copy that runs where cached-never (below) is refused: the same repository, a pod
          // without a secret, but the image came onto the node without the kubelet (as a node's disk
          // image or `crictl pull` brings it), so the kubelet keeps no pull record of it and, under
          // its default policy, gives it to any pod.
          what: '`Never`, a private image preloaded on the node (no kubelet pull record), no pull secret',
          pod: 'preloaded-never',
          images: [PRELOADED],
          pullPolicy: 'Never',
          present: 'preload',
          expect: 'warned',
          warns: ONLY_PRELOADED,
          node: 'Running',
        },
      ],
    },
    {
      verification: { policy: 'AlwaysVerify' },
      namespace: 'agree-always',
      cases: [
        {
          what: '`Never`, the preloaded private image, no pull secret',
          pod: 'always-preloaded',
          images: [PRELOADED],
          pullPolicy: 'Never',
          present: 'preload',
          expect: 'denied',
          node: NEVER_PULL,
        },
        {
          what: '`Never`, a private image the kubelet pulled with a secret, a pull secret with a wrong password',
          pod: 'always-wrong',
          images: ['private:shop/api:1.0'],
          spec: { imagePullSecrets: [{ name: 'private-wrong' }] },
          pullPolicy: 'Never',
          present: 'private-secret',
          expect: 'denied',
          node: NEVER_PULL,
        },
        {
          // Another namespace's secret of the same user and password: the kubelet matches the
          // record by the credentials' hash.
          what: '`Never`, a private image the kubelet pulled with a secret, a secret of the same credentials',
          pod: 'always-secret',
          images: ['private:shop/api:1.0'],
          spec: { imagePullSecrets: [{ name: 'private-pull' }] },
          pullPolicy: 'Never',
          present: 'private-secret',
          expect: 'warned',
          warns: ONLY_KUBELET_PULLED,
          node: 'Running',
        },
        {
          // containerd pulls the sandbox image itself: the kubelet has no record of it.
          what: '`Never`, the sandbox (pause) image: public, on the node, pulled by containerd',
          pod: 'always-pause',
          images: ['open:pause:3.10'],
          pullPolicy: 'Never',
          present: 'public',
          expect: 'warned',
          warns: ONLY_KUBELET_PULLED,
          node: NEVER_PULL,
        },
      ],
    },
    {
      verification: { policy: 'NeverVerify' },
      namespace: 'agree-never-verify',
      cases: [
        {
          what: '`Never`, a private image the kubelet pulled with a secret, no pull secret',
          pod: 'never-verify-cached',
          images: ['private:shop/api:1.0'],
          pullPolicy: 'Never',
          present: 'private-secret',
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: '`Never`, the preloaded private image, a pull secret with a wrong password',
          pod: 'never-verify-preloaded',
          images: [PRELOADED],
          spec: { imagePullSecrets: [{ name: 'private-wrong' }] },
          pullPolicy: 'Never',
          present: 'preload',
          expect: 'admitted',
          node: 'Running',
        },
      ],
    },
    {
      // The default again, for images the first phase's pods pulled: a new kubelet lists them in
      // status.images at once (else within 30 s), which pullguard reads for a pod bound to the node.
      verification: undefined,
      namespace: 'agree-cached',
      cases: [
        {
          what: '`imagePullPolicy: Never`, the image already on the node',
          pod: 'never-present',
          images: ['open:team/app:1.0'],
          pullPolicy: 'Never',
          present: 'public',
          expect: 'admitted',
          node: 'Running',
        },
        {
          what: 'a private image on the node (pulled with a secret), `IfNotPresent` without one',
          pod: 'cached-if-not-present',
          images: ['private:shop/api:1.0'],
          pullPolicy: 'IfNotPresent',
          present: 'private-secret',
          expect: 'denied',
          node: 'no basic auth credentials',
        },
        {
          // The kubelet refuses: its record of this copy (image_manager/pulled/) says the secret
          // agree/private-pull pulled it, this pod has no secret, and for `Never` the kubelet asks no
          // registry, it only matches records (ErrImageNeverPull).
          // pullguard cannot deny it: what it sees is what it sees for preloaded-never (a private
          // image, `Never`, no credentials the registry takes), and that pod runs, because its copy
          // came onto the node without the kubelet, which then keeps no record and, under its default
          // policy, gives the copy to any pod. Which kind of copy a node holds is in the kubelet's
          // files only, never in the API; so pullguard warns, naming ErrImageNeverPull and the one
          // copy this pod would get. Under AlwaysVerify it can deny (always-preloaded, always-wrong).
          what: 'a private image on the node (pulled with a secret), `Never` without one',
          pod: 'cached-never',
          images: ['private:shop/api:1.0'],
          pullPolicy: 'Never',
          present: 'private-secret',
          expect: 'warned',
          warns: ONLY_PRELOADED,
          node: NEVER_PULL,
        },
      ],
    },
  ]
}

/** Pushes the cases' images and makes each phase's namespace and its secrets; the digest case's digest. */
export async function prepare(w: NodeWorld): Promise<{ digest: string }> {
  const amd64 = { os: 'linux', architecture: 'amd64' }
  const arm64 = { os: 'linux', architecture: 'arm64' }
  for (const spec of [
    'open:team/app:1.0',
    'open:team/app:2.0',
    'open:vol/runner:1.0',
    'open:vol/data:1.0',
    'private:shop/api:1.0',
    'private:shop/locked:1.0',
    'nodeCreds:node/app:1.0',
    'plugin:cloud/app:1.0',
    'plugin:cloud/other:1.0',
    'mirror:mirrored/app:1.0',
  ])
    await w.push(spec)
  await w.push('open:multi/app:1.0', { platforms: [amd64, arm64] })
  await w.push('open:arm/index:1.0', { platforms: [arm64] })
  await w.push('open:arm/single:1.0', { platform: arm64 })
  await w.pushSchema1('legacy:old/app:1.0')
  const pinned = await w.push('open:team/digest:1.0')
  const auth = (username: string, password: string): string => Buffer.from(`${username}:${password}`).toString('base64')
  const dockerConfig = (host: string, username: string, password: string): string =>
    Buffer.from(JSON.stringify({ auths: { [host]: { auth: auth(username, password) } } })).toString('base64')
  const secret = (namespace: string, name: string, config: string, type: string): object => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type,
    data: { '.dockerconfigjson': config },
  })
  const docker = 'kubernetes.io/dockerconfigjson'
  const { private: priv, plugin } = w.registries
  for (const namespace of new Set(phases(w, pinned.digest).map((p) => p.namespace))) {
    await w.namespace(namespace)
    const items = [
      secret(namespace, 'private-pull', dockerConfig(priv.host, PULLER.username, PULLER.password), docker),
      secret(namespace, 'private-wrong', dockerConfig(priv.host, PULLER.username, 'not-the-password'), docker),
      secret(namespace, 'plugin-wrong', dockerConfig(plugin.host, PLUGIN_USER.username, 'not-the-password'), docker),
      // The right credentials, in a secret the kubelet does not read for pulls: it is not of a docker type.
      secret(namespace, 'private-opaque', dockerConfig(priv.host, PULLER.username, PULLER.password), 'Opaque'),
    ]
    await w.cp.kubectlOk(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) })
  }
  return { digest: pinned.digest }
}
