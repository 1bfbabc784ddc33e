// suggestTags: which existing tags a TagNotFound denial names. Table-driven, with tag lists shaped
// like real repositories (nginx, python) and the cases where the right answer is nothing.
import t from 'tap'
import {
  digitLookalikes,
  osaDistance,
  parseVersion,
  sameDigitRuns,
  suggestTags,
  typoLimit,
} from '../../src/policy/tag-suggestions.js'

const NGINX = [
  'latest',
  'mainline',
  'stable',
  'alpine',
  'alpine-slim',
  'perl',
  'mainline-alpine',
  'stable-alpine',
  'stable-perl',
  '1',
  '1.25',
  '1.25.0',
  '1.25.1',
  '1.25.2',
  '1.25.3',
  '1.25.4',
  '1.24',
  '1.24.0',
  '1.25-alpine',
  '1.25.2-alpine',
  '1.25.3-alpine',
  '1.25.4-alpine',
  '1.25.3-alpine3.18',
  '1.25.3-alpine-slim',
  '1.25.3-perl',
]
const PYTHON = [
  '3',
  '3.12',
  '3.12.0',
  '3.12.1',
  '3.11',
  '3.11.7',
  'slim',
  'slim-bookworm',
  'bookworm',
  '3.12-slim-bookworm',
  '3.12.0-slim-bookworm',
  '3.12.1-slim-bookworm',
  '3.11.7-slim-bookworm',
  '3.12.1-slim',
  '3.12.1-bookworm',
]
const without = (list: readonly string[], ...gone: string[]): string[] => list.filter((tag) => !gone.includes(tag))

const rows: Array<[name: string, wanted: string, existing: readonly string[], expected: string[]]> = [
  // version-aware
  [
    'a missing patch: the nearest lower, the line, the nearest higher',
    '1.25.3',
    without(NGINX, '1.25.3'),
    ['1.25.2', '1.25', '1.25.4'],
  ],
  ['an unreleased patch: the newest of the line first', '1.25.5', NGINX, ['1.25.4', '1.25', '1.25.3']],
  [
    'a missing patch in the -alpine family stays in the family',
    '1.25.3-alpine',
    without(NGINX, '1.25.3-alpine'),
    ['1.25.2-alpine', '1.25-alpine', '1.25.4-alpine'],
  ],
  ['family match ignores case', '1.25.3-Alpine', ['1.25.2-alpine', '1.25.2'], ['1.25.2-alpine']],
  ['an unreleased minor: the line below and the major', '1.26', NGINX, ['1.25', '1', '1.25.4']],
  ['an unreleased x.y.0', '1.26.0', NGINX, ['1.25', '1', '1.25.4']],
  ['a patch between lines: its own line before the next one', '1.24.1', NGINX, ['1.24.0', '1.24', '1.25']],
  [
    'a missing floating minor: its members, newest first',
    '1.25',
    without(NGINX, '1.25'),
    ['1.25.4', '1.25.3', '1.25.2'],
  ],
  [
    'a missing floating major: its lines, newest first',
    '1',
    ['2', '1.24', '1.25', '1.25.4'],
    ['1.25', '1.24', '1.25.4'],
  ],
  ['a long number typed wrong is judged as a version', '1.25.30', NGINX, ['1.25.4', '1.25', '1.25.3']],
  [
    'python: suffix family with two parts',
    '3.12.2-slim-bookworm',
    PYTHON,
    ['3.12.1-slim-bookworm', '3.12-slim-bookworm', '3.12.0-slim-bookworm'],
  ],
  [
    'v-prefixed family, plus the same version without the v',
    'v1.2.2',
    ['v1.2.0', 'v1.2.1', 'v1.3.0', 'v2.0.0', '1.2.2'],
    ['1.2.2', 'v1.2.1', 'v1.2.0'],
  ],
  ['never the wanted tag itself', '1.25.4', NGINX, ['1.25.3', '1.25', '1.25.2']],
  ['lower before higher at the same distance', '2.5', ['2.4', '2.6'], ['2.4', '2.6']],
  ['four components', '1.2.3.5', ['1.2.3.4', '1.2.3', '1.2.3.9'], ['1.2.3.4', '1.2.3', '1.2.3.9']],
  // typo-aware
  ['a letter missing', 'lates', NGINX, ['latest']],
  ['two letters swapped', 'stabel', NGINX, ['stable']],
  ['case only', 'Latest', NGINX, ['latest']],
  ['a letter missing, longer word', 'mainlin', NGINX, ['mainline']],
  ['a typo in a compound tag', 'stable-alpin', NGINX, ['stable-alpine']],
  ['a typo in the suffix keeps the exact version', '1.25.3-alpne', NGINX, ['1.25.3-alpine']],
  ['a swap in the suffix', '3.12.1-slim-bookwrom', PYTHON, ['3.12.1-slim-bookworm']],
  ['a v added', 'v1.25.3', NGINX, ['1.25.3']],
  [
    'the same version spelled otherwise comes before other versions',
    '1.25.3',
    ['1.25.2', 'v1.25.3', '1.25'],
    ['v1.25.3', '1.25.2', '1.25'],
  ],
  ['several typos ranked by distance, then by name', 'alpne', ['alpine', 'alpines', 'Alpne'], ['Alpne', 'alpine']],
  ['duplicates in the list are named once', 'lates', ['latest', 'latest', 'latest'], ['latest']],
  ['a commit id differing only in case', 'ABC1234', ['abc1234', 'abc1235'], ['abc1234']],
  ['a letter l typed for the digit 1', '2.4.l', ['2.4.0', '2.4.1', '2.5.0'], ['2.4.1', '2.4.0', '2.5.0']],
  ['a letter O typed for the digit 0', '1.2O', ['1.20', '1.21', '1.2'], ['1.20', '1.21', '1.2']],
  [
    'a look-alike inside a suffixed version',
    'v1.O.3-alpine',
    ['v1.0.3-alpine', 'v1.0.2-alpine'],
    ['v1.0.3-alpine', 'v1.0.2-alpine'],
  ],
  // nothing is better than a wrong suggestion
  ['a major that does not exist', 'v9', ['latest', '1.0'], []],
  ['another major, even the only versions there are', '3.0', ['2.9', '4.0', '2'], []],
  ['a major absent from nginx', '2', NGINX, []],
  ['a major absent from nginx, full version', '2.0.0', NGINX, []],
  ['latest where the repository has none', 'latest', ['1.0', '2.0', 'stable', 'edge'], []],
  ['too short to judge a typo', 'lts', ['latest', 'lst', 'lt'], []],
  ['one character off in a two-character tag', 'v1', ['v2', '1'], []],
  ['another commit is not a typo', '3f2a1b9', ['3f2a1b8', '3f2a1ba', '3f2a1b'], []],
  ['another commit behind a prefix is not a typo', 'sha-3f2a1b9', ['sha-3f2a1b8', 'sha-3f2a1bb'], []],
  ['other builds are not versions', 'build-123', ['build-122', 'build-124'], []],
  ['other dates are not versions', '20240102', ['20240101', '20240103'], []],
  ['a changed number is not a typo', 'py3', ['py2', 'py'], []],
  ['moved dots are not a typo', '1.25.3', ['12.5.3', '125.3'], []],
  ['another family entirely', '1.25.3-alpine', ['1.25.2-perl', '1.25.2', 'alpine'], []],
  ['an empty list', 'latest', [], []],
  ['an invalid wanted tag', '-latest', ['latest'], []],
  ['an empty wanted tag', '', ['latest'], []],
]

