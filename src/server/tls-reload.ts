/**
 * Reloads the serving certificate when its files change (cert-manager rotates them in the mounted
 * Secret, an atomic symlink swap). New connections get the new pair; connections already open keep
 * theirs, so no request is dropped. A half-written or mismatched pair is refused and the old one
 * kept until the next change.
 */
import { readFileSync } from 'node:fs'
import { FileWatcher } from '../reload/file-watcher.js'
import type { Server } from 'node:https'
import { createSecureContext } from 'node:tls'
import type { Logger } from 'pino'

/** Kubelet syncs mounted Secrets about once a minute; polling faster than that costs little. */
const POLL_MS = 2_000

export class CertificateReloader {
  readonly #watcher: FileWatcher

  constructor(
    private readonly server: Server,
    private readonly certPath: string,
    private readonly keyPath: string,
    private readonly logger: Logger,
    private readonly onLoaded: (certPem: string) => void = () => {},
    pollMs = POLL_MS,
  ) {
    this.#watcher = new FileWatcher([certPath, keyPath], pollMs, () => this.reload())
  }

  /** Re-reads both files; true when the new pair is in use. */
  reload(): boolean {
    this.#watcher.markSeen()
    let cert: string
    let key: string
    try {
      cert = readFileSync(this.certPath, 'utf8')
      key = readFileSync(this.keyPath, 'utf8')
      createSecureContext({ cert, key }) // throws on a mismatched or partial pair
    } catch (err) {
      this.logger.warn(
        { cert: this.certPath, problem: (err as NodeJS.ErrnoException).code ?? 'invalid pair' },
        'serving certificate not reloaded; keeping the current one',
      )
      return false
    }
    this.server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' })
    this.onLoaded(cert)
    this.logger.info({ cert: this.certPath }, 'serving certificate reloaded')
    return true
  }

  close(): void {
    this.#watcher.close()
  }
}
