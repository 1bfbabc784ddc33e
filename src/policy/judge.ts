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
import type { OnRegistryError } from './modes.js'
import type { KeyringEntry } from '../credentials/keyring.js'
import { loadPullKeyring } from '../credentials/pull-secrets.js'
import type { SecretSource, ServiceAccountSource } from '../credentials/sources.js'
import { tryParseReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import type { Platform } from '../registry/index.js'
import { decide } from './decide.js'
import { secretProblemsWarning } from './messages.js'
import type { ImageExemptions } from './exemptions.js'
import type { NamespaceModes } from './namespace-mode.js'
import { pullability, reasonCode, type ImageOutcome } from './outcome.js'
import { judgePlatforms, podPlatforms } from './platforms.js'
import { pullSecretNames } from './pull-secret-names.js'
import type { ImageUse, Judge, ReviewSubject, Verdict } from './subject.js'
import { suggestTags } from './tag-suggestions.js'

export interface JudgeOptions {
  checker: ImageChecker
  secrets: SecretSource
  serviceAccounts: ServiceAccountSource
  modes: NamespaceModes
  onRegistryError: OnRegistryError
  /** --timeout: the whole review's budget. */
  timeoutMs: number
  exemptNamespaces?: ReadonlySet<string>
  exemptImages?: ImageExemptions
  /** The nodes' own credentials (--node-docker-config), tried after the pod's. */
  nodeCredentials?: { entries(): readonly KeyringEntry[] }
  /** The cluster's platforms; an empty list means unknown (no platform check). */
  clusterPlatforms?: { platforms(signal?: AbortSignal): Promise<readonly Platform[]> }
  logger: Logger
  clock?: Clock
  /** Told about every decision, for metrics. Labels are bounded: verdict, mode, reason code. */
  onDecision?: (d: DecisionSummary) => void
}

export interface DecisionSummary {
  verdict: 'allowed' | 'allowed-with-warnings' | 'denied'
  mode: 'enforce' | 'warn' | 'off' | 'exempt'
  /** The reason code that decided: the first image that cannot be pulled, else the first unverified, else Pullable. */
  reason: string
  seconds: number
}

/** Time kept back from --timeout to build, log and send the answer. */
export function decisionBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(500, Math.floor(timeoutMs / 10))
}

export function createJudge(options: JudgeOptions): Judge {
  const judge = judgeWith(options)
  // A bug must not turn into a 500 (the API server would apply failurePolicy blindly): treat it
  // like a registry that gave no answer, and say so.
  return async (subject) => {
    try {
      return await judge(subject)
    } catch (err) {
      options.logger.error({ err, uid: subject.uid }, 'internal error while judging; applying --on-registry-error')
      options.onDecision?.({ verdict: options.onRegistryError === 'deny' ? 'denied' : 'allowed-with-warnings', mode: 'enforce', reason: 'InternalError', seconds: 0 })
      const text = `pullguard could not check the images of ${subject.kind.toLowerCase()} ${subject.namespace}/${subject.name} (internal error)`
      return options.onRegistryError === 'deny'
        ? { allowed: false, message: `${text}; denied by --on-registry-error=deny.`, warnings: [] }
        : { allowed: true, message: undefined, warnings: [`${text}; allowed by --on-registry-error=allow`] }
    }
  }
}