for (const [name, wanted, existing, expected] of rows) {
  t.test(`${name}: ${JSON.stringify(wanted)} → ${JSON.stringify(expected)}`, async (t) => {
    t.same(suggestTags(wanted, existing), expected)
    t.same(suggestTags(wanted, [...existing].reverse()), expected, 'the order of the list does not matter')
  })
}

t.test('tags beyond the first 10 000 are not read', async (t) => {
  const tags = Array.from({ length: 10_000 }, (_, i) => `x${i}`)
  t.same(suggestTags('lates', [...tags, 'latest']), [])
  t.same(suggestTags('lates', ['latest', ...tags]), ['latest'])
})

t.test('at most `max` suggestions, none for max 0', async (t) => {
  t.same(suggestTags('1.25.5', NGINX, 1), ['1.25.4'])
  t.same(suggestTags('1.25.5', NGINX, 5), ['1.25.4', '1.25', '1.25.3', '1.25.2', '1.25.1'])
  t.same(suggestTags('1.25.5', NGINX, 0), [])
})

const typoRows: Array<[number, number]> = [
  [1, 0],
  [3, 0],
  [4, 1],
  [5, 1],
  [6, 2],
  [9, 2],
  [10, 3],
  [128, 3],
]
for (const [length, limit] of typoRows) {
  t.test(`a ${length}-character tag allows ${limit} edits`, async (t) => t.equal(typoLimit(length), limit))
}

