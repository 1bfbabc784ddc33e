/**
 * The verdict for a review, as a pure function of what was found about each image, the mode,
 * --on-registry-error and what the fixes need to know about the object.
 */
import type { FixTarget } from './fixes.js'
import type { Mode } from './namespace-mode.js'
import { explainGroup, groupOutcomes, groupWarning, notes } from './messages.js'
import { pullability, type ImageOutcome } from './outcome.js'
import type { Verdict } from './subject.js'

/** `--on-registry-error`: what an image the registry gave no answer for gets. */
export type OnRegistryError = 'allow' | 'deny'

/**
 * A denial a person can read in a terminal: at most this many entries (each one cause and its
 * fix, for every container it applies to); the decision log has every image with its fix.
 */
export const MAX_MESSAGE_ENTRIES = 10

export interface DecideContext {
  /** `pod team-a/web-x2x9q`, `deployment team-b/api`. */
  object: string
  /** Needed when some image is not pullable. */
  target: FixTarget | undefined
}

export function decide(
  outcomes: readonly ImageOutcome[],
  mode: Mode,
  onRegistryError: OnRegistryError,
  ctx: DecideContext,
): Verdict {
  const broken = outcomes.filter((o) => pullability(o) === 'not-pullable')
  const unknown = outcomes.filter((o) => pullability(o) === 'unknown')
  const denyUnknown = onRegistryError === 'deny'
  // Things worth knowing whatever the verdict: exemptions, platforms only some nodes can pull.
  const warnings = outcomes.flatMap(notes)
  if (broken.length + unknown.length === 0) return { allowed: true, message: undefined, warnings }
  const target = ctx.target
  if (target === undefined) throw new Error('decide: a fix target is needed when an image is not pullable')

  if (mode === 'warn') {
    for (const g of groupOutcomes([...broken, ...unknown], target))
      warnings.push(groupWarning(g, ' (warn mode: allowed)'))
    return { allowed: true, message: undefined, warnings }
  }
  const refused = denyUnknown ? [...broken, ...unknown] : broken
  if (!denyUnknown)
    for (const g of groupOutcomes(unknown, target))
      warnings.push(groupWarning(g, '; allowed by --on-registry-error=allow'))
  if (refused.length === 0) return { allowed: true, message: undefined, warnings }

  const groups = groupOutcomes(refused, target)
  const lines = groups
    .slice(0, MAX_MESSAGE_ENTRIES)
    .map((g) => '- ' + explainGroup(g) + (g.pullability === 'unknown' ? ' Denied by --on-registry-error=deny.' : ''))
  if (groups.length > MAX_MESSAGE_ENTRIES) {
    const rest = groups.slice(MAX_MESSAGE_ENTRIES).reduce((n, g) => n + g.outcomes.length, 0)
    lines.push(`- … and ${plural(rest, 'more image')} (each with its fix in pullguard's decision log)`)
  }
  const parts: string[] = []
  if (broken.length > 0) parts.push(`${broken.length} of ${plural(outcomes.length, 'image')} cannot be pulled`)
  if (denyUnknown && unknown.length > 0)
    parts.push(`${unknown.length} of ${plural(outcomes.length, 'image')} could not be verified`)
  const message = `pullguard refused ${ctx.object}: ${parts.join(', ')}.\n${lines.join('\n')}`
  return { allowed: false, message, warnings }
}

/**
 * The verdict when judging the object failed before any image could be checked (an internal
 * error): like an image the registry gave no answer for, --on-registry-error decides.
 */
export function decideUnchecked(object: string, onRegistryError: OnRegistryError): Verdict {
  const text = `pullguard could not check the images of ${object} (internal error)`
  return onRegistryError === 'deny'
    ? { allowed: false, message: `${text}; denied by --on-registry-error=deny.`, warnings: [] }
    : { allowed: true, message: undefined, warnings: [`${text}; allowed by --on-registry-error=allow`] }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
