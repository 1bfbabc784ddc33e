/**
 * One audit pass: every image of every workload judged exactly as the webhook judges a CREATE of
 * the workload (its secrets, service account, node credentials, plugins and platforms), each
 * container on its own, and each distinct question asked of its registry once (answers.ts): the
 * pass costs what there is to know, not how often it is used.
 *
 * Workloads come in batches (serve: the whole watched copy; the CLI: the API's pages, so memory
 * stays bounded). For each batch:
 *  1. Plan: read what each workload's images would ask (prepareAssessment: API reads and plugin
 *     answers, no registry request); the next batch is read while this one's questions are asked.
 *  2. Ask: the questions not answered yet are queued per registry host. Each host's queue runs on
 *     its own, one question at a time, at most `qps` a second, spread evenly over `spreadMs` (the
 *     interval; 0 for the CLI, which runs as fast as the pacing allows). A 429 pauses that host's
 *     queue for its Retry-After (a minute when it gives none); a host that hangs holds up only its
 *     own queue; what a spread pass cannot reach in its window is said unverified, unasked.
 *  3. Fan out: each answer is given to every use that asked it, each judged with its own workload.
 */
import { setMaxListeners } from 'node:events'
import { pool } from '../async/pool.js'
import {
  completeAssessment,
  prepareAssessment,
  type Assessment,
  type AssessOptions,
  type PreparedAssessment,
} from '../policy/assess.js'
import type { NodePools } from '../policy/node-pools.js'
import type { ImageOutcome } from '../policy/outcome.js'
import type { ImageUse, PodSubject } from '../policy/subject.js'
import type { ImageReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { Credential } from '../registry/credential.js'
import type { CheckResult } from '../registry/result.js'
import { questionKey, type PassAnswers, type QuestionResult } from './answers.js'
import { Join, PoolGroups, type Group } from './pool-groups.js'
import { findingFor, type AuditFinding } from './finding.js'
import type { AuditWorkload } from './workloads.js'

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
  /**
   * The node pools (--node-pools): each workload is judged on every pool its scheduling allows, as
   * the webhook judges it; a question asked through one pool's files is that pool's own.
   */
  pools?: NodePools
  /** How a pool's checker is asked by the audit (serve: afresh, into the shared cache; the CLI: directly). */
  checkerFor?: (checker: ImageChecker) => ImageChecker
  /** Requests a second per registry host, at most. */
  qps: number
  /** Spread each host's questions over this long (the interval); 0: as fast as qps allows. */
  spreadMs: number
  /** Per question, as --timeout. */
  timeoutMs: number
  signal: AbortSignal
  clock?: PassClock
  /** Told of each container as it is judged. */
  onFinding?: (f: AuditFinding) => void
  /**
   * Told of each container of a pinned pod whose tag now names another manifest than the digest it
   * was pinned to (information: the pod pulls its digest, a new one would pull the tag's).
   */
  onTagMoved?: (moved: TagMoved) => void
  /** Told of each workload of a batch once the batch is judged, in the batch's order, with its findings. */
  onWorkload?: (w: AuditWorkload, findings: AuditFinding[]) => void
  /** Told of each request the pass makes to a registry host. */
  onRequest?: (host: string) => void
  /** The workload as it is when its question's turn comes; undefined: gone, not judged. */
  current?: (w: AuditWorkload) => AuditWorkload | undefined
  /**
   * Shared across passes: per host, the earliest time of its next request (the qps spacing,
   * carried from one pass into the next, and a 429's pause).
   */
  pauses?: Map<string, number>
}

/** A 429 without Retry-After pauses the host this long. */
const DEFAULT_PAUSE_MS = 60_000
/**
 * Questions asked at once across all hosts: hosts come from pod specs (there may be thousands),
 * and the audit shares plugin runs and DNS with the reviews, which must never wait for it.
 */
const MAX_PARALLEL = 4
/** Workloads planned at once (API reads and plugin answers; no registry request). */
const PLAN_PARALLEL = 16