const distanceRows: Array<[string, string, number, number]> = [
  ['kitten', 'sitting', 3, 3],
  ['stabel', 'stable', 2, 1],
  ['lates', 'latest', 1, 1],
  ['ca', 'abc', 3, 3], // optimal string alignment, not unrestricted Damerau-Levenshtein (2)
  ['abc', 'abc', 0, 0],
  ['abc', 'abd', 0, 1],
  ['abcdef', 'badcfe', 3, 3],
  ['abcdef', 'ghijkl', 2, 3],
  ['', 'ab', 2, 2],
  ['a'.repeat(128), 'a'.repeat(127) + 'b', 3, 1],
]
for (const [a, b, limit, expected] of distanceRows) {
  t.test(
    `osaDistance(${JSON.stringify(a.slice(0, 12))}, ${JSON.stringify(b.slice(0, 12))}, ${limit}) = ${expected}`,
    async (t) => {
      t.equal(osaDistance(a, b, limit), expected)
      t.equal(osaDistance(b, a, limit), expected, 'symmetric')
    },
  )
}

/** The textbook full-table algorithm, to check the banded one with trimmed ends against. */
function referenceOsa(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1)
      d[i]![j] = v
    }
  }
  return at(a.length, b.length)
}

t.test('the banded distance agrees with the full table on 3000 random pairs', async (t) => {
  let seed = 42
  const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n
  const word = (): string => Array.from({ length: random(9) }, () => 'abc'[random(3)]).join('')
  let mismatches = 0
  for (let k = 0; k < 3000; k++) {
    const a = word()
    const b =
      random(2) === 0 ? word() : a.slice(0, random(a.length + 1)) + 'abc'[random(3)] + a.slice(random(a.length + 1))
    const limit = random(4)
    if (osaDistance(a, b, limit) !== Math.min(referenceOsa(a, b), limit + 1)) mismatches++
  }
  t.equal(mismatches, 0)
})

const runRows: Array<[string, string, boolean]> = [
  ['1.25.3', 'v1.25.3', true],
  ['1.25.3-alpne', '1.25.3-alpine', true],
  ['1.25.3', '12.5.3', false],
  ['3f2a1b9', '3f2a1b8', false],
  ['latest', 'stable', true],
  ['py3', 'py', false],
  ['1.2', '1.2.0', false],
]
for (const [a, b, same] of runRows) {
  t.test(`digit runs of ${a} and ${b} ${same ? 'agree' : 'differ'}`, async (t) => t.equal(sameDigitRuns(a, b), same))
}

t.test('versions: prefix, numbers, suffix', async (t) => {
  t.same(parseVersion('v1.2.3'), { prefixEnd: 1, suffixStart: 6, nums: [1, 2, 3] })
  t.same(parseVersion('1.25-alpine3.18'), { prefixEnd: 0, suffixStart: 4, nums: [1, 25] })
  t.same(parseVersion('1.'), { prefixEnd: 0, suffixStart: 1, nums: [1] })
  t.equal(parseVersion('latest'), undefined)
  t.equal(parseVersion('1234567890123456'), undefined, 'a 16-digit run is an id, not a version')
})

t.test('10 000 realistic tags take a few ms', async (t) => {
  const suffixes = ['', '-alpine', '-slim', '-bookworm', '-alpine3.18']
  const tags = ['latest', 'stable', 'mainline']
  for (let i = 0; tags.length < 10_000; i++)
    tags.push(`${1 + (i % 3)}.${Math.floor(i / 50) % 60}.${i % 10}${suffixes[i % 5]}`)
  t.same(suggestTags('lates', tags), ['latest'])
  suggestTags('2.30.7-alpine', tags) // warm up
  const started = performance.now()
  for (let k = 0; k < 10; k++) suggestTags('2.30.7-alpine', tags)
  const ms = (performance.now() - started) / 10
  t.ok(ms < 25, `${ms.toFixed(1)} ms per call`)
})

t.test('a hostile list of long near-identical tags is bounded too', async (t) => {
  const base = 'abcdefghij'.repeat(13)
  const tags = Array.from({ length: 10_000 }, (_, i) =>
    base.slice(0, 124 + (i % 5)).replace(/./g, (c, j: number) => (j === i % 124 ? 'z' : c)),
  )
  suggestTags(base.slice(0, 126), tags)
  const started = performance.now()
  const result = suggestTags(base.slice(0, 126), tags)
  const ms = performance.now() - started
  t.ok(result.length <= 3)
  t.ok(ms < 75, `${ms.toFixed(1)} ms`)
})

t.test('digitLookalikes: only letters standing among digits', async (t) => {
  const cases: Array<[string, string]> = [
    ['2.4.l', '2.4.1'],
    ['1.2O', '1.20'],
    ['v1.O.3-alpine', 'v1.0.3-alpine'],
    ['3.l2.0', '3.12.0'],
    ['latest', 'latest'],
    ['1.25-lts', '1.25-lts'],
    ['stable-alpine', 'stable-alpine'],
    ['l.2', 'l.2'],
    ['Octo', 'Octo'],
    ['1.0-lo', '1.0-lo'],
  ]
  for (const [input, want] of cases) t.equal(digitLookalikes(input), want, input)
})
