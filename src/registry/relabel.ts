/**
 * An answer earned with one list of credentials, told to a caller whose list holds the same values
 * in the same order (a pull secret copied into another namespace, the nodes' own credentials): the
 * registry saw the same requests, so the answer is the same, but it must name the caller's own
 * secrets, position for position, wherever it names one.
 */
import type { CheckResult } from './result.js'

export function relabelResult(result: CheckResult, from: readonly string[], to: readonly string[]): CheckResult {
  const swaps = new Map<string, string>()
  for (let i = 0; i < Math.min(from.length, to.length); i++) if (from[i] !== to[i]) swaps.set(from[i]!, to[i]!)
  if (swaps.size === 0) return result
  // One pass over each text, longest label first: a label written in is never rewritten again.
  const pattern = new RegExp(
    [...swaps.keys()]
      .sort((a, b) => b.length - a.length)
      .map((l) => l.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('|'),
    'g',
  )
  const swap = (text: string): string => text.replace(pattern, (label) => swaps.get(label)!)
  const out: CheckResult = {
    ...result,
    attempts: result.attempts.map((a) => ({ ...a, credential: swap(a.credential), detail: swap(a.detail) })),
  }
  if (out.code === 'Exists') out.decidedBy = swap(out.decidedBy)
  else out.detail = swap(out.detail)
  return out
}
