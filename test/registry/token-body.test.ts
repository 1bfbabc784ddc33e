import t from 'tap'
import { parseTokenBody } from '../../src/registry/token.js'

const b = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))
const cases: Array<[string, Buffer, ReturnType<typeof parseTokenBody>]> = [
  ['token field', b({ token: 'abc', expires_in: 300 }), { token: 'abc', expiresIn: 300 }],
  ['access_token field (OAuth2 style)', b({ access_token: 'xyz' }), { token: 'xyz', expiresIn: 60 }],
  [
    'token preferred over access_token when both',
    b({ token: 'a', access_token: 'b', expires_in: 120 }),
    { token: 'a', expiresIn: 120 },
  ],
  ['empty token falls back to access_token', b({ token: '', access_token: 'b' }), { token: 'b', expiresIn: 60 }],
  [
    'expires_in below 60 is raised to 60 (spec minimum)',
    b({ token: 'a', expires_in: 5 }),
    { token: 'a', expiresIn: 60 },
  ],
  ['expires_in of the wrong type defaults to 60', b({ token: 'a', expires_in: '300' }), { token: 'a', expiresIn: 60 }],
  [
    'issued_at parsed',
    b({ token: 'a', expires_in: 300, issued_at: '2026-11-25T12:00:00Z' }),
    { token: 'a', expiresIn: 300, issuedAt: Date.parse('2026-11-25T12:00:00Z') },
  ],
  ['bad issued_at ignored', b({ token: 'a', issued_at: 'yesterday' }), { token: 'a', expiresIn: 60 }],
  ['no token', b({ expires_in: 300 }), undefined],
  ['token of the wrong type', b({ token: 42 }), undefined],
  ['not JSON', b('<html>'), undefined],
  ['JSON null', b('null'), undefined],
  ['JSON array', b('[1]'), undefined],
]
for (const [name, body, expected] of cases) {
  t.test(`token response: ${name}`, async (t) => {
    t.same(parseTokenBody(body), expected)
  })
}
