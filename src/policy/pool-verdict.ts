/**
 * The verdict for a subject judged on several node pools. The pod runs where the scheduler puts
 * it, so it is denied only when it would fail on every pool it can land on; when it would fail on
 * some, it is allowed and the warning names those pools and the ones where it would start. Pools
 * that reach the same outcomes are one entry.
 */
import { decide, type DecideContext, type OnRegistryError } from './decide.js'
import { groupOutcomes, groupWarning } from './messages.js'
import type { Mode } from './namespace-mode.js'
import { pullability, reasonCode, type ImageOutcome } from './outcome.js'
import type { PoolOutcomes } from './across-pools.js'
import type { Verdict } from './subject.js'

/** Pools with the same outcomes, in the order first met. */
interface PoolGroup {
  pools: string[]
  outcomes: ImageOutcome[]
  /** `fails`: some image will not pull there; `unknown`: some could not be verified; `pulls`: all pull. */
  status: 'pulls' | 'unknown' | 'fails'
}

export function decideAcrossPools(
  judged: readonly PoolOutcomes[],
  mode: Mode,
  onRegistryError: OnRegistryError,
  ctx: DecideContext,
): Verdict {
  const groups = groupPools(judged)
  if (groups.length === 1) {
    const only = groups[0]!
    const verdict = decide(only.outcomes, mode, onRegistryError, ctx)
    if (!verdict.allowed && judged.length > 1)
      verdict.message = `${verdict.message}\n(The same on every node pool it can land on: ${only.pools.join(', ')}.)`
    return verdict
  }
  const pulls = groups.filter((g) => g.status === 'pulls')
  const unknown = groups.filter((g) => g.status === 'unknown')
  const fails = groups.filter((g) => g.status === 'fails')
  if (pulls.length > 0) {
    // It starts where it lands on these: allowed, with the pools where it would not.
    const verdict = decide(pulls[0]!.outcomes, mode, onRegistryError, ctx)
    const good = pulls.flatMap((g) => g.pools)
    for (const g of [...fails, ...unknown])
      verdict.warnings.push(...poolWarnings(g, ctx, `; it pulls on ${pools(good)}`))
    return verdict
  }
  if (unknown.length > 0) {
    // Nowhere certain: --on-registry-error decides, as for one pool.
    const verdict = decide(unknown[0]!.outcomes, mode, onRegistryError, ctx)
    const others = [...unknown.slice(1), ...fails]
    if (verdict.allowed) for (const g of others) verdict.warnings.push(...poolWarnings(g, ctx, ''))
    else verdict.message = `${verdict.message}\n${sections(others, mode, onRegistryError, ctx)}`.trimEnd()
    return verdict
  }
  if (mode === 'warn') {
    return {
      allowed: true,
      message: undefined,
      warnings: fails.flatMap((g) => poolWarnings(g, ctx, ' (warn mode: allowed)')),
    }
  }
  const names = fails.flatMap((g) => g.pools)
  return {
    allowed: false,
    message: `pullguard refused ${ctx.object}: it cannot start on any node pool it can land on (${names.join(', ')}).\n${sections(fails, mode, onRegistryError, ctx)}`,
    warnings: [],
  }
}

/**
 * For a report of one line per image (`check`): the pools' outcomes the verdict rests on (where
 * it starts, else where it is not verified, else the first pools where it fails), and one warning
 * per cause on every other pool.
 */
export function acrossPoolsView(
  judged: readonly PoolOutcomes[],
  target: DecideContext['target'],
): { outcomes: ImageOutcome[]; warnings: string[] } {
  const groups = groupPools(judged)
  const ctx = { object: '', target }
  const chosen = groups.find((g) => g.status === 'pulls') ?? groups.find((g) => g.status === 'unknown') ?? groups[0]!
  const tail = chosen.status === 'pulls' ? `; it pulls on ${pools(chosen.pools)}` : ''
  const warnings = groups.filter((g) => g !== chosen && g.status !== 'pulls').flatMap((g) => poolWarnings(g, ctx, tail))
  return { outcomes: chosen.outcomes, warnings }
}

function groupPools(judged: readonly PoolOutcomes[]): PoolGroup[] {
  const groups = new Map<string, PoolGroup>()
  for (const j of judged) {
    const key = j.outcomes.map(signature).join('\u0001')
    const g = groups.get(key)
    if (g !== undefined) g.pools.push(j.pool)
    else groups.set(key, { pools: [j.pool], outcomes: j.outcomes, status: poolStatus(j.outcomes) })
  }
  return [...groups.values()]
}

/** What makes two pools' outcomes for one image read differently. */
function signature(o: ImageOutcome): string {
  // The hosts asked (mirrors) are named in the message: pools asking others read differently.
  const extra =
    o.kind === 'checked'
      ? [o.schema1?.runtimes.join(','), o.neverPull?.kind, o.notOnNode, o.result.asked?.join(',')]
      : []
  return [pullability(o), reasonCode(o), ...extra].join('\u0000')
}

/** Whether a pod would start on a pool with these outcomes: `pulls`, `unknown` (not verified) or `fails`. */
export function poolStatus(outcomes: readonly ImageOutcome[]): PoolGroup['status'] {
  const p = outcomes.map(pullability)
  return p.includes('not-pullable') ? 'fails' : p.includes('unknown') ? 'unknown' : 'pulls'
}

function pools(names: readonly string[]): string {
  return `node pool${names.length === 1 ? '' : 's'} ${names.join(', ')}`
}

/** One warning per cause on those pools. */
function poolWarnings(g: PoolGroup, ctx: DecideContext, tail: string): string[] {
  const broken = g.outcomes.filter((o) => pullability(o) !== 'pullable')
  return groupOutcomes(broken, ctx.target).map((group) => groupWarning(group, ` on ${pools(g.pools)}${tail}`))
}

/** A denial's entries, pool group by pool group. */
function sections(
  groups: readonly PoolGroup[],
  mode: Mode,
  onRegistryError: OnRegistryError,
  ctx: DecideContext,
): string {
  return groups
    .map((g) => {
      const v = decide(g.outcomes, mode, onRegistryError, ctx)
      const lines = (v.message ?? '').split('\n').slice(1)
      return `On ${pools(g.pools)}:\n${lines.join('\n')}`
    })
    .join('\n')
}
