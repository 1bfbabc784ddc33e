import t from 'tap'
import { parseChallenges } from '../../src/registry/challenge.js'

const cases: Array<[string, string | string[], ReturnType<typeof parseChallenges>]> = [
  [
    'Docker Hub bearer with a comma inside the quoted scope',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push"',
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull,push',
        },
      },
    ],
  ],
  [
    'insufficient_scope error param',
    'Bearer realm="https://t/token",service="reg",scope="repository:a:pull",error="insufficient_scope"',
    [
      {
        scheme: 'bearer',
        params: { realm: 'https://t/token', service: 'reg', scope: 'repository:a:pull', error: 'insufficient_scope' },
      },
    ],
  ],
  ['basic realm', 'Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
  [
    'scheme and param names are case-insensitive',
    'BEARER Realm="x",SERVICE=y',
    [{ scheme: 'bearer', params: { realm: 'x', service: 'y' } }],
  ],
  [
    'unquoted token values and spaces around =',
    'Bearer realm = "r" , service = svc',
    [{ scheme: 'bearer', params: { realm: 'r', service: 'svc' } }],
  ],
  [
    'escaped quote inside a quoted string',
    'Basic realm="say \\"hi\\", ok"',
    [{ scheme: 'basic', params: { realm: 'say "hi", ok' } }],
  ],
  [
    'two challenges in one header',
    'Basic realm="b", Bearer realm="https://t/token",service="s"',
    [
      { scheme: 'basic', params: { realm: 'b' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', service: 's' } },
    ],
  ],
  [
    'two challenges, bearer first, with commas in values',
    'Bearer realm="https://t/a,b",scope="x:y:pull,push", Basic realm="r"',
    [
      { scheme: 'bearer', params: { realm: 'https://t/a,b', scope: 'x:y:pull,push' } },
      { scheme: 'basic', params: { realm: 'r' } },
    ],
  ],
  [
    'header repeated (array from undici)',
    ['Basic realm="b"', 'Bearer realm="https://t"'],
    [
      { scheme: 'basic', params: { realm: 'b' } },
      { scheme: 'bearer', params: { realm: 'https://t' } },
    ],
  ],
  ['scheme without params', 'Negotiate', [{ scheme: 'negotiate', params: {} }]],
  [
    'token68',
    'Negotiate abc123==, Basic realm="r"',
    [
      { scheme: 'negotiate', params: {}, token68: 'abc123==' },
      { scheme: 'basic', params: { realm: 'r' } },
    ],
  ],
  ['empty header', '', []],
  ['stray commas', ' , Basic realm="r" ,, ', [{ scheme: 'basic', params: { realm: 'r' } }]],
  [
    'unterminated quoted string keeps what is there',
    'Bearer realm="https://t',
    [{ scheme: 'bearer', params: { realm: 'https://t' } }],
  ],
  [
    'first value of a duplicated param wins',
    'Bearer realm="a",realm="b"',
    [{ scheme: 'bearer', params: { realm: 'a' } }],
  ],
  ['garbage does not loop forever', '@@@ ===', []],
]

for (const [name, header, expected] of cases) {
  t.test(`parses WWW-Authenticate: ${name}`, async (t) => {
    t.same(parseChallenges(header), expected)
  })
}

t.test('undefined header yields no challenge', async (t) => {
  t.same(parseChallenges(undefined), [])
})

t.test('hostile header of 1 MB is parsed in linear time', async (t) => {
  const header = 'Bearer ' + 'a="b",'.repeat(170_000)
  const started = process.hrtime.bigint()
  const out = parseChallenges(header)
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(out.length, 1)
  t.ok(ms < 2000, `took ${ms} ms`)
})
