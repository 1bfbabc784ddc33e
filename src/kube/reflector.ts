/**
 * A local copy of one kind of API object, kept by list + watch (what client-go calls a reflector):
 * list every page, then watch from the list's resourceVersion (with bookmarks, so that version
 * stays fresh); on a watch that ends or breaks, watch again from the last version seen (after a
 * back-off when it broke); only on 410 Gone, or a list that failed, list again. Only a
 * projection of each object is kept (`convert`), so a Secret's other keys never sit in memory.
 *
 * client-node's own informer takes no field selector, which the pull-secret copies need (only the
 * two docker types), and does not restart itself after an error; this is the small part of it we
 * need, on client-node's Watch.
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import type { ApiTrouble } from './api-trouble.js'

export interface ListPage {
  items: unknown[]
  resourceVersion: string
  continue: string | undefined
}

export interface ReflectorOptions<T> {
  /** For logs: `secrets (kubernetes.io/dockerconfigjson)`. */
  name: string
  /** The cluster-scoped collection path, e.g. `/api/v1/secrets`. */
  path: string
  fieldSelector?: string
  /** One page of the list (client-node's typed call); throws on failure. */
  list: (continueToken: string | undefined, signal: AbortSignal) => Promise<ListPage>
  /** The key (`namespace/name`, or `name`) and the part worth keeping; undefined drops the object. */
  convert: (object: unknown) => { key: string; value: T } | undefined
  /** Called with the key of every object added, changed or removed (after the change). */
  onChange?: (key: string) => void
  logger: Logger
  /** Where a failure is explained (once per cause, shared by the copies). */
  trouble: ApiTrouble
  /** For that explanation: `secrets`. */
  resource: string
}

const PAGE_SIZE = 500
/** The API server ends a watch after this; we then watch again from the last version. */
const WATCH_TIMEOUT_S = 300
/** No line at all (not even a bookmark) for this long: the connection is dead without knowing it. */
const WATCH_IDLE_MS = (WATCH_TIMEOUT_S + 30) * 1000
const MIN_BACKOFF_MS = 1_000
const MAX_BACKOFF_MS = 30_000
const LIST_TIMEOUT_MS = 60_000

export class Reflector<T> {
  readonly #options: ReflectorOptions<T>
  readonly #watch: Watch
  #items = new Map<string, T>()
  #resourceVersion = ''
  #synced = false
  #stopped = false
  #backoffMs = MIN_BACKOFF_MS
  #timer: NodeJS.Timeout | undefined
  #watchAbort: AbortController | undefined
  #idle: NodeJS.Timeout | undefined
  #listAbort: AbortController | undefined
  #firstSync: Promise<void>
  #resolveFirstSync!: () => void

  constructor(kubeConfig: KubeConfig, options: ReflectorOptions<T>) {
    this.#options = options
    this.#watch = new Watch(kubeConfig)
    this.#firstSync = new Promise((resolve) => (this.#resolveFirstSync = resolve))
  }

  /** True once a full list has been read; stays true through re-lists (the old copy serves meanwhile). */
  get synced(): boolean {
    return this.#synced
  }

  get size(): number {
    return this.#items.size
  }

  get(key: string): T | undefined {
    return this.#items.get(key)
  }

  values(): IterableIterator<T> {
    return this.#items.values()
  }

  start(): void {
    void this.#relist()
  }

