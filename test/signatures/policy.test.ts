// CRI-O's policy.json read as containers-image v5.38 reads it: what it accepts, what it refuses (and
// with it every pull), which section an image falls under, and how sigstore trust roots load.
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { parsePolicy, type Requirement, requirementsFor } from '../../src/signatures/policy.js'

const FILE = '/etc/containers/policy.json'
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const EC_PEM = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string
const RSA_PKCS1_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
  type: 'pkcs1',
  format: 'pem',
}) as string
const b64 = (s: string): string => Buffer.from(s).toString('base64')

const files = new Map<string, string>([
  ['/etc/pki/cosign.pub', EC_PEM],
  ['/etc/pki/rsa.pub', RSA_PKCS1_PEM],
  ['/etc/pki/two.pub', EC_PEM + RSA_PKCS1_PEM],
  ['/etc/pki/garbage.pub', 'not a key'],
  ['/etc/pki/cert.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
])
const readKeyFile = (path: string): Buffer => {
  const text = files.get(path)
  if (text === undefined)
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' })
  return Buffer.from(text)
}
const parse = (policy: unknown): ReturnType<typeof parsePolicy> =>
  parsePolicy(FILE, typeof policy === 'string' ? policy : JSON.stringify(policy), readKeyFile)
const sigstore = (fields: Record<string, unknown>): unknown => ({
  default: [{ type: 'reject' }],
  transports: { docker: { 'quay.io': [{ type: 'sigstoreSigned', ...fields }] } },
})
const only = (policy: ReturnType<typeof parsePolicy>): Extract<Requirement, { type: 'sigstoreSigned' }> => {
  const req = policy.docker.get('quay.io')?.[0]
  if (req?.type !== 'sigstoreSigned') throw new Error('expected a sigstoreSigned requirement')
  return req
}

const POLICY = {
  default: [{ type: 'reject' }],
  transports: {
    docker: {
      '': [{ type: 'insecureAcceptAnything' }],
      'quay.io': [{ type: 'sigstoreSigned', keyPath: '/etc/pki/cosign.pub' }],
      'quay.io/open': [{ type: 'insecureAcceptAnything' }],
      'quay.io/ns/app:1': [{ type: 'reject' }],
      '*.example.com': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/etc/pki/gpg' }],
      'registry.example.com:5000': [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepository' } }],
    },
    'docker-daemon': { '': [{ type: 'insecureAcceptAnything' }] },
    dir: { '/srv': [{ type: 'reject' }] },
    'some-future-transport': { 'whatever goes': [{ type: 'reject' }] },
  },
}

t.test('the most specific docker scope wins, then the docker default, then the default', async (t) => {
  const policy = parse(POLICY)
  const table: Array<[string, string, string]> = [
    ['quay.io/ns/app:1', 'quay.io/ns/app:1', 'reject'],
    ['quay.io/ns/app:2', 'quay.io', 'sigstoreSigned'],
    ['quay.io/open/tool', 'quay.io/open', 'insecureAcceptAnything'],
    ['quay.io/openx/tool', 'quay.io', 'sigstoreSigned'],
    ['cdn.example.com/x:1', '*.example.com', 'signedBy'],
    ['registry.example.com:5000/x', 'registry.example.com:5000', 'signedBaseLayer'],
    ['example.com/x', '', 'insecureAcceptAnything'],
    ['nginx', '', 'insecureAcceptAnything'],
  ]
  for (const [image, scope, type] of table) {
    const got = requirementsFor(policy, parseReference(image))
    t.same([got.scope, got.requirements.map((r) => r.type)], [scope, [type]], image)
  }
  t.same(policy.keyFiles, ['/etc/pki/cosign.pub'], 'only sigstore key files are read')
})

t.test('a more specific insecureAcceptAnything wins over a default reject', async (t) => {
  const policy = parse({
    default: [{ type: 'reject' }],
    transports: { docker: { 'internal.example/tools': [{ type: 'insecureAcceptAnything' }] } },
  })
  const ok = requirementsFor(policy, parseReference('internal.example/tools/kubectl:1'))
  t.same([ok.scope, ok.requirements], ['internal.example/tools', [{ type: 'insecureAcceptAnything' }]])
  const no = requirementsFor(policy, parseReference('internal.example/other:1'))
  t.same([no.scope, no.requirements], ['default', [{ type: 'reject' }]], 'no docker default: the top-level default')
})

t.test('the shapes a valid file may take', async (t) => {
  const table: Array<[string, unknown, (p: ReturnType<typeof parsePolicy>) => unknown, unknown]> = [
    [
      'the minimal file',
      { default: [{ type: 'insecureAcceptAnything' }] },
      (p) => p.default,
      [{ type: 'insecureAcceptAnything' }],
    ],
    ['empty transports', { default: [{ type: 'reject' }], transports: {} }, (p) => p.docker.size, 0],
    ['an empty docker section', { default: [{ type: 'reject' }], transports: { docker: {} } }, (p) => p.docker.size, 0],
    [
      'signedBy with its default identity',
      { default: [{ type: 'signedBy', keyType: 'signedByGPGKeys', keyData: b64('k') }] },
      (p) => p.default,
      [{ type: 'signedBy', keyType: 'signedByGPGKeys', signedIdentity: { type: 'matchRepoDigestOrExact' } }],
    ],
    [
      'signedBy with an empty keyPaths list (accepted, unlike sigstoreSigned)',
      { default: [{ type: 'signedBy', keyType: 'X509Certificates', keyPaths: [] }] },
      (p) => p.default[0]?.type,
      'signedBy',
    ],
    [
      'every identity type',
      {
        default: [
          { type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'matchExact' } },
          { type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'matchRepository' } },
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'exactReference', dockerReference: 'busybox:1' },
          },
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'exactRepository', dockerRepository: 'busybox' },
          },
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'remapIdentity', prefix: 'mirror.internal/q', signedPrefix: 'quay.io' },
          },
        ],
      },
      (p) => p.default.map((r) => (r.type === 'signedBy' ? r.signedIdentity.type : r.type)),
      ['matchExact', 'matchRepository', 'exactReference', 'exactRepository', 'remapIdentity'],
    ],
    [
      'a scope of a transport nobody registered, with any text',
      { default: [{ type: 'reject' }], transports: { 'not-a-transport': { 'not a scope': [{ type: 'reject' }] } } },
      (p) => p.docker.size,
      0,
    ],
    [
      'docker scopes containers-image never validates',
      { default: [{ type: 'reject' }], transports: { docker: { '*.example.com/ns': [{ type: 'reject' }] } } },
      (p) => [...p.docker.keys()],
      ['*.example.com/ns'],
    ],
    [
      'null requirements are refused but whitespace is not',
      ' \n{"default":[{"type":"reject"}]}\n ',
      (p) => p.default.length,
      1,
    ],
  ]
  for (const [name, policy, get, want] of table) t.same(get(parse(policy)), want, name)
})

