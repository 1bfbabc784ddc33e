/**
 * The cluster's platforms: the `--platform` values when given, otherwise read from the Node objects.
 *  1. The first review starts a read and waits for it only as long as its own deadline allows;
 *     until a list exists the answer is [] (unknown: no platform check, never a denial).
 *  2. After that, reviews get the last list at once. Once it is older than the refresh interval,
 *     the next review starts a background read (stale-while-revalidate): nodes join and leave,
 *     but a new architecture in a cluster is rare, so minutes of staleness cost little.
 *  3. A failed read keeps the last list and is retried after a short pause, not on every review:
 *     an API server in trouble must not get one node list per admission request.
 */
import type { Logger } from 'pino'
import type { Clock } from '../cache/ttl-cache.js'
import { Refreshed } from '../kube/refreshed.js'
import type { NodeSource } from '../kube/sources.js'
import { formatPlatform, normalizePlatform, type Platform } from './platforms.js'

export interface NodePlatformsOptions {
  /** How long a list read from the Nodes is used before it is read again. */
  refreshMs?: number
  /** After a failed read, how long before the next try. */
  retryMs?: number
  /** Bound on one read (all pages), whoever waits for it. */
  readTimeoutMs?: number
  clock?: Clock
}

export const DEFAULT_REFRESH_MS = 10 * 60_000
export const DEFAULT_RETRY_MS = 30_000
// The KubeApi bounds each page by its own request timeout; this bounds a source that does not,
// so a read that never ends cannot stop every later refresh.
export const DEFAULT_READ_TIMEOUT_MS = 30_000

export class NodePlatforms {
  readonly #fixed: readonly Platform[] | undefined
  readonly #list: Refreshed<readonly Platform[]>

  /** `fixed`: the `--platform` values; non-empty means the Nodes are never read. */
  constructor(source: NodeSource, fixed: readonly Platform[], logger: Logger, options: NodePlatformsOptions = {}) {
    this.#fixed = fixed.length > 0 ? dedupe(fixed) : undefined
    let known: readonly Platform[] | undefined
    this.#list = new Refreshed(
      async (signal) => {
        const r = await source.listNodePlatforms(signal)
        if (r.kind !== 'found')
          return r.kind === 'missing' ? { kind: 'error', detail: 'the node list was not found (HTTP 404)' } : r
        const next = dedupe(r.object)
        if (known === undefined || key(known) !== key(next))
          logger.info({ platforms: next.map(formatPlatform) }, 'cluster platforms read from the Node objects')
        known = next
        return { kind: 'found', object: next }
      },
      {
        refreshMs: options.refreshMs ?? DEFAULT_REFRESH_MS,
        retryMs: options.retryMs ?? DEFAULT_RETRY_MS,
        readTimeoutMs: options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        onRead: (r) => {
          if (r.ok) return
          logger.warn(
            {
              detail: r.detail.replace('the source failed', 'the node source failed'),
              keeping: known?.map(formatPlatform) ?? 'nothing (platform checks are off until a read succeeds)',
            },
            'cannot read the cluster platforms from the Node objects; grant pullguard "list nodes" or set --platform',
          )
        },
      },
    )
  }

  /** The cluster's platforms, normalized and distinct; [] means unknown. Never throws. */
  async platforms(signal?: AbortSignal): Promise<readonly Platform[]> {
    if (this.#fixed !== undefined) return this.#fixed
    return (await this.#list.get(signal)) ?? []
  }

  /**
   * What platforms() would answer now without waiting: the list, or undefined while none has been
   * read. Starts a due refresh like platforms() does.
   */
  current(): readonly Platform[] | undefined {
    if (this.#fixed !== undefined) return this.#fixed
    return this.#list.current()
  }
}

function dedupe(list: ReadonlyArray<Platform>): Platform[] {
  const out = new Map<string, Platform>()
  for (const raw of list) {
    const p = normalizePlatform(raw)
    out.set(formatPlatform(p), p)
  }
  return [...out.values()]
}

function key(list: readonly Platform[]): string {
  return list.map(formatPlatform).sort().join(',')
}
