/**
 * The decision for one review: which mode applies, which credentials the kubelet would use, what
 * each image's registry says, and what that means for the request. Receives its collaborators,
 * so it runs the same under the webhook, in tests, and in the CLI.
 *
 * Time: everything (namespace, service account, secrets, registries) runs under one deadline a
 * little shorter than --timeout, so the answer leaves before the API server gives up on us;
 * whatever has not answered by then counts as a registry error and --on-registry-error decides.
 */
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import { systemClock, type Clock } from '../cache/ttl-cache.js'
import { assessAcrossPools, type PooledAssessment, type PooledOptions } from './across-pools.js'
import { DEFAULT_POOL } from '../pools/pool.js'
import type { AssessmentMemo } from './assessment-memo.js'
import { decide, decideUnchecked } from './decide.js'
import { decideAcrossPools, poolStatus } from './pool-verdict.js'
import { admissionFixTarget } from './fix-target.js'
import { fixFor, fixLines, type FixTarget } from './fixes.js'
import { secretProblemsWarning } from './messages.js'
import type { OnRegistryError } from './decide.js'
import { pullability, reasonCode, type ImageOutcome } from './outcome.js'
import type { Judge, PodSubject, RequestFields, Verdict } from './subject.js'
import type { SignatureFinding } from './signature-check.js'

export interface JudgeOptions extends PooledOptions {
  onRegistryError: OnRegistryError
  /** --timeout: the whole review's budget. */
  timeoutMs: number
  logger: Logger
  clock?: Clock
  /** Reuses assessments of specs seen before while nothing they depend on changed (the webhook's warm path). */
  memo?: AssessmentMemo
  /** Told about every decision, for metrics. Labels are bounded: verdict, mode, reason code. */
  onDecision?: (d: DecisionSummary) => void
}

export interface DecisionSummary {
  verdict: VerdictLabel
  mode: 'enforce' | 'warn' | 'off' | 'exempt'
  /** The reason code that decided: the first image that cannot be pulled, else the first unverified, else Pullable. */
  reason: string
  seconds: number
}

/** A verdict as the decision log and the metrics name it. */
export type VerdictLabel = 'allowed' | 'allowed-with-warnings' | 'denied'

export function verdictLabel(verdict: Verdict): VerdictLabel {
  return verdict.allowed ? (verdict.warnings.length > 0 ? 'allowed-with-warnings' : 'allowed') : 'denied'
}

/** Time kept back from --timeout to build, log and send the answer. */
export function decisionBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(500, Math.floor(timeoutMs / 10))
}

export function createJudge(options: JudgeOptions): Judge {
  const judge = judgeWith(options)
  // A bug must not turn into a 500 (the API server would apply failurePolicy blindly): treat it
  // like a registry that gave no answer, and say so.
  return async (subject, request) => {
    try {
      return await judge(subject, request)
    } catch (err) {
      options.logger.error({ err, uid: request?.uid }, 'internal error while judging; applying --on-registry-error')
      const verdict = decideUnchecked(objectName(subject), options.onRegistryError)
      options.onDecision?.({ verdict: verdictLabel(verdict), mode: 'enforce', reason: 'InternalError', seconds: 0 })
      return verdict
    }
  }
}

/**
 * The pod's assessment: the memo's while nothing it depends on changed, else a new one under the
 * decision budget (kept for the next review of the same spec). The judge and the pinner share it,
 * so a pod pinned and then judged is assessed once.
 */
export async function assessOnce(
  options: Pick<JudgeOptions, 'memo' | 'timeoutMs'> & PooledOptions,
  subject: PodSubject,
): Promise<PooledAssessment> {
  const stamp = options.memo?.stamp(subject)
  let found = stamp === undefined ? undefined : options.memo!.get(stamp)
  if (found === undefined) {
    // A controller and a timer cleared at the end cost a fraction of AbortSignal.timeout, whose
    // timer lives until it fires; on the warm path nothing ever waits on it.
    const deadline = new AbortController()
    const timer = setTimeout(
      () => deadline.abort(new DOMException('the decision budget ran out', 'TimeoutError')),
      decisionBudgetMs(options.timeoutMs),
    )
    // Every waiter (images, tokens, API reads) listens on this one signal.
    setMaxListeners(0, deadline.signal)
    try {
      found = await assessAcrossPools(options, subject, deadline.signal)
    } finally {
      clearTimeout(timer)
    }
    if (stamp !== undefined) options.memo!.keep(stamp, found)
  }
  return found
}

