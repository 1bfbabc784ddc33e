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
  await Promise.all(
    [...byHost].map(async ([host, tasks]) => {
      const gap = Math.max(minGapMs, options.spreadMs / tasks.length)
      let next = clock.now()
      for (const task of tasks) {
        if (options.signal.aborted) return
        await clock.sleep(Math.max(next, pauses.get(host) ?? 0) - clock.now(), options.signal)
        if (options.signal.aborted) return
        const started = clock.now()
        next = started + gap
        pauses.set(host, Math.max(pauses.get(host) ?? 0, started + minGapMs))
        const finding = await judge(task, options)
        if (finding === undefined) continue
        findings.push(finding)
        options.onFinding?.(finding)
        if (finding.outcome.kind === 'checked' && finding.outcome.result.code === 'RateLimited') {
          const seconds = finding.outcome.result.retryAfterSeconds
          pauses.set(host, clock.now() + (seconds === undefined ? DEFAULT_PAUSE_MS : seconds * 1000))
        }
      }
    }),
  )
  return findings.map(({ outcome: _, ...f }) => f)
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
