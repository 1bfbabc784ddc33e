// What a fix knows about the object under review: where its pods take their secrets from, and
// that the service account is read only when a fix adds a secret.
import t from 'tap'
import type { Lookup, ServiceAccountObject, ServiceAccountSource } from '../../src/kube/sources.js'
import type { Assessment } from '../../src/policy/assess.js'
import { admissionFixTarget } from '../../src/policy/fix-target.js'
import type { ImageOutcome } from '../../src/policy/outcome.js'
import type { PodSubject } from '../../src/policy/subject.js'
import { parseReference } from '../../src/reference/index.js'

const image = 'reg.example:5000/shop/api:1'
const denied = (tried: string[] = []): ImageOutcome => ({
  kind: 'checked',
  use: { container: 'c', kind: 'container', field: 'spec.containers[0]', image },
  ref: parseReference(image),
  result: { code: 'AccessDenied', detail: 'x', attempts: [] },
  tried,
  incomplete: false,
})
const subject = (over: Partial<PodSubject>): PodSubject => ({
  namespace: 'shop',
  kind: 'Pod',
  name: 'web',
  specField: 'spec',
  template: false,
  images: [],
  pullSecrets: [],
  serviceAccountName: undefined,
  scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  ...over,
})
type Assessed = Extract<Assessment, { outcomes: ImageOutcome[] }>
const assessed = (
  outcomes: ImageOutcome[],
  names: string[],
  loaded: string[] = names,
  account?: string[],
): Assessed => ({
  mode: 'enforce',
  modeNote: undefined,
  outcomes,
  secretNames: {
    names,
    source: names.length > 0 ? 'pod' : 'none',
    incomplete: false,
    ...(account === undefined ? {} : { account: { name: 'default', imagePullSecrets: account } }),
  },
  secretProblems: names.filter((n) => !loaded.includes(n)).map((secret) => ({ secret, kind: 'missing', detail: 'x' })),
  secretsLoaded: loaded.map((name) => ({ name, registries: ['ghcr.io'] })),
})
function accounts(answer: Lookup<ServiceAccountObject>): ServiceAccountSource & { asked: number } {
  const src = {
    asked: 0,
    getServiceAccount: async () => {
      src.asked++
      return answer
    },
  }
  return src
}
const sa = (names: string[]): Lookup<ServiceAccountObject> => ({
  kind: 'found',
  object: { name: 'default', namespace: 'shop', imagePullSecrets: names, uid: 'u', annotations: {} },
})

t.test("a Pod listing none takes its account's (read, since a secret is added)", async (t) => {
  const src = accounts(sa([]))
  const target = await admissionFixTarget(subject({}), assessed([denied()], []), src, undefined)
  t.match(target, {
    voice: 'admission',
    resource: 'pod',
    name: 'web',
    specField: 'spec',
    fromServiceAccount: 'yes',
    serviceAccount: { name: 'default', imagePullSecrets: [] },
  })
  t.equal(src.asked, 1)
})

t.test("a Pod whose list equals its account's: maybe copied there by the ServiceAccount plugin", async (t) => {
  const target = await admissionFixTarget(
    subject({ pullSecrets: ['other'] }),
    assessed([denied()], ['other']),
    accounts(sa(['other'])),
    undefined,
  )
  t.equal(target.fromServiceAccount, 'maybe')
  const own = await admissionFixTarget(
    subject({ pullSecrets: ['other'] }),
    assessed([denied()], ['other']),
    accounts(sa(['else'])),
    undefined,
  )
  t.equal(own.fromServiceAccount, 'no')
})

t.test("a template listing its own secrets never takes the account's", async (t) => {
  const target = await admissionFixTarget(
    subject({ kind: 'Deployment', template: true, specField: 'spec.template.spec', pullSecrets: ['other'] }),
    assessed([denied()], ['other']),
    accounts(sa(['other'])),
    undefined,
  )
  t.equal(target.fromServiceAccount, 'no')
})

t.test(
  'the account is not read when the fix creates or updates a listed secret, or when the assessment read it',
  async (t) => {
    const missing = accounts(sa([]))
    await admissionFixTarget(
      subject({ pullSecrets: ['regcred'] }),
      assessed([denied()], ['regcred'], []),
      missing,
      undefined,
    )
    t.equal(missing.asked, 0, 'a listed secret that does not exist is created')
    const tried = accounts(sa([]))
    await admissionFixTarget(
      subject({ pullSecrets: ['regcred'] }),
      {
        ...assessed([denied(['secret shop/regcred (key "reg.example:5000")'])], ['regcred']),
        secretsLoaded: [{ name: 'regcred', registries: ['reg.example:5000'] }],
      },
      tried,
      undefined,
    )
    t.equal(tried.asked, 0, 'a refused secret is updated in place')
    const known = accounts(sa(['x']))
    const target = await admissionFixTarget(
      subject({ kind: 'Deployment', template: true, specField: 'spec.template.spec' }),
      assessed([denied()], [], [], ['kept']),
      known,
      undefined,
    )
    t.equal(known.asked, 0)
    t.same(target.serviceAccount, { name: 'default', imagePullSecrets: ['kept'] })
  },
)

t.test('an account that does not exist, or cannot be read', async (t) => {
  const gone = await admissionFixTarget(subject({}), assessed([denied()], []), accounts({ kind: 'missing' }), undefined)
  t.same(gone.serviceAccount, { name: 'default', imagePullSecrets: [], missing: true })
  const unread = await admissionFixTarget(
    subject({}),
    assessed([denied()], []),
    accounts({ kind: 'forbidden', detail: '403' }),
    undefined,
  )
  t.same(unread.serviceAccount, { name: 'default', imagePullSecrets: undefined })
  const none = await admissionFixTarget(subject({}), assessed([denied()], []), undefined, undefined)
  t.same(none.serviceAccount, { name: 'default', imagePullSecrets: undefined }, 'no time left to read it')
})
