/**
 * --image-pull-credentials-verification-policy and --preloaded-images-verification-allowlist: the
 * nodes' kubelet settings of the same names (KubeletConfiguration), validated as the kubelet
 * validates them (pkg/kubelet/apis/config/validation/validation.go), since a kubelet refuses to
 * start on what they refuse.
 */
import {
  DEFAULT_VERIFICATION_POLICY,
  VERIFICATION_POLICIES,
  type KubeletPullSettings,
  type VerificationPolicy,
} from '../pools/pool.js'
import { allowlistProblem } from '../pools/verification.js'
import { ConfigError } from './errors.js'
import { oneOf, type Picked, type PickedList } from './flags.js'

export function kubeletPullSettings(policy: Picked, allowlist: PickedList): KubeletPullSettings {
  const verificationPolicy: VerificationPolicy =
    policy.value === undefined ? DEFAULT_VERIFICATION_POLICY : oneOf(policy.value, VERIFICATION_POLICIES, policy.source)
  return { verificationPolicy, allowlist: checkedAllowlist(allowlist.list, verificationPolicy, allowlist.source) }
}

/** The allowlist, if the policy takes one; `source` names where it was given. */
export function checkedAllowlist(list: readonly string[], policy: VerificationPolicy, source: string): string[] {
  if (list.length > 0 && policy !== 'NeverVerifyAllowlistedImages')
    throw new ConfigError(
      source,
      'can be set only with the verification policy NeverVerifyAllowlistedImages (the kubelet refuses to start otherwise)',
    )
  for (const entry of list) {
    const problem = allowlistProblem(entry)
    if (problem !== undefined)
      throw new ConfigError(source, `invalid image pattern ${JSON.stringify(entry)}: ${problem}`)
  }
  return [...list]
}
