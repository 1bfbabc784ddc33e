/**
 * The background audit in `serve` (while this replica leads): a pass every interval over the
 * watched workloads, each image judged as a CREATE would be, spread over the interval. What it
 * keeps per container is the last finding, so it can say when one changes (a decision-log line,
 * an Event) and drop what is gone: a workload deleted is dropped when its turn comes, one fixed
 * or made exempt by the end of that pass. A replica that stops leading drops all of it, so only
 * the leader exports the audit's series.
 */
import type { Logger } from 'pino'
import type { AssessOptions } from '../policy/assess.js'
import type { NodePools } from '../policy/node-pools.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { QuestionResult } from './answers.js'
import type { AuditEvents } from './events.js'
import type { AuditFinding, AuditResult } from './finding.js'
import { passTotals, realClock, runPass, type PassClock, type TagMoved } from './pass.js'
import type { AuditWorkload } from './workloads.js'

export interface NotPullableSeries {
  namespace: string
  kind: string
  name: string
  container: string
  reason: string
}

/** Where the audit's state shows (metrics): names and labels fixed, one series per broken container. */
export interface AuditObserver {
  notPullable(series: NotPullableSeries, present: boolean): void
  images(counts: Record<AuditResult, number>): void
  /** The distinct registry questions of the last completed pass, by the registry's answer. */
  questions(counts: Record<QuestionResult, number>): void
  /** A request the audit made to a registry host (a manifest check, a tag listing). */
  registryRequest(host: string): void
  passCompleted(finishedAtMs: number, seconds: number): void
  /** Per namespace, the pinned pods' containers whose tag names another manifest now (the last pass). */
  tagMoved(counts: ReadonlyMap<string, number>): void
  /** This replica no longer audits: every audit series goes. */
  reset(): void
}

export interface AuditorOptions {
  /** The workloads now, or undefined while they are not listed yet. */
  workloads: () => AuditWorkload[] | undefined
  /** The same workload now (by kind, namespace and name), or undefined once it is gone. */
  current?: (w: AuditWorkload) => AuditWorkload | undefined
  assess: AssessOptions
  /** The node pools, and how the audit asks each pool's checker (see PassOptions). */
  pools?: NodePools
  checkerFor?: (checker: ImageChecker) => ImageChecker
  intervalMs: number
  qps: number
  timeoutMs: number
  logger: Logger
  observer?: AuditObserver
  events?: AuditEvents
  clock?: PassClock
}

const WAIT_FOR_LIST_MS = 1000

export class Auditor {
  readonly #o: AuditorOptions
  readonly #clock: PassClock
  readonly #state = new Map<string, AuditFinding>()
  /** Each pinned container whose tag moved, as of the last pass: the digest its tag names (logged when new). */
  #tagMoved = new Map<string, string>()
  readonly #counts: Record<AuditResult, number> = { pullable: 0, 'not-pullable': 0, unverified: 0 }
  /** Per registry host, the earliest next request (spacing and 429 pauses), kept across passes. */
  readonly #pauses = new Map<string, number>()
  #abort: AbortController | undefined
  #running: Promise<void> | undefined
  /** A start asked for while a stop is still finishing. */
  #restart = false

  constructor(options: AuditorOptions) {
    this.#o = options
    this.#clock = options.clock ?? realClock
  }

