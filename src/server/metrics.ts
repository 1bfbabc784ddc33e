/**
 * Prometheus metrics. Every label value is bounded: verdicts, modes and reason codes are fixed
 * sets; registry hosts come from pod specs (anyone who can create a pod can name any host), so
 * only the first MAX_HOSTS distinct hosts that answered over HTTP get their own series and the
 * rest count as `other`.
 * No label ever holds an image tag or a credential; only the audit's not-pullable series name a
 * namespace and a workload, and only for containers that would not pull (the cardinality stays
 * with the problems).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { AuditObserver } from '../auditor/auditor.js'
import type { DecisionSummary } from '../policy/judge.js'
import type { CheckObserver } from '../registry/cached-checker.js'

const MAX_HOSTS = 50
const DEFAULT_TIMEOUT_MS = 8_000

/**
 * Fixed buckets for fast reviews, and boundaries at half, 80% of and the whole budget (and 2 s
 * past it, where the API server gives up): with a boundary exactly at 80%, "p99 above 80% of the
 * timeout" holds exactly when more than 1% of reviews took that long, whatever the timeout is.
 */
export function reviewBuckets(timeoutSeconds: number): number[] {
  const fixed = [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4]
  // Not rounded: the alert's `0.8 * timeout` in PromQL is the same IEEE product, so the boundary is exact.
  const around = [0.5, 0.8, 1].map((f) => timeoutSeconds * f)
  return [...new Set([...fixed.filter((b) => b < timeoutSeconds * 0.5), ...around, timeoutSeconds + 2])].sort(
    (a, b) => a - b,
  )
}

/**
 * A gauge without labels that has no sample until set, and none again once cleared: prom-client
 * exports 0 for an unset one, and a 0 "last pass at" or "leader since" would read to the alerts as
 * 1970 (so a replica that does not lead would look like an audit stuck for decades).
 */
class OptionalGauge extends Gauge {
  #present = false

  put(value: number): void {
    this.#present = true
    this.set(value)
  }

  clear(): void {
    this.#present = false
    this.reset()
  }

  override async get(): ReturnType<Gauge['get']> {
    const metric = await super.get()
    return this.#present ? metric : { ...metric, values: [] }
  }
}

