import t from 'tap'
import { retryAfterSeconds } from '../../src/registry/retry-after.js'

const now = Date.parse('2026-11-25T12:00:00Z')
const cases: Array<[string | string[] | undefined, number | undefined]> = [
  [undefined, undefined],
  ['30', 30],
  [' 7 ', 7],
  ['0', 0],
  [['12', '99'], 12],
  ['Wed, 25 Nov 2026 12:01:00 GMT', 60],
  ['Wed, 25 Nov 2026 11:00:00 GMT', 0],
  ['soon', undefined],
  ['-5', undefined],
  ['999999999', 86400],
]
for (const [input, expected] of cases) {
  t.test(`Retry-After ${JSON.stringify(input)} → ${expected}`, async (t) => {
    t.equal(retryAfterSeconds(input, now), expected)
  })
}
