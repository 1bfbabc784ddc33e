/**
 * Noticing that a file changed: a mounted Secret is replaced by an atomic symlink swap (new inode,
 * new mtime). We poll stat ourselves and compare with the fingerprint taken when the file was last
 * read. fs.watchFile compares with its own first look instead, which can already be after a change
 * (it is taken asynchronously), and then never reports that change at all.
 */
import { statSync, type Stats } from 'node:fs'

export function fingerprint(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`
}

export function statFingerprint(path: string): string {
  try {
    return fingerprint(statSync(path))
  } catch {
    return 'missing'
  }
}

export class FileWatcher {
  #seen: string
  readonly #timer: NodeJS.Timeout

  /**
   * Calls `onChange` when any of `paths` differs from what was there at construction (or `seen`,
   * a snapshot taken earlier, before the files were read) or at the last `markSeen()`. `paths` may
   * be a function, for a set of files that changes with what was read (a directory's entries).
   */
  constructor(
    private readonly paths: readonly string[] | (() => readonly string[]),
    intervalMs: number,
    onChange: () => void,
    seen?: string,
  ) {
    this.#seen = seen ?? this.#current()
    this.#timer = setInterval(() => {
      if (this.#current() !== this.#seen) onChange()
    }, intervalMs)
    this.#timer.unref()
  }

  /** Call right before reading the files, so a change during the read is seen next time. */
  markSeen(): void {
    this.#seen = this.#current()
  }

  /** The state of the files now, to hand to a watcher of the same files made later. */
  snapshot(): string {
    return this.#current()
  }

  close(): void {
    clearInterval(this.#timer)
  }

  #current(): string {
    const paths = typeof this.paths === 'function' ? this.paths() : this.paths
    return paths.map((p) => `${p}=${statFingerprint(p)}`).join('|')
  }
}
