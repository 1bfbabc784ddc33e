/**
 * One audit pass: every image of every workload judged once, exactly as the webhook judges a
 * CREATE of the workload (assess(), with its secrets, service account, node credentials, plugins
 * and platforms), each container on its own so that one registry's answer never waits on another's.
 *
 * Pacing: images are queued per registry host, and each host's queue runs on its own, one request
 * at a time, at most `qps` a second, spread evenly over `spreadMs` (the interval; 0 for the CLI,
 * which runs as fast as the pacing allows). A 429 pauses that host's queue for its Retry-After (a
 * minute when it gives none). A host that hangs holds up only its own queue.
 */
import { setMaxListeners } from 'node:events'
import { assess, type AssessOptions } from '../policy/assess.js'
import { admissionFixTarget } from '../policy/fix-target.js'
import { fixLines, type FixTarget } from '../policy/fixes.js'
import { groupOutcomes, groupWarning, problem } from '../policy/messages.js'
import { pullability, reasonCode, type ImageOutcome } from '../policy/outcome.js'
import type { ImageUse } from '../policy/subject.js'
import { tryParseReference } from '../reference/index.js'
import type { CachedChecker, ImageChecker } from '../registry/cached-checker.js'
import { patchPath, resourceOf, type AuditWorkload } from './workloads.js'

export type AuditResult = 'pullable' | 'not-pullable' | 'unverified'

export interface AuditFinding {
  workload: Pick<AuditWorkload, 'kind' | 'namespace' | 'name' | 'uid' | 'scaledToZero'>
  container: string
  field: string
  image: string
  result: AuditResult
  /** The webhook's reason code. */
  reason: string
  /** What is wrong, as a denial says it. */
  problem: string
  /** What is wrong and the fix, on one line (the denial's short form); empty when pullable. */
  message: string
  /** The fix as diagnose prints it, one step per line, for the live workload. */
  fix: string[]
}

export interface PassClock {
  now(): number
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export const realClock: PassClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (ms <= 0 || signal.aborted) return resolve()
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
    }),
}

export interface PassOptions {
  assess: AssessOptions
  /** Requests a second per registry host, at most. */
  qps: number
  /** Spread each host's images over this long (the interval); 0: as fast as qps allows. */
  spreadMs: number
  /** Per image, as --timeout. */
  timeoutMs: number
  signal: AbortSignal
  clock?: PassClock
  /** Told of each image as it is judged. */
  onFinding?: (f: AuditFinding) => void
  /** The workload as it is when its turn comes; undefined: gone, not judged. */
  current?: (w: AuditWorkload) => AuditWorkload | undefined
  /**
   * Shared across passes: per host, the earliest time of its next request (the qps spacing,
   * carried from one pass into the next, and a 429's pause).
   */
  pauses?: Map<string, number>
}

/**
 * The audit asks the registry afresh each time (it is there to see what changed since a review
 * filled the cache) and leaves its answer in the shared cache for the reviews after it.
 */
export function auditChecker(checker: CachedChecker): ImageChecker {
  return {
    check: (ref, credentials, namespace, signal) => checker.fresh(ref, credentials, namespace, signal),
    tags: (ref, credentials, namespace, signal) => checker.tags(ref, credentials, namespace, signal),
  }
}

/** A 429 without Retry-After pauses the host this long. */
const DEFAULT_PAUSE_MS = 60_000
/**
 * Images judged at once across all hosts: hosts come from pod specs (there may be thousands), and
 * the audit shares plugin runs and DNS with the reviews, which must never wait for it.
 */
const MAX_PARALLEL = 4

interface Task {
  workload: AuditWorkload
  use: ImageUse
}

