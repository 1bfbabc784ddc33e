import t from 'tap'
import type { Lookup, NamespaceObject, NamespaceSource } from '../../src/kube/sources.js'
import { NamespaceModes } from '../../src/policy/namespace-mode.js'

function source(answers: Record<string, Lookup<NamespaceObject>>): NamespaceSource & { calls: number } {
  const s = {
    calls: 0,
    async getNamespace(name: string): Promise<Lookup<NamespaceObject>> {
      s.calls++
      return answers[name] ?? { kind: 'missing' }
    },
  }
  return s
}
const ns = (labels: Record<string, string>): Lookup<NamespaceObject> => ({
  kind: 'found',
  object: { name: 'x', labels },
})

const cases: Array<[string, Lookup<NamespaceObject>, object]> = [
  ['no label → --mode', ns({}), { mode: 'enforce', source: 'default' }],
  ['label warn', ns({ 'pullguard.io/mode': 'warn' }), { mode: 'warn', source: 'label' }],
  ['label off', ns({ 'pullguard.io/mode': 'off' }), { mode: 'off', source: 'label' }],
  ['label enforce', ns({ 'pullguard.io/mode': 'enforce' }), { mode: 'enforce', source: 'label' }],
  [
    'an unknown label value → --mode with a note',
    ns({ 'pullguard.io/mode': 'Audit' }),
    { mode: 'enforce', source: 'default', note: /"Audit" is not enforce, warn or off/ },
  ],
  ['a missing namespace → --mode', { kind: 'missing' }, { mode: 'enforce', source: 'default' }],
  [
    'a forbidden namespace → --mode with a note',
    { kind: 'forbidden', detail: 'nope' },
    { mode: 'enforce', source: 'default', note: /could not be read \(nope\)/ },
  ],
]
for (const [name, answer, expected] of cases) {
  t.test(name, async (t) => {
    t.match(await new NamespaceModes(source({ a: answer }), 'enforce').modeFor('a'), expected)
  })
}

t.test('answers are cached for 30 s; API errors are not cached', async (t) => {
  let now = 0
  const s = source({ a: ns({ 'pullguard.io/mode': 'warn' }), b: { kind: 'error', detail: 'down' } })
  const modes = new NamespaceModes(s, 'enforce', { now: () => now })
  await modes.modeFor('a')
  await modes.modeFor('a')
  t.equal(s.calls, 1)
  now += 30_001
  await modes.modeFor('a')
  t.equal(s.calls, 2)
  await modes.modeFor('b')
  await modes.modeFor('b')
  t.equal(s.calls, 4)
})

t.test('forget: a namespace that changed is read again at once', async (t) => {
  const answers: Record<string, Lookup<NamespaceObject>> = { a: ns({ 'pullguard.io/mode': 'warn' }) }
  const s = source(answers)
  const modes = new NamespaceModes(s, 'enforce')
  t.match(await modes.modeFor('a'), { mode: 'warn' })
  answers.a = ns({ 'pullguard.io/mode': 'off' })
  t.match(await modes.modeFor('a'), { mode: 'warn' }, 'cached')
  modes.forget('a')
  t.match(await modes.modeFor('a'), { mode: 'off' })
  t.equal(s.calls, 2)
})
