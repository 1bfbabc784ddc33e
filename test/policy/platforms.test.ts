// Platform parsing, containerd's normalization and matching, scheduling narrowing, and the verdict.
import t from 'tap'
import {
  formatPlatform,
  isAttestation,
  judgePlatforms,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  podPlatforms,
  type Platform,
  type SchedulingConstraints,
} from '../../src/policy/platforms.js'

/** `os/arch[/variant]` written without normalization, for tables. */
function p(s: string): Platform {
  const [os = '', architecture = '', variant] = s.split('/')
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

const parsed: Array<[string, Platform]> = [
  ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
  ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }],
  ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
  ['linux/arm64/v8.2', { os: 'linux', architecture: 'arm64', variant: 'v8.2' }],
  ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
  ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }],
  ['linux/arm/6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
  ['Linux/X86_64', { os: 'linux', architecture: 'amd64' }],
  ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
  ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
  ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }],
  ['linux/i386', { os: 'linux', architecture: '386' }],
  ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
  ['linux/s390x', { os: 'linux', architecture: 's390x' }],
  [' linux/ppc64le ', { os: 'linux', architecture: 'ppc64le' }],
]
for (const [input, expected] of parsed) {
  t.test(`parsePlatform(${JSON.stringify(input)})`, async (t) => {
    t.same(parsePlatform(input), expected)
  })
}

const unparsable: Array<[string, RegExp]> = [
  ['', /expected os\/architecture/],
  ['linux', /expected os\/architecture/],
  ['amd64', /expected os\/architecture/],
  ['linux/amd64/v1/extra', /expected os\/architecture/],
  ['linux/', /"" is not a valid component/],
  ['/amd64', /"" is not a valid component/],
  ['linux/*', /"\*" is not a valid component/],
  ['linux/amd 64', /not a valid component/],
  ['linux/amd46', /unknown architecture "amd46"/],
  ['lnux/amd64', /unknown operating system "lnux"/],
  ['unknown/unknown', /unknown operating system/],
]
for (const [input, message] of unparsable) {
  t.test(`parsePlatform(${JSON.stringify(input)}) throws`, async (t) => {
    t.throws(() => parsePlatform(input), { message })
    try {
      parsePlatform(input)
    } catch (err) {
      t.ok((err as Error).message.startsWith(`invalid platform ${JSON.stringify(input)}: `), 'names the value as given')
    }
  })
}

// containerd database.go normalizeArch, case by case.
const normalized: Array<[string, string]> = [
  ['linux/x86_64', 'linux/amd64'],
  ['linux/x86-64', 'linux/amd64'],
  ['linux/amd64/v1', 'linux/amd64'],
  ['linux/amd64/v3', 'linux/amd64/v3'],
  ['linux/i386/whatever', 'linux/386'],
  ['linux/aarch64', 'linux/arm64'],
  ['linux/arm64/8', 'linux/arm64'],
  ['linux/arm64/v8.0', 'linux/arm64'],
  ['linux/arm64/9.0', 'linux/arm64/v9'],
  ['linux/arm64/V8', 'linux/arm64'],
  ['linux/armhf', 'linux/arm/v7'],
  ['linux/armel', 'linux/arm/v6'],
  ['linux/arm', 'linux/arm/v7'],
  ['linux/arm/7', 'linux/arm/v7'],
  ['linux/arm/5', 'linux/arm/v5'],
  ['linux/arm/8', 'linux/arm/v8'],
  ['LINUX/AMD64', 'linux/amd64'],
  ['macos/arm64', 'darwin/arm64'],
  ['unknown/unknown', 'unknown/unknown'],
]
for (const [input, expected] of normalized) {
  t.test(`normalizePlatform(${input}) is ${expected}`, async (t) => {
    t.equal(formatPlatform(normalizePlatform(p(input))), expected)
  })
}

