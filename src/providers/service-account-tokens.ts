/**
 * Service-account tokens for providers with `tokenAttributes` (kubelet plugin.go, Kubernetes 1.33+):
 * the pod's service account is read (its uid and the annotations the provider names), and a token
 * for the provider's audience is requested with TokenRequest. Tokens are reused until 80% of their
 * life has passed, as the kubelet's token manager does (pkg/kubelet/token/token_manager.go); the
 * kubelet binds them to the pod, which at admission does not exist yet, so ours are bound to nothing.
 * A token is held in memory only, keyed by namespace, account, uid and audience.
 */
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import { within } from '../async/deadline.js'
import { SingleFlight } from '../async/single-flight.js'
import type { Lookup, ServiceAccountObject, ServiceAccountSource, ServiceAccountTokenSource } from '../kube/sources.js'

/** Accounts × audiences whose tokens are kept; each is a few hundred bytes. */
const MAX_TOKENS = 10_000

export type ServiceAccountAccess = ServiceAccountSource & ServiceAccountTokenSource

export class ServiceAccountTokens {
  readonly #access: ServiceAccountAccess
  readonly #clock: Clock
  readonly #tokens: TtlCache<string, string>
  readonly #flight = new SingleFlight<string, Lookup<{ token: string; expiresAt: number }>>()

  constructor(access: ServiceAccountAccess, clock: Clock = systemClock) {
    this.#access = access
    this.#clock = clock
    this.#tokens = new TtlCache({ maxEntries: MAX_TOKENS, clock })
  }

  account(namespace: string, name: string, signal?: AbortSignal): Promise<Lookup<ServiceAccountObject>> {
    return this.#access.getServiceAccount(namespace, name, signal)
  }

  async token(account: ServiceAccountObject, audience: string, signal?: AbortSignal): Promise<Lookup<string>> {
    const key = JSON.stringify([account.namespace, account.name, account.uid, audience])
    const kept = this.#tokens.get(key)
    if (kept !== undefined) return { kind: 'found', object: kept }
    const issued = this.#clock.now()
    // Shared by every review asking for this account: it runs on the API client's own timeout, so one
    // review's deadline cannot fail the others; each waits only within its own.
    const shared = this.#flight.run(key, () =>
      this.#access.createServiceAccountToken(account.namespace, account.name, { audience, uid: account.uid }),
    )
    const answer = await within(shared, signal, () => ({
      kind: 'error' as const,
      detail: "the review's time ran out waiting for the token",
    }))
    if (answer.kind !== 'found') return answer
    const refreshAt = issued + 0.8 * Math.max(0, answer.object.expiresAt - issued)
    this.#tokens.set(key, answer.object.token, refreshAt)
    return { kind: 'found', object: answer.object.token }
  }

  clear(): void {
    this.#tokens.clear()
  }
}
