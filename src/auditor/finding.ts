/**
 * What the audit says of one container of one workload: its result, the webhook's reason code,
 * the problem as a denial words it and the fix as `diagnose` prints it for the live workload.
 */
import type { PoolOutcomes } from '../policy/across-pools.js'
import type { Assessment, AssessOptions } from '../policy/assess.js'
import { acrossPoolsView, poolStatus } from '../policy/pool-verdict.js'
import { admissionFixTarget } from '../policy/fix-target.js'
import { fixLines, type FixTarget } from '../policy/fixes.js'
import { groupOutcomes, groupWarning, problem } from '../policy/messages.js'
import { pullability, reasonCode, type ImageOutcome } from '../policy/outcome.js'
import type { PodSubject } from '../policy/subject.js'
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
  /**
   * With --node-pools, when the pools the workload's pods can land on differ: where the container
   * pulls, where it would not, where it could not be verified. `result` is where it lands best;
   * a workload that pulls on some pools only says in `message` where it would not.
   */
  pools?: { pulls: string[]; fails: string[]; unverified: string[] }
}

/**
 * The finding for `subject`'s one image (the workload's pod spec with that container only), from
 * its assessment; undefined where the audit says nothing (an exempt namespace, image or mode `off`).
 */
export async function findingFor(
  workload: AuditWorkload,
  subject: PodSubject,
  found: Assessment,
  assess: Pick<AssessOptions, 'serviceAccounts'>,
  signal: AbortSignal,
  /** With node pools: the container's outcome on each pool it can land on. */
  pools?: readonly PoolOutcomes[],
): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> {
  // Exempt namespaces and namespaces in mode `off` are not audited.
  if (found.mode === 'exempt' || found.mode === 'off') return undefined
  const split = pools !== undefined && pools.length > 1 ? pools : undefined
  const every = split === undefined ? found.outcomes : split.flatMap((j) => j.outcomes)
  if (found.outcomes[0] === undefined || found.outcomes[0].kind === 'exempt') return undefined
  const target: FixTarget | undefined = every.every((o) => pullability(o) === 'pullable')
    ? undefined
    : {
        ...(await admissionFixTarget(subject, { ...found, outcomes: every }, assess.serviceAccounts, signal)),
        voice: 'diagnose',
        resource: resourceOf(workload.kind),
        patchPath: patchPath(workload.kind),
      }
  const view = split === undefined ? { outcomes: found.outcomes, warnings: [] } : acrossPoolsView(split, target)
  const outcome = view.outcomes[0]!
  const use = outcome.use
  const p = pullability(outcome)
  const result: AuditResult = p === 'unknown' ? 'unverified' : p
  let message = ''
  let fix: string[] = []
  if (p !== 'pullable') {
    const group = groupOutcomes([outcome], target)[0]!
    message = groupWarning(
      group,
      split === undefined ? '' : ` on every node pool it can land on (${split.map((j) => j.pool).join(', ')})`,
    )
    fix = group.fix === undefined ? [] : fixLines(group.fix)
  } else if (view.warnings.length > 0) message = view.warnings.join(' | ')
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
    ...(split === undefined ? {} : { pools: poolsField(split) }),
    outcome,
  }
}

function poolsField(judged: readonly PoolOutcomes[]): NonNullable<AuditFinding['pools']> {
  const out: NonNullable<AuditFinding['pools']> = { pulls: [], fails: [], unverified: [] }
  for (const j of judged) {
    const s = poolStatus(j.outcomes)
    out[s === 'pulls' ? 'pulls' : s === 'fails' ? 'fails' : 'unverified'].push(j.pool)
  }
  return out
}
