// The kubelet's credential verification for images already on a node (KEP-2535, kubelet v1.37
// pullmanager): what it does with an `imagePullPolicy: Never` image per policy, and the allowlist
// as image_pull_policies.go matches and validates it.
import t from 'tap'
import type { VerificationPolicy } from '../../src/pools/pool.js'
import {
  allowlistProblem,
  allowlisted,
  judgeNeverPulled,
  trimTagDigest,
  type OwnCredentialsAnswer,
} from '../../src/pools/verification.js'

t.test('a Never image by policy and by what the pod’s own credentials get from the registry', async (t) => {
  const table: Array<[VerificationPolicy, string[], OwnCredentialsAnswer, string]> = [
    ['NeverVerify', [], 'denied', 'ok'],
    ['NeverVerify', [], 'reads', 'ok'],
    ['NeverVerifyPreloadedImages', [], 'denied', 'cached'],
    ['NeverVerifyPreloadedImages', [], 'reads', 'ok'],
    ['NeverVerifyPreloadedImages', [], 'other', 'ok'],
    ['NeverVerifyAllowlistedImages', ['reg.io/team/*'], 'denied', 'ok'],
    ['NeverVerifyAllowlistedImages', ['reg.io/other/*'], 'denied', 'refused'],
    ['NeverVerifyAllowlistedImages', ['reg.io/other/*'], 'reads', 'cached'],
    ['AlwaysVerify', [], 'denied', 'refused'],
    ['AlwaysVerify', [], 'reads', 'cached'],
    ['AlwaysVerify', [], 'other', 'cached'],
    ['AlwaysVerify', [], 'missing', 'refused'],
    ['NeverVerifyAllowlistedImages', ['reg.io/other/*'], 'missing', 'refused'],
    ['NeverVerifyPreloadedImages', [], 'missing', 'ok'],
  ]
  for (const [policy, allowlist, own, want] of table)
    t.equal(
      judgeNeverPulled(policy, allowlist, 'reg.io/team/app:1.0', own).kind,
      want,
      `${policy} ${allowlist.join(',')} ${own}`,
    )
})

t.test('allowlist matching: names as written, tag and digest cut, `/*` at any depth', async (t) => {
  const digest = `sha256:${'a'.repeat(64)}`
  const table: Array<[string, string[], boolean]> = [
    ['reg.io/team/app:1.0', ['reg.io/team/app'], true],
    [`reg.io/team/app@${digest}`, ['reg.io/team/app'], true],
    [`reg.io/team/app:1.0@${digest}`, ['reg.io/team/app'], true],
    ['reg.io:5000/team/app', ['reg.io:5000/team/app'], true],
    ['reg.io/team/app/sub:1', ['reg.io/*'], true],
    ['reg.io/team/app', ['reg.io/team/*'], true],
    ['reg.io/teamx/app', ['reg.io/team/*'], false],
    ['ubuntu:24.04', ['docker.io/library/ubuntu'], false],
    ['ubuntu:24.04', ['docker.io/library/*'], false],
    ['ubuntu', ['ubuntu'], true],
  ]
  for (const [image, list, want] of table) t.equal(allowlisted(image, list), want, `${image} in ${list.join(',')}`)
  t.equal(trimTagDigest('reg.io:5000/app'), 'reg.io:5000/app', 'a port is not a tag')
})

t.test('allowlist entries the kubelet refuses', async (t) => {
  const table: Array<[string, string | RegExp | undefined]> = [
    ['reg.io/team/app', undefined],
    ['reg.io/*', undefined],
    ['reg.io/team/app:1.0', 'neither tag nor digest is accepted in an image reference'],
    [`reg.io/app@sha256:${'a'.repeat(64)}`, 'neither tag nor digest is accepted in an image reference'],
    ['reg.io/*/app', "not a valid wildcard pattern, only patterns ending with '/*' are allowed"],
    ['reg.io*', "not a valid wildcard pattern, only patterns ending with '/*' are allowed"],
    ['/*', 'at least registry hostname is required'],
    ['*', "not a valid wildcard pattern, only patterns ending with '/*' are allowed"],
    ['a', undefined],
    ['Reg.IO/UPPER', /^failed to parse as an image name: /],
    [' reg.io/app', 'leading/trailing spaces are not allowed'],
  ]
  for (const [entry, want] of table)
    if (want instanceof RegExp) t.match(allowlistProblem(entry), want, JSON.stringify(entry))
    else t.equal(allowlistProblem(entry), want, JSON.stringify(entry))
})
