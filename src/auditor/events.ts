/**
 * `--audit-events`: a Warning Event with reason ImageNotPullable on the workload (what
 * `kubectl describe deployment x` shows), created when one of its containers becomes not
 * pullable and updated (count, last time, message) on each pass it stays so, never created again
 * every pass. Its name is fixed per workload, so a new leader (or a restarted one) updates the
 * same Event, and one the API server expired (events live an hour by default) is made again.
 * Needs create and patch on events (the audit-events overlay).
 */
import { createHash } from 'node:crypto'
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { perCall } from '../kube/kube-api.js'
import { GROUP, type AuditWorkload } from './workloads.js'

export const EVENT_REASON = 'ImageNotPullable'

export type EventSubject = Pick<AuditWorkload, 'kind' | 'namespace' | 'name' | 'uid'>

export interface EventSink {
  /** Creates the Event `name`; `exists` when it already does (409). */
  create(w: EventSubject, name: string, message: string, signal: AbortSignal): Promise<'created' | 'exists'>
  /** Updates it; `gone` when it does not exist (404: expired). */
  update(
    namespace: string,
    name: string,
    change: { count: number; message: string },
    signal: AbortSignal,
  ): Promise<'updated' | 'gone'>
}

/** `<workload>.<hash of its uid>`: one Event per workload, whoever writes it. */
export function eventName(w: EventSubject): string {
  const suffix = createHash('sha256').update(`${w.uid}\n${EVENT_REASON}`).digest('hex').slice(0, 16)
  return `${w.name.slice(0, 253 - suffix.length - 1)}.${suffix}`
}

export function eventSink(kubeConfig: KubeConfig, identity: string): EventSink {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  const status = (err: unknown): number | undefined =>
    typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined
  return {
    async create(w, name, message, signal) {
      const now = new Date()
      const group = GROUP[w.kind]
      try {
        await core.createNamespacedEvent(
          {
            namespace: w.namespace,
            body: {
              metadata: { name, namespace: w.namespace },
              involvedObject: {
                apiVersion: group === '' ? 'v1' : `${group}/v1`,
                kind: w.kind,
                name: w.name,
                namespace: w.namespace,
                uid: w.uid,
              },
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
          perCall(signal),
        )
        return 'created'
      } catch (err) {
        if (status(err) === 409) return 'exists'
        throw err
      }
    },
    async update(namespace, name, change, signal) {
      const patch = { count: change.count, message: change.message, lastTimestamp: new Date().toISOString() }
      try {
        await core.patchNamespacedEvent(
          { name, namespace, body: patch },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch, perCall(signal)),
        )
        return 'updated'
      } catch (err) {
        if (status(err) === 404) return 'gone'
        throw err
      }
    },
  }
}

/** One Event per broken workload, kept across passes; failures are logged once per cause and never stop the audit. */
export class AuditEvents {
  readonly #sink: EventSink
  readonly #logger: Logger
  /** Per workload uid: how many passes found it broken since its Event was made. */
  readonly #open = new Map<string, number>()
  #failing = false

  constructor(sink: EventSink, logger: Logger) {
    this.#sink = sink
    this.#logger = logger
  }

  /** A workload's broken containers after a pass (empty: it pulls again; its Event is left to expire). */
  async report(w: EventSubject, lines: readonly string[], signal: AbortSignal): Promise<void> {
    if (lines.length === 0) {
      this.#open.delete(w.uid)
      return
    }
    const message = lines.join('; ').slice(0, 1024)
    const name = eventName(w)
    const io = AbortSignal.any([signal, AbortSignal.timeout(5000)])
    try {
      const count = (this.#open.get(w.uid) ?? 0) + 1
      if (count === 1) {
        // It may exist already: written by the leader before this one, or before a restart.
        if ((await this.#sink.create(w, name, message, io)) === 'exists')
          await this.#sink.update(w.namespace, name, { count, message }, io)
      } else if ((await this.#sink.update(w.namespace, name, { count, message }, io)) === 'gone') {
        await this.#sink.create(w, name, message, io)
      }
      this.#open.set(w.uid, count)
      this.#failing = false
    } catch (err) {
      if (!this.#failing)
        this.#logger.warn(
          { err: (err as Error).message, namespace: w.namespace, name: w.name },
          'audit: the ImageNotPullable Event could not be written (the audit-events overlay grants create and patch on events)',
        )
      this.#failing = true
    }
  }

  /** Workloads no longer seen: forgotten (the API server expires their Events). */
  forget(keep: ReadonlySet<string>): void {
    for (const key of this.#open.keys()) if (!keep.has(key)) this.#open.delete(key)
  }
}
