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
import { pool } from '../async/pool.js'
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
  /** The registry host its image is pulled from: its lane of the pool. */
  host: string
}

/** A host's pacing through one pass. */
interface Lane {
  /** Between two of its requests: the qps spacing, or the interval spread over its images. */
  gap: number
  /** The earliest time of its next request. */
  next: number
  /** When a spread pass must be done with it. */
  windowEnd: number
  /** Once the window is past: the answers for the images it did not reach. */
  unreached: ImageChecker | undefined
}

export async function runPass(workloads: readonly AuditWorkload[], options: PassOptions): Promise<AuditFinding[]> {
  const clock = options.clock ?? realClock
  const pauses = options.pauses ?? new Map<string, number>()
  const tasks: Task[] = []
  const perHost = new Map<string, number>()
  for (const workload of workloads) {
    for (const use of workload.subject.images) {
      const parsed = tryParseReference(use.image)
      const host = parsed.ok ? parsed.ref.registryHost : ''
      tasks.push({ workload, use, host })
      perHost.set(host, (perHost.get(host) ?? 0) + 1)
    }
  }
  const findings: Array<AuditFinding & { outcome: ImageOutcome }> = []
  const minGapMs = 1000 / Math.max(options.qps, 0.001)
  const lanes = new Map<string, Lane>()
  for (const [host, count] of perHost) {
    const next = clock.now()
    // A spread pass ends on time: what a paused or slow host could not reach in the window is
    // said unverified, without a request, rather than hold up the pass (and every host's next).
    const windowEnd = options.spreadMs > 0 ? next + Math.max(options.spreadMs, count * minGapMs) : Infinity
    lanes.set(host, { gap: Math.max(minGapMs, options.spreadMs / count), next, windowEnd, unreached: undefined })
  }
  // Before an image's turn, outside the pool's limit: its host's spacing, or the end of its window.
  const pace = async (task: Task): Promise<void> => {
    const lane = lanes.get(task.host)!
    if (lane.unreached !== undefined) return
    const at = Math.max(lane.next, pauses.get(task.host) ?? 0, clock.now())
    if (at > lane.windowEnd) {
      const paused = (pauses.get(task.host) ?? 0) > lane.next
      lane.unreached = unreached(task.host, paused, pauses.get(task.host) ?? 0, clock)
      return
    }
    await clock.sleep(at - clock.now(), options.signal)
    if (options.signal.aborted) return
    const started = clock.now()
    lane.next = started + lane.gap
    pauses.set(task.host, Math.max(pauses.get(task.host) ?? 0, started + minGapMs))
  }
  await pool(tasks, { limit: MAX_PARALLEL, lane: (task) => task.host, pace, signal: options.signal }, async (task) => {
    const late = lanes.get(task.host)!.unreached
    const finding = await judged(
      task,
      late === undefined ? options : { ...options, assess: { ...options.assess, checker: late } },
    )
    if (finding === undefined) return
    findings.push(finding)
    options.onFinding?.(finding)
    if (late !== undefined) return
    if (finding.outcome.kind === 'checked' && finding.outcome.result.code === 'RateLimited') {
      const seconds = finding.outcome.result.retryAfterSeconds
      pauses.set(task.host, clock.now() + (seconds === undefined ? DEFAULT_PAUSE_MS : seconds * 1000))
    } else if (finding.outcome.kind === 'checked' && finding.outcome.result.code === 'TagNotFound') {
      // The tag list read for the nearest tags was a request too: it counts against the rate.
      pauses.set(task.host, Math.max(pauses.get(task.host) ?? 0, clock.now() + minGapMs))
    }
  })
  return findings.map(({ outcome: _, ...f }) => f)
}

/** The workload's container as it is when its turn comes (a changed image is judged from the next pass on, as a new one). */
async function judged(
  task: Task,
  options: PassOptions,
): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> {
  const now = options.current === undefined ? task.workload : options.current(task.workload)
  if (now === undefined) return undefined
  const use = now.subject.images.find((u) => u.field === task.use.field && u.image === task.use.image)
  return use === undefined ? undefined : await judge({ workload: now, use, host: task.host }, options)
}

/** Answers for images a pass did not reach: no request is made. */
function unreached(host: string, paused: boolean, until: number, clock: PassClock): ImageChecker {
  return {
    check: async () =>
      paused
        ? {
            code: 'RateLimited',
            detail: `${host} asked to wait (429); not asked again in this pass`,
            retryAfterSeconds: Math.max(0, Math.ceil((until - clock.now()) / 1000)),
            attempts: [],
          }
        : {
            code: 'RegistryUnreachable',
            cause: 'timeout',
            detail: `${host} answered too slowly for all its images to be checked within the audit interval`,
            attempts: [],
          },
    tags: async () => undefined,
  }
}

async function judge(
  task: Task,
  options: PassOptions,
): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> {
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
    const target: FixTarget = {
      ...(await admissionFixTarget(subject, found, options.assess.serviceAccounts, signal)),
      voice: 'diagnose',
      resource: resourceOf(workload.kind),
      patchPath: patchPath(workload.kind),
    }
    const group = groupOutcomes([outcome], target)[0]!
    message = groupWarning(group, '')
    fix = group.fix === undefined ? [] : fixLines(group.fix)
  }
  return {
    workload: {
      kind: workload.kind,
      namespace: workload.namespace,
      name: workload.name,
      uid: workload.uid,
      scaledToZero: workload.scaledToZero,
    },
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