export interface PassSummary {
  /** Container uses judged (one finding each). */
  uses: number
  /** The distinct questions of the pass, by the registry's answer. */
  questions: Record<QuestionResult, number>
  /** Requests made, per registry host: a manifest check per question, a tag listing per missing tag's repository. */
  requests: Map<string, number>
}

/** A pass's totals: distinct questions and registry requests, all hosts together. */
export function passTotals(summary: PassSummary): { questions: number; registryRequests: number } {
  const q = summary.questions
  let registryRequests = 0
  for (const n of summary.requests.values()) registryRequests += n
  return { questions: q.pullable + q['not-pullable'] + q.unverified, registryRequests }
}

export interface TagMoved {
  workload: Pick<AuditWorkload, 'kind' | 'namespace' | 'name' | 'uid'>
  container: string
  field: string
  /** The image as pinned (`name@sha256:…`). */
  pinned: string
  /** The tag it was pinned from. */
  tag: string
  /** The digest the tag names now. */
  now: string
}

interface Task {
  workload: AuditWorkload
  use: ImageUse
  /** A pinned pod's tag, asked to tell whether it moved: no finding is made of it. */
  tag?: true
  group: Group
  join: Join
  /**
   * What was read for its workload when the batch was planned, kept for judging where the workload
   * is not read again (the CLI); serve reads it again at the question's turn, and a pass over the
   * whole cluster does not hold 20 000 of them for an hour.
   */
  prepared: PreparedAssessment | undefined
}

/**
 * One registry question of a batch and the uses waiting for its answer. Only its key is kept, not
 * the reference and credentials: a pass over a big cluster plans tens of thousands of questions an
 * hour ahead (measured: 20 MB more heap with them), and its first use says them again at its turn.
 */
interface Question {
  /** The question's key within its group's answers, prefixed by the group's node side. */
  key: string
  raw: string
  answers: PassAnswers
  /** The registry host its image is pulled from: its lane of the pool. */
  host: string
  tasks: Task[]
}

/**
 * A batch as it was read for planning (API reads and plugin answers: no registry request): each
 * use with the key of the question it asks (none: nothing to ask). What was read is reduced to
 * this as each workload is read, since serve's single batch is the whole cluster.
 */
interface Read {
  batch: readonly AuditWorkload[]
  uses: Array<{ task: Task; key: string | undefined; raw: string; host: string }>
}

/** A host's pacing through one pass. */
interface Lane {
  /** Between two of its questions: the qps spacing, or the interval spread over its questions. */
  gap: number
  /** The earliest time of its next request. */
  next: number
  /** When a spread pass must be done with it. */
  windowEnd: number
  /** Once the window is past: the answer for the questions it did not reach. */
  unreached: CheckResult | undefined
}