function judgeWith(options: JudgeOptions): Judge {
  const clock = options.clock ?? systemClock
  return async (subject, request) => {
    const started = clock.now()
    // The review's fields go into each line's object: a child logger per review costs more than the one line it writes.
    const about = reviewFields(subject, request)
    const log = {
      info: (fields: object, msg: string) => options.logger.info({ ...about, ...fields }, msg),
      warn: (fields: object, msg: string) => options.logger.warn({ ...about, ...fields }, msg),
    }
    const report = (verdict: Verdict, mode: DecisionSummary['mode'], reason: string): Verdict => {
      options.onDecision?.({ verdict: verdictLabel(verdict), mode, reason, seconds: (clock.now() - started) / 1000 })
      return verdict
    }
    const found = await assessOnce(options, subject)
    if (found.mode === 'exempt') {
      log.info(
        {
          verdict: 'allowed',
          exempt: '--exempt-namespace',
          images: subject.images.length,
          durationMs: clock.now() - started,
        },
        'decision',
      )
      return report(
        {
          allowed: true,
          message: undefined,
          warnings: [`namespace ${subject.namespace} is exempt by --exempt-namespace: images not checked`],
        },
        'exempt',
        'ExemptNamespace',
      )
    }
    if (found.modeNote !== undefined) log.warn({ note: found.modeNote }, 'namespace mode fell back to the default')
    if (found.mode === 'off') {
      log.info(
        { mode: 'off', verdict: 'allowed', images: subject.images.length, durationMs: clock.now() - started },
        'decision',
      )
      return report({ allowed: true, message: undefined, warnings: [] }, 'off', 'ModeOff')
    }
    const { outcomes, secretNames } = found

    const object = objectName(subject)
    // Only a refusal or a warning needs a fix, and only a credential fix may read the service account.
    const left = Math.min(FIX_READ_MS, decisionBudgetMs(options.timeoutMs) - (clock.now() - started))
    const everyPool = found.pools === undefined ? outcomes : found.pools.judged.flatMap((j) => j.outcomes)
    const target = everyPool.every((o) => pullability(o) === 'pullable')
      ? undefined
      : await admissionFixTarget(
          subject,
          { ...found, outcomes: everyPool },
          left > 0 ? options.serviceAccounts : undefined,
          left > 0 ? AbortSignal.timeout(left) : undefined,
        )
    const verdict =
      found.pools !== undefined && found.pools.judged.length > 1
        ? decideAcrossPools(found.pools.judged, found.mode, options.onRegistryError, { object, target })
        : decide(outcomes, found.mode, options.onRegistryError, { object, target })
    // Image warnings first: kubectl shows only so many, and they are what the person came for.
    if (secretNames.warning !== undefined) verdict.warnings.push(secretNames.warning)
    const skipped = secretProblemsWarning(found.secretProblems)
    if (skipped !== undefined) verdict.warnings.push(skipped)
    options.logger.info(
      // One literal rather than spreading `about` into the fields: this line is written for every review.
      {
        uid: request?.uid,
        namespace: subject.namespace,
        kind: subject.kind,
        name: subject.name,
        operation: request?.operation,
        dryRun: request?.dryRun,
        mode: found.mode,
        verdict: verdictLabel(verdict),
        pullSecrets: { source: secretNames.source, names: secretNames.names },
        images: outcomes.map((o) => ({
          image: o.use.image,
          container: o.use.container,
          reason: reasonCode(o),
          // A pinned pod (a rollout whose tag moved runs what each pod was admitted with): its tag.
          ...pinnedField(subject, o),
          ...(o.kind === 'exempt' ? { exempt: o.pattern } : {}),
          ...(o.kind === 'checked' && o.result.code === 'Exists' ? { decidedBy: o.result.decidedBy } : {}),
          // With mirrors: which host answered, and which were asked (in the runtime's order).
          ...(o.kind === 'checked' && o.result.code === 'Exists' && o.result.answeredBy !== undefined
            ? { answeredBy: o.result.answeredBy }
            : {}),
          ...(o.kind === 'checked' && o.result.asked !== undefined ? { asked: o.result.asked } : {}),
          ...(o.kind === 'blocked'
            ? {
                blockedBy: {
                  file: o.file,
                  prefix: o.prefix,
                  ...(o.problem === undefined ? {} : { problem: o.problem }),
                },
              }
            : {}),
          // A short name on CRI-O nodes: the name it became, and how.
          ...(o.kind === 'checked' && o.shortName !== undefined
            ? {
                resolvedTo: o.ref.canonical,
                shortName: { via: o.shortName.via, origin: o.shortName.origin, tried: o.shortName.tried },
              }
            : {}),
          // Under the nodes' signature policy: the verdict, and the file and scope that set it.
          ...(o.kind === 'checked' && o.signature !== undefined
            ? { signature: signatureField(o.signature) }
            : o.kind === 'signature-refused'
              ? { signature: signatureField(o.finding) }
              : {}),
          ...(o.kind === 'short-name'
            ? {
                shortName:
                  o.resolution.kind === 'ambiguous'
                    ? { candidates: o.resolution.candidates.map((c) => c.canonical), origin: o.resolution.origin }
                    : { problem: o.resolution.problem },
              }
            : {}),
          ...(o.kind === 'checked' && o.providerFailures !== undefined
            ? {
                providerFailures: o.providerFailures.map((f) => ({
                  provider: f.provider,
                  code: f.code,
                  problem: f.problem,
                })),
              }
            : {}),
          // Plugins the kubelet would not run for the pod's account (pullable or not: a note either way).
          ...(o.kind === 'checked' && o.providerSkips !== undefined
            ? {
                providerSkips: o.providerSkips.map((s) =>
                  s.reason === 'NoServiceAccount'
                    ? { provider: s.provider, reason: s.reason }
                    : {
                        provider: s.provider,
                        reason: s.reason,
                        serviceAccount: `${s.namespace}/${s.serviceAccount}`,
                        missing: s.missing,
                      },
                ),
              }
            : {}),
          ...fixField(o, target),
        })),
        ...poolsField(found),
        secretProblems: found.secretProblems.map((p) => ({ secret: p.secret, kind: p.kind })),
        durationMs: clock.now() - started,
      },
      'decision',
    )
    return report(verdict, found.mode, primaryReason(outcomes))
  }
}

