/**
 * What the audit says of one container of one workload: its result, the webhook's reason code,
 * the problem as a denial words it and the fix as `diagnose` prints it for the live workload.
 */
import type { Assessment, AssessOptions } from '../policy/assess.js'
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
): Promise<(AuditFinding & { outcome: ImageOutcome }) | undefined> {
  // Exempt namespaces and namespaces in mode `off` are not audited.
  if (found.mode === 'exempt' || found.mode === 'off') return undefined
  const outcome = found.outcomes[0]
  if (outcome === undefined || outcome.kind === 'exempt') return undefined
  const use = outcome.use
  const p = pullability(outcome)
  const result: AuditResult = p === 'unknown' ? 'unverified' : p
  let message = ''
  let fix: string[] = []
  if (p !== 'pullable') {
    const target: FixTarget = {
      ...(await admissionFixTarget(subject, found, assess.serviceAccounts, signal)),
      voice: 'diagnose',
      resource: resourceOf(workload.kind),
      patchPath: patchPath(workload.kind),
    }
    const group = groupOutcomes([outcome], target)[0]!
    message = groupWarning(group, '')
    fix = group.fix === undefined ? [] : fixLines(group.fix)
  }
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
    outcome,
  }
}