/** `workloads`: one batch (serve's watched copy), or batches as the API pages them (the CLI). */
export async function runPass(
  workloads: readonly AuditWorkload[] | AsyncIterable<readonly AuditWorkload[]>,
  options: PassOptions,
): Promise<PassSummary> {
  const clock = options.clock ?? realClock
  const pauses = options.pauses ?? new Map<string, number>()
  // Every queue, sleeper and question listens to it: as many as the pass has lanes and places.
  setMaxListeners(0, options.signal)
  const requests = new Map<string, number>()
  const groups = new PoolGroups({
    assess: options.assess,
    ...(options.pools === undefined ? {} : { pools: options.pools }),
    ...(options.checkerFor === undefined ? {} : { checkerFor: options.checkerFor }),
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    onRequest: (host) => {
      requests.set(host, (requests.get(host) ?? 0) + 1)
      options.onRequest?.(host)
    },
  })
  const minGapMs = 1000 / Math.max(options.qps, 0.001)
  const lanes = new Map<string, Lane>()
  let uses = 0

  // Before a question's turn, outside the pool's limit: its host's spacing, or the end of its window.
  const pace = async (q: Question): Promise<void> => {
    const lane = lanes.get(q.host)!
    if (lane.unreached !== undefined) return
    const at = Math.max(lane.next, pauses.get(q.host) ?? 0, clock.now())
    if (at > lane.windowEnd) {
      const paused = (pauses.get(q.host) ?? 0) > lane.next
      lane.unreached = unreached(q.host, paused, pauses.get(q.host) ?? 0, clock)
      return
    }
    await clock.sleep(at - clock.now(), options.signal)
    if (options.signal.aborted) return
    const started = clock.now()
    // The next slot on the spread's grid, not a gap after this one began: a timer that fires late
    // or a slow answer would otherwise push every later question back, past the window (measured:
    // 2% of a 25 000-question pass). The qps spacing below still holds between any two requests.
    lane.next = Math.max(lane.next, started - lane.gap) + lane.gap
    pauses.set(q.host, Math.max(pauses.get(q.host) ?? 0, started + minGapMs))
  }

  const read = async (batch: readonly AuditWorkload[]): Promise<Read> => {
    const uses: Read['uses'] = []
    await pool(batch, { limit: PLAN_PARALLEL, signal: options.signal }, async (workload) => {
      const signal = deadline(options)
      const its = await groups.of(workload, signal)
      const prepared = await Promise.all(its.map((g) => prepareAssessment(g.options, workload.subject, signal)))
      if (prepared[0]!.mode === 'exempt' || prepared[0]!.mode === 'off') return
      const add = (images: readonly ImageUse[], preparedFor: readonly PreparedAssessment[], tag: boolean): void => {
        for (const use of images) {
          const join = new Join(its.length)
          for (const [i, group] of its.entries()) {
            const p = preparedFor[i]!
            if (p.mode === 'exempt' || p.mode === 'off') throw new Error('pools: one mode per namespace')
            const plan = p.plans.get(use.image)
            const task: Task = {
              workload,
              use,
              group,
              join,
              prepared: options.current === undefined ? p : undefined,
              ...(tag ? { tag: true as const } : {}),
            }
            if (plan?.kind !== 'ask') {
              uses.push({ task, key: undefined, raw: '', host: '' })
              continue
            }
            const raw = questionKey(plan.ref, plan.credentials)
            uses.push({ task, key: group.prefix + raw, raw, host: plan.ref.registryHost })
          }
        }
      }
      add(workload.subject.images, prepared, false)
      // A pinned pod's tags: the same questions as its owner's template asks, so mostly no new one.
      const tags = workload.pinnedTags
      if (tags !== undefined && options.onTagMoved !== undefined)
        add(tags.images, await Promise.all(its.map((g) => prepareAssessment(g.options, tags, signal))), true)
    })
    return { batch, uses }
  }

  /** The batch's questions not answered in an earlier batch, by key, and the uses to judge now. */
  const plan = (read: Read): { questions: Map<string, Question>; now: Task[] } => {
    const questions = new Map<string, Question>()
    const now: Task[] = []
    for (const { task, key, raw, host } of read.uses) {
      // Nothing to ask (invalid, exempt, blocked, …), or answered in an earlier batch: judged now.
      if (key === undefined || task.group.answers.settled(raw) !== undefined) {
        now.push(task)
        continue
      }
      const q = questions.get(key)
      if (q !== undefined) q.tasks.push(task)
      else questions.set(key, { key, raw, answers: task.group.answers, host, tasks: [task] })
    }
    read.uses = []
    return { questions, now }
  }

  const batch = async (read: Read): Promise<void> => {
    const byWorkload = new Map<AuditWorkload, AuditFinding[]>()
    // Kept only for onWorkload (the CLI's report, a page at a time).
    if (options.onWorkload !== undefined) for (const w of read.batch) byWorkload.set(w, [])
    const found = (f: (AuditFinding & { outcome: ImageOutcome }) | undefined, task: Task): void => {
      if (f === undefined) return
      const { outcome: _, ...finding } = f
      uses++
      byWorkload.get(task.workload)?.push(finding)
      options.onFinding?.(finding)
    }
    // 1. Plan.
    const { questions, now } = plan(read)
    // 2. Lanes for hosts new to the pass, paced over their questions.
    const perHost = new Map<string, number>()
    for (const q of questions.values()) perHost.set(q.host, (perHost.get(q.host) ?? 0) + 1)
    for (const [host, count] of perHost) {
      if (lanes.has(host)) continue
      const next = clock.now()
      // A spread pass ends on time: what a paused or slow host could not reach in the window is
      // said unverified, without a request, rather than hold up the pass (and every host's next).
      const windowEnd = options.spreadMs > 0 ? next + Math.max(options.spreadMs, count * minGapMs) : Infinity
      lanes.set(host, { gap: Math.max(minGapMs, options.spreadMs / count), next, windowEnd, unreached: undefined })
    }
    // 3. Ask each question in its turn; every use that asked it is judged off the lane, so the
    //    host's next question does not wait for a popular image's thousand workloads.
    const fanOut: Array<Promise<void>> = []
    // Held until the lanes are done, so a failure is thrown once, not as an unhandled rejection.
    let failed: { err: unknown } | undefined
    // A use's finding once every group it is judged in has answered.
    const settle = async (task: Task): Promise<void> => {
      const whole = task.join.record(task.group, await judged(task, options))
      if (whole === undefined) return
      if (task.tag === true) {
        const moved = tagMoved(whole.workload, whole.found)
        if (moved !== undefined) options.onTagMoved?.(moved)
        return
      }
      found(
        await findingFor(whole.workload, whole.subject, whole.found, options.assess, deadline(options), whole.pools),
        task,
      )
    }
    const judgeAll = async (tasks: readonly Task[]): Promise<void> => {
      try {
        for (const task of tasks) await settle(task)
      } catch (err) {
        failed ??= { err }
      }
    }
    const asking = pool(
      [...questions.values()],
      { limit: MAX_PARALLEL, lane: (q) => q.host, pace, signal: options.signal },
      async (q) => {
        const late = lanes.get(q.host)!.unreached
        if (late !== undefined) {
          // Past the window: its uses are told so without a request, and nothing is read for it.
          q.answers.put(q.raw, [], late)
          fanOut.push(judgeAll(q.tasks))
          return
        }
        const asked = await askOf(q.tasks, options)
        const answer =
          asked === undefined ? undefined : await q.answers.check(asked.ref, asked.credentials, asked.namespace)
        if (answer !== undefined) {
          if (answer.code === 'RateLimited') {
            const seconds = answer.retryAfterSeconds
            pauses.set(q.host, clock.now() + (seconds === undefined ? DEFAULT_PAUSE_MS : seconds * 1000))
          } else if (answer.code === 'TagNotFound') {
            // The tag list read for the nearest tags is a request too: it counts against the rate.
            pauses.set(q.host, Math.max(pauses.get(q.host) ?? 0, clock.now() + minGapMs))
          }
        }
        fanOut.push(judgeAll(q.tasks))
      },
    )
    const judging = pool(now, { limit: MAX_PARALLEL, signal: options.signal }, (task) => settle(task))
    await Promise.all([asking, judging])
    await Promise.all(fanOut)
    if (failed !== undefined) throw failed.err
    if (options.signal.aborted) return
    for (const [workload, findings] of byWorkload) options.onWorkload?.(workload, findings)
  }

  // The next batch is read and planned while this one's questions are asked (its API reads
  // would otherwise add to the pacing); which of its questions are new is decided once this one is done.
  const source: AsyncIterable<readonly AuditWorkload[]> = Array.isArray(workloads)
    ? (async function* () {
        yield workloads as readonly AuditWorkload[]
      })()
    : (workloads as AsyncIterable<readonly AuditWorkload[]>)
  const batches = source[Symbol.asyncIterator]()
  const readNext = async (): Promise<Read | undefined> => {
    const next = await batches.next()
    return next.done === true ? undefined : await read(next.value)
  }
  let upcoming = readNext()
  for (;;) {
    const current = await upcoming
    if (current === undefined || options.signal.aborted) break
    upcoming = readNext()
    // Its failure (a page that cannot be listed) is thrown when it is awaited.
    upcoming.catch(() => undefined)
    await batch(current)
  }
  return { uses, questions: groups.results(), requests }
}

