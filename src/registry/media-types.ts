import { jsonObject } from './json-body.js'

/**
 * The manifest types a runtime accepts, in containerd's order (remotes/docker/resolver.go).
 * Without them some registries answer 404 for an image that exists only as an index, or
 * down-convert to schema1. containerd also sends `*\/*`, so we do too.
 */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

/** Schema 1 (deprecated): containerd 1.x still pulls it, containerd 2.x refuses it. */
export const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json'
export const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

const MANIFEST_TYPES: ReadonlySet<string> = new Set([
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
])

export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType)
}

/**
 * The media type of a manifest body whose Content-Type did not say (some registries and proxies
 * send application/json or octet-stream): the `mediaType` field, or its shape.
 */
export function sniffManifestMediaType(body: Buffer): string | undefined {
  const json = jsonObject(body)
  if (json === undefined) return undefined
  const m = json as {
    mediaType?: unknown
    schemaVersion?: unknown
    manifests?: unknown
    layers?: unknown
    config?: unknown
    fsLayers?: unknown
  }
  if (typeof m.mediaType === 'string' && MANIFEST_TYPES.has(m.mediaType)) return m.mediaType
  if (m.schemaVersion === 1 && Array.isArray(m.fsLayers)) return DOCKER_SCHEMA1
  if (m.schemaVersion === 2 && Array.isArray(m.manifests)) return OCI_INDEX
  if (m.schemaVersion === 2 && Array.isArray(m.layers) && typeof m.config === 'object') return OCI_MANIFEST
  return undefined
}

export const MANIFEST_ACCEPT = [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX, '*/*'].join(', ')

/** Docker schema 1, signed or not: what containerd 2.x refuses (core/transfer/local/pull.go). */
export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === DOCKER_SCHEMA1 || mediaType === DOCKER_SCHEMA1_SIGNED
}

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST
}
