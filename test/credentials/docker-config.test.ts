import t from 'tap'
import { loadFixture } from '../helpers/fixtures.js'
import {
  decodeGoBase64,
  displayKey,
  parseDockerCfg,
  parseDockerConfigFile,
  parseDockerConfigJson,
  type DockerConfigEntry,
  type DockerConfigParse,
} from '../../src/credentials/docker-config.js'

function fixture(name: string): { type: string; data: Record<string, string> } {
  return loadFixture(`api/${name}`) as { type: string; data: Record<string, string> }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64')
const unpadded = (s: string): string => b64(s).replace(/=+$/, '')
const json = (v: unknown): string => JSON.stringify(v)
const entry = (key: string, username: string, password: string): DockerConfigEntry => ({ key, username, password })
const ok = (entries: DockerConfigEntry[]): DockerConfigParse => ({ ok: true, entries })

t.test('parses the .dockerconfigjson fixture secret', async (t) => {
  const secret = fixture('secret-dockerconfigjson.json')
  const text = Buffer.from(secret.data['.dockerconfigjson'] ?? '', 'base64').toString('utf8')
  t.same(parseDockerConfigJson(text), ok([entry('registry.example.com:5000', 'puller', 's3cret-pass')]))
})

t.test('parses the .dockercfg fixture secret (auth agrees with username/password; email dropped)', async (t) => {
  const secret = fixture('secret-dockercfg.json')
  const text = Buffer.from(secret.data['.dockercfg'] ?? '', 'base64').toString('utf8')
  t.same(parseDockerCfg(text), ok([entry('https://index.docker.io/v1/', 'hubuser', 'hub-pass')]))
})

// [name, ENTRY, expected username/password or a problem fragment]
const entries: Array<[string, unknown, [string, string] | RegExp]> = [
  ['username and password', { username: 'u', password: 'p' }, ['u', 'p']],
  ['padded auth', { auth: b64('alice:pw') }, ['alice', 'pw']],
  ['unpadded auth', { auth: unpadded('alice:pw') }, ['alice', 'pw']],
  ['auth needing no padding', { auth: b64('abc:def') }, ['abc', 'def']],
  ['auth split at the first colon', { auth: b64('u:p:a:ss') }, ['u', 'p:a:ss']],
  ['auth overrides username and password', { username: 'x', password: 'y', auth: b64('u:p') }, ['u', 'p']],
  ['auth with an empty user still overrides the username', { username: 'x', auth: b64(':p') }, ['', 'p']],
  ['empty auth is no auth', { username: 'u', password: 'p', auth: '' }, ['u', 'p']],
  ['auth padded, with newlines around the padding', { auth: b64('u:pw').slice(0, -2) + '\n==\n' }, ['u', 'pw']],
  [
    'auth with line breaks inside',
    { auth: b64('long-user:long-password').replace(/(.{8})/g, '$1\r\n') },
    ['long-user', 'long-password'],
  ],
  ['auth with non-zero trailing bits (Go is not strict)', { auth: 'dTpx' + 'Yx' }, ['u', 'qc']],
  ['field names are case-insensitive', { Username: 'u', PASSWORD: 'p' }, ['u', 'p']],
  ['"Auth" is auth', { Auth: b64('u:p') }, ['u', 'p']],
  ['Unicode folding: "uſername" is username', { 'u\u017fername': 'u' }, ['u', '']],
  ['null fields are no value', { username: null, password: 'p', auth: null }, ['', 'p']],
  ['email is ignored', { username: 'u', password: 'p', email: 'e@example.com' }, ['u', 'p']],
  ['only an identitytoken: no credentials', { identitytoken: 'tok' }, ['', '']],
  ['registrytoken is ignored too', { username: 'u', registrytoken: 'tok' }, ['u', '']],
  [
    'unknown fields of any type are ignored',
    { username: 'u', password: 'p', serveraddress: 5, x: [1, { y: null }] },
    ['u', 'p'],
  ],
  ['an empty entry', {}, ['', '']],
  ['a null entry is an entry without credentials', null, ['', '']],
  [
    'auth without a colon',
    { auth: b64('token-only') },
    /auth field of entry "quay.io" is not base64 of user:password \(no ":"/,
  ],
  ['auth that decodes to nothing', { auth: '\n' }, /no ":"/],
  ['auth that is not base64', { auth: 'not base64!' }, /auth field of entry "quay.io" is not valid base64/],
  ['auth with wrong padding', { auth: 'YQ=' }, /not valid base64/],
  ['padding in the middle', { auth: 'YQ==YQ==' }, /not valid base64/],
  ['unpadded auth of impossible length', { auth: 'YWJjZ' }, /not valid base64/],
  ['auth with a space', { auth: b64('u:p') + ' ' }, /not valid base64/],
  ['a number username', { username: 5 }, /field "username" of entry "quay.io" is a number, not a string/],
  ['a boolean password', { password: true }, /field "password" of entry "quay.io" is true or false/],
  ['an object email', { email: {} }, /field "email" .* is an object/],
  ['an array auth', { Auth: [] }, /field "auth" .* is an array/],
  ['an entry that is a string', 'user:pass', /entry "quay.io" is a string, not an object/],
  ['an entry that is a number', 7, /entry "quay.io" is a number/],
]

for (const [name, value, expected] of entries) {
  t.test(`entry: ${name}`, async (t) => {
    for (const [format, parse, text] of [
      ['.dockerconfigjson', parseDockerConfigJson, json({ auths: { 'quay.io': value } })],
      ['.dockercfg', parseDockerCfg, json({ 'quay.io': value })],
    ] as const) {
      const result = parse(text)
      if (Array.isArray(expected)) {
        t.same(result, ok([entry('quay.io', expected[0], expected[1])]), format)
      } else {
        t.equal(result.ok, false, format)
        if (!result.ok) t.match(result.problem, expected, format)
      }
    }
  })
}

t.test('problems never echo credential values', async (t) => {
  const secret = 'hunter2-very-secret'
  const texts = [
    json({ auths: { 'quay.io': { auth: b64(secret) } } }),
    json({ auths: { 'quay.io': { auth: secret + '!' } } }),
    json({ auths: { 'quay.io': secret } }),
    `{"auths": {"quay.io": {"password": "${secret}"}}`,
    `{"auths": {"quay.io": {"password": "${secret}", }}}`,
    `{"auths": {"quay.io": {"password": "${secret}" "username": 1}}}`,
  ]
  for (const text of texts) {
    const result = parseDockerConfigJson(text)
    t.equal(result.ok, false)
    if (!result.ok) {
      t.notMatch(result.problem, secret)
      t.notMatch(result.problem, b64(secret))
    }
  }
})

// Whole documents: [name, parser, text, entries or problem]
const documents: Array<[string, 'json' | 'cfg' | 'file', string, DockerConfigEntry[] | RegExp]> = [
  ['not JSON', 'json', '{"auths":', /not valid JSON/],
  ['trailing garbage', 'json', '{} x', /not valid JSON/],
  ['a byte-order mark', 'json', '\ufeff{}', /not valid JSON/],
  ['an empty document', 'json', '', /not valid JSON/],
  ['a document that is an array', 'json', '[]', /the document is an array, not an object with "auths"/],
  ['a document that is a string', 'json', '"x"', /is a string/],
  ['a document that is a number', 'cfg', '1', /the document is a number, not an object of registry keys/],
  ['a null document holds nothing', 'json', 'null', []],
  ['a null .dockercfg holds nothing', 'cfg', ' null ', []],
  ['no auths', 'json', '{}', []],
  ['auths null', 'json', '{"auths":null}', []],
  ['auths an array', 'json', '{"auths":[]}', /"auths" is an array, not an object/],
  ['auths a string', 'json', '{"auths":"quay.io"}', /"auths" is a string/],
  ['"Auths" is auths', 'json', json({ Auths: { a: { username: 'u' } } }), [entry('a', 'u', '')]],
  [
    'a repeated auths merges',
    'json',
    '{"auths":{"a":{"username":"1"}},"AUTHS":{"b":{"username":"2"}}}',
    [entry('a', '1', ''), entry('b', '2', '')],
  ],
  ['a later null auths drops what was read', 'json', '{"auths":{"a":{}},"auths":null}', []],
  [
    'a repeated key replaces the entry',
    'json',
    '{"auths":{"a":{"username":"1"},"a":{"password":"2"}}}',
    [entry('a', '', '2')],
  ],
  [
    'a repeated field: the last non-null wins',
    'json',
    '{"auths":{"a":{"username":"1","Username":"2","username":null}}}',
    [entry('a', '2', '')],
  ],
  [
    'keys keep their spelling',
    'json',
    json({ auths: { 'https://Quay.io/v2/': {}, '10.0.0.1:5000': {} } }),
    [entry('https://Quay.io/v2/', '', ''), entry('10.0.0.1:5000', '', '')],
  ],
  [
    'several entries in file order',
    'cfg',
    json({ b: { username: 'x' }, a: { username: 'y' } }),
    [entry('b', 'x', ''), entry('a', 'y', '')],
  ],
  ['HttpHeaders of strings is fine', 'json', json({ auths: {}, HttpHeaders: { 'User-Agent': 'x', n: null } }), []],
  [
    'HttpHeaders with a number',
    'json',
    json({ auths: {}, HttpHeaders: { 'X-N': 1 } }),
    /"HttpHeaders" must be an object of header names to strings/,
  ],
  ['HttpHeaders an array', 'json', json({ HttpHeaders: [] }), /HttpHeaders/],
  [
    'unknown top-level fields are ignored',
    'json',
    json({ auths: { a: {} }, credsStore: 5, x: [[[]]] }),
    [entry('a', '', '')],
  ],
  [
    'a .dockerconfigjson document read as .dockercfg is one entry keyed "auths"',
    'cfg',
    json({ auths: { a: { username: 'u' } } }),
    [entry('auths', '', '')],
  ],
  [
    'deep nesting in an ignored field',
    'json',
    `{"x":${'['.repeat(5000)}${']'.repeat(5000)},"auths":{"a":{}}}`,
    [entry('a', '', '')],
  ],
  [
    "nesting beyond encoding/json's 10000 levels",
    'json',
    `{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
    /nested more than 10000 levels/,
  ],
  ['a long number in an ignored field', 'json', `{"x":${'9'.repeat(1000)},"auths":{"a":{}}}`, [entry('a', '', '')]],
  [
    'strings with escapes and braces',
    'json',
    json({ '{x}': '"}', auths: { 'a"b': { username: 'u\\"}' } } }),
    [entry('a"b', 'u\\"}', '')],
  ],
  [
    'a node config.json reads like a .dockerconfigjson',
    'file',
    json({ auths: { 'quay.io': { auth: b64('u:p') } } }),
    [entry('quay.io', 'u', 'p')],
  ],
  ['a node config.json with a bad auth', 'file', json({ auths: { 'quay.io': { auth: 'x' } } }), /auth field/],
]

for (const [name, format, text, expected] of documents) {
  t.test(`document: ${name}`, async (t) => {
    const result =
      format === 'json'
        ? parseDockerConfigJson(text)
        : format === 'cfg'
          ? parseDockerCfg(text)
          : parseDockerConfigFile(text)
    if (Array.isArray(expected)) {
      t.equal(result.ok, true)
      if (result.ok) t.same(result.entries, expected)
    } else {
      t.equal(result.ok, false)
      if (!result.ok) t.match(result.problem, expected)
    }
  })
}

t.test('refuses a document larger than a Secret can hold', async (t) => {
  const result = parseDockerConfigJson(`{"auths":{},"x":"${'a'.repeat(1024 * 1024)}"}`)
  t.equal(result.ok, false)
  if (!result.ok) t.match(result.problem, /a Secret holds at most 1048576 bytes/)
})

t.test('a node config.json reports registries handled by credential helpers', async (t) => {
  t.same(
    parseDockerConfigFile(
      json({
        auths: { 'quay.io': {} },
        credHelpers: { 'gcr.io': 'gcloud', '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
      }),
    ),
    {
      ok: true,
      entries: [entry('quay.io', '', '')],
      helpers: ['gcr.io', '123.dkr.ecr.us-east-1.amazonaws.com'],
    },
  )
  t.same(parseDockerConfigFile(json({ auths: { 'https://index.docker.io/v1/': {} }, credsStore: 'desktop' })), {
    ok: true,
    entries: [entry('https://index.docker.io/v1/', '', '')],
    helpers: ['*'],
  })
  t.same(parseDockerConfigFile(json({ auths: {}, credsStore: '' })), { ok: true, entries: [], helpers: [] })
  t.same(parseDockerConfigFile('null'), { ok: true, entries: [], helpers: [] })
  t.notOk('helpers' in parseDockerConfigJson(json({ credsStore: 'desktop' })), 'secrets do not report helpers')
})

t.test('decodes base64 as Go does', async (t) => {
  const cases: Array<[string, boolean, string | undefined]> = [
    ['YQ==', true, 'a'],
    ['YWI=', true, 'ab'],
    ['YWJj', true, 'abc'],
    ['YQ', true, undefined],
    ['YQ=', true, undefined],
    ['====', true, undefined],
    ['YQ==\r\n', true, 'a'],
    ['YQ', false, 'a'],
    ['YQ==', false, undefined],
    ['Y', false, undefined],
    ['', false, ''],
    ['YW Jj', false, undefined],
    ['YW-j', false, undefined],
  ]
  for (const [text, padded, expected] of cases) {
    t.equal(decodeGoBase64(text, padded)?.toString('utf8'), expected, `${JSON.stringify(text)} padded=${padded}`)
  }
})

t.test('displayKey hides user:password written into a key', async (t) => {
  t.equal(displayKey('quay.io'), 'quay.io')
  t.equal(displayKey('https://index.docker.io/v1/'), 'https://index.docker.io/v1/')
  t.equal(displayKey('user:pw@quay.io'), '<redacted>@quay.io')
  t.equal(displayKey('https://user:pw@quay.io/v2/'), 'https://<redacted>@quay.io/v2/')
  t.equal(displayKey('quay.io/org@x'), 'quay.io/org@x')
  const result = parseDockerConfigJson(json({ auths: { 'me:hunter2@quay.io': { auth: 'x' } } }))
  t.equal(result.ok, false)
  if (!result.ok) t.notMatch(result.problem, 'hunter2')
})
