/**
 * Sigstore signatures stored the way cosign stores them, as an OCI attachment: an image manifest
 * at tag `sha256-<hex>.sig` beside the image, each layer one signature (its blob the payload, its
 * annotations the signature). Read as containers-image reads them when registries.d says
 * `use-sigstore-attachments` (docker_client.go getSigstoreAttachmentManifest,
 * docker_image_src.go appendSignaturesFromSigstoreAttachments), from the host and repository the
 * image's manifest came from, with the same credential:
 *  1. GET the manifest at the tag. 404 (whatever its error code: isManifestUnknownError takes any
 *     404): the image has no signatures. A manifest that is no OCI
 *     image manifest: the runtime's pull fails (`invalid`).
 *  2. GET each layer's blob, at most 4 MiB (iolimits.MaxSignatureBodySize), which must hash to its
 *     digest.
 * Anything that is not an answer (5xx, a timeout, a refusal pullguard may owe to credentials it
 * cannot see) is `unanswered`: the signatures are unknown, never absent.
 */
import { createHash } from 'node:crypto'
import { sendAuthorized, startAuth, type AuthContext, type AuthState } from './auth-flow.js'
import type { Credential } from './credential.js'
import { endpointUrl, type Endpoint } from './endpoint.js'
import { jsonObject } from './json-body.js'
import { OCI_MANIFEST } from './media-types.js'
import { asTransportError } from './transport-error.js'

/** One attachment layer: a signature when its media type says so (the caller decides). */
export interface SigstoreAttachment {
  mediaType: string
  payload: Buffer
  annotations: Readonly<Record<string, string>>
}

export type AttachmentsRead =
  | { ok: true; attachments: SigstoreAttachment[] }
  /** `invalid`: what the registry holds makes the runtime's pull fail; `unanswered`: no answer to go by. */
  | { ok: false; kind: 'invalid' | 'unanswered'; detail: string }

/** containers-image reads each signature up to this size. */
export const SIGNATURE_BODY_LIMIT = 4 * 1024 * 1024
/** A signature manifest holds a signature per signing; past this many it is not one pullguard reads. */
export const MAX_ATTACHMENTS = 64
const MANIFEST_LIMIT = 4 * 1024 * 1024
const SHA256 = /^sha256:[a-f0-9]{64}$/

/** cosign's tag for the signatures of `digest` (sigstoreAttachmentTag). */
export function attachmentTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`
}

/** The attachments of the manifest `digest` at `ep`, asked with `credential` (null: anonymously). Never throws. */
export async function readSigstoreAttachments(
  ctx: AuthContext,
  ep: Endpoint,
  credential: Credential | null,
  digest: string,
  signal: AbortSignal | undefined,
): Promise<AttachmentsRead> {
  if (!SHA256.test(digest)) return { ok: false, kind: 'unanswered', detail: `cannot look up signatures of ${digest}` }
  const auth = startAuth(ctx, ep.host, ep.repository, credential, { tls: ep.tls, plainHttp: ep.scheme === 'http' })
  const where = `${ep.label} (${ep.repository}:${attachmentTag(digest)})`
  try {
    const manifest = await get(
      ctx,
      auth,
      ep,
      `manifests/${attachmentTag(digest)}`,
      OCI_MANIFEST,
      MANIFEST_LIMIT,
      signal,
    )
    if (manifest.kind === 'failed') return { ok: false, kind: 'unanswered', detail: `${where}: ${manifest.detail}` }
    if (manifest.status === 404) return { ok: true, attachments: [] }
    if (manifest.status !== 200)
      return { ok: false, kind: 'unanswered', detail: `${where}: HTTP ${manifest.status} for the signature manifest` }
    const mediaType = (header(manifest.headers['content-type']) ?? '').split(';')[0]!.trim()
    if (mediaType !== OCI_MANIFEST)
      return {
        ok: false,
        kind: 'invalid',
        detail: `unexpected MIME type for sigstore attachment manifest ${where}: "${mediaType}"`,
      }
    const layers = ociLayers(manifest.body)
    if (typeof layers === 'string')
      return { ok: false, kind: 'invalid', detail: `parsing manifest ${where}: ${layers}` }
    if (layers.length > MAX_ATTACHMENTS)
      return {
        ok: false,
        kind: 'unanswered',
        detail: `${where} holds ${layers.length} attachments; pullguard reads at most ${MAX_ATTACHMENTS}`,
      }
    const attachments: SigstoreAttachment[] = []
    for (const layer of layers) {
      if (layer.size > SIGNATURE_BODY_LIMIT)
        return {
          ok: false,
          kind: 'invalid',
          detail: `${where}: an attachment of ${layer.size} bytes exceeds ${SIGNATURE_BODY_LIMIT}`,
        }
      const blob = await get(ctx, auth, ep, `blobs/${layer.digest}`, '*/*', SIGNATURE_BODY_LIMIT, signal)
      if (blob.kind === 'failed') return { ok: false, kind: 'unanswered', detail: `${where}: ${blob.detail}` }
      if (blob.status !== 200)
        return { ok: false, kind: 'unanswered', detail: `${where}: HTTP ${blob.status} for attachment ${layer.digest}` }
      if (`sha256:${createHash('sha256').update(blob.body).digest('hex')}` !== layer.digest)
        return { ok: false, kind: 'invalid', detail: `${where}: attachment ${layer.digest} does not match its digest` }
      attachments.push({ mediaType: layer.mediaType, payload: blob.body, annotations: layer.annotations })
    }
    return { ok: true, attachments }
  } catch (err) {
    return { ok: false, kind: 'unanswered', detail: `${where}: ${asTransportError(err).detail}` }
  }
}

type Got =
  | { kind: 'answered'; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
  | { kind: 'failed'; detail: string }

async function get(
  ctx: AuthContext,
  auth: AuthState,
  ep: Endpoint,
  suffix: string,
  accept: string,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<Got> {
  const url = endpointUrl(ep, (h, tls) => ctx.transport.baseUrl(h, tls), suffix)
  const sent = await sendAuthorized(ctx, auth, {
    method: 'GET',
    url,
    accept,
    maxBodyBytes: limit,
    signal,
    headers: ep.headers,
    tls: ep.tls,
  })
  if (!sent.ok) return { kind: 'failed', detail: sent.failure.detail }
  const { status, headers, body } = sent.res
  return { kind: 'answered', status, headers, body }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

interface Layer {
  mediaType: string
  digest: string
  size: number
  annotations: Record<string, string>
}

/** The layers of an OCI image manifest, or what is wrong with it. */
function ociLayers(body: Buffer): Layer[] | string {
  const doc = jsonObject(body)
  if (doc === undefined) return 'not a JSON object'
  const layers = doc['layers']
  if (!Array.isArray(layers)) return 'no layers'
  const out: Layer[] = []
  for (const raw of layers) {
    if (typeof raw !== 'object' || raw === null) return 'a layer is not an object'
    const l = raw as Record<string, unknown>
    if (typeof l['mediaType'] !== 'string' || typeof l['digest'] !== 'string' || !SHA256.test(l['digest']))
      return 'a layer without a media type or a sha256 digest'
    const annotations: Record<string, string> = {}
    const a = l['annotations']
    if (a !== undefined && a !== null) {
      if (typeof a !== 'object' || Array.isArray(a)) return 'layer annotations are not an object'
      for (const [k, v] of Object.entries(a)) if (typeof v === 'string') annotations[k] = v
    }
    out.push({
      mediaType: l['mediaType'],
      digest: l['digest'],
      size: typeof l['size'] === 'number' ? l['size'] : 0,
      annotations,
    })
  }
  return out
}
