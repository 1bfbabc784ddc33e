// Properties of the reference parser over generated input (fast-check): it throws nothing but
// InvalidReferenceError whatever it is given, and what it accepts round-trips through its
// canonical form to the same parts.
import fc from 'fast-check'
import t from 'tap'
import { InvalidReferenceError, parseReference, tryParseReference } from '../../src/reference/index.js'

const RUNS = 3000

/** Any input: arbitrary Unicode, and strings made from the characters references are built of. */
const anyInput = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...'abcAZ019._-/:@[]%+ \t\n'.split('')), maxLength: 120 }),
  fc.string({ minLength: 4000, maxLength: 5000 }),
)

const lower = fc.stringMatching(/^[a-z0-9]{1,8}$/)
const component = fc
  .tuple(lower, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), lower), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, c]) => s + c).join(''))
const domain = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'docker.io',
    'index.docker.io',
    'quay.io',
    'localhost',
    'localhost:5000',
    '127.0.0.1:5000',
    '[::1]:5000',
    'registry.example.com',
    'Registry.Example.com:443',
  ),
)
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/)
const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`)
/** References the grammar accepts, built part by part. */
const validReference = fc
  .record({
    domain,
    path: fc.array(component, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  .filter((r) => !(r.domain === undefined && r.path.length === 1 && /^[a-f0-9]{64}$/.test(r.path[0]!)))
  .map((r) => ({
    ...r,
    text: `${r.domain === undefined ? '' : `${r.domain}/`}${r.path.join('/')}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`,
  }))

t.test('no input throws anything but InvalidReferenceError; tryParseReference never throws', async (t) => {
  fc.assert(
    fc.property(anyInput, (input) => {
      try {
        parseReference(input)
      } catch (err) {
        if (!(err instanceof InvalidReferenceError)) throw err
        // Messages echo bounded input only.
        if (err.message.length > 600) throw new Error(`message of ${err.message.length} characters`)
      }
      const r = tryParseReference(input)
      return r.ok || r.error instanceof InvalidReferenceError
    }),
    { numRuns: RUNS },
  )
  t.pass(`${RUNS} generated inputs`)
})

t.test('what is accepted round-trips: the canonical form parses to the same parts', async (t) => {
  fc.assert(
    fc.property(validReference, (r) => {
      const ref = parseReference(r.text)
      const again = parseReference(ref.canonical)
      return (
        again.canonical === ref.canonical &&
        again.name === ref.name &&
        again.domain === ref.domain &&
        again.path === ref.path &&
        again.registryHost === ref.registryHost &&
        again.reference === ref.reference &&
        // (a first component with "." is a registry host when no domain was given)
        ref.path.endsWith(r.path.at(-1)!) &&
        (r.digest === undefined ? ref.reference === (r.tag ?? 'latest') : ref.reference === r.digest)
      )
    }),
    { numRuns: RUNS },
  )
  t.pass(`${RUNS} generated references`)
})

t.test('parsing is deterministic and never depends on earlier inputs', async (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          anyInput,
          validReference.map((r) => r.text),
        ),
        { maxLength: 5 },
      ),
      (inputs) => {
        const first = inputs.map((i) =>
          JSON.stringify(
            tryParseReference(i).ok
              ? tryParseReference(i)
              : (tryParseReference(i) as { error: InvalidReferenceError }).error.reason,
          ),
        )
        const second = [...inputs]
          .reverse()
          .map((i) =>
            JSON.stringify(
              tryParseReference(i).ok
                ? tryParseReference(i)
                : (tryParseReference(i) as { error: InvalidReferenceError }).error.reason,
            ),
          )
          .reverse()
        return first.every((v, i) => v === second[i])
      },
    ),
    { numRuns: 500 },
  )
  t.pass()
})
