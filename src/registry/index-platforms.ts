/**
 * The platforms an image index offers, so policy can hold them against the platforms the pod may
 * run on (registry-semantics §5: a runtime picks the index entry for its node's os/arch/variant).
 *  1. The manifest check (manifest.ts) found an index. If that answer was a GET, the body is in
 *     hand and is parsed at once: no request.
 *  2. Otherwise one GET /v2/<repo>/manifests/<digest> with the attempt's AuthState: the HEAD already
 *     earned the token, so this is one request. By digest, so a tag moved in between cannot hand
 *     us another index's platforms; the body must also hash to that digest.
 *  3. Any failure leaves the answer at "exists, platforms unknown" with the reason: the image does
 *     exist, and policy must never deny on something it could not read.
 *
 * Cost: Docker Hub counts manifest GETs (not HEADs) toward its pull rate limit, so each index read
 * here spends one pull of the caller's quota (anonymous: per source IP). The answer is cached with
 * the Exists result (cached-checker.ts), and RegistryClient's `resolveIndexPlatforms: false` turns
 * this step off.
 */
import { createHash } from 'node:crypto'
import { sendAuthorized, type AuthContext, type AuthState } from './auth-flow.js'
import { endpointUrl, type Endpoint } from './endpoint.js'
import { MANIFEST_ACCEPT } from './media-types.js'
import type { Platform } from './result.js'
import { asTransportError } from './transport-error.js'

/** containerd refuses manifests (indexes included) over 4 MiB (MaxManifestSize); so do we. */
export const INDEX_BODY_LIMIT = 4 * 1024 * 1024
/**
 * Real indexes list a handful of platforms (official images: under 20). Platforms end up in
 * admission messages, so a hostile index must not make them huge; past this we say "unknown"
 * rather than truncate, since a dropped entry could be the one a node needs.
 */
export const MAX_INDEX_PLATFORMS = 128
/**
 * os / architecture / variant values end up in messages. Real ones are short identifiers (GOOS,
 * GOARCH, `v7`, `v8.2`); an entry with anything else cannot match a node, so it is left out.
 */
const PLATFORM_FIELD = /^[A-Za-z0-9._-]{1,64}$/

export type IndexPlatforms = { ok: true; platforms: Platform[] } | { ok: false; reason: string }

/** Step 2: one GET by digest with the attempt's authorization. Never throws. */
export async function fetchIndexPlatforms(
  ctx: AuthContext,
  auth: AuthState,
  ep: Endpoint,
  digest: string,
  signal: AbortSignal | undefined,
): Promise<IndexPlatforms> {
  const body = await fetchIndex(ctx, auth, ep, digest, signal)
  return body.ok ? platformsFromBody(body.body, digest) : body
}

/** One platform's manifest in an index: what a node of that platform pulls. */
export interface IndexInstance {
  digest: string
  platform: Platform
}

export type IndexInstances = { ok: true; instances: IndexInstance[] } | { ok: false; reason: string }

/**
 * The index `digest` at `ep`, entry by entry in its order (signature policies check the manifest
 * a node's platform picks, not the index). Never throws.
 */
export async function fetchIndexInstances(
  ctx: AuthContext,
  auth: AuthState,
  ep: Endpoint,
  digest: string,
  signal: AbortSignal | undefined,
): Promise<IndexInstances> {
  const got = await fetchIndex(ctx, auth, ep, digest, signal)
  if (!got.ok) return got
  if (!bodyMatchesDigest(got.body, digest))
    return { ok: false, reason: `the index body does not match digest ${digest}` }
  const platforms = parseIndexPlatforms(got.body)
  if (!platforms.ok) return platforms
  const manifests = (JSON.parse(got.body.toString('utf8')) as { manifests: unknown[] }).manifests
  const instances: IndexInstance[] = []
  for (const entry of manifests) {
    if (!isRecord(entry) || !isRecord(entry['platform']) || typeof entry['digest'] !== 'string') continue
    const { os, architecture, variant } = entry['platform']
    if (!isField(os) || !isField(architecture) || !(variant === undefined || variant === '' || isField(variant)))
      continue
    const platform: Platform =
      variant === undefined || variant === '' ? { os, architecture } : { os, architecture, variant }
    instances.push({ digest: entry['digest'], platform })
  }
  return { ok: true, instances }
}

