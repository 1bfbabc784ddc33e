// Seeds images into a running test registry through its own HTTP API, the way `docker push` does:
// blobs by POST + PUT upload, then child manifests by digest, then the tagged manifest or index.
// Every config blob embeds (repository, tag[, platform]) so each tag gets its own digest.
// By default an image's one layer is an empty tar archive; `contents` gives real layers (tar archives,
// gzipped here, their diff_ids in the config) and an entrypoint, for images a node runs.
//
// Auth: anonymous for { kind: 'none' }; with PushAuth, the first request's challenge decides — Basic
// for htpasswd, or a token fetched from the challenge's realm with scope `repository:NAME:pull,push`.
// The token server must present a cert from the same CA as the registry (reg.caPem is trusted).
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { Agent, request } from 'undici'
import type { RunningRegistry } from './registry.js'

export interface PushAuth {
  username: string
  password: string
}
export interface Platform {
  os: string
  architecture: string
  variant?: string
}
export interface Seeded {
  repository: string
  tag: string
  digest: string
  mediaType: string
  children?: Array<{ digest: string; platform: Platform }>
}

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const

// An empty tar archive is two zero blocks: a real, tiny layer whose diff_id we can state honestly.
const EMPTY_TAR = Buffer.alloc(1024)
const LAYER = gzipSync(EMPTY_TAR)
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** What a runnable image holds: its layers as uncompressed tar archives, and what it runs. */
export interface ImageContents {
  layers: readonly Buffer[]
  entrypoint?: readonly string[]
}
const EMPTY: ImageContents = { layers: [EMPTY_TAR] }

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: Platform
}

class Pusher {
  private header: string | undefined
  constructor(
    readonly reg: RunningRegistry,
    readonly repo: string,
    readonly auth: PushAuth | undefined,
    readonly agent: Agent,
  ) {}

  // Sends once; on a 401 with credentials known, answers the challenge and retries once.
  async send(method: 'POST' | 'PUT' | 'HEAD', url: string, body?: Buffer, contentType?: string) {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {}
      if (contentType) headers['content-type'] = contentType
      if (this.header) headers.authorization = this.header
      const res = await request(new URL(url, this.reg.origin), { method, headers, body, dispatcher: this.agent })
      const text = await res.body.text()
      if (res.statusCode === 401 && attempt === 0 && this.auth) {
        this.header = await this.authorize(String(res.headers['www-authenticate'] ?? ''))
        continue
      }
      if (res.statusCode >= 300 && method !== 'HEAD') {
        throw new Error(`seed ${method} ${url} → ${res.statusCode}: ${text.slice(0, 500)}`)
      }
      return res
    }
  }

  private async authorize(challenge: string): Promise<string> {
    const { username, password } = this.auth as PushAuth
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
    if (/^Basic\b/i.test(challenge)) return basic
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (!/^Bearer\b/i.test(challenge) || !params.realm) throw new Error(`seed: unexpected challenge ${challenge}`)
    const url = new URL(params.realm)
    if (params.service) url.searchParams.set('service', params.service)
    url.searchParams.set('scope', `repository:${this.repo}:pull,push`)
    const res = await request(url, { headers: { authorization: basic }, dispatcher: this.agent })
    const json = (await res.body.json()) as { token?: string; access_token?: string }
    const token = json.token ?? json.access_token
    if (res.statusCode !== 200 || !token) throw new Error(`seed: token endpoint answered ${res.statusCode}`)
    return `Bearer ${token}`
  }

  async blob(data: Buffer): Promise<string> {
    const digest = sha256(data)
    const head = await this.send('HEAD', `/v2/${this.repo}/blobs/${digest}`)
    if (head.statusCode === 200) return digest
    const start = await this.send('POST', `/v2/${this.repo}/blobs/uploads/`)
    const location = new URL(String(start.headers.location), this.reg.origin)
    location.searchParams.set('digest', digest)
    await this.send('PUT', location.href, data, 'application/octet-stream')
    return digest
  }

  // PUTs under the tag, or under its own digest when tag is null (children of an index). Returns the
  // descriptor of the exact bytes PUT: their sha256 is the digest the registry reports.
  async manifest(tag: string | null, mediaType: string, doc: object): Promise<Descriptor> {
    return this.rawManifest(tag, mediaType, Buffer.from(JSON.stringify(doc)))
  }

  async rawManifest(tag: string | null, mediaType: string, bytes: Buffer): Promise<Descriptor> {
    await this.send('PUT', `/v2/${this.repo}/manifests/${tag ?? sha256(bytes)}`, bytes, mediaType)
    return { mediaType, digest: sha256(bytes), size: bytes.length }
  }

  // Config + layer blobs, then the image manifest: tagged, or by digest only when `asChild`.
  async image(
    kind: 'oci' | 'docker',
    tag: string,
    platform: Platform,
    asChild: boolean,
    contents: ImageContents = EMPTY,
  ): Promise<Descriptor> {
    const config = Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: {
          Labels: { 'pullguard.test/ref': `${this.repo}:${tag}` },
          ...(contents.entrypoint === undefined ? {} : { Entrypoint: contents.entrypoint }),
        },
        rootfs: { type: 'layers', diff_ids: contents.layers.map(sha256) },
        history: contents.layers.map(() => ({ created_by: 'pullguard test seed' })),
      }),
    )
    await this.blob(config)
    const oci = kind === 'oci'
    const layers: Descriptor[] = []
    for (const tar of contents.layers) {
      const gz = tar === EMPTY_TAR ? LAYER : gzipSync(tar)
      await this.blob(gz)
      layers.push({ mediaType: oci ? MT.ociLayer : MT.dockerLayer, digest: sha256(gz), size: gz.length })
    }
    const mediaType = oci ? MT.ociManifest : MT.dockerManifest
    return this.manifest(asChild ? null : tag, mediaType, {
      schemaVersion: 2,
      mediaType,
      config: { mediaType: oci ? MT.ociConfig : MT.dockerConfig, digest: sha256(config), size: config.length },
      layers,
    })
  }
}

