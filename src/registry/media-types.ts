/**
 * The manifest types a runtime accepts, in containerd's order (remotes/docker/resolver.go).
 * Without them some registries answer 404 for an image that exists only as an index, or
 * down-convert to schema1. containerd also sends `*\/*`, so we do too.
 */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

export const MANIFEST_ACCEPT = [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX, '*/*'].join(', ')

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST
}
