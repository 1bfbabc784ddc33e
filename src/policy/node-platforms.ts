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
import { within } from '../async/deadline.js'
import { systemClock, type Clock } from '../cache/ttl-cache.js'
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
  readonly #source: NodeSource
  readonly #fixed: readonly Platform[] | undefined
  readonly #logger: Logger
  readonly #clock: Clock
  readonly #refreshMs: number
  readonly #retryMs: number
  readonly #readTimeoutMs: number
  /** The last list read successfully; undefined until one is. */
  #known: readonly Platform[] | undefined
  /** When the next read is due (after a success: refresh; after a failure: retry). */
  #dueAt = 0
  #reading: Promise<void> | undefined

  /** `fixed`: the `--platform` values; non-empty means the Nodes are never read. */
  constructor(source: NodeSource, fixed: readonly Platform[], logger: Logger, options: NodePlatformsOptions = {}) {
    this.#source = source
    this.#fixed = fixed.length > 0 ? dedupe(fixed) : undefined
    this.#logger = logger
    this.#clock = options.clock ?? systemClock
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS
    this.#retryMs = options.retryMs ?? DEFAULT_RETRY_MS
    this.#readTimeoutMs = options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS
  }

  /** The cluster's platforms, normalized and distinct; [] means unknown. Never throws. */
  async platforms(signal?: AbortSignal): Promise<readonly Platform[]> {
    if (this.#fixed !== undefined) return this.#fixed
    if (this.#clock.now() >= this.#dueAt) this.#startRead()
    if (this.#known !== undefined) return this.#known
    // No list yet: wait for the read in flight (if any), but not past this review's deadline.
    await within(this.#reading ?? Promise.resolve(), signal, () => undefined)
    return this.#known ?? []
  }

  /**
   * What platforms() would answer now without waiting: the list, or undefined while none has been
   * read. Starts a due refresh like platforms() does.
   */
  current(): readonly Platform[] | undefined {
    if (this.#fixed !== undefined) return this.#fixed
    if (this.#clock.now() >= this.#dueAt) this.#startRead()
    return this.#known
  }

  #startRead(): void {
    if (this.#reading !== undefined) return
    this.#reading = this.#read().finally(() => {
      this.#reading = undefined
    })
  }

  async #read(): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.#readTimeoutMs)
    timer.unref()
    let detail: string
    try {
      const r = await this.#source.listNodePlatforms(controller.signal)
      if (r.kind === 'found') {
        const next = dedupe(r.object)
        if (this.#known === undefined || key(this.#known) !== key(next)) {
          this.#logger.info({ platforms: next.map(formatPlatform) }, 'cluster platforms read from the Node objects')
        }
        this.#known = next
        this.#dueAt = this.#clock.now() + this.#refreshMs
        return
      }
      detail = r.kind === 'missing' ? 'the node list was not found (HTTP 404)' : r.detail
    } catch (err) {
      // Sources return Lookups; a throw is a bug in one, and must not break a review.
      detail = `the node source failed (${err instanceof Error ? err.name : 'unknown error'})`
    } finally {
      clearTimeout(timer)
    }
    this.#dueAt = this.#clock.now() + this.#retryMs
    this.#logger.warn(
      {
        detail,
        keeping: this.#known?.map(formatPlatform) ?? 'nothing (platform checks are off until a read succeeds)',
      },
      'cannot read the cluster platforms from the Node objects; grant pullguard "list nodes" or set --platform',
    )
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