function judgeWith(options: JudgeOptions): Judge {
  const clock = options.clock ?? systemClock
  return async (subject) => {
    const started = clock.now()
    const log = options.logger.child({ uid: subject.uid, namespace: subject.namespace, kind: subject.kind, name: subject.name, operation: subject.operation, dryRun: subject.dryRun })
    const report = (verdict: Verdict, mode: DecisionSummary['mode'], reason: string): Verdict => {
      options.onDecision?.({ verdict: verdict.allowed ? (verdict.warnings.length > 0 ? 'allowed-with-warnings' : 'allowed') : 'denied', mode, reason, seconds: (clock.now() - started) / 1000 })
      return verdict
    }
    if (options.exemptNamespaces?.has(subject.namespace) === true) {
      log.info({ verdict: 'allowed', exempt: '--exempt-namespace', images: subject.images.length, durationMs: clock.now() - started }, 'decision')
      return report({ allowed: true, message: undefined, warnings: [`namespace ${subject.namespace} is exempt by --exempt-namespace: images not checked`] }, 'exempt', 'ExemptNamespace')
    }
    const signal = AbortSignal.timeout(decisionBudgetMs(options.timeoutMs))
    // Every waiter (images, tokens, API reads) listens on this one signal.
    setMaxListeners(0, signal)
    const ns = await options.modes.modeFor(subject.namespace, signal)
    if (ns.note !== undefined) log.warn({ note: ns.note }, 'namespace mode fell back to the default')
    if (ns.mode === 'off') {
      log.info({ mode: 'off', verdict: 'allowed', images: subject.images.length, durationMs: clock.now() - started }, 'decision')
      return report({ allowed: true, message: undefined, warnings: [] }, 'off', 'ModeOff')
    }

    const [secretNames, cluster] = await Promise.all([
      pullSecretNames(subject, options.serviceAccounts, signal),
      options.clusterPlatforms?.platforms(signal) ?? Promise.resolve([]),
    ])
    const keyring = await loadPullKeyring(options.secrets, subject.namespace, secretNames.names, { signal, extraEntries: options.nodeCredentials?.entries() ?? [] })
    const incomplete = keyring.incomplete || secretNames.incomplete
    const candidates = podPlatforms(cluster, subject.scheduling)

    const byImage = await mapLimit(
      distinct(subject.images),
      MAX_PARALLEL_IMAGES,
      async (use): Promise<ImageOutcome> => {
        const parsed = tryParseReference(use.image)
        if (!parsed.ok) return { kind: 'invalid', use, problem: parsed.error.message }
        const exempt = options.exemptImages?.match(parsed.ref)
        if (exempt !== undefined) return { kind: 'exempt', use, pattern: exempt }
        if (keyring.fatal !== undefined) return { kind: 'broken-secret', use, problem: keyring.fatal }
        const credentials = keyring.credentialsFor(parsed.ref.name)
        const result = await options.checker.check(parsed.ref, credentials, subject.namespace, signal)
        const outcome: ImageOutcome = { kind: 'checked', use, ref: parsed.ref, result, tried: credentials.map((c) => c.label), incomplete }
        if (result.code === 'Exists' && result.platforms !== undefined && candidates.length > 0) {
          outcome.platform = judgePlatforms(result.platforms, candidates)
        }
        if (result.code === 'TagNotFound' && parsed.ref.tag !== undefined) {
          const tags = await options.checker.tags(parsed.ref, credentials, subject.namespace, signal)
          if (tags !== undefined) outcome.suggestions = suggestTags(parsed.ref.tag, tags)
        }
        return outcome
      },
    )
    // One outcome per container: a person looks for their container's name in the message.
    const outcomes = subject.images.map((use) => ({ ...byImage.get(use.image)!, use }))

    const object = `${subject.kind.toLowerCase()} ${subject.namespace}/${subject.name}`
    const verdict = decide(outcomes, ns.mode, options.onRegistryError, { namespace: subject.namespace, object })
    // Image warnings first: kubectl shows only so many, and they are what the person came for.
    if (secretNames.warning !== undefined) verdict.warnings.push(secretNames.warning)
    const skipped = secretProblemsWarning(keyring.problems)
    if (skipped !== undefined) verdict.warnings.push(skipped)
    log.info(
      {
        mode: ns.mode,
        verdict: verdict.allowed ? (verdict.warnings.length > 0 ? 'allowed-with-warnings' : 'allowed') : 'denied',
        pullSecrets: { source: secretNames.source, names: secretNames.names },
        images: outcomes.map((o) => ({
          image: o.use.image,
          container: o.use.container,
          reason: reasonCode(o),
          ...(o.kind === 'exempt' ? { exempt: o.pattern } : {}),
          ...(o.kind === 'checked' && o.result.code === 'Exists' ? { decidedBy: o.result.decidedBy } : {}),
        })),
        secretProblems: keyring.problems.map((p) => ({ secret: p.secret, kind: p.kind })),
        durationMs: clock.now() - started,
      },
      'decision',
    )
    return report(verdict, ns.mode, primaryReason(outcomes))
  }
}

function primaryReason(outcomes: readonly ImageOutcome[]): string {
  const first = outcomes.find((o) => pullability(o) === 'not-pullable') ?? outcomes.find((o) => pullability(o) === 'unknown')
  if (first !== undefined) return reasonCode(first)
  return outcomes.length > 0 && outcomes.every((o) => o.kind === 'exempt') ? 'Exempt' : 'Pullable'
}

/**
 * Images checked at once in one review. A pod with hundreds of images (generated manifests) must
 * not open hundreds of registry requests at once; the cache and single-flight make repeats cheap.
 */
const MAX_PARALLEL_IMAGES = 16

/** One check per image string: the same image in two containers is one question. */
function distinct(uses: readonly ImageUse[]): ImageUse[] {
  const seen = new Set<string>()
  return uses.filter((u) => !seen.has(u.image) && (seen.add(u.image), true))
}

async function mapLimit(uses: readonly ImageUse[], limit: number, work: (use: ImageUse) => Promise<ImageOutcome>): Promise<Map<string, ImageOutcome>> {
  const out = new Map<string, ImageOutcome>()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < uses.length) {
      const use = uses[next++]!
      out.set(use.image, await work(use))
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, uses.length) }, worker))
  return out
}

export type { ReviewSubject }
