import t from 'tap'
import { registryErrorCodes } from '../../src/registry/registry-errors.js'

const cases: Array<[string, string, string[]]> = [
  [
    'distribution manifest unknown',
    '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}',
    ['MANIFEST_UNKNOWN'],
  ],
  ['several codes', '{"errors":[{"code":"NAME_UNKNOWN"},{"code":"DENIED"}]}', ['NAME_UNKNOWN', 'DENIED']],
  ['empty body', '', []],
  ['not JSON', 'Not Found', []],
  ['no errors array', '{"message":"x"}', []],
  [
    'codes that are not identifiers are dropped (never echoed)',
    '{"errors":[{"code":"<script>"},{"code":"a b"},{"code":"TOOMANYREQUESTS"}]}',
    ['TOOMANYREQUESTS'],
  ],
  ['non-string code', '{"errors":[{"code":5},null,"x"]}', []],
]
for (const [name, body, expected] of cases) {
  t.test(`registry error body: ${name}`, async (t) => {
    t.same(registryErrorCodes(Buffer.from(body)), expected)
  })
}