/** `pod team-a/web-x2x9q`, `deployment team-b/api`: the object as messages name it. */
/** What every log line about a review starts with: who asked about which object. */
export function reviewFields(subject: PodSubject, request: RequestFields | undefined): Record<string, unknown> {
  return {
    uid: request?.uid,
    namespace: subject.namespace,
    kind: subject.kind,
    name: subject.name,
    operation: request?.operation,
    dryRun: request?.dryRun,
  }
}

function objectName(subject: PodSubject): string {
  return `${subject.kind.toLowerCase()} ${subject.namespace}/${subject.name}`
}

/** At most this long (and never past the decision budget) for a service account read after the assessment: from the watched copy it takes no time. */
const FIX_READ_MS = 1000

function pinnedField(subject: PodSubject, o: ImageOutcome): { pinnedFrom?: string } {
  const key = `${o.use.field}.${o.use.kind === 'volume' ? 'reference' : 'image'}`
  const from = subject.pinnedFrom?.[key]
  return from === undefined ? {} : { pinnedFrom: from }
}

/** The fix of an image that will not pull, for the decision log (which has every image, the denial at most ten entries). */
function fixField(o: ImageOutcome, target: FixTarget | undefined): { fix?: string[] } {
  const fix = target === undefined ? undefined : fixFor(o, target)
  return fix === undefined ? {} : { fix: fixLines(fix) }
}

/**
 * With --node-pools: how the pools were chosen (`scheduled`, `bound`, `anywhere`) and, for each, its
 * runtimes, whether the pod would start there and the reason of each image.
 */
function poolsField(found: PooledAssessment): { pools?: object } {
  const pools = found.pools
  if (pools === undefined || (pools.judged.length === 1 && pools.judged[0]!.pool === DEFAULT_POOL)) return {}
  return {
    pools: {
      how: pools.how,
      judged: pools.judged.map((j) => ({
        pool: j.pool,
        runtimes: j.runtimes,
        starts: poolStatus(j.outcomes),
        reasons: j.outcomes.map(reasonCode),
      })),
    },
  }
}

function signatureField(f: SignatureFinding): Record<string, string> {
  return {
    verdict: f.verdict,
    file: f.file,
    scope: f.scope,
    ...(f.requirement === undefined ? {} : { requirement: f.requirement }),
  }
}

function primaryReason(outcomes: readonly ImageOutcome[]): string {
  const first =
    outcomes.find((o) => pullability(o) === 'not-pullable') ?? outcomes.find((o) => pullability(o) === 'unknown')
  if (first !== undefined) return reasonCode(first)
  return outcomes.length > 0 && outcomes.every((o) => o.kind === 'exempt') ? 'Exempt' : 'Pullable'
}

export type { PodSubject }
