/**
 * The namespace label `pullguard.io/mode` (enforce | warn | off) overrides `--mode` for that
 * namespace. Namespaces are read through the API and cached briefly: a label change takes effect
 * within the TTL, and a busy namespace costs no API request per review.
 */
import { SingleFlight } from '../async/single-flight.js'
import { TtlCache, systemClock, type Clock } from '../cache/ttl-cache.js'
import type { NamespaceSource } from '../kube/sources.js'

export const MODE_LABEL = 'pullguard.io/mode'
/** `--mode`: what a namespace without a `pullguard.io/mode` label gets. */
export type Mode = 'enforce' | 'warn'

export type NamespaceMode = Mode | 'off'

export interface ModeDecision {
  mode: NamespaceMode
  source: 'label' | 'default'
  /** Why the default was used although something was there (bad label value, API error). */
  note?: string
}

const TTL_MS = 30_000
const MAX_NAMESPACES = 10_000
const VALUES: readonly NamespaceMode[] = ['enforce', 'warn', 'off']

export class NamespaceModes {
  readonly #cache: TtlCache<string, ModeDecision>
  readonly #flight = new SingleFlight<string, ModeDecision>()
  readonly #clock: Clock

  constructor(
    private readonly source: NamespaceSource,
    private readonly defaultMode: Mode,
    clock: Clock = systemClock,
  ) {
    this.#clock = clock
    this.#cache = new TtlCache({ maxEntries: MAX_NAMESPACES, clock })
  }

  async modeFor(namespace: string, signal?: AbortSignal): Promise<ModeDecision> {
    const hit = this.#cache.get(namespace)
    if (hit !== undefined) return hit
    return this.#flight.run(namespace, async () => {
      const found = await this.source.getNamespace(namespace, signal)
      const decision = this.#decide(found)
      // Errors are not cached: the next review asks again.
      if (found.kind === 'found' || found.kind === 'missing')
        this.#cache.set(namespace, decision, this.#clock.now() + TTL_MS)
      return decision
    })
  }

  /** The namespace changed (a watch event): its next review reads the label again. */
  forget(namespace: string): void {
    this.#cache.delete(namespace)
  }

  #decide(found: Awaited<ReturnType<NamespaceSource['getNamespace']>>): ModeDecision {
    const fallback = { mode: this.defaultMode, source: 'default' as const }
    if (found.kind === 'missing') return fallback
    if (found.kind !== 'found')
      return { ...fallback, note: `namespace could not be read (${found.detail}); using --mode ${this.defaultMode}` }
    const value = found.object.labels[MODE_LABEL]
    if (value === undefined) return fallback
    if ((VALUES as readonly string[]).includes(value)) return { mode: value as NamespaceMode, source: 'label' }
    return {
      ...fallback,
      note: `label ${MODE_LABEL}=${JSON.stringify(value.slice(0, 63))} is not enforce, warn or off; using --mode ${this.defaultMode}`,
    }
  }
}

/**
 * For `check` and `diagnose`, which report pullability whatever a namespace's label says: a mode
 * that never reads namespaces.
 */
export function labelsIgnored(): NamespaceModes {
  return new NamespaceModes({ getNamespace: async () => ({ kind: 'missing' }) }, 'enforce')
}
