import t from 'tap'
import { LineCounter, parseDocument } from 'yaml'
import { fieldSteps } from '../../src/admission/pod-spec.js'
import { helmSource, positionIn, type FieldPath } from '../../src/check/positions.js'
import { data, property } from '../../src/check/workflow-commands.js'
import { cell, code, html, text } from '../../src/check/markdown.js'

const FIELDS: Array<[string, Array<string | number>]> = [
  ['spec.containers[0]', ['spec', 'containers', 0]],
  ['spec.template.spec.initContainers[12]', ['spec', 'template', 'spec', 'initContainers', 12]],
  [
    'spec.jobTemplate.spec.template.spec.ephemeralContainers[3]',
    ['spec', 'jobTemplate', 'spec', 'template', 'spec', 'ephemeralContainers', 3],
  ],
  ['spec.volumes[2].image', ['spec', 'volumes', 2, 'image']],
]
for (const [field, path] of FIELDS) t.test(`fieldSteps ${field}`, async (t) => t.same(fieldSteps(field), path))

const YAML = [
  'a:', //                       1
  '  list:', //                  2
  '    - name: x', //            3
  '      image: one', //         4
  '    - {name: y, image: two}', // 5
  '  dup: first', //             6
  '  dup: second', //            7
  '  "quoted": 1', //            8
  '  deep: &anchor', //          9
  '    image: three', //         10
  '  alias: *anchor', //         11
].join('\n')

const POSITIONS: Array<[string, FieldPath, { line: number; column: number } | undefined]> = [
  ['a block mapping key', ['a', 'list', 0, 'image'], { line: 4, column: 7 }],
  ['a flow mapping inside a block sequence', ['a', 'list', 1, 'image'], { line: 5, column: 17 }],
  ['a sequence item itself', ['a', 'list', 1], { line: 5, column: 7 }],
  ['a quoted key', ['a', 'quoted'], { line: 8, column: 3 }],
  ['a path that leaves the tree', ['a', 'list', 2, 'image'], undefined],
  ['a key that is not there', ['a', 'nope'], undefined],
  ['an index into a mapping', ['a', 0], undefined],
  ['a key under an alias has no line of its own', ['a', 'alias', 'image'], undefined],
]
for (const [what, path, want] of POSITIONS) {
  t.test(`positionIn: ${what}`, async (t) => {
    const lines = new LineCounter()
    const doc = parseDocument(YAML, { lineCounter: lines, uniqueKeys: false })
    t.same(positionIn(doc.contents, path, lines), want)
  })
}

t.test('positionIn: a key written twice is where the parser took its value, the last', async (t) => {
  const lines = new LineCounter()
  const doc = parseDocument(YAML, { lineCounter: lines, uniqueKeys: false })
  t.same(positionIn(doc.contents, ['a', 'dup'], lines), { line: 7, column: 3 })
})

const SOURCES: Array<[string, string | undefined]> = [
  ['---\n# Source: shop/templates/deployment.yaml\n', 'shop/templates/deployment.yaml'],
  ['# Source:   chart/charts/sub/templates/x.yaml  \n', 'chart/charts/sub/templates/x.yaml'],
  ['\n# a comment\n# Source: c/templates/y.yml\n', 'c/templates/y.yml'],
  ['# Sources: not helm\n', undefined],
  ['', undefined],
]
for (const [before, want] of SOURCES)
  t.test(`helmSource ${JSON.stringify(before)}`, async (t) => t.equal(helmSource(before), want))

const ESCAPES: Array<[string, string, string]> = [
  ['plain', 'plain', 'plain'],
  ['100%\nnext\r', '100%25%0Anext%0D', '100%25%0Anext%0D'],
  ['host:5000/a,b', 'host:5000/a,b', 'host%3A5000/a%2Cb'],
  ['%3A stays literal', '%253A stays literal', '%253A stays literal'],
]
for (const [raw, asData, asProperty] of ESCAPES) {
  t.test(`workflow command escapes ${JSON.stringify(raw)}`, async (t) => {
    t.equal(data(raw), asData)
    t.equal(property(raw), asProperty)
  })
}

t.test('markdown: text, cells, code spans and HTML are escaped for what they sit in', async (t) => {
  t.equal(text('a *b* `c` <d> [e](f) | #'), 'a \\*b\\* \\`c\\` \\<d\\> \\[e\\](f) \\| \\#')
  t.equal(cell('two\nlines | pipe'), 'two lines \\| pipe')
  t.equal(code('reg/app:1'), '`reg/app:1`')
  t.equal(code('a`b'), '``a`b``')
  t.equal(code('`edge'), '`` `edge ``')
  t.equal(html('<pod & "x">'), '&lt;pod &amp; &quot;x&quot;&gt;')
})