  /** Starts passes (when this replica becomes the leader); after a stop still finishing, once it has. */
  start(): void {
    if (this.#running !== undefined) {
      if (this.#abort?.signal.aborted === true) this.#restart = true
      return
    }
    const abort = new AbortController()
    this.#abort = abort
    this.#running = this.#loop(abort.signal).finally(() => {
      this.#running = undefined
      this.#clear()
      if (this.#restart) {
        this.#restart = false
        this.start()
      }
    })
  }

  /** A workload the watch saw deleted: its series go now, not at its turn in the next pass. */
  forget(w: Pick<AuditWorkload, 'kind' | 'namespace' | 'name'>): void {
    for (const [key, f] of [...this.#state]) {
      if (f.workload.kind === w.kind && f.workload.namespace === w.namespace && f.workload.name === w.name)
        this.#drop(key)
    }
    this.#o.observer?.images({ ...this.#counts })
  }

  /** Stops the pass in progress (leadership lost, shutdown) and drops what it found. */
  async stop(): Promise<void> {
    this.#restart = false
    this.#abort?.abort()
    await this.#running
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const workloads = this.#o.workloads()
      if (workloads === undefined) {
        await this.#clock.sleep(WAIT_FOR_LIST_MS, signal)
        continue
      }
      const started = this.#clock.now()
      try {
        await this.#pass(workloads, signal)
      } catch (err) {
        // A bug in one pass must not end the audit for good: say so, and try again next interval.
        this.#o.logger.error({ err }, 'audit pass failed')
      }
      await this.#clock.sleep(started + this.#o.intervalMs - this.#clock.now(), signal)
    }
  }

  async #pass(workloads: AuditWorkload[], signal: AbortSignal): Promise<void> {
    const started = this.#clock.now()
    for (const [host, until] of this.#pauses) if (until < started) this.#pauses.delete(host)
    const seen = new Set<string>()
    const findings: AuditFinding[] = []
    const moved: TagMoved[] = []
    const summary = await runPass(workloads, {
      assess: this.#o.assess,
      ...(this.#o.pools === undefined ? {} : { pools: this.#o.pools }),
      ...(this.#o.checkerFor === undefined ? {} : { checkerFor: this.#o.checkerFor }),
      qps: this.#o.qps,
      spreadMs: this.#o.intervalMs,
      timeoutMs: this.#o.timeoutMs,
      signal,
      clock: this.#clock,
      pauses: this.#pauses,
      ...(this.#o.current === undefined ? {} : { current: this.#current(this.#o.current) }),
      onFinding: (f) => {
        seen.add(keyOf(f))
        findings.push(f)
        this.#record(f)
      },
      ...(this.#o.observer === undefined ? {} : { onRequest: this.#o.observer.registryRequest }),
      onTagMoved: (m) => {
        moved.push(m)
        const key = `${m.workload.uid}/${m.field}`
        if (this.#tagMoved.get(key) !== m.now)
          this.#o.logger.info(
            {
              namespace: m.workload.namespace,
              kind: m.workload.kind,
              name: m.workload.name,
              container: m.container,
              pinned: m.pinned,
              tag: m.tag,
              now: m.now,
            },
            "a pinned pod's tag names another manifest now; the pod pulls its digest",
          )
        this.#tagMoved.set(key, m.now)
      },
    })
    if (signal.aborted) return
    this.#tagMoved = new Map(moved.map((m) => [`${m.workload.uid}/${m.field}`, m.now]))
    const byNamespace = new Map<string, number>()
    for (const m of moved) byNamespace.set(m.workload.namespace, (byNamespace.get(m.workload.namespace) ?? 0) + 1)
    this.#o.observer?.tagMoved(byNamespace)
    for (const key of [...this.#state.keys()]) if (!seen.has(key)) this.#drop(key)
    this.#o.observer?.images({ ...this.#counts })
    this.#o.observer?.questions(summary.questions)
    await this.#events(findings, signal)
    const seconds = (this.#clock.now() - started) / 1000
    this.#o.observer?.passCompleted(this.#clock.now(), seconds)
    this.#o.logger.info(
      {
        workloads: workloads.length,
        images: summary.uses,
        ...passTotals(summary),
        notPullable: this.#counts['not-pullable'],
        unverified: this.#counts.unverified,
        durationMs: Math.round(seconds * 1000),
      },
      'audit pass completed',
    )
  }

  /** The current version of a workload when its turn comes; a deleted one loses its state at once. */
  #current(lookup: (w: AuditWorkload) => AuditWorkload | undefined): (w: AuditWorkload) => AuditWorkload | undefined {
    return (w) => {
      const now = lookup(w)
      if (now !== undefined && now.uid === w.uid) return now
      for (const key of [...this.#state.keys()]) if (key.startsWith(`${w.uid}/`)) this.#drop(key)
      return undefined
    }
  }

  #record(f: AuditFinding): void {
    const key = keyOf(f)
    const before = this.#state.get(key)
    if (before !== undefined) this.#counts[before.result]--
    this.#state.set(key, f)
    this.#counts[f.result]++
    const changed =
      before === undefined ? f.result !== 'pullable' : before.result !== f.result || before.reason !== f.reason
    if (changed) {
      this.#o.logger.info(
        {
          namespace: f.workload.namespace,
          kind: f.workload.kind,
          name: f.workload.name,
          container: f.container,
          image: f.image,
          from: before?.result ?? 'unaudited',
          to: f.result,
          reason: f.reason,
          scaledToZero: f.workload.scaledToZero,
          ...(f.result === 'pullable' ? {} : { problem: f.problem, fix: f.fix }),
        },
        'audit',
      )
    }
    // Any label that changed (reason, a renamed container) is a different series: the old one goes.
    if (before?.result === 'not-pullable' && (f.result !== 'not-pullable' || seriesKey(before) !== seriesKey(f)))
      this.#o.observer?.notPullable(series(before), false)
    if (f.result === 'not-pullable') this.#o.observer?.notPullable(series(f), true)
    this.#o.observer?.images({ ...this.#counts })
  }

  #drop(key: string): void {
    const f = this.#state.get(key)
    if (f === undefined) return
    this.#state.delete(key)
    this.#counts[f.result]--
    if (f.result === 'not-pullable') this.#o.observer?.notPullable(series(f), false)
  }

  #clear(): void {
    this.#state.clear()
    for (const r of Object.keys(this.#counts) as AuditResult[]) this.#counts[r] = 0
    this.#o.observer?.reset()
  }

  async #events(findings: readonly AuditFinding[], signal: AbortSignal): Promise<void> {
    const events = this.#o.events
    if (events === undefined) return
    const byWorkload = new Map<string, { workload: AuditFinding['workload']; lines: string[] }>()
    for (const f of findings) {
      let entry = byWorkload.get(f.workload.uid)
      if (entry === undefined) byWorkload.set(f.workload.uid, (entry = { workload: f.workload, lines: [] }))
      if (f.result === 'not-pullable') entry.lines.push(f.message)
    }
    for (const { workload, lines } of byWorkload.values()) {
      if (signal.aborted) return
      await events.report(workload, lines, signal)
    }
    events.forget(new Set(byWorkload.keys()))
  }
}

function keyOf(f: AuditFinding): string {
  return `${f.workload.uid}/${f.field}`
}

function series(f: AuditFinding): NotPullableSeries {
  return {
    namespace: f.workload.namespace,
    kind: f.workload.kind,
    name: f.workload.name,
    container: f.container,
    reason: f.reason,
  }
}

function seriesKey(f: AuditFinding): string {
  const s = series(f)
  return `${s.namespace}\n${s.kind}\n${s.name}\n${s.container}\n${s.reason}`
}
