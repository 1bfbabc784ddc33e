// The questions of a pass: what decides a registry's answer (the image and the credentials' values
// in order, never their names or namespaces), each asked once, its answer given to every caller in
// the words of its own credentials.
import t from 'tap'
import { PassAnswers, questionKey, questionResult } from '../../src/auditor/answers.js'
import { parseReference } from '../../src/reference/index.js'
import type { ImageReference } from '../../src/reference/index.js'
import type { Credential } from '../../src/registry/credential.js'
import type { CheckResult } from '../../src/registry/result.js'
import { NO_SIGNATURE_READS } from '../helpers/checker-stub.js'

const ref = parseReference('reg.example/team/api:1.0')
const cred = (label: string, password: string, username = 'robot'): Credential => ({ username, password, label })

t.test('question keys: by value and order, not by name', async (t) => {
  const a = cred('secret ns-a/regcred (key "reg.example")', 'p1')
  const copy = cred('secret ns-b/regcred (key "reg.example")', 'p1')
  const other = cred('secret ns-c/regcred (key "reg.example")', 'p2')
  const node = cred('node docker config (key "reg.example")', 'n1')
  const cases: Array<[string, boolean, Credential[], Credential[], ImageReference?]> = [
    ['no credentials twice', true, [], []],
    ['a secret and its copy in another namespace', true, [a], [copy]],
    ['two values', false, [a], [other]],
    ['another username, the same password', false, [a], [cred(a.label, 'p1', 'someone')]],
    ['the same values in another order', false, [a, node], [node, a]],
    ['one more credential tried', false, [a], [a, node]],
    ['none and some', false, [], [a]],
    ['the same credentials, another tag', false, [a], [a], parseReference('reg.example/team/api:1.1')],
    ['a tag and its normalized spelling', true, [], [], parseReference('reg.example/team/api')],
  ]
  const latest = parseReference('reg.example/team/api:latest')
  for (const [name, same, x, y, other] of cases) {
    const first = questionKey(name.includes('normalized') ? latest : ref, x)
    const second = questionKey(other ?? ref, y)
    t.equal(first === second, same, name)
  }
  t.notMatch(questionKey(ref, [a]), /p1/, 'no value in a key')
})

t.test('question results follow the registry answer alone', async (t) => {
  const cases: Array<[CheckResult['code'], string]> = [
    ['Exists', 'pullable'],
    ['TagNotFound', 'not-pullable'],
    ['DigestNotFound', 'not-pullable'],
    ['RepositoryNotFound', 'not-pullable'],
    ['AccessDenied', 'not-pullable'],
    ['RepositoryNotFoundOrDenied', 'not-pullable'],
    ['RateLimited', 'unverified'],
    ['RegistryUnreachable', 'unverified'],
  ]
  for (const [code, want] of cases)
    t.equal(questionResult({ code, detail: '', attempts: [] } as unknown as CheckResult), want, code)
})

t.test('each question asked once; every caller hears it with its own labels; tags listed once', async (t) => {
  const asked: string[] = []
  const listed: string[] = []
  const requests: string[] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const answers = new PassAnswers(
    {
      check: async (r, credentials) => {
        asked.push(`${r.canonical} ${credentials.map((c) => c.label).join(',')}`)
        await gate
        return {
          code: 'AccessDenied',
          detail: `refused ${credentials[0]!.label}`,
          attempts: [{ credential: credentials[0]!.label, code: 'AccessDenied', detail: 'x' }],
        }
      },
      tags: async (r) => {
        listed.push(r.name)
        return ['1.0']
      },
      ...NO_SIGNATURE_READS,
    },
    { signal: new AbortController().signal, timeoutMs: 1000, onRequest: (host) => requests.push(host) },
  )
  const a = cred('secret ns-a/regcred (key "reg.example")', 'p1')
  const b = cred('secret ns-b/regcred (key "reg.example")', 'p1')
  const c = cred('secret ns-c/regcred (key "reg.example")', 'wrong')
  const key = questionKey(ref, [a])
  const waiting = [answers.check(ref, [a], 'ns-a'), answers.check(ref, [b], 'ns-b'), answers.check(ref, [c], 'ns-c')]
  t.equal(answers.settled(key), undefined, 'not settled while the registry has not answered')
  release()
  const [ra, rb, rc] = await Promise.all(waiting)
  t.same(asked, [`${ref.canonical} ${a.label}`, `${ref.canonical} ${c.label}`], 'two values, two questions')
  t.match(ra, { detail: `refused ${a.label}`, attempts: [{ credential: a.label }] })
  t.match(rb, { detail: `refused ${b.label}`, attempts: [{ credential: b.label }] }, 'the copy names its own secret')
  t.match(rc, { detail: `refused ${c.label}` })
  t.equal(answers.settled(key)?.code, 'AccessDenied')
  await answers.check(ref, [b], 'ns-b')
  t.equal(asked.length, 2, 'asked again later in the pass: answered from the pass')
  await answers.tags(ref, [a], 'ns-a')
  await answers.tags(ref, [b], 'ns-b')
  t.same(listed, ['reg.example/team/api'], 'one listing for the same values')
  t.same(requests, ['reg.example', 'reg.example', 'reg.example'], 'three requests: two checks, one listing')
  t.same(answers.results(), { pullable: 0, 'not-pullable': 2, unverified: 0 })
})