// [node, index entry, does the node pull it] — containerd platforms.Only(node).Match(entry).
const matches: Array<[string, string, boolean]> = [
  ['linux/amd64', 'linux/amd64', true],
  ['linux/amd64', 'LINUX/X86_64', true],
  ['linux/amd64', 'linux/amd64/v1', true],
  ['linux/amd64', 'linux/386', true],
  ['linux/amd64', 'linux/amd64/v2', false],
  ['linux/amd64/v3', 'linux/amd64/v2', true],
  ['linux/amd64/v3', 'linux/386', true],
  ['linux/386', 'linux/amd64', false],
  ['linux/amd64', 'linux/arm64', false],
  ['linux/amd64', 'windows/amd64', false],
  ['windows/amd64', 'linux/amd64', false],
  ['linux/arm64', 'linux/arm64/v8', true],
  ['linux/arm64/v8', 'linux/arm64', true],
  ['linux/arm64', 'linux/aarch64', true],
  ['linux/arm64', 'linux/arm64/v8.2', false],
  ['linux/arm64/v8.2', 'linux/arm64/v8.1', true],
  ['linux/arm64/v8.2', 'linux/arm64', true],
  ['linux/arm64/v8.2', 'linux/arm64/v8.3', false],
  ['linux/arm64/v9', 'linux/arm64/v8.5', true],
  ['linux/arm64/v9', 'linux/arm64/v8.6', false],
  ['linux/arm64/v9', 'linux/arm64', true],
  ['linux/arm64/v9.2', 'linux/arm64/v9.1', true],
  ['linux/arm64/v9.2', 'linux/arm64/v9', true],
  ['linux/arm64/v9.2', 'linux/arm64/v8.7', true],
  ['linux/arm64/v9.2', 'linux/arm64/v8.8', false],
  ['linux/arm64', 'linux/arm64/v9', false],
  // containerd's default matcher lets arm64 nodes pull 32-bit arm images.
  ['linux/arm64', 'linux/arm/v8', true],
  ['linux/arm64', 'linux/arm/v7', true],
  ['linux/arm64', 'linux/arm', true],
  ['linux/arm64', 'linux/arm/v5', true],
  ['linux/arm/v7', 'linux/arm64', false],
  ['linux/arm/v7', 'linux/arm/v6', true],
  ['linux/arm/v7', 'linux/arm/v5', true],
  ['linux/arm/v7', 'linux/armhf', true],
  ['linux/arm/v7', 'linux/arm/v8', false],
  ['linux/arm/v6', 'linux/arm', false],
  ['linux/arm/v6', 'linux/armel', true],
  ['linux/arm/v5', 'linux/arm/v6', false],
  ['linux/amd64', 'unknown/unknown', false],
  ['linux/s390x', 'linux/s390x', true],
  ['linux/ppc64le', 'linux/ppc64', false],
]
for (const [node, entry, expected] of matches) {
  t.test(`a ${node} node ${expected ? 'pulls' : 'does not pull'} a ${entry} entry`, async (t) => {
    t.equal(platformMatches(p(node), p(entry)), expected)
  })
}

t.test('isAttestation: unknown/unknown only, in any case', async (t) => {
  t.ok(isAttestation(p('unknown/unknown')))
  t.ok(isAttestation(p('Unknown/UNKNOWN')))
  t.notOk(isAttestation(p('linux/unknown')))
  t.notOk(isAttestation(p('unknown/amd64')))
})

t.test('formatPlatform writes the variant only when there is one', async (t) => {
  t.equal(formatPlatform(p('linux/arm/v7')), 'linux/arm/v7')
  t.equal(formatPlatform(p('linux/amd64')), 'linux/amd64')
  t.equal(formatPlatform({ os: 'linux', architecture: 'amd64', variant: '' }), 'linux/amd64')
})

