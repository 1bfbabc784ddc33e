// The verdict across node pools: denied only when the pod fails on every pool it can land on,
// allowed with a warning naming the pools where it would not start when it fails on some; pools
// with the same outcomes are one entry; --on-registry-error decides where nothing is certain.
import t from 'tap'
import { POD_CONTEXT } from '../helpers/pod-target.js'
import type { PoolOutcomes } from '../../src/policy/across-pools.js'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import { decideAcrossPools, poolStatus } from '../../src/policy/pool-verdict.js'
import { parseReference } from '../../src/reference/index.js'
import type { CheckResult } from '../../src/registry/index.js'

const ctx = POD_CONTEXT
const IMAGE = 'reg.example/team/app:v1'

function outcome(
  code: CheckResult['code'],
  extra: Partial<Extract<ImageOutcome, { kind: 'checked' }>> = {},
): ImageOutcome {
  const result: CheckResult =
    code === 'Exists'
      ? {
          code,
          digest: `sha256:${'a'.repeat(64)}`,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          decidedBy: 'anonymous',
          attempts: [],
        }
      : code === 'RegistryUnreachable'
        ? { code, cause: 'refused', detail: 'connection refused', attempts: [] }
        : { code, detail: 'x', attempts: [] }
  return {
    kind: 'checked',
    use: { container: 'app', kind: 'container', field: 'spec.containers[0]', image: IMAGE },
    ref: parseReference(IMAGE),
    result,
    tried: [],
    incomplete: false,
    ...extra,
  }
}
const pool = (name: string, ...outcomes: ImageOutcome[]): PoolOutcomes => ({ pool: name, runtimes: [], outcomes })
const schema1 = (verdict: 'refused' | 'uncertain'): Partial<Extract<ImageOutcome, { kind: 'checked' }>> => ({
  schema1: { verdict, runtimes: [verdict === 'refused' ? 'containerd 2.1.4' : 'containerd 2.0.5'] },
})

t.test('a pool status is the worst of its images', async (t) => {
  t.equal(poolStatus([outcome('Exists')]), 'pulls')
  t.equal(poolStatus([outcome('Exists'), outcome('RegistryUnreachable')]), 'unknown')
  t.equal(poolStatus([outcome('RegistryUnreachable'), outcome('TagNotFound')]), 'fails')
})

t.test('pulls on one pool, fails on another: allowed, the warning names both', async (t) => {
  const v = decideAcrossPools(
    [pool('old', outcome('Exists')), pool('new', outcome('Exists', schema1('refused')))],
    'enforce',
    'deny',
    ctx,
  )
  t.equal(v.allowed, true)
  t.same(v.warnings, [
    `container "app" image "${IMAGE}": Docker schema 1 manifest, which containerd 2.1.4 refuses on node pool new; it pulls on node pool old; fix: skopeo copy --format oci docker://${IMAGE} docker://${IMAGE}`,
  ])
})

t.test('fails on every pool: denied, a section per group of pools', async (t) => {
  const v = decideAcrossPools(
    [
      pool('a', outcome('TagNotFound')),
      pool('b', outcome('Exists', schema1('refused'))),
      pool('c', outcome('TagNotFound')),
    ],
    'enforce',
    'allow',
    ctx,
  )
  t.equal(v.allowed, false)
  t.match(
    v.message,
    /^pullguard refused pod team-a\/web: it cannot start on any node pool it can land on \(a, c, b\)\.\nOn node pools a, c:\n- container "app" .*tag "v1" does not exist.*\nOn node pool b:\n- container "app" .*Docker schema 1 manifest, which containerd 2\.1\.4 refuses/s,
  )
})

t.test('the same outcome everywhere: the one-pool message, saying it holds on every pool', async (t) => {
  const v = decideAcrossPools(
    [pool('a', outcome('TagNotFound')), pool('b', outcome('TagNotFound'))],
    'enforce',
    'allow',
    ctx,
  )
  t.equal(v.allowed, false)
  t.match(v.message, /\n\(The same on every node pool it can land on: a, b\.\)$/)
  const ok = decideAcrossPools([pool('a', outcome('Exists')), pool('b', outcome('Exists'))], 'enforce', 'allow', ctx)
  t.same(ok, { allowed: true, message: undefined, warnings: [] })
})

t.test('nowhere certain: --on-registry-error decides, the failing pools are named', async (t) => {
  const judged = [pool('a', outcome('RegistryUnreachable')), pool('b', outcome('TagNotFound'))]
  const allow = decideAcrossPools(judged, 'enforce', 'allow', ctx)
  t.equal(allow.allowed, true)
  t.equal(allow.warnings.length, 2)
  t.match(allow.warnings[0], /not verified, .*--on-registry-error=allow/)
  t.match(allow.warnings[1], /on node pool b/)
  const deny = decideAcrossPools(judged, 'enforce', 'deny', ctx)
  t.equal(deny.allowed, false)
  t.match(deny.message, /Denied by --on-registry-error=deny\.\nOn node pool b:\n- container "app"/)
})

t.test('schema 1 on containerd 2.0: pullable with a warning, whatever --on-registry-error says', async (t) => {
  const v = decideAcrossPools(
    [
      pool('mid', outcome('Exists', { ...schema1('uncertain'), pool: 'mid' })),
      pool('new', outcome('Exists', schema1('refused'))),
    ],
    'enforce',
    'deny',
    ctx,
  )
  t.equal(v.allowed, true)
  t.match(v.warnings, [
    /a Docker schema 1 manifest, which containerd 2\.0\.5 on node pool mid pulls only if started with/,
    /on node pool new; it pulls on node pool mid/,
  ])
})

t.test('warn mode: every pool failing is a warning, never a denial', async (t) => {
  const v = decideAcrossPools(
    [pool('a', outcome('TagNotFound')), pool('b', outcome('Exists', schema1('refused')))],
    'warn',
    'allow',
    ctx,
  )
  t.equal(v.allowed, true)
  t.equal(v.warnings.length, 2)
  t.match(v.warnings, [/on node pool a \(warn mode: allowed\)/, /on node pool b \(warn mode: allowed\)/])
})
