/**
 * A repository's tags (OCI distribution spec, "Listing Tags"), read only to suggest a tag when the
 * one asked for is missing:
 *  1. GET /v2/<repo>/tags/list?n=<page size>, authenticated exactly like the manifest check
 *     (auth-flow.ts) for the same `repository:<repo>:pull` scope, so the token that check earned
 *     is reused and a token registry costs no second token request.
 *  2. Each page is bounded in size and validated; tags no runtime could pull are dropped.
 *  3. `Link: <url>; rel="next"` (RFC 8288) names the next page. Only links to the registry's own
 *     origin are followed, up to maxPages pages and maxTags tags.
 * A tag list only ever improves a message, so every failure is a value, never an exception.
 */
import type { ImageReference } from '../reference/index.js'
import { tagProblem } from '../reference/grammar.js'
import { endpointUrl, type Endpoint } from './endpoint.js'
import { sendAuthorized, startAuth, type AuthContext, type AuthState } from './auth-flow.js'
import { jsonObject } from './json-body.js'
import type { Credential } from './credential.js'
import { asTransportError } from './transport-error.js'

export interface ListTagsOptions {
  signal?: AbortSignal | undefined
  /** Stop collecting after this many tags (complete: false). */
  maxTags?: number | undefined
  /** Stop following `Link` after this many pages (complete: false). */
  maxPages?: number | undefined
  /** `n` asked of the registry per page (it may send fewer). */
  pageSize?: number | undefined
}

export type TagList = { ok: true; tags: string[]; complete: boolean } | { ok: false; detail: string }

/** What the policy layer needs to read tags: CachedChecker provides it. */
export interface TagSource {
  tags(
    ref: ImageReference,
    credentials: readonly Credential[],
    namespace: string,
    signal?: AbortSignal,
  ): Promise<readonly string[] | undefined>
}

/** Ten pages of 1000 cover every realistic repository; a suggestion is not worth more round-trips. */
export const DEFAULT_MAX_PAGES = 10
/** Enough for the largest public repositories' recent history, and what suggestTags is sized for. */
export const DEFAULT_MAX_TAGS = 10_000
/** ECR and several others refuse or clamp `n` above 1000. */
export const DEFAULT_PAGE_SIZE = 1000
/** 1000 tags of at most 128 characters, JSON-quoted, fit in well under 1 MiB. */
export const TAG_PAGE_BODY_LIMIT = 1024 * 1024

export async function listTags(
  ctx: AuthContext,
  ep: Endpoint,
  credential: Credential | null,
  options: ListTagsOptions = {},
): Promise<TagList> {
  const maxTags = Math.max(1, options.maxTags ?? DEFAULT_MAX_TAGS)
  const maxPages = Math.max(1, options.maxPages ?? DEFAULT_MAX_PAGES)
  const pageSize = Math.max(1, Math.min(options.pageSize ?? DEFAULT_PAGE_SIZE, maxTags))
  const first = endpointUrl(ep, (h, tls) => ctx.transport.baseUrl(h, tls), 'tags/list', `n=${pageSize}`)
  const auth = startAuth(ctx, ep.host, ep.repository, credential, { tls: ep.tls, plainHttp: ep.scheme === 'http' })
  const tags = new Set<string>()
  const done = (complete: boolean): TagList => ({ ok: true, tags: [...tags], complete })
  const visited = new Set<string>()
  let url = first
  for (let page = 0; ; page++) {
    if (page >= maxPages || visited.has(url.href)) return done(false)
    visited.add(url.href)
    const fetched = await fetchPage(ctx, auth, url, ep, options.signal)
    // A later page failing (often the deadline) still leaves real tags worth suggesting.
    if (!fetched.ok) return page === 0 ? fetched : done(false)
    for (const tag of fetched.tags) {
      if (tags.size >= maxTags) return done(false)
      tags.add(tag)
    }
    if (fetched.next === undefined) return done(true)
    // The registry's origin as the transport now knows it (an insecure registry may have
    // turned out to speak plain HTTP on the first page).
    const next = refuseForeignNextLink(
      fetched.next,
      fetched.base,
      ep.scheme === undefined ? ctx.transport.baseUrl(ep.host, ep.tls) : `${ep.scheme}://${ep.host}`,
    )
    if (next === undefined || tags.size >= maxTags) return done(false)
    url = next
  }
}

