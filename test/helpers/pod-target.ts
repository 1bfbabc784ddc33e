// The fix target of a bare pod team-a/web at admission, with no pull secrets and the default
// service account: what the decision's unit tests deny.
import type { FixTarget } from '../../src/policy/fixes.js'

export const POD_TARGET: FixTarget = {
  voice: 'admission',
  namespace: 'team-a',
  resource: 'pod',
  name: 'web',
  specField: 'spec',
  patchPath: ['spec'],
  secrets: [],
  fromServiceAccount: 'yes',
  serviceAccount: { name: 'default', imagePullSecrets: [] },
}

/** decide()'s context for that pod. */
export const POD_CONTEXT = { object: 'pod team-a/web', target: POD_TARGET }
