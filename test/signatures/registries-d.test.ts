// registries.d as containers-image reads it: namespaces matched like policy scopes, a namespace that
// leaves a setting out passing the search on, default-docker last, and the files it refuses.
import t from 'tap'
import { parseReference } from '../../src/reference/index.js'
import { lookaside, parseRegistriesD, useSigstoreAttachments } from '../../src/signatures/registries-d.js'

const DIR = '/etc/containers/registries.d'
const DEFAULT_YAML = `
default-docker:
  lookaside: file:///var/lib/containers/sigstore
`
const QUAY_YAML = `
docker:
  quay.io:
    use-sigstore-attachments: true
  quay.io/legacy:
    use-sigstore-attachments: false
    sigstore: https://sigs.example/legacy
  quay.io/ns/app:1:
    lookaside: https://sigs.example/pinned
  quay.io/quiet:
    lookaside-staging: file:///tmp/staging
  "*.internal":
    use-sigstore-attachments: yes
    unknown-key: ignored
  registry.example:
`
const d = parseRegistriesD([
  { file: `${DIR}/default.yaml`, text: DEFAULT_YAML },
  { file: `${DIR}/quay.yaml`, text: QUAY_YAML },
])

t.test('sigstore attachments: the most specific namespace that says, else default-docker, else no', async (t) => {
  const table: Array<[string, boolean]> = [
    ['quay.io/ns/app:1', true],
    ['quay.io/legacy/app', false],
    ['quay.io/quiet/app', true], // matched, but silent about attachments: quay.io decides
    ['cache.internal/app', true],
    ['registry.example/app', false],
    ['docker.io/library/nginx', false],
  ]
  for (const [ref, want] of table) t.equal(useSigstoreAttachments(d, parseReference(ref)), want, ref)
  const withDefault = parseRegistriesD([
    { file: `${DIR}/all.yaml`, text: 'default-docker:\n  use-sigstore-attachments: true\n' },
  ])
  t.equal(useSigstoreAttachments(withDefault, parseReference('ghcr.io/o/a')), true, 'default-docker')
})

t.test('lookaside: the most specific namespace with one, the deprecated sigstore key too', async (t) => {
  const table: Array<[string, string | undefined]> = [
    ['quay.io/ns/app:1', 'https://sigs.example/pinned'],
    ['quay.io/ns/app:2', 'file:///var/lib/containers/sigstore'],
    ['quay.io/legacy/x', 'https://sigs.example/legacy'],
    ['quay.io/quiet/x', 'file:///var/lib/containers/sigstore'], // staging is for writing
  ]
  for (const [ref, want] of table) t.equal(lookaside(d, parseReference(ref)), want, ref)
  t.equal(lookaside(parseRegistriesD([]), parseReference('nginx')), undefined, 'nothing configured')
})

t.test('what a file may hold', async (t) => {
  const table: Array<[string, string, boolean | undefined]> = [
    ['empty', '', undefined],
    ['comments only', '# nothing\n', undefined],
    ['on/off spelling', 'docker:\n  a.io:\n    use-sigstore-attachments: on\n', true],
    ['False', 'docker:\n  a.io:\n    use-sigstore-attachments: False\n', false],
    ['null', 'docker:\n  a.io:\n    use-sigstore-attachments: null\n', undefined],
    ['a quoted YAML 1.1 spelling', 'docker:\n  a.io:\n    use-sigstore-attachments: "yes"\n', true],
    ['an explicit tag', 'docker:\n  a.io:\n    use-sigstore-attachments: !!bool true\n', true],
    ['a flow mapping', 'docker: {a.io: {use-sigstore-attachments: true}}\n', true],
    ['unknown top-level keys are ignored', 'other: 1\ndocker:\n  a.io:\n    use-sigstore-attachments: true\n', true],
    ['only the first document counts', 'docker:\n  a.io:\n    use-sigstore-attachments: true\n---\ndocker: {}\n', true],
  ]
  for (const [name, text, want] of table) {
    const parsed = parseRegistriesD([{ file: `${DIR}/x.yaml`, text }])
    t.equal(parsed.docker.get('a.io')?.useSigstoreAttachments, want, name)
  }
  t.same(
    parseRegistriesD([{ file: `${DIR}/x.yaml`, text: 'docker:\n  a.io:\n    lookaside: 123\n' }]).docker.get('a.io'),
    { lookaside: '123' },
    'any scalar is text for a string field',
  )
})

t.test('files it refuses', async (t) => {
  const table: Array<[string, Array<[string, string]>, string, RegExp]> = [
    [
      'default-docker twice',
      [
        ['a.yaml', DEFAULT_YAML],
        ['b.yaml', DEFAULT_YAML],
      ],
      'b.yaml',
      /"default-docker" defined both in "\/etc\/containers\/registries.d\/a.yaml" and "\/etc\/containers\/registries.d\/b.yaml"/,
    ],
    [
      'a namespace in two files',
      [
        ['a.yaml', 'docker:\n  quay.io:\n    lookaside: x\n'],
        ['b.yaml', 'docker:\n  quay.io:\n'],
      ],
      'b.yaml',
      /"docker" namespace "quay.io" defined both in/,
    ],
    [
      'not YAML',
      [['a.yaml', 'docker: [\n']],
      'a.yaml',
      /^\/etc\/containers\/registries.d\/a.yaml: parsing .*a.yaml: yaml: /,
    ],
    ['a repeated key', [['a.yaml', 'docker:\n  a.io: {}\n  a.io: {}\n']], 'a.yaml', /duplicated mapping key/],
    [
      'a bad boolean',
      [['a.yaml', 'docker:\n  a.io:\n    use-sigstore-attachments: maybe\n']],
      'a.yaml',
      /cannot unmarshal !!str `maybe` into bool/,
    ],
    [
      'a quoted "true" (yaml.v3 takes only YAML 1.1 spellings from quoted text)',
      [['a.yaml', 'docker:\n  a.io:\n    use-sigstore-attachments: "true"\n']],
      'a.yaml',
      /cannot unmarshal !!str `true` into bool/,
    ],
    [
      'docker a list',
      [['a.yaml', 'docker:\n  - a.io\n']],
      'a.yaml',
      /cannot unmarshal !!seq into map\[string\]docker.registryNamespace/,
    ],
    [
      'a lookaside mapping',
      [['a.yaml', 'docker:\n  a.io:\n    sigstore: {x: 1}\n']],
      'a.yaml',
      /cannot unmarshal !!map into string/,
    ],
    [
      'a top-level scalar',
      [['a.yaml', 'hello\n']],
      'a.yaml',
      /cannot unmarshal !!str `hello` into docker.registryConfiguration/,
    ],
  ]
  for (const [name, files, file, problem] of table) {
    t.throws(
      () => parseRegistriesD(files.map(([f, text]) => ({ file: `${DIR}/${f}`, text }))),
      { code: 'RegistriesDInvalid', file: `${DIR}/${file}`, message: problem },
      name,
    )
  }
})
