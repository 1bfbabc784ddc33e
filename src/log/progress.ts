/**
 * "checking images: 3/10 objects" on stderr for the one-shot commands (`check`, `audit`), only on a
 * terminal and only once the run takes a while; cleared when done.
 */
const PROGRESS_AFTER_MS = 1_000

export interface ProgressLine {
  update(done: number, total: number): void
  done(): void
}

export function progressLine(enabled: boolean, unit: string): ProgressLine {
  if (!enabled) return { update: () => undefined, done: () => undefined }
  const started = Date.now()
  let shown = false
  let last = 'checking images…'
  const show = (): void => {
    process.stderr.write(`\r\x1b[K${last}`)
    shown = true
  }
  const timer = setTimeout(show, PROGRESS_AFTER_MS)
  timer.unref()
  return {
    update: (done, total) => {
      last = `checking images: ${done}/${total} ${unit}`
      if (Date.now() - started >= PROGRESS_AFTER_MS) show()
    },
    done: () => {
      clearTimeout(timer)
      if (shown) process.stderr.write('\r\x1b[K')
    },
  }
}