type Page = { ok: true; tags: string[]; next: string | undefined; base: URL } | { ok: false; detail: string }

async function fetchPage(
  ctx: AuthContext,
  auth: AuthState,
  url: URL,
  ep: Endpoint,
  signal: AbortSignal | undefined,
): Promise<Page> {
  try {
    const sent = await sendAuthorized(ctx, auth, {
      method: 'GET',
      url,
      accept: 'application/json',
      maxBodyBytes: TAG_PAGE_BODY_LIMIT,
      signal,
      headers: ep.headers,
      tls: ep.tls,
    })
    if (!sent.ok) return { ok: false, detail: sent.failure.detail }
    const res = sent.res
    if (res.status !== 200)
      return { ok: false, detail: `${ep.host} answered HTTP ${res.status} to the tag list of ${ep.repository}` }
    const tags = parseTagPage(res.body)
    if (tags === undefined)
      return { ok: false, detail: `${ep.host} sent a tag list of ${ep.repository} that is not {"name", "tags"} JSON` }
    // Relative links resolve against the URL that answered (RFC 8288 §3.2), after any redirect.
    return { ok: true, tags, next: parseNextLink(res.headers.link), base: res.url }
  } catch (err) {
    return { ok: false, detail: asTransportError(err).detail }
  }
}

/**
 * The Authorization header (a pull token or a Basic password) goes with every page, so a `Link`
 * pointing anywhere but the registry's own origin — another host, another port, or plain HTTP —
 * is not followed. A hostile or compromised registry must not be able to harvest a namespace's
 * credentials by naming a "next page" on a server it controls.
 */
export function refuseForeignNextLink(target: string, base: URL, registryOrigin: string): URL | undefined {
  let next: URL
  try {
    next = new URL(target, base)
  } catch {
    return undefined
  }
  return next.origin === new URL(registryOrigin).origin ? next : undefined
}

/** `{"name": string, "tags": string[] | null}`; tags that are not valid tag strings are dropped. */
export function parseTagPage(body: Buffer): string[] | undefined {
  const o = jsonObject(body)
  if (o === undefined) return undefined
  if (typeof o.name !== 'string') return undefined
  // distribution answers `"tags": null` for a repository whose tags were all deleted.
  if (o.tags === null || o.tags === undefined) return []
  if (!Array.isArray(o.tags)) return undefined
  return o.tags.filter((tag): tag is string => typeof tag === 'string' && tagProblem(tag) === undefined)
}

/**
 * The target of the first `rel="next"` link in a Link header (RFC 8288 §3): link-values are
 * separated by commas outside quoted strings; `rel` may list several space-separated types and
 * only its first occurrence counts. The target is returned as written, to resolve against the
 * response's URL.
 */
export function parseNextLink(header: string | string[] | undefined): string | undefined {
  const text = Array.isArray(header) ? header.join(', ') : header
  if (text === undefined) return undefined
  let i = 0
  while (i < text.length) {
    const open = text.indexOf('<', i)
    if (open < 0) return undefined
    const close = text.indexOf('>', open + 1)
    if (close < 0) return undefined
    let end = close + 1
    for (let quoted = false; end < text.length; end++) {
      const ch = text[end]
      if (quoted && ch === '\\') end++
      else if (ch === '"') quoted = !quoted
      else if (!quoted && ch === ',') break
    }
    if (relTypes(text.slice(close + 1, end)).includes('next')) return text.slice(open + 1, close).trim()
    i = end + 1
  }
  return undefined
}

const LINK_PARAM = /;\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?/g

function relTypes(params: string): string[] {
  for (const m of params.matchAll(LINK_PARAM)) {
    if (m[1]?.toLowerCase() !== 'rel') continue
    const raw = m[2] ?? ''
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw
    return value
      .toLowerCase()
      .split(/\s+/)
      .filter((s) => s !== '')
  }
  return []
}
