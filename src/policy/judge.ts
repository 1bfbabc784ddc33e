/**
 * The decision for one review: which mode applies, which credentials the kubelet would use, what
 * each image's registry says, and what that means for the request. Receives its collaborators,
 * so it runs the same under the webhook, in tests, and (later) in the CLI.
 *
 * Time: everything (namespace, secrets, registries) runs under one deadline a little shorter than
 * --timeout, so the answer leaves before the API server gives up on us; whatever has not answered
 * by then counts as a registry error and --on-registry-error decides.
 */
import type { Logger } from 'pino'
import { systemClock, type Clock } from '../cache/ttl-cache.js'
import type { Mode, OnRegistryError } from '../config.js'
import { loadPullKeyring } from '../credentials/pull-secrets.js'
import type { SecretSource } from '../credentials/sources.js'
import { tryParseReference } from '../reference/index.js'
import type { ImageChecker } from '../registry/cached-checker.js'
import { explain, warning, type MessageContext } from './messages.js'
import type { NamespaceModes } from './namespace-mode.js'
import { pullability, reasonCode, type ImageOutcome } from './outcome.js'
import type { ImageUse, Judge, ReviewSubject, Verdict } from './subject.js'

export interface JudgeOptions {
  checker: ImageChecker
  secrets: SecretSource
  modes: NamespaceModes
  onRegistryError: OnRegistryError
  /** --timeout: the whole review's budget. */
  timeoutMs: number
  logger: Logger
  clock?: Clock
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
    const signal = AbortSignal.timeout(decisionBudgetMs(options.timeoutMs))
    const ns = await options.modes.modeFor(subject.namespace, signal)
    const log = options.logger.child({ uid: subject.uid, namespace: subject.namespace, kind: subject.kind, name: subject.name, operation: subject.operation, dryRun: subject.dryRun })
    if (ns.note !== undefined) log.warn({ note: ns.note }, 'namespace mode fell back to the default')
    if (ns.mode === 'off') {
      log.info({ mode: 'off', verdict: 'allowed', images: subject.images.length, durationMs: clock.now() - started }, 'decision')
      return { allowed: true, message: undefined, warnings: [] }
    }

    const keyring = await loadPullKeyring(options.secrets, subject.namespace, subject.pullSecrets, { signal })
    const outcomes = await Promise.all(
      distinct(subject.images).map(async (use): Promise<ImageOutcome> => {
        const parsed = tryParseReference(use.image)
        if (!parsed.ok) return { kind: 'invalid', use, problem: parsed.error.message }
        if (keyring.fatal !== undefined) return { kind: 'broken-secret', use, problem: keyring.fatal }
        const credentials = keyring.credentialsFor(parsed.ref.name)
        const result = await options.checker.check(parsed.ref, credentials, subject.namespace, signal)
        return { kind: 'checked', use, ref: parsed.ref, result, tried: credentials.map((c) => c.label), incomplete: keyring.incomplete }
      }),
    )

    const verdict = decide(outcomes, ns.mode, options.onRegistryError, { namespace: subject.namespace, object: `${subject.kind.toLowerCase()} ${subject.namespace}/${subject.name}` })
    verdict.warnings.unshift(...keyring.problems.map((p) => `pull secret "${p.secret}": ${p.detail}`))
    log.info(
      {
        mode: ns.mode,
        verdict: verdict.allowed ? (verdict.warnings.length > 0 ? 'allowed-with-warnings' : 'allowed') : 'denied',
        images: outcomes.map((o) => ({ image: o.use.image, container: o.use.container, reason: reasonCode(o), ...(o.kind === 'checked' && o.result.code === 'Exists' ? { decidedBy: o.result.decidedBy } : {}) })),
        secretProblems: keyring.problems.map((p) => ({ secret: p.secret, kind: p.kind })),
        durationMs: clock.now() - started,
      },
      'decision',
    )
    return verdict
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** One check per image string: the same image in two containers is one question. */
function distinct(uses: readonly ImageUse[]): ImageUse[] {
  const seen = new Set<string>()
  return uses.filter((u) => !seen.has(u.image) && (seen.add(u.image), true))
}

export function decide(outcomes: readonly ImageOutcome[], mode: Mode, onRegistryError: OnRegistryError, ctx: MessageContext): Verdict {
  const broken = outcomes.filter((o) => pullability(o) === 'not-pullable')
  const unknown = outcomes.filter((o) => pullability(o) === 'unknown')
  const denyUnknown = onRegistryError === 'deny'
  const warnings: string[] = []

  if (mode === 'warn') {
    for (const o of broken) warnings.push(warning(o, ' (warn mode: allowed)'))
    for (const o of unknown) warnings.push(warning(o, ' (warn mode: allowed)'))
    return { allowed: true, message: undefined, warnings }
  }
  const refused = denyUnknown ? [...broken, ...unknown] : broken
  if (!denyUnknown) for (const o of unknown) warnings.push(warning(o, '; allowed by --on-registry-error=allow'))
  if (refused.length === 0) return { allowed: true, message: undefined, warnings }

  const lines = refused.map((o) => '- ' + explain(o, ctx) + (pullability(o) === 'unknown' ? ' Denied by --on-registry-error=deny.' : ''))
  const parts: string[] = []
  if (broken.length > 0) parts.push(`${broken.length} of ${plural(outcomes.length, 'image')} cannot be pulled`)
  if (denyUnknown && unknown.length > 0) parts.push(`${unknown.length} of ${plural(outcomes.length, 'image')} could not be verified`)
  const message = `pullguard refused ${ctx.object}: ${parts.join(', ')}.\n${lines.join('\n')}`
  return { allowed: false, message, warnings }
}