async function fetchIndex(
  ctx: AuthContext,
  auth: AuthState,
  ep: Endpoint,
  digest: string,
  signal: AbortSignal | undefined,
): Promise<{ ok: true; body: Buffer } | { ok: false; reason: string }> {
  const url = endpointUrl(ep, (h, tls) => ctx.transport.baseUrl(h, tls), `manifests/${digest}`)
  try {
    const sent = await sendAuthorized(ctx, auth, {
      method: 'GET',
      url,
      accept: MANIFEST_ACCEPT,
      maxBodyBytes: INDEX_BODY_LIMIT,
      signal,
      headers: ep.headers,
      tls: ep.tls,
    })
    if (!sent.ok) return { ok: false, reason: sent.failure.detail }
    if (sent.res.status !== 200) return { ok: false, reason: `GET of the index answered HTTP ${sent.res.status}` }
    return { ok: true, body: sent.res.body }
  } catch (err) {
    return { ok: false, reason: asTransportError(err).detail }
  }
}

/** The index's platforms, if `body` is the index `digest` names. */
export function platformsFromBody(body: Buffer, digest: string): IndexPlatforms {
  if (!bodyMatchesDigest(body, digest)) return { ok: false, reason: `the index body does not match digest ${digest}` }
  return parseIndexPlatforms(body)
}

/**
 * `manifests[].platform` of an OCI index or Docker manifest list, deduplicated, as written.
 * An entry without a platform is kept by containerd's FilterPlatforms for every node
 * (core/images/handlers.go: `d.Platform == nil || m.Match(*d.Platform)`), so such an index
 * cannot be missing anyone's platform: we answer "unknown" rather than a list that would say so.
 */
export function parseIndexPlatforms(body: Buffer): IndexPlatforms {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    return { ok: false, reason: 'the index is not valid JSON' }
  }
  const manifests = isRecord(json) ? json['manifests'] : undefined
  if (!Array.isArray(manifests)) return { ok: false, reason: 'the index has no manifests list' }
  const seen = new Map<string, Platform>()
  for (const [i, entry] of manifests.entries()) {
    const platform = isRecord(entry) ? entry['platform'] : undefined
    if (!isRecord(platform))
      return { ok: false, reason: `index entry ${i} has no platform, which runtimes accept on every node` }
    const { os, architecture, variant } = platform
    // containerd reads an empty os as the node's own (platforms.normalizeOS), whatever that is.
    if (os === '') return { ok: false, reason: `index entry ${i} has an empty os, which runtimes read as their own` }
    if (!isField(os) || !isField(architecture) || !(variant === undefined || variant === '' || isField(variant)))
      continue
    const p: Platform = variant === undefined || variant === '' ? { os, architecture } : { os, architecture, variant }
    seen.set(`${os}/${architecture}/${p.variant ?? ''}`, p)
    if (seen.size > MAX_INDEX_PLATFORMS)
      return { ok: false, reason: `the index lists more than ${MAX_INDEX_PLATFORMS} platforms` }
  }
  return { ok: true, platforms: [...seen.values()] }
}

/** sha256 and sha512 are the algorithms registries use; anything else is taken on trust. */
function bodyMatchesDigest(body: Buffer, digest: string): boolean {
  const colon = digest.indexOf(':')
  const algorithm = digest.slice(0, colon)
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return true
  return createHash(algorithm).update(body).digest('hex') === digest.slice(colon + 1)
}

function isField(v: unknown): v is string {
  return typeof v === 'string' && PLATFORM_FIELD.test(v)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
