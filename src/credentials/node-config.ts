/**
 * `--node-docker-config`: a docker config.json standing for the credentials the nodes have (the
 * kubelet's own config.json). Its entries come after the pod's, with the kubelet's matching rules.
 * Mounted from a Secret, it changes when the Secret does (an atomic symlink swap), so it is
 * re-read when its stat changes; a bad new version keeps the last good one and says so.
 * Credential provider plugins (ECR, GCR, ACR) are the providers/ room's.
 */
import { readFileSync } from 'node:fs'
import { FileWatcher } from '../reload/file-watcher.js'
import type { Logger } from 'pino'
import { displayKey, parseDockerConfigFile } from './docker-config.js'
import type { KeyringEntry } from './keyring.js'

/** How often the file's stat is polled; a mounted Secret's kubelet sync period is ~1 minute anyway. */
const POLL_MS = 5_000

export class NodeDockerConfigError extends Error {
  readonly code = 'InvalidNodeDockerConfig'
  override name = 'NodeDockerConfigError'
}

export class NodeDockerConfig {
  #entries: readonly KeyringEntry[]
  readonly #path: string
  readonly #logger: Logger
  readonly #watcher: FileWatcher | undefined

  /** Reads the file once; a file that cannot be read or parsed is a start-up error. */
  constructor(path: string, logger: Logger, options: { watch?: boolean } = {}) {
    this.#path = path
    this.#logger = logger
    // Watch before the first read, so a change during it is not missed.
    this.#watcher = options.watch === false ? undefined : new FileWatcher([path], POLL_MS, () => this.reload())
    const first = read(path)
    if (typeof first === 'string') throw new NodeDockerConfigError(first)
    this.#entries = first.entries
    if (first.helpers.length > 0) this.#warnHelpers(first.helpers)
  }

  entries(): readonly KeyringEntry[] {
    return this.#entries
  }

  reload(): void {
    this.#watcher?.markSeen()
    const next = read(this.#path)
    if (typeof next === 'string') {
      this.#logger.error(
        { path: this.#path, problem: next },
        'node docker config could not be reloaded; keeping the previous version',
      )
      return
    }
    this.#entries = next.entries
    this.#logger.info({ path: this.#path, entries: next.entries.length }, 'node docker config reloaded')
  }

  close(): void {
    this.#watcher?.close()
  }

  #warnHelpers(helpers: string[]): void {
    this.#logger.warn(
      { path: this.#path, registries: helpers },
      'credential helpers (credsStore/credHelpers) are not supported; those registries get no node credentials',
    )
  }
}

function read(path: string): { entries: KeyringEntry[]; helpers: string[] } | string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    return `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`
  }
  const parsed = parseDockerConfigFile(text)
  if (!parsed.ok) return `${path}: ${parsed.problem}`
  const entries = parsed.entries.map((e) => ({
    key: e.key,
    username: e.username,
    password: e.password,
    label: `node docker config (key "${displayKey(e.key)}")`,
  }))
  return { entries, helpers: parsed.helpers ?? [] }
}
