// The JSON body parser: what it accepts, and a reason (never the body) for what it refuses.
import t from 'tap'
import { MalformedBody, parseJsonBody } from '../../src/server/json-body.js'

const cases: Array<[string, Buffer | string, unknown]> = [
  ['an object', '{"a":[1,"x",null]}', { a: [1, 'x', null] }],
  ['a byte-order mark is skipped', '\ufeff{"a":1}', { a: 1 }],
  ['multi-byte UTF-8', '{"name":"ü✓😀"}', { name: 'ü✓😀' }],
  [
    'a constructor key is plain data',
    '{"constructor":{"prototype":{"x":1}}}',
    { constructor: { prototype: { x: 1 } } },
  ],
  ['empty', '', /body is empty/],
  ['truncated', '{"a":', /not valid JSON \(it ends too early\)/],
  ['trailing comma', '{"a":1,}', /not valid JSON \(syntax error/],
  ['not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /not valid UTF-8/],
  ['a lone surrogate encoded as UTF-8 (CESU)', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), /not valid UTF-8/],
  ['__proto__', '{"a":{"__proto__":{"allowed":true}}}', /"__proto__" key/],
  ['__proto__ written with escapes', '{"\\u005f_proto__":{"x":1}}', /"__proto__" key/],
  ['a string that mentions __proto__ is fine', '{"a":"\\"__proto__\\": no"}', { a: '"__proto__": no' }],
]
for (const [name, input, expected] of cases) {
  t.test(name, async (t) => {
    const out = parseJsonBody(Buffer.isBuffer(input) ? input : Buffer.from(input))
    if (expected instanceof RegExp) {
      t.ok(out instanceof MalformedBody)
      t.match((out as MalformedBody).reason, expected)
    } else {
      t.same(out, expected)
    }
  })
}

t.test('the reason never echoes the body', async (t) => {
  const out = parseJsonBody(Buffer.from('{"password":"Sekret-Value-123" oops}')) as MalformedBody
  t.notMatch(out.reason, /Sekret/)
})

t.test('deep nesting: parsed or refused, never a crash', async (t) => {
  for (const depth of [1000, 100_000]) {
    const out = parseJsonBody(Buffer.from('['.repeat(depth) + ']'.repeat(depth)))
    t.ok(Array.isArray(out) || out instanceof MalformedBody, `depth ${depth}`)
  }
  t.ok(
    parseJsonBody(Buffer.from('{"a":'.repeat(50_000) + '{"__proto__":1}' + '}'.repeat(50_000))) instanceof
      MalformedBody,
    'a deep __proto__ is found without recursion',
  )
})
