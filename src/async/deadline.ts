/**
 * Waits for shared work, but no longer than this caller's deadline allows. The work itself goes
 * on: other callers (single-flight) may still be waiting for it with more time left, so one
 * caller's short deadline must neither cut it short for them nor hand them its timeout.
 */
export function within<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: () => T): Promise<T> {
  if (signal === undefined) return work
  if (signal.aborted) return Promise.resolve(onAbort())
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => resolve(onAbort())
    signal.addEventListener('abort', abort, { once: true })
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort)
        reject(err)
      },
    )
  })
}
