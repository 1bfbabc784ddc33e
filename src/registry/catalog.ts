/**
 * A registry's repositories (the distribution API's `GET /v2/_catalog`), read only to suggest the
 * repository meant when the one asked for does not exist:
 *  1. GET <root>/_catalog?n=<page size>, with the credential that the manifest check would send,
 *     authorized for `registry:catalog:*` (a token registry grants it to whom it chooses: Docker
 *     Hub and most clouds refuse it, which is an answer too).
 *  2. Each page is bounded and validated; names that are not repository paths are dropped.
 *  3. `Link: <…>; rel="next"` pages, only on the registry's own origin, up to maxPages pages and
 *     maxRepositories names.
 * A catalog only ever improves a message: every failure is a value.
 */
import { pathProblem } from '../reference/grammar.js'
import { sendAuthorized, startAuth, type AuthContext } from './auth-flow.js'
import type { Credential } from './credential.js'
import type { Endpoint } from './endpoint.js'
import { jsonObject } from './json-body.js'
import { parseNextLink, refuseForeignNextLink } from './tags.js'
import { asTransportError } from './transport-error.js'

export type Catalog =
  | { ok: true; repositories: string[]; complete: boolean }
  /** `refused`: the registry does not let these credentials list it (401/403/404 on the catalog). */
  | { ok: false; refused: boolean; detail: string }

/** Five pages of 1000: enough to find a near name in any registry a team runs; Docker Hub refuses anyway. */
export const CATALOG_MAX_PAGES = 5
export const CATALOG_MAX_REPOSITORIES = 5_000
export const CATALOG_PAGE_SIZE = 1000
/** 1000 names of at most 255 characters, JSON-quoted. */
const CATALOG_PAGE_BODY_LIMIT = 1024 * 1024

export async function listCatalog(
  ctx: AuthContext,
  ep: Endpoint,
  credential: Credential | null,
  signal: AbortSignal | undefined,
): Promise<Catalog> {
  const origin = ep.scheme === undefined ? ctx.transport.baseUrl(ep.host, ep.tls) : `${ep.scheme}://${ep.host}`
  const auth = startAuth(ctx, ep.host, '', credential, {
    tls: ep.tls,
    plainHttp: ep.scheme === 'http',
    scope: 'registry:catalog:*',
  })
  const repositories = new Set<string>()
  const visited = new Set<string>()
  let url = new URL(`${origin}${ep.root}/_catalog?n=${CATALOG_PAGE_SIZE}`)
  for (let page = 0; page < CATALOG_MAX_PAGES && !visited.has(url.href); page++) {
    visited.add(url.href)
    let res: Awaited<ReturnType<typeof sendAuthorized>>
    try {
      res = await sendAuthorized(ctx, auth, {
        method: 'GET',
        url,
        accept: 'application/json',
        maxBodyBytes: CATALOG_PAGE_BODY_LIMIT,
        signal,
        headers: ep.headers,
        tls: ep.tls,
      })
    } catch (err) {
      return page === 0 ? { ok: false, refused: false, detail: asTransportError(err).detail } : done(false)
    }
    if (!res.ok) {
      // The token server refusing the catalog scope is the registry saying no.
      const refused = res.failure.code === 'AccessDenied' || res.failure.code === 'RepositoryNotFoundOrDenied'
      return page === 0 ? { ok: false, refused, detail: res.failure.detail } : done(false)
    }
    const status = res.res.status
    if (status === 401 || status === 403 || status === 404)
      return {
        ok: false,
        refused: true,
        detail: `${ep.host} does not list its repositories to these credentials (HTTP ${status})`,
      }
    if (status !== 200)
      return page === 0
        ? { ok: false, refused: false, detail: `${ep.host} answered HTTP ${status} to its catalog` }
        : done(false)
    const names = parseCatalogPage(res.res.body)
    if (names === undefined)
      return page === 0
        ? { ok: false, refused: false, detail: `${ep.host} sent a catalog that is not {"repositories": […]}` }
        : done(false)
    for (const name of names) {
      if (repositories.size >= CATALOG_MAX_REPOSITORIES) return done(false)
      repositories.add(name)
    }
    const next = parseNextLink(res.res.headers.link)
    if (next === undefined) return done(true)
    const followed = refuseForeignNextLink(next, res.res.url, origin)
    if (followed === undefined) return done(false)
    url = followed
  }
  return done(false)

  function done(complete: boolean): Catalog {
    return { ok: true, repositories: [...repositories], complete }
  }
}

/** `{"repositories": string[] | null}`; names that are not repository paths are dropped. */
export function parseCatalogPage(body: Buffer): string[] | undefined {
  const o = jsonObject(body)
  if (o === undefined) return undefined
  if (o.repositories === null || o.repositories === undefined) return []
  if (!Array.isArray(o.repositories)) return undefined
  return o.repositories.filter((r): r is string => typeof r === 'string' && pathProblem(r) === undefined)
}
