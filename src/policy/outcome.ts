/**
 * What pullguard found out about one image in one review, and what that means. Errors become
 * verdicts here and nowhere else.
 */
import type { SecretProblem } from '../credentials/pull-secrets.js'
import type { ImageReference } from '../reference/index.js'
import type { CheckResult } from '../registry/index.js'
import type { ImageUse } from './subject.js'

export type ImageOutcome =
  | { kind: 'invalid'; use: ImageUse; problem: string }
  | { kind: 'broken-secret'; use: ImageUse; problem: SecretProblem }
  | {
      kind: 'checked'
      use: ImageUse
      ref: ImageReference
      result: CheckResult
      /** Labels of the credentials that applied to this image, in the order tried. */
      tried: string[]
      /** Some pull secret could not be read: the kubelet may hold credentials we could not try. */
      incomplete: boolean
    }

/** pullable: the kubelet will pull it. not-pullable: it definitely will not. unknown: policy decides. */
export type Pullability = 'pullable' | 'not-pullable' | 'unknown'

export function pullability(o: ImageOutcome): Pullability {
  if (o.kind !== 'checked') return 'not-pullable'
  switch (o.result.code) {
    case 'Exists':
      return 'pullable'
    case 'TagNotFound':
    case 'DigestNotFound':
    case 'RepositoryNotFound':
      return 'not-pullable'
    case 'AccessDenied':
    case 'RepositoryNotFoundOrDenied':
      // Never deny for lack of a credential we were not allowed to see.
      return o.incomplete ? 'unknown' : 'not-pullable'
    case 'RateLimited':
    case 'RegistryUnreachable':
      return 'unknown'
  }
}

/** The stable reason code for logs and metrics. */
export function reasonCode(o: ImageOutcome): string {
  if (o.kind === 'invalid') return 'InvalidReference'
  if (o.kind === 'broken-secret') return 'PullSecretUnparseable'
  return o.result.code
}