async function withPusher<T>(
  reg: RunningRegistry,
  repo: string,
  auth: PushAuth | undefined,
  fn: (p: Pusher) => Promise<T>,
): Promise<T> {
  const agent = new Agent({ connect: { ca: reg.caPem } })
  try {
    return await fn(new Pusher(reg, repo, auth, agent))
  } finally {
    await agent.close()
  }
}

const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' }

export function seedOciManifest(
  reg: RunningRegistry,
  repository: string,
  tag: string,
  auth?: PushAuth,
  contents?: ImageContents,
  platform: Platform = LINUX_AMD64,
): Promise<Seeded> {
  return withPusher(reg, repository, auth, async (p) => {
    const d = await p.image('oci', tag, platform, false, contents)
    return { repository, tag, digest: d.digest, mediaType: d.mediaType }
  })
}

export function seedDockerSchema2(
  reg: RunningRegistry,
  repository: string,
  tag: string,
  auth?: PushAuth,
): Promise<Seeded> {
  return withPusher(reg, repository, auth, async (p) => {
    const d = await p.image('docker', tag, LINUX_AMD64, false)
    return { repository, tag, digest: d.digest, mediaType: d.mediaType }
  })
}

// Index/list: one child image per platform, each with its own config blob, pushed by digest first
// because the registry refuses an index whose children it does not have.
function seedIndex(kind: 'oci' | 'docker') {
  return (
    reg: RunningRegistry,
    repository: string,
    tag: string,
    platforms: Platform[],
    auth?: PushAuth,
    contents?: ImageContents,
  ) =>
    withPusher(reg, repository, auth, async (p): Promise<Seeded> => {
      const children: Descriptor[] = []
      for (const platform of platforms) {
        children.push({ ...(await p.image(kind, tag, platform, true, contents)), platform })
      }
      const mediaType = kind === 'oci' ? MT.ociIndex : MT.dockerList
      const d = await p.manifest(tag, mediaType, { schemaVersion: 2, mediaType, manifests: children })
      return {
        repository,
        tag,
        digest: d.digest,
        mediaType,
        children: children.map((c) => ({ digest: c.digest, platform: c.platform as Platform })),
      }
    })
}

export const seedOciIndex = seedIndex('oci')

/** A multi-platform image's usual pair, for tests that need an index and not its platforms. */
export const AMD64_AND_ARM64: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
]
/** Not in the original brief: a Docker manifest list, the other index type runtimes accept. */
export const seedDockerManifestList = seedIndex('docker')

/**
 * Blobs, then a manifest of exactly these bytes under `tag`: what a tool other than a build pushes
 * (cosign's signature manifest at `sha256-<hex>.sig`). Returns the manifest's digest.
 */
export function seedRawManifest(
  reg: RunningRegistry,
  repository: string,
  tag: string,
  blobs: readonly Buffer[],
  mediaType: string,
  manifest: Buffer,
  auth?: PushAuth,
): Promise<string> {
  return withPusher(reg, repository, auth, async (p) => {
    for (const blob of blobs) await p.blob(blob)
    return (await p.rawManifest(tag, mediaType, manifest)).digest
  })
}