t.test('files it refuses, as containers-image refuses them', async (t) => {
  const r = (extra: Record<string, unknown>): unknown => ({ default: [{ type: 'reject', ...extra }] })
  const table: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"default": [', /unexpected end of JSON input|invalid JSON/],
    ['trailing data', '{"default":[{"type":"reject"}]} {}', /invalid JSON/],
    ['not an object', '[]', /JSON object expected, got 91/],
    ['no default', { transports: {} }, /Default policy is missing/],
    ['an unknown top-level key', { default: [{ type: 'reject' }], Default: [] }, /Unknown key "Default"/],
    ['a repeated key', '{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}', /Duplicate key "default"/],
    ['an empty default', { default: [] }, /List of verification policy requirements must not be empty/],
    ['a null default', { default: null }, /must not be empty/],
    [
      'a default that is not a list',
      { default: { type: 'reject' } },
      /cannot unmarshal object into Go value of type \[\]json.RawMessage/,
    ],
    [
      'an empty scope',
      { default: [{ type: 'reject' }], transports: { docker: { 'quay.io': [] } } },
      /must not be empty/,
    ],
    ['transports null', { default: [{ type: 'reject' }], transports: null }, /JSON object expected, got <nil>/],
    [
      'a transport null',
      { default: [{ type: 'reject' }], transports: { docker: null } },
      /JSON object expected, got <nil>/,
    ],
    [
      'an unknown requirement type',
      { default: [{ type: 'acceptAnything' }] },
      /Unknown policy requirement type "acceptAnything"/,
    ],
    ['a requirement without a type', { default: [{}] }, /Unknown policy requirement type ""/],
    ['a null requirement', { default: [null] }, /Unknown policy requirement type ""/],
    [
      'a requirement that is a string',
      { default: ['reject'] },
      /cannot unmarshal string into Go value of type signature.prCommon/,
    ],
    ['a type that is not a string', { default: [{ type: 1 }] }, /Go struct field prCommon.type/],
    ['an extra field on reject', r({ keyPath: '/k' }), /Unknown key "keyPath"/],
    ['a type in other case', { default: [{ Type: 'reject' }] }, /Unknown key "Type"/],
    ['signedBy without keyType', { default: [{ type: 'signedBy', keyPath: '/k' }] }, /invalid keyType ""/],
    [
      'signedBy with a bad keyType',
      { default: [{ type: 'signedBy', keyType: 'PGP', keyPath: '/k' }] },
      /Unrecognized keyType value "PGP"/,
    ],
    ['signedBy without keys', { default: [{ type: 'signedBy', keyType: 'GPGKeys' }] }, /none of them present/],
    [
      'signedBy with two key sources',
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', keyData: '' }] },
      /more than one present/,
    ],
    [
      'signedBy with an empty keyPath',
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '' }] },
      /exactly one of keyPath, keyPaths and keyData must be specified$/,
    ],
    [
      'signedBy with bad base64',
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyData: 'a' }] },
      /illegal base64 data/,
    ],
    [
      'signedBy with an unknown field',
      { default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', key: 1 }] },
      /Unknown key "key"/,
    ],
    [
      'signedBaseLayer without its identity',
      { default: [{ type: 'signedBaseLayer' }] },
      /Key "baseLayerIdentity" missing in a JSON object/,
    ],
    [
      'an unknown identity type',
      { default: [{ type: 'sigstoreSigned', keyData: b64(EC_PEM), signedIdentity: { type: 'matchAll' } }] },
      /Unknown policy reference match type "matchAll"/,
    ],
    [
      'a null identity',
      { default: [{ type: 'sigstoreSigned', keyData: b64(EC_PEM), signedIdentity: null }] },
      /Unknown policy reference match type ""/,
    ],
    [
      'an identity with an extra field',
      {
        default: [
          { type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'matchExact', x: 1 } },
        ],
      },
      /Unknown key "x"/,
    ],
    [
      'exactReference without a tag',
      {
        default: [
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'exactReference', dockerReference: 'busybox' },
          },
        ],
      },
      /dockerReference "busybox" contains neither a tag nor digest/,
    ],
    [
      'exactReference that does not parse',
      {
        default: [
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'exactReference', dockerReference: 'Bad/Ref' },
          },
        ],
      },
      /Invalid format of dockerReference "Bad\/Ref"/,
    ],
    [
      'exactRepository missing',
      {
        default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'exactRepository' } }],
      },
      /Key "dockerRepository" missing/,
    ],
    [
      'a bad remap prefix',
      {
        default: [
          {
            type: 'signedBy',
            keyType: 'GPGKeys',
            keyPath: '/k',
            signedIdentity: { type: 'remapIdentity', prefix: 'quay.io/', signedPrefix: 'x.io' },
          },
        ],
      },
      /prefix "quay.io\/" is not valid/,
    ],
    [
      'sigstoreSigned without keys',
      sigstore({}),
      /exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified/,
    ],
    [
      'sigstoreSigned with two key sources',
      sigstore({ keyPath: '/k', keyData: b64(EC_PEM) }),
      /exactly one of keyPath, keyPaths/,
    ],
    ['sigstoreSigned with an empty keyPath', sigstore({ keyPath: '' }), /exactly one of keyPath/],
    ['sigstoreSigned with an empty keyPaths', sigstore({ keyPaths: [] }), /"keyPaths" contains no entries/],
    ['sigstoreSigned with a null keyPaths', sigstore({ keyPaths: null }), /"keyPaths" contains no entries/],
    ['sigstoreSigned with an empty keyDatas', sigstore({ keyDatas: [] }), /"keyDatas" contains no entries/],
    [
      'sigstoreSigned with keyPaths not a list',
      sigstore({ keyPaths: '/k' }),
      /cannot unmarshal string into Go value of type \[\]string/,
    ],
    [
      'sigstoreSigned with a key and fulcio',
      sigstore({
        keyPath: '/k',
        fulcio: { caPath: '/ca', oidcIssuer: 'i', subjectEmail: 'e' },
        rekorPublicKeyPath: '/r',
      }),
      /exactly one of keyPath/,
    ],
    [
      'fulcio without Rekor',
      sigstore({ fulcio: { caPath: '/ca', oidcIssuer: 'i', subjectEmail: 'e' } }),
      /must be specified if fulcio is used/,
    ],
    [
      'fulcio without a CA',
      sigstore({ fulcio: { oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }),
      /At least one of caPath and caData must be specified/,
    ],
    [
      'fulcio with two CAs',
      sigstore({ fulcio: { caPath: '/ca', caData: '', oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }),
      /caPath and caData cannot be used simultaneously/,
    ],
    [
      'fulcio without an issuer',
      sigstore({ fulcio: { caPath: '/ca', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }),
      /oidcIssuer not specified/,
    ],
    [
      'fulcio without an e-mail',
      sigstore({ fulcio: { caPath: '/ca', oidcIssuer: 'i' }, rekorPublicKeyPath: '/r' }),
      /subjectEmail not specified/,
    ],
    [
      'fulcio with an unknown field',
      sigstore({ fulcio: { caPath: '/ca', oidcIssuer: 'i', subjectEmail: 'e', x: 1 }, rekorPublicKeyPath: '/r' }),
      /Unknown key "x"/,
    ],
    [
      'two Rekor key sources',
      sigstore({ keyPath: '/k', rekorPublicKeyPath: '/r', rekorPublicKeyData: b64(EC_PEM) }),
      /at most one of rekorPublickeyPath/,
    ],
    [
      'an empty rekorPublicKeyPaths',
      sigstore({ keyPath: '/k', rekorPublicKeyPaths: [] }),
      /"rekorPublickeyPaths" contains no entries/,
    ],
    [
      'pki with Rekor',
      sigstore({ pki: { caRootsPath: '/ca', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }),
      /not supported for pki/,
    ],
    [
      'pki without roots',
      sigstore({ pki: { subjectEmail: 'e' } }),
      /At least one of caRootsPath and caRootsData must be specified/,
    ],
    [
      'pki without a subject',
      sigstore({ pki: { caRootsPath: '/ca' } }),
      /At least one of subjectEmail, subjectHostname must be specified/,
    ],
    [
      'pki with two intermediates',
      sigstore({ pki: { caRootsPath: '/ca', caIntermediatesPath: '/i', caIntermediatesData: '', subjectEmail: 'e' } }),
      /caIntermediatesPath and caIntermediatesData cannot be used simultaneously/,
    ],
    ['an unknown sigstoreSigned field', sigstore({ keyPath: '/k', rekorURL: 'x' }), /Unknown key "rekorURL"/],
    [
      'a dir scope that is not absolute',
      { default: [{ type: 'reject' }], transports: { dir: { srv: [{ type: 'reject' }] } } },
      /Unknown key "srv" \(Invalid scope srv: Must be an absolute path\)/,
    ],
    [
      'a docker-archive scope',
      { default: [{ type: 'reject' }], transports: { 'docker-archive': { '/x.tar': [{ type: 'reject' }] } } },
      /does not support any scopes/,
    ],
    [
      'a bad requirement under another transport',
      { default: [{ type: 'reject' }], transports: { oci: { '/x': [{ type: 'nope' }] } } },
      /Unknown policy requirement type "nope"/,
    ],
    [
      'a repeated scope',
      '{"default":[{"type":"reject"}],"transports":{"docker":{"a.io":[{"type":"reject"}],"a.io":[{"type":"reject"}]}}}',
      /Duplicate key "a.io"/,
    ],
  ]
  for (const [name, policy, problem] of table) {
    t.throws(() => parse(policy), { code: 'PolicyInvalid', file: FILE, message: problem }, name)
  }
})

t.test('sigstore trust roots load when read, and fail each signature when they do not', async (t) => {
  const table: Array<[string, Record<string, unknown>, number, string | undefined]> = [
    ['an EC key file', { keyPath: '/etc/pki/cosign.pub' }, 1, undefined],
    ['an RSA PKCS#1 key file', { keyPath: '/etc/pki/rsa.pub' }, 1, undefined],
    ['keyData', { keyData: b64(EC_PEM) }, 1, undefined],
    ['keyDatas', { keyDatas: [b64(EC_PEM), b64(RSA_PKCS1_PEM)] }, 2, undefined],
    ['keyPaths', { keyPaths: ['/etc/pki/cosign.pub', '/etc/pki/rsa.pub'] }, 2, undefined],
    ['only the first PEM block of a file counts', { keyPath: '/etc/pki/two.pub' }, 1, undefined],
    ['a missing file', { keyPath: '/etc/pki/missing.pub' }, 0, 'open /etc/pki/missing.pub: no such file or directory'],
    ['a file that is no PEM', { keyPath: '/etc/pki/garbage.pub' }, 0, 'parsing public key 1: PEM decoding failed'],
    [
      'a certificate where a key belongs',
      { keyPaths: ['/etc/pki/cosign.pub', '/etc/pki/cert.pem'] },
      0,
      'parsing public key 2: unknown Public key PEM file type: CERTIFICATE. Are you passing the correct public key?',
    ],
    ['an empty keyData', { keyData: '' }, 0, 'parsing public key 1: PEM decoding failed'],
    [
      'files are all read before any is parsed',
      { keyPaths: ['/etc/pki/garbage.pub', '/etc/pki/missing.pub'] },
      0,
      'open /etc/pki/missing.pub: no such file or directory',
    ],
    [
      'a Rekor key that is not ECDSA',
      { keyPath: '/etc/pki/cosign.pub', rekorPublicKeyPath: '/etc/pki/rsa.pub' },
      0,
      'Rekor public key 1 is not using ECDSA',
    ],
    [
      'a Fulcio CA file without certificates',
      {
        fulcio: { caPath: '/etc/pki/cosign.pub', oidcIssuer: 'i', subjectEmail: 'e' },
        rekorPublicKeyPath: '/etc/pki/cosign.pub',
      },
      0,
      'error loading Fulcio CA certificates',
    ],
    [
      'PKI roots that do not parse',
      { pki: { caRootsPath: '/etc/pki/cert.pem', subjectEmail: 'e' } },
      0,
      'error loading PKI CA Roots certificates',
    ],
  ]
  for (const [name, fields, keys, problem] of table) {
    const req = only(parse(sigstore(fields)))
    t.same([req.keys.length, req.keyProblem], [keys, problem], name)
  }
  const fulcio = only(
    parse(sigstore({ fulcio: { caData: '', oidcIssuer: 'i', subjectEmail: 'e' }, rekorPublicKeyData: b64(EC_PEM) })),
  )
  t.same([fulcio.certificateBased, fulcio.rekor], ['fulcio', true], 'fulcio is certificate-based and needs Rekor')
  t.same(
    parse(
      sigstore({ keyPaths: ['/etc/pki/cosign.pub', '/etc/pki/missing.pub'], rekorPublicKeyPath: '/etc/pki/rsa.pub' }),
    ).keyFiles,
    ['/etc/pki/cosign.pub', '/etc/pki/missing.pub', '/etc/pki/rsa.pub'],
    'every configured file is watched, read or not',
  )
})
