/**
 * The verdict for a review, as a pure function of what was found about each image, the mode and
 * --on-registry-error.
 */
import type { Mode, OnRegistryError } from './modes.js'
import { explain, note, warning, type MessageContext } from './messages.js'
import { pullability, type ImageOutcome } from './outcome.js'
import type { Verdict } from './subject.js'

/** A denial a person can read in a terminal; the decision log has every image. */
export const MAX_MESSAGE_LINES = 10

export function decide(outcomes: readonly ImageOutcome[], mode: Mode, onRegistryError: OnRegistryError, ctx: MessageContext): Verdict {
  const broken = outcomes.filter((o) => pullability(o) === 'not-pullable')
  const unknown = outcomes.filter((o) => pullability(o) === 'unknown')
  const denyUnknown = onRegistryError === 'deny'
  // Things worth knowing whatever the verdict: exemptions, platforms only some nodes can pull.
  const warnings = outcomes.map(note).filter((n): n is string => n !== undefined)

  if (mode === 'warn') {
    for (const o of [...broken, ...unknown]) warnings.push(warning(o, ' (warn mode: allowed)'))
    return { allowed: true, message: undefined, warnings }
  }
  const refused = denyUnknown ? [...broken, ...unknown] : broken
  if (!denyUnknown) for (const o of unknown) warnings.push(warning(o, '; allowed by --on-registry-error=allow'))
  if (refused.length === 0) return { allowed: true, message: undefined, warnings }

  const lines = refused.slice(0, MAX_MESSAGE_LINES).map((o) => '- ' + explain(o, ctx) + (pullability(o) === 'unknown' ? ' Denied by --on-registry-error=deny.' : ''))
  if (refused.length > MAX_MESSAGE_LINES) lines.push(`- … and ${refused.length - MAX_MESSAGE_LINES} more (see pullguard's decision log)`)
  const parts: string[] = []
  if (broken.length > 0) parts.push(`${broken.length} of ${plural(outcomes.length, 'image')} cannot be pulled`)
  if (denyUnknown && unknown.length > 0) parts.push(`${unknown.length} of ${plural(outcomes.length, 'image')} could not be verified`)
  const message = `pullguard refused ${ctx.object}: ${parts.join(', ')}.\n${lines.join('\n')}`
  return { allowed: false, message, warnings }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
