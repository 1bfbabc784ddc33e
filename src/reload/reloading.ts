/**
 * A configuration read from files, kept in memory and read again when one of them changes (stat
 * polled): a new version that fails to read keeps the last good one and says so; the first read
 * failing is the caller's start-up error, thrown from the constructor. `generation` moves with
 * every new version, so what was cached under the old one is not served after a reload.
 */
import type { Logger } from 'pino'
import { FileWatcher } from './file-watcher.js'

export interface ReloadingOptions<T> {
  read(): T
  /** The files whose change means a new read, given the version last read (undefined before the first). */
  files(last: T | undefined): readonly string[]
  logger: Logger
  /** How the log names it: `registry mirrors configuration`, `signature policy`. */
  what: string
  /** The log line's fields for a version. */
  summary(value: T): Record<string, unknown>
  /** Told of each version read (the first included), e.g. to warn about parts that cannot be used. */
  onRead?(value: T): void
  /** Poll the files (serve); default true. */
  watch?: boolean
  pollMs?: number
}

/** A node's files change rarely, and a minute's lag is the kubelet's for a mounted ConfigMap anyway. */
const POLL_MS = 5_000

export class Reloading<T> {
  #current: T
  #generation = 1
  readonly #options: ReloadingOptions<T>
  readonly #watcher: FileWatcher | undefined

  constructor(options: ReloadingOptions<T>) {
    this.#options = options
    // Watch before the first read, so a change during it is not missed; the files are listed at
    // each look, so one that appears later (a new drop-in) is watched too.
    this.#watcher =
      options.watch === false
        ? undefined
        : new FileWatcher(
            () => options.files(this.#current as T | undefined),
            options.pollMs ?? POLL_MS,
            () => this.reload(),
          )
    try {
      this.#current = options.read()
    } catch (err) {
      this.#watcher?.close()
      throw err
    }
    options.onRead?.(this.#current)
    options.logger.info(options.summary(this.#current), `${options.what} read`)
  }

  get current(): T {
    return this.#current
  }

  get generation(): number {
    return this.#generation
  }

  reload(): void {
    this.#watcher?.markSeen()
    const { logger, what } = this.#options
    let next: T
    try {
      next = this.#options.read()
    } catch (err) {
      logger.error({ problem: (err as Error).message }, `${what} could not be read again; keeping the previous version`)
      return
    }
    this.#current = next
    this.#generation++
    this.#options.onRead?.(next)
    logger.info({ ...this.#options.summary(next), generation: this.#generation }, `${what} reloaded`)
  }

  close(): void {
    this.#watcher?.close()
  }
}
