/**
 * Collapses concurrent calls for the same key into one: the first caller runs `work`, the
 * others await its promise. This is what keeps a stampede of reviews for one new image (a
 * Deployment scaled to 500 replicas) from turning into 500 token or manifest requests.
 * The key must not contain a secret in clear: callers pass a hash of the credential.
 */
export class SingleFlight<K, V> {
  readonly #inflight = new Map<K, Promise<V>>()

  get inflight(): number {
    return this.#inflight.size
  }

  run(key: K, work: () => Promise<V>): Promise<V> {
    const existing = this.#inflight.get(key)
    if (existing !== undefined) return existing
    const promise = (async () => {
      try {
        return await work()
      } finally {
        this.#inflight.delete(key)
      }
    })()
    this.#inflight.set(key, promise)
    return promise
  }
}