  /** Resolves at the first complete list, or after `timeoutMs` (whichever is first). */
  waitForSync(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))
    return Promise.race([this.#firstSync, timeout]).then(() => {
      clearTimeout(timer)
      return this.#synced
    })
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearTimeout(this.#idle)
    this.#listAbort?.abort()
    this.#watchAbort?.abort()
    this.#items.clear()
  }

  async #relist(): Promise<void> {
    if (this.#stopped) return
    const abort = new AbortController()
    this.#listAbort = abort
    const timer = setTimeout(() => abort.abort(), LIST_TIMEOUT_MS)
    timer.unref()
    try {
      const next = new Map<string, T>()
      let token: string | undefined
      let version = ''
      do {
        const page = await this.#options.list(token, abort.signal)
        for (const item of page.items) {
          const kept = this.#options.convert(item)
          if (kept !== undefined) next.set(kept.key, kept.value)
        }
        version = page.resourceVersion
        token = page.continue
      } while (token !== undefined)
      if (this.#stopped) return
      const previous = this.#items
      this.#items = next
      this.#resourceVersion = version
      for (const key of new Set([...previous.keys(), ...next.keys()]))
        if (previous.get(key) !== next.get(key)) this.#options.onChange?.(key)
      if (!this.#synced) this.#options.logger.info({ cache: this.#options.name, objects: next.size }, 'cache synced')
      this.#synced = true
      this.#resolveFirstSync()
    } catch (err) {
      clearTimeout(timer)
      return this.#retry('list', err)
    }
    clearTimeout(timer)
    let open: boolean
    try {
      open = await this.#startWatch()
    } catch (err) {
      this.#rewatch(err)
      return
    }
    // Recovered only once the watch is open too: a list allowed and a watch forbidden must not
    // say "usable again" and list again every second.
    if (!open) return
    this.#options.trouble.recovered(this.#options.name)
    this.#backoffMs = MIN_BACKOFF_MS
  }

  /** Whether the watch is open: client-node answers a refused watch (403, 410 …) before it resolves. */
  async #startWatch(): Promise<boolean> {
    if (this.#stopped) return false
    let ended = false
    const query = {
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: WATCH_TIMEOUT_S,
      ...(this.#options.fieldSelector === undefined ? {} : { fieldSelector: this.#options.fieldSelector }),
    }
    let gone = false
    // client-node hands out the request's controller only once the response has started: a watch
    // that never opens (a half-open connection) is given up by the idle timer and replaced, and
    // whatever it later brings is ignored.
    let controller: AbortController | undefined
    let abandoned = false
    let events = 0
    const openedAt = Date.now()
    const resetIdle = (): void => {
      clearTimeout(this.#idle)
      this.#idle = setTimeout(() => {
        if (controller !== undefined) return controller.abort()
        abandoned = true
        this.#rewatch(new Error(`the watch of ${this.#options.name} did not open`))
      }, WATCH_IDLE_MS)
      this.#idle.unref()
    }
    resetIdle()
    controller = await this.#watch.watch(
      this.#options.path,
      query,
      (phase, object) => {
        if (this.#stopped || abandoned) return
        events++
        resetIdle()
        if (phase === 'ERROR') {
          // 410 Gone: our resourceVersion is older than the server keeps; anything else: start over too.
          gone = true
          controller?.abort()
          return
        }
        const version = resourceVersionOf(object)
        if (version !== undefined) this.#resourceVersion = version
        if (phase === 'BOOKMARK') return
        this.#apply(phase, object)
      },
      (err: unknown) => {
        ended = true
        if (abandoned) return
        clearTimeout(this.#idle)
        if (this.#stopped) return
        if (gone) return this.#retry('expired', undefined)
        if (err !== null && err !== undefined) return this.#rewatch(err)
        // A watch closed at once without a word (a proxy, a server shutting down) is retried with a
        // back-off, not in a tight loop.
        if (events === 0 && Date.now() - openedAt < 1_000)
          return this.#rewatch(new Error(`the watch of ${this.#options.name} ended at once`))
        // A normal end (timeoutSeconds): carry on from the last version seen.
        this.#timer = setTimeout(() => this.#startWatch().catch((e: unknown) => this.#rewatch(e)), 0)
      },
    )
    if (this.#stopped || abandoned) {
      // Stopped (or given up) while the request was on its way: it must not stay open.
      controller.abort()
      return false
    }
    this.#watchAbort = controller
    // An ERROR event can arrive before the controller is handed out.
    if (gone) controller.abort()
    return !ended
  }

  #apply(phase: string, object: unknown): void {
    const kept = this.#options.convert(object)
    if (kept === undefined) {
      // An object we no longer keep (it changed into something we drop): forget any old copy.
      const key = keyOf(object)
      if (key !== undefined && this.#items.delete(key)) this.#options.onChange?.(key)
      return
    }
    if (phase === 'DELETED') this.#items.delete(kept.key)
    else this.#items.set(kept.key, kept.value)
    this.#options.onChange?.(kept.key)
  }

  /**
   * A watch that broke (a dropped connection, an API server restarting, an idle watch we ended) is
   * opened again from the last resourceVersion seen, as client-go's reflector does: the bookmarks
   * keep that version fresh, so no list is needed. Only a version the server no longer keeps (410
   * Gone: `expired`) or never having listed means listing everything again.
   */
  #rewatch(err: unknown): void {
    if (this.#stopped) return
    // 410 as the HTTP status rather than as a watch event: the version expired all the same.
    if ((err as { statusCode?: unknown } | null)?.statusCode === 410) {
      this.#retry('expired', undefined)
      return
    }
    if (this.#resourceVersion === '') {
      this.#retry('watch', err)
      return
    }
    this.#options.trouble.failed(
      this.#options.name,
      err,
      { verb: 'watch', resource: this.#options.resource },
      this.#backoffMs,
    )
    this.#timer = setTimeout(() => {
      this.#startWatch().then(
        (open) => {
          if (!open) return
          this.#options.trouble.recovered(this.#options.name)
          this.#backoffMs = MIN_BACKOFF_MS
        },
        (e: unknown) => this.#rewatch(e),
      )
    }, this.#backoffMs)
    this.#timer.unref()
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2)
  }

  /** `expired` (410 Gone) is routine: the copy lists again; a failed list or watch is explained once. */
  #retry(what: 'list' | 'watch' | 'expired', err: unknown): void {
    if (this.#stopped) return
    // Info, once per copy: a list of every object is what a big cluster notices (an API server restart
    // whose new watch cache no longer has our version answers 410 to every copy).
    if (what === 'expired')
      this.#options.logger.info({ cache: this.#options.name }, 'watch expired (410 Gone); listing again')
    else
      this.#options.trouble.failed(
        this.#options.name,
        err,
        { verb: what, resource: this.#options.resource },
        this.#backoffMs,
      )
    this.#timer = setTimeout(() => void this.#relist(), this.#backoffMs)
    this.#timer.unref()
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2)
  }
}

export { PAGE_SIZE as REFLECTOR_PAGE_SIZE }

function metadataOf(object: unknown): Record<string, unknown> | undefined {
  const m = typeof object === 'object' && object !== null ? (object as Record<string, unknown>).metadata : undefined
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined
}

function resourceVersionOf(object: unknown): string | undefined {
  const v = metadataOf(object)?.resourceVersion
  return typeof v === 'string' && v !== '' ? v : undefined
}

function keyOf(object: unknown): string | undefined {
  const m = metadataOf(object)
  if (typeof m?.name !== 'string') return undefined
  return typeof m.namespace === 'string' && m.namespace !== '' ? objectKey(m.namespace, m.name) : m.name
}

/**
 * `namespace/name`, flat: tens of thousands of these are kept as map keys, and a template literal
 * would keep two pieces each (twice the size).
 */
export function objectKey(namespace: string, name: string): string {
  return [namespace, name].join('/')
}
