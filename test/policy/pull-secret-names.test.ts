import t from 'tap'
import type { Lookup, ServiceAccountObject, ServiceAccountSource } from '../../src/kube/sources.js'
import { pullSecretNames } from '../../src/policy/pull-secret-names.js'
import type { PodSubject } from '../../src/policy/subject.js'

function accounts(answers: Record<string, Lookup<ServiceAccountObject>>): ServiceAccountSource & { asked: string[] } {
  const s = {
    asked: [] as string[],
    async getServiceAccount(ns: string, name: string): Promise<Lookup<ServiceAccountObject>> {
      s.asked.push(`${ns}/${name}`)
      return answers[`${ns}/${name}`] ?? { kind: 'missing' }
    },
  }
  return s
}
const subject = (over: Partial<PodSubject>): PodSubject => ({
  namespace: 'team-b',
  kind: 'Deployment',
  name: 'api',
  specField: 'spec.template.spec',
  template: true,
  images: [],
  pullSecrets: [],
  serviceAccountName: undefined,
  scheduling: { nodeSelector: {}, nodeSelectorTerms: [] },
  ...over,
})
const sa = (names: string[]): Lookup<ServiceAccountObject> => ({
  kind: 'found',
  object: { name: 'x', namespace: 'team-b', imagePullSecrets: names, uid: 'sa-uid', annotations: {} },
})

t.test('a template without secrets gets its service account secrets', async (t) => {
  const src = accounts({ 'team-b/reporter': sa(['team-b-registry']) })
  t.same(
    await pullSecretNames(subject({ serviceAccountName: 'reporter' }), src),
    {
      names: ['team-b-registry'],
      source: 'service-account',
      incomplete: false,
      account: { name: 'reporter', imagePullSecrets: ['team-b-registry'] },
    },
    "the account's list is kept for the fix",
  )
})

t.test('the default service account when none is named', async (t) => {
  const src = accounts({ 'team-b/default': sa(['d']) })
  t.same((await pullSecretNames(subject({}), src)).names, ['d'])
  t.same(src.asked, ['team-b/default'])
})

t.test('a template that lists secrets keeps them and reads no service account', async (t) => {
  const src = accounts({})
  t.same(await pullSecretNames(subject({ pullSecrets: ['own'] }), src), {
    names: ['own'],
    source: 'pod',
    incomplete: false,
  })
  t.same(src.asked, [])
})

t.test('a Pod never reads its service account: admission already copied its secrets', async (t) => {
  const src = accounts({ 'team-b/default': sa(['d']) })
  t.same(await pullSecretNames(subject({ template: false, kind: 'Pod' }), src), {
    names: [],
    source: 'none',
    incomplete: false,
  })
  t.same(src.asked, [])
})

t.test('a missing service account is a warning, not an error', async (t) => {
  t.match(await pullSecretNames(subject({ serviceAccountName: 'ghost' }), accounts({})), {
    names: [],
    incomplete: false,
    warning: /service account "ghost" does not exist in team-b/,
  })
})

t.test('an unreadable service account makes the credentials incomplete', async (t) => {
  const r = await pullSecretNames(subject({}), accounts({ 'team-b/default': { kind: 'forbidden', detail: 'RBAC' } }))
  t.match(r, { incomplete: true, warning: /could not be read \(RBAC\)/ })
})