function deadline(options: PassOptions): AbortSignal {
  // Room for the API reads before the image and a tag listing after a missing tag, as check gives.
  const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs * 3)])
  setMaxListeners(0, signal)
  return signal
}

/**
 * What a question's uses ask at its turn: the first that still asks something (serve reads its
 * workload again; one deleted or changed since the plan gives way to the next). Undefined when
 * none does: nothing is sent.
 */
async function askOf(
  tasks: readonly Task[],
  options: PassOptions,
): Promise<{ ref: ImageReference; credentials: readonly Credential[]; namespace: string } | undefined> {
  for (const task of tasks) {
    const workload = options.current === undefined ? task.workload : options.current(task.workload)
    const whole = workload === undefined ? undefined : subjectOf(workload, task)
    const use = whole?.images.find((u) => u.field === task.use.field && u.image === task.use.image)
    if (workload === undefined || whole === undefined || use === undefined) continue
    const prepared =
      task.prepared ?? (await prepareAssessment(task.group.options, { ...whole, images: [use] }, deadline(options)))
    if (prepared.mode === 'exempt' || prepared.mode === 'off') continue
    const plan = prepared.plans.get(use.image)
    if (plan?.kind === 'ask') return { ref: plan.ref, credentials: plan.credentials, namespace: workload.namespace }
  }
  return undefined
}

