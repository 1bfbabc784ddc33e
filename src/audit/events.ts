/**
 * `--audit-events`: a Warning Event with reason ImageNotPullable on the workload (what
 * `kubectl describe deployment x` shows), created when one of its containers becomes not
 * pullable and updated (count, last time, message) on each pass it stays so, never created again
 * every pass. Needs create and patch on events (the audit-events overlay).
 */
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { withSignal } from '../credentials/kube-api.js'
import { GROUP, type AuditWorkload } from './workloads.js'

export const EVENT_REASON = 'ImageNotPullable'

export interface EventSink {
  /** A new Event; its name, for later updates. */
  create(workload: EventSubject, message: string, signal: AbortSignal): Promise<string>
  update(namespace: string, name: string, change: { count: number; message: string }, signal: AbortSignal): Promise<void>
}

export type EventSubject = Pick<AuditWorkload, 'kind' | 'namespace' | 'name' | 'uid'>

export function eventSink(kubeConfig: KubeConfig, identity: string): EventSink {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  return {
    async create(w, message, signal) {
      const now = new Date()
      const group = GROUP[w.kind]
      const created = await core.createNamespacedEvent(
        {
          namespace: w.namespace,
          body: {
            metadata: { generateName: `${w.name}.`, namespace: w.namespace },
            involvedObject: { apiVersion: group === '' ? 'v1' : `${group}/v1`, kind: w.kind, name: w.name, namespace: w.namespace, uid: w.uid },
            reason: EVENT_REASON,
            message,
            type: 'Warning',
            source: { component: 'pullguard' },
            reportingComponent: 'pullguard',
            reportingInstance: identity,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        },
        withSignal(signal),
      )
      return created.metadata?.name ?? ''
    },
    async update(namespace, name, change, signal) {
      const patch = { count: change.count, message: change.message, lastTimestamp: new Date().toISOString() }
      await core.patchNamespacedEvent({ name, namespace, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch, withSignal(signal)))
    },
  }
}

/** One Event per broken workload, kept across passes; failures are logged once per cause and never stop the audit. */
export class AuditEvents {
  readonly #sink: EventSink
  readonly #logger: Logger
  readonly #open = new Map<string, { name: string; count: number; message: string }>()
  #failing = false

  constructor(sink: EventSink, logger: Logger) {
    this.#sink = sink
    this.#logger = logger
  }

  /** A workload's broken containers after a pass (empty: it pulls again, its Event is left to expire). */
  async report(w: EventSubject, lines: readonly string[]): Promise<void> {
    const key = w.uid
    const open = this.#open.get(key)
    if (lines.length === 0) {
      this.#open.delete(key)
      return
    }
    const message = lines.join('; ').slice(0, 1024)
    const signal = AbortSignal.timeout(5000)
    try {
      if (open === undefined) {
        this.#open.set(key, { name: await this.#sink.create(w, message, signal), count: 1, message })
      } else {
        open.count++
        open.message = message
        await this.#sink.update(w.namespace, open.name, { count: open.count, message }, signal)
      }
      this.#failing = false
    } catch (err) {
      if (!this.#failing) this.#logger.warn({ err: (err as Error).message, namespace: w.namespace, name: w.name }, 'audit: the ImageNotPullable Event could not be written (the audit-events overlay grants create and patch on events)')
      this.#failing = true
    }
  }

  /** Workloads gone: their Events are forgotten (the API server expires them). */
  forget(keep: ReadonlySet<string>): void {
    for (const key of this.#open.keys()) if (!keep.has(key)) this.#open.delete(key)
  }
}