t.test('an answer put without a request is served as any other', async (t) => {
  const answers = new PassAnswers(
    {
      check: async () => t.fail('no request') as never,
      tags: async () => undefined,
      ...NO_SIGNATURE_READS,
    },
    { signal: new AbortController().signal, timeoutMs: 1000 },
  )
  const a = cred('secret ns-a/regcred (key "reg.example")', 'p1')
  answers.put(questionKey(ref, [a]), [a], {
    code: 'RegistryUnreachable',
    cause: 'timeout',
    detail: 'late',
    attempts: [],
  })
  t.match(await answers.check(ref, [cred('secret ns-b/regcred (key "reg.example")', 'p1')], 'ns-b'), {
    code: 'RegistryUnreachable',
  })
  t.same(answers.results(), { pullable: 0, 'not-pullable': 0, unverified: 1 })
})

t.test("a manifest's signatures and an index's platforms read once a pass per credentials' values", async (t) => {
  const read: string[] = []
  const requests: string[] = []
  const answers = new PassAnswers(
    {
      check: async () => {
        throw new Error('not asked here')
      },
      tags: async () => undefined,
      sigstoreAttachments: async (r, credentials, _ns, found) => {
        read.push(`sig ${r.name}@${found.digest} ${found.decidedBy} ${credentials.length}`)
        return { ok: true as const, attachments: [] }
      },
      indexInstances: async (r, _c, _ns, found) => {
        read.push(`index ${r.name}@${found.digest}`)
        return { ok: true as const, instances: [] }
      },
    },
    { signal: new AbortController().signal, timeoutMs: 1000, onRequest: (host) => requests.push(host) },
  )
  const a = cred('secret ns-a/regcred (key "reg.example")', 'p1')
  const copy = cred('secret ns-b/regcred (key "reg.example")', 'p1')
  const other = cred('secret ns-c/regcred (key "reg.example")', 'p2')
  const found = (decidedBy: string, digest = `sha256:${'a'.repeat(64)}`) => ({ digest, decidedBy })
  await Promise.all([
    answers.sigstoreAttachments(ref, [a], 'ns-a', found(a.label)),
    answers.sigstoreAttachments(ref, [copy], 'ns-b', found(copy.label)),
    answers.sigstoreAttachments(ref, [other], 'ns-c', found(other.label)),
    answers.sigstoreAttachments(ref, [a], 'ns-a', found(a.label, `sha256:${'b'.repeat(64)}`)),
    answers.indexInstances(ref, [a], 'ns-a', found(a.label)),
    answers.indexInstances(ref, [copy], 'ns-b', found(copy.label)),
  ])
  t.same(read.sort(), [
    `index reg.example/team/api@sha256:${'a'.repeat(64)}`,
    `sig reg.example/team/api@sha256:${'a'.repeat(64)} ${a.label} 1`,
    `sig reg.example/team/api@sha256:${'a'.repeat(64)} ${other.label} 1`,
    `sig reg.example/team/api@sha256:${'b'.repeat(64)} ${a.label} 1`,
  ])
  t.equal(requests.length, 4, 'each read told as a request to the host')
})