const CLUSTER = ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'].map(p)
type Expr = SchedulingConstraints['nodeSelectorTerms'][number]['matchExpressions'][number]
const sel = (nodeSelector: Record<string, string>): SchedulingConstraints => ({ nodeSelector, nodeSelectorTerms: [] })
const terms = (...ts: Expr[][]): SchedulingConstraints => ({
  nodeSelector: {},
  nodeSelectorTerms: ts.map((matchExpressions) => ({ matchExpressions })),
})
const expr = (key: string, operator: string, values?: string[]): Expr =>
  values === undefined ? { key, operator } : { key, operator, values }

const narrowing: Array<[string, SchedulingConstraints, string[]]> = [
  ['no constraints: every cluster platform', sel({}), ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64']],
  ['nodeSelector kubernetes.io/arch', sel({ 'kubernetes.io/arch': 'arm64' }), ['linux/arm64']],
  [
    'nodeSelector kubernetes.io/os',
    sel({ 'kubernetes.io/os': 'linux' }),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
  ],
  [
    'nodeSelector os and arch',
    sel({ 'kubernetes.io/os': 'windows', 'kubernetes.io/arch': 'amd64' }),
    ['windows/amd64'],
  ],
  ['legacy beta.kubernetes.io/arch', sel({ 'beta.kubernetes.io/arch': 'amd64' }), ['linux/amd64', 'windows/amd64']],
  ['legacy beta.kubernetes.io/os', sel({ 'beta.kubernetes.io/os': 'windows' }), ['windows/amd64']],
  ['the arm label value has no variant', sel({ 'kubernetes.io/arch': 'arm' }), ['linux/arm/v7']],
  ['label values are compared as the node has them, not normalized', sel({ 'kubernetes.io/arch': 'x86_64' }), []],
  [
    'other nodeSelector keys do not narrow',
    sel({ disktype: 'ssd', 'node.kubernetes.io/instance-type': 'm7g.large' }),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  [
    'affinity In',
    terms([expr('kubernetes.io/arch', 'In', ['amd64', 'arm64'])]),
    ['linux/amd64', 'linux/arm64', 'windows/amd64'],
  ],
  ['affinity NotIn', terms([expr('kubernetes.io/arch', 'NotIn', ['arm', 'arm64'])]), ['linux/amd64', 'windows/amd64']],
  [
    'affinity Exists',
    terms([expr('kubernetes.io/arch', 'Exists')]),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  ['affinity DoesNotExist on a label every kubelet sets', terms([expr('kubernetes.io/os', 'DoesNotExist')]), []],
  [
    'affinity DoesNotExist on a beta label does not narrow',
    terms([expr('beta.kubernetes.io/os', 'DoesNotExist')]),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  ['affinity on the beta arch label', terms([expr('beta.kubernetes.io/arch', 'In', ['arm'])]), ['linux/arm/v7']],
  [
    'terms are ORed',
    terms([expr('kubernetes.io/arch', 'In', ['arm64'])], [expr('kubernetes.io/os', 'In', ['windows'])]),
    ['linux/arm64', 'windows/amd64'],
  ],
  [
    'expressions in a term are ANDed',
    terms([expr('kubernetes.io/os', 'In', ['linux']), expr('kubernetes.io/arch', 'NotIn', ['amd64'])]),
    ['linux/arm64', 'linux/arm/v7'],
  ],
  [
    'expressions on other keys do not narrow',
    terms([expr('topology.kubernetes.io/zone', 'In', ['eu-west-1a']), expr('kubernetes.io/arch', 'In', ['arm64'])]),
    ['linux/arm64'],
  ],
  [
    'a term only on other keys keeps every platform',
    terms([expr('kubernetes.io/arch', 'In', ['arm64'])], [expr('disktype', 'In', ['ssd'])]),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  [
    'a term without expressions (matchFields only) keeps every platform',
    terms([]),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  [
    'Gt / Lt do not narrow',
    terms([expr('kubernetes.io/arch', 'Gt', ['1'])]),
    ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'windows/amd64'],
  ],
  ['In without values matches nothing', terms([expr('kubernetes.io/arch', 'In')]), []],
  [
    'nodeSelector and affinity together',
    {
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      nodeSelectorTerms: [{ matchExpressions: [expr('kubernetes.io/arch', 'In', ['amd64', 'arm'])] }],
    },
    ['linux/amd64', 'linux/arm/v7'],
  ],
]
for (const [name, constraints, expected] of narrowing) {
  t.test(`podPlatforms: ${name}`, async (t) => {
    t.same(podPlatforms(CLUSTER, constraints).map(formatPlatform), expected)
  })
}

t.test('podPlatforms normalizes and deduplicates the cluster platforms', async (t) => {
  t.same(
    podPlatforms(['linux/x86_64', 'linux/amd64', 'linux/aarch64', 'linux/arm64/v8'].map(p), sel({})).map(
      formatPlatform,
    ),
    ['linux/amd64', 'linux/arm64'],
  )
  t.same(podPlatforms(['linux/aarch64'].map(p), sel({ 'kubernetes.io/arch': 'arm64' })).map(formatPlatform), [
    'linux/arm64',
  ])
})

t.test('podPlatforms of an unknown cluster is empty', async (t) => {
  t.same(podPlatforms([], sel({ 'kubernetes.io/arch': 'arm64' })), [])
})

// [index, candidates, verdict, missing, available]
const judged: Array<[string, string[], string[], 'ok' | 'some' | 'none', string[], string[]]> = [
  [
    'every candidate has an entry',
    ['linux/amd64', 'linux/arm64'],
    ['linux/amd64', 'linux/arm64'],
    'ok',
    [],
    ['linux/amd64', 'linux/arm64'],
  ],
  [
    'only part of the candidates',
    ['linux/amd64'],
    ['linux/amd64', 'linux/arm64'],
    'some',
    ['linux/arm64'],
    ['linux/amd64'],
  ],
  ['no candidate', ['linux/arm64'], ['linux/amd64'], 'none', ['linux/amd64'], ['linux/arm64']],
  [
    'attestation entries never count',
    ['linux/amd64', 'unknown/unknown'],
    ['linux/arm64'],
    'none',
    ['linux/arm64'],
    ['linux/amd64'],
  ],
  ['an index of attestations only', ['unknown/unknown'], ['linux/amd64'], 'none', ['linux/amd64'], []],
  ['unknown cluster', ['linux/arm64'], [], 'ok', [], ['linux/arm64']],
  ['arm64 nodes pull a 32-bit arm entry', ['linux/arm/v7'], ['linux/arm64'], 'ok', [], ['linux/arm/v7']],
  ['amd64 nodes pull a 386 entry', ['linux/386'], ['linux/amd64'], 'ok', [], ['linux/386']],
  ['arm64/v8 in the index is arm64', ['linux/arm64/v8'], ['linux/arm64'], 'ok', [], ['linux/arm64']],
  [
    'an arm/v6 node cannot pull arm/v7',
    ['linux/arm/v7', 'linux/amd64'],
    ['linux/arm/v6', 'linux/amd64'],
    'some',
    ['linux/arm/v6'],
    ['linux/arm/v7', 'linux/amd64'],
  ],
  [
    'duplicates and aliases in the index are listed once',
    ['linux/x86_64', 'linux/amd64', 'linux/amd64'],
    ['linux/amd64'],
    'ok',
    [],
    ['linux/amd64'],
  ],
  [
    'a Windows-only index on Linux nodes',
    ['windows/amd64'],
    ['linux/amd64'],
    'none',
    ['linux/amd64'],
    ['windows/amd64'],
  ],
]
for (const [name, index, candidates, verdict, missing, available] of judged) {
  t.test(`judgePlatforms: ${name} → ${verdict}`, async (t) => {
    const r = judgePlatforms(index.map(p), candidates.map(p))
    t.same(
      { verdict: r.verdict, missing: r.missing.map(formatPlatform), available: r.available.map(formatPlatform) },
      { verdict, missing, available },
    )
  })
}