export class Metrics {
  readonly registry = new Registry()
  readonly #hosts = new Set<string>()
  readonly #decisions = new Counter({
    name: 'pullguard_decisions_total',
    help: 'Admission decisions by verdict, mode and deciding reason code.',
    labelNames: ['verdict', 'mode', 'reason'] as const,
    registers: [this.registry],
  })
  readonly #reviewSeconds: Histogram<'verdict'>
  readonly #registrySeconds = new Histogram({
    name: 'pullguard_registry_request_duration_seconds',
    help: 'HTTP requests to registries and token servers, by host and outcome (status class or failure cause).',
    labelNames: ['registry', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  })
  // Provider names come from the config file (bounded by it); outcomes are ok or a problem code.
  readonly #pluginExecs = new Histogram({
    name: 'pullguard_credential_provider_exec_duration_seconds',
    help: 'Credential provider plugin runs, by provider and outcome (ok or a problem code such as PluginExited, PluginTimedOut, PluginBadResponse).',
    labelNames: ['provider', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  })
  readonly #cache = new Counter({
    name: 'pullguard_cache_lookups_total',
    help: 'Result and tag-list cache lookups.',
    labelNames: ['cache', 'result'] as const,
    registers: [this.registry],
  })
  readonly #inflight = new Gauge({
    name: 'pullguard_inflight_checks',
    help: 'Registry checks running now (shared checks count once).',
    registers: [this.registry],
  })
  #sizes: Record<string, () => number> = {}
  readonly #entries = new Gauge({
    name: 'pullguard_cache_entries',
    help: 'Entries held now: result cache and reused assessments (bounded), and the watched copies of pull secrets, service accounts and namespaces.',
    labelNames: ['cache'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [cache, size] of Object.entries(this.#sizes)) this.#entries.set({ cache }, size())
    },
  })

  readonly #notPullable = new Gauge({
    name: 'pullguard_workload_image_not_pullable',
    help: 'Set to 1 for each container of a workload whose image would not pull now (background audit); only broken containers have a series.',
    // workload_namespace, not namespace: Prometheus gives every series its target's `namespace`
    // (pullguard's own), and setups that enforce it (OpenShift's user workload monitoring) would
    // otherwise rename or overwrite the workload's.
    labelNames: ['workload_namespace', 'kind', 'name', 'container', 'reason'] as const,
    registers: [this.registry],
  })
  readonly #auditImages = new Gauge({
    name: 'pullguard_audit_images',
    help: "Container uses (each container and image volume of every audited workload) by the audit's last finding.",
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly #auditTagMoved = new Gauge({
    name: 'pullguard_audit_tag_moved',
    help: "Containers of pinned pods (pullguard.io/pinned-from) whose tag names another manifest than the digest they were pinned to, by namespace, at the audit's last pass: information, the pods pull their digest.",
    labelNames: ['workload_namespace'] as const,
    registers: [this.registry],
  })
  readonly #auditQuestions = new Gauge({
    name: 'pullguard_audit_questions',
    help: "Distinct registry questions (image and credentials by value) of the audit's last completed pass, by the registry's answer.",
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly #auditRequests = new Counter({
    name: 'pullguard_audit_registry_requests_total',
    help: 'Requests the audit made to each registry host: a manifest check per distinct question, a tag listing per missing tag (hosts beyond the first 50 that answered count as other).',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  })
  readonly #auditLastPass = new OptionalGauge({
    name: 'pullguard_audit_last_pass_completed_timestamp_seconds',
    help: 'When the audit last completed a pass (Unix time); only the leader has it, once a pass completed.',
    registers: [this.registry],
  })
  readonly #auditPassSeconds = new OptionalGauge({
    name: 'pullguard_audit_pass_duration_seconds',
    help: 'How long the last completed audit pass took (about the interval: the pass is spread over it).',
    registers: [this.registry],
  })

  #pauses: () => ReadonlyMap<string, number> = () => new Map()
  readonly #paused = new Gauge({
    name: 'pullguard_registry_pause_remaining_seconds',
    help: 'Registries paused after a 429 (their Retry-After, or 30 s): seconds left, during which reviews answer RateLimited without asking them.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
    collect: () => {
      this.#paused.reset()
      // A 429 is an HTTP answer, so the host may take one of the bounded host labels.
      for (const [host, ms] of this.#pauses()) this.#paused.set({ registry: this.#host(host) }, ms / 1000)
    },
  })
  #slots: () => ReadonlyMap<string, { active: number; queued: number }> = () => new Map()
  readonly #slotLimit = new OptionalGauge({
    name: 'pullguard_registry_concurrency_limit',
    help: 'Requests in flight allowed per registry host (--registry-concurrency), shared by reviews and the audit.',
    registers: [this.registry],
  })
  readonly #inFlight = new Gauge({
    name: 'pullguard_registry_requests_in_flight',
    help: 'Requests to a registry host now in flight (at most pullguard_registry_concurrency_limit) and waiting for a slot, by state.',
    labelNames: ['registry', 'state'] as const,
    registers: [this.registry],
    collect: () => {
      this.#inFlight.reset()
      // Only hosts that already hold a label (they answered over HTTP): waiting requests must not mint new series.
      for (const [host, s] of this.#slots()) {
        const registry = this.#known(host)
        this.#inFlight.inc({ registry, state: 'active' }, s.active)
        this.#inFlight.inc({ registry, state: 'queued' }, s.queued)
      }
    },
  })
  // What the dashboard and alerts compare the review times with.
  readonly #reviewTimeout = new Gauge({
    name: 'pullguard_review_timeout_seconds',
    help: 'The review budget (--timeout); reviews past it are answered by --on-registry-error.',
    registers: [this.registry],
  })
  readonly #auditInterval = new OptionalGauge({
    name: 'pullguard_audit_interval_seconds',
    help: "The background audit's interval (--audit-interval); absent when the audit is off.",
    registers: [this.registry],
  })
  readonly #auditLeaderSince = new OptionalGauge({
    name: 'pullguard_audit_leader_since_timestamp_seconds',
    help: 'When this replica took the audit Lease (Unix time); only the leader has it.',
    registers: [this.registry],
  })
  readonly #certificateExpiry = new OptionalGauge({
    name: 'pullguard_serving_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate in use (Unix time), updated when the files are reloaded.',
    registers: [this.registry],
  })
  #readyProbe: () => Promise<boolean> = async () => true
  readonly #ready = new Gauge({
    name: 'pullguard_ready',
    help: '1 when this replica answers /readyz with 200 (it can judge reviews), else 0.',
    registers: [this.registry],
    collect: async () => {
      this.#ready.set((await this.#readyProbe()) ? 1 : 0)
    },
  })

  readonly audit: AuditObserver = {
    notPullable: (s, present) => {
      const labels = {
        workload_namespace: s.namespace,
        kind: s.kind,
        name: s.name,
        container: s.container,
        reason: s.reason,
      }
      if (present) this.#notPullable.set(labels, 1)
      else this.#notPullable.remove(labels)
    },
    images: (counts) => {
      for (const [result, n] of Object.entries(counts)) this.#auditImages.set({ result }, n)
    },
    questions: (counts) => {
      for (const [result, n] of Object.entries(counts)) this.#auditQuestions.set({ result }, n)
    },
    registryRequest: (host) => this.#auditRequests.inc({ registry: this.#known(host) }),
    tagMoved: (counts) => {
      this.#auditTagMoved.reset()
      for (const [namespace, n] of counts) this.#auditTagMoved.set({ workload_namespace: namespace }, n)
    },
    passCompleted: (at, seconds) => {
      this.#auditLastPass.put(at / 1000)
      this.#auditPassSeconds.put(seconds)
    },
    // A replica that no longer audits exports none of it: the leader's series are the only ones.
    reset: () => {
      this.#notPullable.reset()
      this.#auditImages.reset()
      this.#auditQuestions.reset()
      this.#auditTagMoved.reset()
      this.#auditLastPass.clear()
      this.#auditPassSeconds.clear()
    },
  }

  /** `timeoutMs`: the review budget (--timeout), which places the review histogram's top buckets. */
  constructor(options: { processMetrics?: boolean; timeoutMs?: number } = {}) {
    const timeout = (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000
    this.#reviewSeconds = new Histogram({
      name: 'pullguard_review_duration_seconds',
      help: 'Time to judge one review, all images included.',
      labelNames: ['verdict'] as const,
      buckets: reviewBuckets(timeout),
      registers: [this.registry],
    })
    this.#reviewTimeout.set(timeout)
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'pullguard_' })
  }

  /** Requests in flight and queued per registry host (the per-registry cap), read at each scrape. */
  registrySlots(current: () => ReadonlyMap<string, { active: number; queued: number }>, limit: number): void {
    this.#slots = current
    this.#slotLimit.put(limit)
  }

  /** The registries paused after a 429, read at each scrape. */
  registryPauses(current: () => ReadonlyMap<string, number>): void {
    this.#pauses = current
  }

  /** The same probe /readyz answers with, asked at each scrape. */
  readiness(probe: () => Promise<boolean>): void {
    this.#readyProbe = probe
  }

  servingCertificate(notAfterMs: number): void {
    this.#certificateExpiry.put(notAfterMs / 1000)
  }

  auditInterval(ms: number): void {
    this.#auditInterval.put(ms / 1000)
  }

  /** `undefined`: this replica does not hold the Lease (or no longer). */
  auditLeader(sinceMs: number | undefined): void {
    if (sinceMs === undefined) this.#auditLeaderSince.clear()
    else this.#auditLeaderSince.put(sinceMs / 1000)
  }

  /** What pullguard_cache_entries reports, read at each scrape. */
  cacheSizes(
    sizes: Record<'result' | 'assessments' | 'pull-secrets' | 'service-accounts' | 'namespaces', () => number>,
  ): void {
    this.#sizes = sizes
  }

  /** Series children by label values (a bounded set), so a decision does not hash its labels each time. */
  readonly #decisionSeries = new Map<string, { inc(): void }>()
  readonly #durationSeries = new Map<string, { observe(value: number): void }>()

  decision = (d: DecisionSummary): void => {
    const key = `${d.verdict}\n${d.mode}\n${d.reason}`
    let counter = this.#decisionSeries.get(key)
    if (counter === undefined)
      this.#decisionSeries.set(key, (counter = this.#decisions.labels(d.verdict, d.mode, d.reason)))
    counter.inc()
    let histogram = this.#durationSeries.get(d.verdict)
    if (histogram === undefined)
      this.#durationSeries.set(d.verdict, (histogram = this.#reviewSeconds.labels(d.verdict)))
    histogram.observe(d.seconds)
  }

  registryRequest = (host: string, outcome: string, seconds: number): void => {
    // Only a host that answered over HTTP may claim one of the few host labels: names that do not
    // resolve or refuse connections (anyone can write them in a pod spec) stay `other`.
    const answered = outcome === '2xx' || outcome === '4xx'
    this.#registrySeconds.observe({ registry: answered ? this.#host(host) : this.#known(host), outcome }, seconds)
  }

  #known(host: string): string {
    return this.#hosts.has(host) ? host : 'other'
  }

  pluginExec = (provider: string, outcome: string, seconds: number): void => {
    this.#pluginExecs.observe({ provider, outcome }, seconds)
  }

  readonly checks: CheckObserver = {
    lookup: (cache, hit) => this.#cache.inc({ cache, result: hit ? 'hit' : 'miss' }),
    inflight: (delta) => this.#inflight.inc(delta),
  }

  #host(host: string): string {
    if (this.#hosts.has(host)) return host
    if (this.#hosts.size >= MAX_HOSTS) return 'other'
    this.#hosts.add(host)
    return host
  }
}
