// What `cosign sign --key` stores, built without cosign: the simple-signing payload and its signature
// (one layer of the attachment), and the OCI manifest cosign pushes at tag "sha256-<hex>.sig" next to
// the signed manifest. Pure: pushing the blobs and the manifest is the caller's business.
import { createHash, type KeyObject, sign } from 'node:crypto'

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json'

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`

/**
 * cosign's payload (sigstore/cosign pkg/cosign payload.Cosign → SimpleContainerImage): critical
 * identity, image and type, "optional" null unless annotations are given (-a key=value), signed over
 * its exact bytes with SHA-256 (ECDSA as ASN.1 DER, RSA PKCS#1 v1.5; Ed25519 signs the bytes).
 */
export function cosignSign(options: {
  privateKey: KeyObject
  dockerReference: string
  manifestDigest: string
  optional?: Record<string, unknown>
}): { payload: Buffer; signature: string; annotations: Record<string, string> } {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': options.dockerReference },
        image: { 'docker-manifest-digest': options.manifestDigest },
        type: 'cosign container image signature',
      },
      optional: options.optional ?? null,
    }),
  )
  const algorithm = options.privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256'
  const signature = sign(algorithm, payload, options.privateKey).toString('base64')
  return { payload, signature, annotations: { [SIGNATURE_ANNOTATION]: signature } }
}

/**
 * The attachment image cosign pushes: an OCI image manifest whose layers are the payloads (media type
 * simple signing, the signature in annotations) and whose config is go-containerregistry's config for
 * those layers (empty platform, zero times, one history entry and one diff_id per layer).
 */
export function sigstoreAttachmentManifest(layers: Array<{ payload: Buffer; annotations: Record<string, string> }>): {
  manifest: Buffer
  manifestDigest: string
  config: Buffer
  configDigest: string
  blobs: Array<{ digest: string; data: Buffer }>
  tag: (digest: string) => string
} {
  const zero = '0001-01-01T00:00:00Z'
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: layers.map(() => ({ created: zero })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.payload)) },
      config: {},
    }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: { mediaType: OCI_CONFIG_MEDIA_TYPE, size: config.length, digest: sha256(config) },
      layers: layers.map((l) => ({
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        size: l.payload.length,
        digest: sha256(l.payload),
        annotations: l.annotations,
      })),
    }),
  )
  return {
    manifest,
    manifestDigest: sha256(manifest),
    config,
    configDigest: sha256(config),
    blobs: [
      { digest: sha256(config), data: config },
      ...layers.map((l) => ({ digest: sha256(l.payload), data: l.payload })),
    ],
    // cosign's attachment tag for the image manifest `digest` ("sha256:<hex>" → "sha256-<hex>.sig").
    tag: (digest: string) => `${digest.replace(':', '-')}.sig`,
  }
}
