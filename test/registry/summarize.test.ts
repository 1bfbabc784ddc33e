import t from 'tap'
import { summarize } from '../../src/registry/client.js'
import type { Attempt } from '../../src/registry/result.js'

const a = (credential: string, code: Attempt['code'], extra: Partial<Attempt> = {}): Attempt => ({
  credential,
  code,
  detail: `${credential} got ${code}`,
  ...extra,
})

t.test('an attempt that got no answer makes the result undetermined, even beside a missing tag', async (t) => {
  const r = summarize([a('s1', 'RegistryUnreachable', { cause: 'timeout' }), a('s2', 'TagNotFound')])
  t.match(r, { code: 'RegistryUnreachable', cause: 'timeout' })
  t.equal(r.attempts.length, 2)
})

t.test('a missing tag outranks denials from other credentials', async (t) => {
  t.equal(summarize([a('s1', 'AccessDenied'), a('s2', 'TagNotFound')]).code, 'TagNotFound')
})

t.test('an unanswered attempt beats a denial: the untried path might have worked', async (t) => {
  const r = summarize([a('s1', 'AccessDenied'), a('s2', 'RegistryUnreachable', { cause: 'refused' })])
  t.match(r, { code: 'RegistryUnreachable', cause: 'refused', detail: 's2 got RegistryUnreachable' })
})

t.test('rate limiting carries Retry-After through', async (t) => {
  const r = summarize([a('s1', 'RateLimited', { retryAfterSeconds: 30 })])
  t.match(r, { code: 'RateLimited', retryAfterSeconds: 30 })
})

t.test('repository-missing outranks access-denied', async (t) => {
  t.equal(summarize([a('s1', 'AccessDenied'), a('s2', 'RepositoryNotFound')]).code, 'RepositoryNotFound')
  t.equal(
    summarize([a('s1', 'AccessDenied'), a('s2', 'RepositoryNotFoundOrDenied')]).code,
    'RepositoryNotFoundOrDenied',
  )
})

t.test('all denied → AccessDenied with the first detail', async (t) => {
  t.match(summarize([a('s1', 'AccessDenied'), a('s2', 'AccessDenied')]), {
    code: 'AccessDenied',
    detail: 's1 got AccessDenied',
  })
})

t.test('no attempt at all is an undetermined timeout, not a verdict', async (t) => {
  t.match(summarize([]), { code: 'RegistryUnreachable', cause: 'timeout' })
})
