/** kubectl's last-applied copy of the whole object is often the largest thing in it, and nobody's input. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'

/** An object's string annotations, without the last-applied copy. */
export function annotationsOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (typeof raw !== 'object' || raw === null) return out
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string' && k !== LAST_APPLIED) out[k] = v
  return out
}
