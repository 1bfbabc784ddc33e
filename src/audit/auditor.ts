/**
 * The background audit in `serve` (while this replica leads): a pass every interval over the
 * watched workloads, each image judged as a CREATE would be, spread over the interval. What it
 * keeps per container is the last finding, so it can say when one changes (a decision-log line,
 * an Event) and drop what is gone (a workload fixed or deleted loses its series by the end of the
 * next pass).
 */
import type { Logger } from 'pino'
import type { AssessOptions } from '../policy/assess.js'
import type { AuditEvents } from './events.js'
import { realClock, runPass, type AuditFinding, type AuditResult, type PassClock } from './pass.js'
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
  passCompleted(finishedAtMs: number, seconds: number): void
}

export interface AuditorOptions {
  /** The workloads now, or undefined while they are not listed yet. */
  workloads: () => AuditWorkload[] | undefined
  assess: AssessOptions
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
  /** Registries paused by a 429, kept across passes. */
  readonly #pauses = new Map<string, number>()
  #abort: AbortController | undefined
  #running: Promise<void> | undefined

  constructor(options: AuditorOptions) {
    this.#o = options
    this.#clock = options.clock ?? realClock
  }

  /** Starts passes (when this replica becomes the leader). */
  start(): void {
    if (this.#running !== undefined) return
    const abort = new AbortController()
    this.#abort = abort
    this.#running = this.#loop(abort.signal).catch((err: unknown) => this.#o.logger.error({ err }, 'audit stopped by an internal error'))
  }

  /** Stops the pass in progress (leadership lost, shutdown); what it found stays until the next leader's pass. */
  async stop(): Promise<void> {
    this.#abort?.abort()
    await this.#running
    this.#running = undefined
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const workloads = this.#o.workloads()
      if (workloads === undefined) {
        await this.#clock.sleep(WAIT_FOR_LIST_MS, signal)
        continue
      }
      const started = this.#clock.now()
      const seen = new Set<string>()
      const findings = await runPass(workloads, {
        assess: this.#o.assess,
        qps: this.#o.qps,
        spreadMs: this.#o.intervalMs,
        timeoutMs: this.#o.timeoutMs,
        signal,
        clock: this.#clock,
        pauses: this.#pauses,
        onFinding: (f) => {
          seen.add(keyOf(f))
          this.#record(f)
        },
      })
      if (signal.aborted) return
      for (const [key, f] of this.#state) {
        if (seen.has(key)) continue
        this.#state.delete(key)
        if (f.result === 'not-pullable') this.#o.observer?.notPullable(series(f), false)
      }
      this.#o.observer?.images(this.#counts())
      await this.#events(findings)
      const seconds = (this.#clock.now() - started) / 1000
      this.#o.observer?.passCompleted(this.#clock.now(), seconds)
      const c = this.#counts()
      this.#o.logger.info({ workloads: workloads.length, images: findings.length, notPullable: c['not-pullable'], unverified: c.unverified, durationMs: Math.round(seconds * 1000) }, 'audit pass completed')
      await this.#clock.sleep(started + this.#o.intervalMs - this.#clock.now(), signal)
    }
  }

  #record(f: AuditFinding): void {
    const key = keyOf(f)
    const before = this.#state.get(key)
    this.#state.set(key, f)
    const changed = before === undefined ? f.result !== 'pullable' : before.result !== f.result || before.reason !== f.reason
    if (changed) {
      this.#o.logger.info(
        {
          namespace: f.workload.namespace, kind: f.workload.kind, name: f.workload.name, container: f.container, image: f.image,
          from: before?.result ?? 'unaudited', to: f.result, reason: f.reason, scaledToZero: f.workload.scaledToZero,
          ...(f.result === 'pullable' ? {} : { problem: f.problem, fix: f.fix }),
        },
        'audit',
      )
    }
    if (before?.result === 'not-pullable' && (f.result !== 'not-pullable' || before.reason !== f.reason)) this.#o.observer?.notPullable(series(before), false)
    if (f.result === 'not-pullable') this.#o.observer?.notPullable(series(f), true)
    this.#o.observer?.images(this.#counts())
  }

  async #events(findings: readonly AuditFinding[]): Promise<void> {
    const events = this.#o.events
    if (events === undefined) return
    const byWorkload = new Map<string, { workload: AuditFinding['workload']; lines: string[] }>()
    for (const f of findings) {
      let entry = byWorkload.get(f.workload.uid)
      if (entry === undefined) byWorkload.set(f.workload.uid, (entry = { workload: f.workload, lines: [] }))
      if (f.result === 'not-pullable') entry.lines.push(f.message)
    }
    for (const { workload, lines } of byWorkload.values()) await events.report(workload, lines)
    events.forget(new Set(byWorkload.keys()))
  }

  #counts(): Record<AuditResult, number> {
    const counts: Record<AuditResult, number> = { pullable: 0, 'not-pullable': 0, unverified: 0 }
    for (const f of this.#state.values()) counts[f.result]++
    return counts
  }
}

function keyOf(f: AuditFinding): string {
  return `${f.workload.uid}/${f.field}`
}

function series(f: AuditFinding): NotPullableSeries {
  return { namespace: f.workload.namespace, kind: f.workload.kind, name: f.workload.name, container: f.container, reason: f.reason }
}
