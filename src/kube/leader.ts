/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the
 * holder renews every retry period; another replica takes the Lease once it has seen no renewal
 * for the lease duration (timed by its own clock from when it last saw the record change, so clock
 * skew between replicas does not matter); every write carries the resourceVersion it read, so two
 * replicas can never both win. With client-go's defaults (15 s, 10 s, 2 s) a replica takes over
 * within about 17 s of the leader's last renewal; a leader that stops releases the Lease at once.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node'
import type { Logger } from 'pino'
import { perCall } from './kube-api.js'

export interface LeaseRecord {
  holder: string
  renewTime: number
  leaseDurationSeconds: number
  transitions: number
  resourceVersion: string
}

/** The Lease as this module needs it; `conflict` when the resourceVersion moved on (someone else wrote). */
export interface LeaseApi {
  read(signal: AbortSignal): Promise<LeaseRecord | 'missing'>
  create(record: Omit<LeaseRecord, 'resourceVersion'>, signal: AbortSignal): Promise<LeaseRecord | 'conflict'>
  update(record: LeaseRecord, signal: AbortSignal): Promise<LeaseRecord | 'conflict'>
}

export interface LeaderOptions {
  api: LeaseApi
  identity: string
  logger: Logger
  onStart: () => void
  onStop: () => void
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  now?: () => number
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderOptions, 'now'>> & { now: () => number }
  #leader = false
  #observed: { holder: string; renewTime: number; at: number } | undefined
  #lastRenew = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #record: LeaseRecord | undefined
  /** The read and write in progress, which stop() waits out before releasing. */
  #inflight: Promise<void> | undefined

  constructor(options: LeaderOptions) {
    this.#o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, now: Date.now, ...options }
  }

  get isLeader(): boolean {
    return this.#leader
  }

  start(): void {
    this.#inflight = this.#tick()
  }

  /** Stops trying; a leader releases the Lease (an empty holder) so another takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    // A renewal in flight may still land: release with the version it leaves, not an older one.
    await this.#inflight
    if (!this.#leader) return
    this.#lose('stopping')
    const record = this.#record
    if (record === undefined || record.holder !== this.#o.identity) return
    const signal = AbortSignal.timeout(2000)
    await this.#o.api.update({ ...record, holder: '', renewTime: this.#o.now() }, signal).catch(() => undefined)
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return
    try {
      // The deadline bounds one attempt: a leader must know it lost before another can take over.
      await this.#try(AbortSignal.timeout(Math.min(this.#o.retryPeriodMs * 2, this.#o.renewDeadlineMs / 2)))
    } catch (err) {
      this.#o.logger.warn(
        { err: (err as Error).message },
        'audit leader election: the Lease could not be read or written',
      )
    }
    if (this.#leader && this.#o.now() - this.#lastRenew > this.#o.renewDeadlineMs)
      this.#lose('could not renew the Lease in time')
    if (this.#stopped) return
    this.#timer = setTimeout(() => (this.#inflight = this.#tick()), this.#o.retryPeriodMs)
    this.#timer.unref()
  }

  async #try(signal: AbortSignal): Promise<void> {
    const now = this.#o.now()
    const me = this.#o.identity
    const seconds = Math.ceil(this.#o.leaseDurationMs / 1000)
    const found = await this.#o.api.read(signal)
    if (found === 'missing') {
      const created = await this.#o.api.create(
        { holder: me, renewTime: now, leaseDurationSeconds: seconds, transitions: 0 },
        signal,
      )
      if (created !== 'conflict') this.#won(created, now)
      return
    }
    if (
      this.#observed === undefined ||
      this.#observed.holder !== found.holder ||
      this.#observed.renewTime !== found.renewTime
    ) {
      this.#observed = { holder: found.holder, renewTime: found.renewTime, at: now }
    }
    if (found.holder !== me) {
      if (this.#leader) this.#lose(`the Lease is held by ${found.holder}`)
      const expired = found.holder === '' || now - this.#observed.at > found.leaseDurationSeconds * 1000
      if (!expired) return
    }
    const next = {
      ...found,
      holder: me,
      renewTime: now,
      leaseDurationSeconds: seconds,
      transitions: found.holder === me ? found.transitions : found.transitions + 1,
    }
    const written = await this.#o.api.update(next, signal)
    if (written === 'conflict') return
    this.#won(written, now)
  }

  #won(record: LeaseRecord, now: number): void {
    this.#record = record
    // Written while stopping: stop() releases it; this replica does not start again.
    if (this.#stopped) {
      this.#leader = true
      return
    }
    this.#lastRenew = now
    this.#observed = { holder: record.holder, renewTime: record.renewTime, at: now }
    if (this.#leader) return
    this.#leader = true
    this.#o.logger.info({ identity: this.#o.identity }, 'audit leader: this replica audits')
    this.#o.onStart()
  }

  #lose(why: string): void {
    if (!this.#leader) return
    this.#leader = false
    this.#o.logger.info({ identity: this.#o.identity, why }, 'audit leader: no longer leading')
    this.#o.onStop()
  }
}

/** RFC 3339 with microseconds, as metav1.MicroTime is written. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z')
}

/** The Lease through client-node's CoordinationV1Api. */
export function leaseApi(kubeConfig: KubeConfig, namespace: string, name: string): LeaseApi {
  const api = kubeConfig.makeApiClient(CoordinationV1Api)
  const toRecord = (l: V1Lease): LeaseRecord => ({
    holder: l.spec?.holderIdentity ?? '',
    renewTime: l.spec?.renewTime === undefined ? 0 : new Date(l.spec.renewTime as unknown as string).getTime(),
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 15,
    transitions: l.spec?.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion ?? '',
  })
  const body = (r: Omit<LeaseRecord, 'resourceVersion'> & { resourceVersion?: string }): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(r.resourceVersion === undefined ? {} : { resourceVersion: r.resourceVersion }) },
    // MicroTime: the API server wants six fractional digits; client-node would send a Date's three.
    spec: {
      holderIdentity: r.holder,
      leaseDurationSeconds: r.leaseDurationSeconds,
      renewTime: microTime(r.renewTime) as never,
      leaseTransitions: r.transitions,
    },
  })
  const status = (err: unknown): number | undefined =>
    typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined
  return {
    async read(signal) {
      try {
        return toRecord(await api.readNamespacedLease({ name, namespace }, perCall(signal)))
      } catch (err) {
        if (status(err) === 404) return 'missing'
        throw err
      }
    },
    async create(record, signal) {
      try {
        return toRecord(await api.createNamespacedLease({ namespace, body: body(record) }, perCall(signal)))
      } catch (err) {
        if (status(err) === 409) return 'conflict'
        throw err
      }
    },
    async update(record, signal) {
      try {
        return toRecord(await api.replaceNamespacedLease({ name, namespace, body: body(record) }, perCall(signal)))
      } catch (err) {
        if (status(err) === 409) return 'conflict'
        throw err
      }
    },
  }
}
