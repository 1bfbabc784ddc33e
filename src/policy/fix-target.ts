/**
 * What a fix needs to know about the object under review (admission and `check`): its names, the
 * pull secrets its pods will use and what became of each, and its service account's list. Built
 * only when some image will not pull; reads the service account only when a credential fix
 * depends on it and the assessment did not read it already.
 */
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type { ServiceAccountSource } from '../kube/sources.js'
import type { Assessment } from './assess.js'
import { addsSecret, claimListedSecrets, type FixTarget, type SecretState } from './fixes.js'
import type { ImageOutcome } from './outcome.js'
import type { PodSubject } from './subject.js'

type Assessed = Extract<Assessment, { outcomes: ImageOutcome[] }>

/** Each name in `names` (once), with what loading it found. */
export function secretStates(
  names: readonly string[],
  loaded: ReadonlyArray<{ name: string; registries: string[] }>,
  problems: readonly SecretProblem[],
): SecretState[] {
  return [...new Set(names)].map((name): SecretState => {
    const ok = loaded.find((l) => l.name === name)
    if (ok !== undefined) return { name, state: 'found', registries: ok.registries }
    const problem = problems.find((p) => p.secret === name)
    if (problem === undefined) return { name, state: 'error', detail: 'not read' }
    return problem.type === undefined
      ? { name, state: problem.kind, detail: problem.detail }
      : { name, state: problem.kind, detail: problem.detail, type: problem.type }
  })
}

/** A credential refusal whose fix adds a secret, which may go through the service account. */
export function needsAccount(
  outcomes: readonly ImageOutcome[],
  secrets: readonly SecretState[],
  namespace: string,
): boolean {
  const claims = claimListedSecrets(outcomes, secrets, namespace)
  return outcomes.some((o) => addsSecret(o, secrets, namespace, claims))
}

export async function admissionFixTarget(
  subject: PodSubject,
  found: Assessed,
  accounts: ServiceAccountSource | undefined,
  signal: AbortSignal | undefined,
): Promise<FixTarget> {
  const name = subject.serviceAccountName ?? 'default'
  const secrets = secretStates(found.secretNames.names, found.secretsLoaded, found.secretProblems)
  let list: readonly string[] | undefined = found.secretNames.account?.imagePullSecrets
  let missing = false
  if (list === undefined && accounts !== undefined && needsAccount(found.outcomes, secrets, subject.namespace)) {
    const read = await accounts.getServiceAccount(subject.namespace, name, signal).catch(() => undefined)
    if (read?.kind === 'found') list = read.object.imagePullSecrets
    else if (read?.kind === 'missing') [list, missing] = [[], true]
  }
  const listed = subject.pullSecrets
  const fromServiceAccount =
    listed.length === 0 ? 'yes' : !subject.template && list !== undefined && sameList(listed, list) ? 'maybe' : 'no'
  return {
    voice: 'admission',
    namespace: subject.namespace,
    resource: subject.kind.toLowerCase(),
    name: subject.name,
    specField: subject.specField,
    patchPath: subject.specField.split('.'),
    secrets,
    secretServers: claimListedSecrets(found.outcomes, secrets, subject.namespace),
    fromServiceAccount,
    serviceAccount: missing ? { name, imagePullSecrets: list, missing } : { name, imagePullSecrets: list },
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i])
}
