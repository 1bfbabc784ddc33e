// Properties of the review decoder and the handler over generated bodies (fast-check): any JSON
// value, and the shared fixtures with any field replaced by a value of any type or removed, get a
// 200 or a 400 with a reason — never an exception; what decodes keeps its fields exactly.
import fc from 'fast-check'
import t from 'tap'
import { handleReview } from '../../src/admission/handler.js'
import { ReviewDecodeError, decodeReview } from '../../src/admission/review.js'
import { OPERATIONS } from '../../src/admission/review.js'
import type { PodSubject } from '../../src/policy/subject.js'
import { jsonPaths } from '../helpers/json-paths.js'
import { loadFixture } from '../helpers/fixtures.js'

const RUNS = 2000
const fixtures = [
  'pod-create.json',
  'pod-ephemeralcontainers-update.json',
  'deployment-create-dryrun.json',
  'cronjob-create.json',
].map((f) => loadFixture<Record<string, unknown>>(`admission/${f}`))

const fixturePaths = fixtures.map((f) => jsonPaths(f))

/** A fixture with one value replaced (or removed), anywhere in it. */
const mutated = fc
  .record({
    which: fc.nat({ max: fixtures.length - 1 }),
    at: fc.nat(),
    value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(undefined)),
  })
  .map(({ which, at, value }) => {
    const doc = structuredClone(fixtures[which]!)
    const all = fixturePaths[which]!
    const path = all[at % all.length]!
    if (path.length === 0) return value
    let parent: Record<string | number, unknown> = doc
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>
    const last = path.at(-1)!
    if (value === undefined) delete parent[last]
    else parent[last] = value
    return doc
  })

const body = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.anything({ maxDepth: 3 }), mutated, mutated)

t.test(
  'decodeReview throws nothing but ReviewDecodeError; handleReview answers 200 or 400 (naming the uid)',
  async (t) => {
    const seen = { ok: 0, bad: 0 }
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        try {
          decodeReview(b)
        } catch (err) {
          if (!(err instanceof ReviewDecodeError)) throw err
        }
        const judged: PodSubject[] = []
        const result = await handleReview(b, async (subject) => {
          judged.push(subject)
          return { allowed: false, message: 'denied by the test judge', warnings: [] }
        })
        if (result.status === 400) {
          seen.bad++
          // The log line names the uid the body held, when it is a string of at most 128 characters.
          const held = (b as { request?: { uid?: unknown } } | null)?.request?.uid
          const uid = typeof held === 'string' && held.length <= 128 ? held : undefined
          return (
            typeof result.body.reason === 'string' &&
            result.body.reason.length > 0 &&
            result.body.reason.length < 1000 &&
            result.body.error === 'MalformedReview' &&
            result.uid === uid
          )
        }
        seen.ok++
        const uid = (b as { request: { uid: string } }).request.uid
        // Whatever was judged is well typed, whatever the body held.
        for (const s of judged) {
          if (!s.images.every((u) => typeof u.image === 'string' && typeof u.container === 'string')) return false
          if (!s.pullSecrets.every((n) => typeof n === 'string')) return false
        }
        return result.body.response.uid === uid && result.body.response.allowed === (judged.length === 0)
      }),
      { numRuns: RUNS },
    )
    t.ok(seen.ok > 50 && seen.bad > 50, `both answers were exercised (${seen.ok} × 200, ${seen.bad} × 400)`)
  },
)

t.test('a review that decodes keeps its fields exactly', async (t) => {
  const review = fc.record({
    uid: fc.string({ minLength: 1, maxLength: 128 }),
    operation: fc.constantFrom(...OPERATIONS),
    group: fc.string(),
    version: fc.string(),
    kind: fc.string(),
    name: fc.option(fc.string(), { nil: undefined }),
    namespace: fc.option(fc.string(), { nil: undefined }),
    subResource: fc.option(fc.string(), { nil: undefined }),
    dryRun: fc.option(fc.boolean(), { nil: undefined }),
  })
  fc.assert(
    fc.property(review, (r) => {
      const d = decodeReview({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: r.uid,
          operation: r.operation,
          kind: { group: r.group, version: r.version, kind: r.kind },
          name: r.name,
          namespace: r.namespace,
          subResource: r.subResource,
          dryRun: r.dryRun,
          object: {},
        },
      })
      return (
        d.uid === r.uid &&
        d.operation === r.operation &&
        d.kind.group === r.group &&
        d.kind.version === r.version &&
        d.kind.kind === r.kind &&
        d.name === (r.name ?? '') &&
        d.namespace === (r.namespace ?? '') &&
        d.subResource === (r.subResource === '' ? undefined : r.subResource) &&
        d.dryRun === (r.dryRun === true)
      )
    }),
    { numRuns: RUNS },
  )
  t.pass()
})
