// An answer earned with one list of credentials, told to a caller with the same values under other
// names: every label the answer holds becomes the caller's, position for position, and nothing else changes.
import t from 'tap'
import { relabelResult } from '../../src/registry/relabel.js'
import type { CheckResult } from '../../src/registry/result.js'

const A = 'secret ns-a/regcred (key "reg.example")'
const B = 'secret ns-b/regcred (key "reg.example")'
const A2 = 'secret ns-a/other (key "reg.example")'
const B2 = 'secret ns-b/copy (key "reg.example")'

const cases: Array<{ name: string; result: CheckResult; from: string[]; to: string[]; want: CheckResult }> = [
  {
    name: 'an Exists names the caller’s deciding secret',
    result: { code: 'Exists', digest: 'sha256:1', mediaType: 'm', decidedBy: A, attempts: [] },
    from: [A],
    to: [B],
    want: { code: 'Exists', digest: 'sha256:1', mediaType: 'm', decidedBy: B, attempts: [] },
  },
  {
    name: 'a denial’s text and attempts, each label at its own position',
    result: {
      code: 'AccessDenied',
      detail: `reg.example refused ${A} and ${A2}`,
      attempts: [
        { credential: A, code: 'AccessDenied', detail: `401 for ${A}` },
        { credential: A2, code: 'AccessDenied', detail: `401 for ${A2}` },
      ],
    },
    from: [A, A2],
    to: [B, B2],
    want: {
      code: 'AccessDenied',
      detail: `reg.example refused ${B} and ${B2}`,
      attempts: [
        { credential: B, code: 'AccessDenied', detail: `401 for ${B}` },
        { credential: B2, code: 'AccessDenied', detail: `401 for ${B2}` },
      ],
    },
  },
  {
    name: 'labels swapped between positions are written once each, never rewritten again',
    result: { code: 'AccessDenied', detail: `tried ${A} then ${A2}`, attempts: [] },
    from: [A, A2],
    to: [A2, A],
    want: { code: 'AccessDenied', detail: `tried ${A2} then ${A}`, attempts: [] },
  },
  {
    name: 'the same labels: the very same answer',
    result: { code: 'TagNotFound', detail: `missing for ${A}`, attempts: [] },
    from: [A],
    to: [A],
    want: { code: 'TagNotFound', detail: `missing for ${A}`, attempts: [] },
  },
  {
    name: 'characters a pattern would read as syntax are matched as written',
    result: { code: 'AccessDenied', detail: 'refused secret a/x (key "r.io/(a)+")', attempts: [] },
    from: ['secret a/x (key "r.io/(a)+")'],
    to: ['secret b/x (key "r.io/(a)+")'],
    want: { code: 'AccessDenied', detail: 'refused secret b/x (key "r.io/(a)+")', attempts: [] },
  },
  {
    name: 'an anonymous answer has no label to change',
    result: { code: 'RegistryUnreachable', cause: 'timeout', detail: 'no answer', attempts: [] },
    from: [],
    to: [],
    want: { code: 'RegistryUnreachable', cause: 'timeout', detail: 'no answer', attempts: [] },
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const before = structuredClone(c.result)
    t.same(relabelResult(c.result, c.from, c.to), c.want)
    t.same(c.result, before, 'the shared answer itself is not changed')
  })
}