export async function runPass(workloads: readonly AuditWorkload[], options: PassOptions): Promise<AuditFinding[]> {
  const clock = options.clock ?? realClock
  const pauses = options.pauses ?? new Map<string, number>()
  const byHost = new Map<string, Task[]>()
  for (const workload of workloads) {
    for (const use of workload.subject.images) {
      const parsed = tryParseReference(use.image)
      const host = parsed.ok ? parsed.ref.registryHost : ''
      let queue = byHost.get(host)
      if (queue === undefined) byHost.set(host, (queue = []))
      queue.push({ workload, use })
    }
  }
  const findings: Array<AuditFinding & { outcome: ImageOutcome }> = []
  const minGapMs = 1000 / Math.max(options.qps, 0.001)
  const slots = semaphore(MAX_PARALLEL)
  const judged = async (task: Task, o: PassOptions): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> => {
    const release = await slots.acquire(o.signal)
    try {
      if (o.signal.aborted) return undefined
      const now = o.current === undefined ? task.workload : o.current(task.workload)
      if (now === undefined) return undefined
      // The container as it is now (a changed image is judged from the next pass on, as a new one).
      const use = now.subject.images.find((u) => u.field === task.use.field && u.image === task.use.image)
      return use === undefined ? undefined : await judge({ workload: now, use }, o)
    } finally {
      release()
    }
  }
  await Promise.all(
    [...byHost].map(async ([host, tasks]) => {
      const gap = Math.max(minGapMs, options.spreadMs / tasks.length)
      let next = clock.now()
      // A spread pass ends on time: what a paused or slow host could not reach in the window is
      // said unverified, without a request, rather than hold up the pass (and every host's next).
      const windowEnd = options.spreadMs > 0 ? next + Math.max(options.spreadMs, tasks.length * minGapMs) : Infinity
      for (const [i, task] of tasks.entries()) {
        if (options.signal.aborted) return
        const at = Math.max(next, pauses.get(host) ?? 0, clock.now())
        if (at > windowEnd) {
          const paused = (pauses.get(host) ?? 0) > next
          for (const rest of tasks.slice(i)) {
            const finding = await judged(rest, { ...options, assess: { ...options.assess, checker: unreached(host, paused, pauses.get(host) ?? 0, clock) } })
            if (finding === undefined) continue
            findings.push(finding)
            options.onFinding?.(finding)
          }
          return
        }
        await clock.sleep(at - clock.now(), options.signal)
        if (options.signal.aborted) return
        const started = clock.now()
        next = started + gap
        pauses.set(host, Math.max(pauses.get(host) ?? 0, started + minGapMs))
        const finding = await judged(task, options)
        if (finding === undefined) continue
        findings.push(finding)
        options.onFinding?.(finding)
        if (finding.outcome.kind === 'checked' && finding.outcome.result.code === 'RateLimited') {
          const seconds = finding.outcome.result.retryAfterSeconds
          pauses.set(host, clock.now() + (seconds === undefined ? DEFAULT_PAUSE_MS : seconds * 1000))
        } else if (finding.outcome.kind === 'checked' && finding.outcome.result.code === 'TagNotFound') {
          // The tag list read for the nearest tags was a request too: it counts against the rate.
          pauses.set(host, Math.max(pauses.get(host) ?? 0, clock.now() + minGapMs))
        }
      }
    }),
  )
  return findings.map(({ outcome: _, ...f }) => f)
}

/** At most `n` holders at once; waiting stops when the signal aborts. */
function semaphore(n: number): { acquire(signal: AbortSignal): Promise<() => void> } {
  let free = n
  const waiting: Array<() => void> = []
  const release = (): void => {
    const next = waiting.shift()
    if (next !== undefined) next()
    else free++
  }
  return {
    acquire: (signal) =>
      new Promise((resolve) => {
        if (free > 0) {
          free--
          return resolve(release)
        }
        const go = (): void => {
          signal.removeEventListener('abort', abandon)
          resolve(release)
        }
        const abandon = (): void => {
          const i = waiting.indexOf(go)
          if (i >= 0) waiting.splice(i, 1)
          resolve(() => undefined)
        }
        waiting.push(go)
        signal.addEventListener('abort', abandon, { once: true })
      }),
  }
}

/** Answers for images a pass did not reach: no request is made. */
function unreached(host: string, paused: boolean, until: number, clock: PassClock): ImageChecker {
  return {
    check: async () =>
      paused
        ? { code: 'RateLimited', detail: `${host} asked to wait (429); not asked again in this pass`, retryAfterSeconds: Math.max(0, Math.ceil((until - clock.now()) / 1000)), attempts: [] }
        : { code: 'RegistryUnreachable', cause: 'timeout', detail: `${host} answered too slowly for all its images to be checked within the audit interval`, attempts: [] },
    tags: async () => undefined,
  }
}

async function judge(task: Task, options: PassOptions): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> {
  const { workload, use } = task
  // Room for the API reads before the image and a tag listing after a missing tag, as check gives.
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs * 3)])
  setMaxListeners(0, signal)
  const subject = { ...workload.subject, images: [use] }
  const found = await assess(options.assess, subject, signal)
  // Exempt namespaces and namespaces in mode `off` are not audited.
  if (found.mode === 'exempt' || found.mode === 'off') return undefined
  const outcome = found.outcomes[0]
  if (outcome === undefined || outcome.kind === 'exempt') return undefined
  const p = pullability(outcome)
  const result: AuditResult = p === 'unknown' ? 'unverified' : p
  let message = ''
  let fix: string[] = []
  if (p !== 'pullable') {
    const target: FixTarget = { ...(await admissionFixTarget(subject, found, options.assess.serviceAccounts, signal)), voice: 'diagnose', resource: resourceOf(workload.kind), patchPath: patchPath(workload.kind) }
    const group = groupOutcomes([outcome], target)[0]!
    message = groupWarning(group, '')
    fix = group.fix === undefined ? [] : fixLines(group.fix)
  }
  return {
    workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name, uid: workload.uid, scaledToZero: workload.scaledToZero },
    container: use.container,
    field: use.field,
    image: use.image,
    result,
    reason: reasonCode(outcome),
    problem: problem(outcome),
    message,
    fix,
    outcome,
  }
}