/**
 * The workload's container as it is when its question's turn comes (serve: read again, so a
 * secret changed since the plan is used; a changed image is judged from the next pass on, as a
 * new one), judged with the pass's answers.
 */
async function judged(
  task: Task,
  options: PassOptions,
): Promise<{ workload: AuditWorkload; subject: PodSubject; found: Assessment } | undefined> {
  const workload = options.current === undefined ? task.workload : options.current(task.workload)
  if (workload === undefined) return undefined
  const whole = subjectOf(workload, task)
  const use = whole?.images.find((u) => u.field === task.use.field && u.image === task.use.image)
  if (whole === undefined || use === undefined) return undefined
  const signal = deadline(options)
  const subject = { ...whole, images: [use] }
  const prepared = task.prepared ?? (await prepareAssessment(task.group.options, subject, signal))
  const checker: ImageChecker = task.group.answers
  return {
    workload,
    subject,
    found: await completeAssessment({ ...task.group.options, checker }, prepared, subject, signal),
  }
}

/** What a task judges: the workload's pod spec, or for a pinned pod's tag, the same pod at its tags. */
function subjectOf(workload: AuditWorkload, task: Task): PodSubject | undefined {
  return task.tag === true ? workload.pinnedTags : workload.subject
}

/** The tag's answer against the digest the pod was pinned to: moved when it names another manifest. */
function tagMoved(workload: AuditWorkload, found: Assessment): TagMoved | undefined {
  if (found.mode === 'exempt' || found.mode === 'off') return undefined
  const o = found.outcomes[0]
  if (o === undefined || o.kind !== 'checked' || o.result.code !== 'Exists') return undefined
  const pinned = workload.subject.images.find((u) => u.field === o.use.field)
  if (pinned === undefined || pinned.image.endsWith(`@${o.result.digest}`)) return undefined
  return {
    workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name, uid: workload.uid },
    container: o.use.container,
    field: o.use.field,
    pinned: pinned.image,
    tag: o.use.image,
    now: o.result.digest,
  }
}

/** The answer for questions a pass did not reach: no request is made. */
function unreached(host: string, paused: boolean, until: number, clock: PassClock): CheckResult {
  return paused
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
      }
}
