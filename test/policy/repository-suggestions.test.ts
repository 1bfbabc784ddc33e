// The catalog's repositories nearest to one that does not exist: typos first, then the same name
// under another namespace; nothing when nothing is near.
import t from 'tap'
import { suggestRepositories } from '../../src/policy/repository-suggestions.js'

const catalog = ['team/payments', 'team/payment-api', 'team-b/payments', 'shop/cart', 'library/nginx', 'tools/ci']

t.test('nearest repositories', async (t) => {
  const table: Array<[string, string[]]> = [
    ['team/paymnets', ['team/payments', 'team-b/payments']],
    ['team/payment', ['team/payments', 'team-b/payments']],
    ['team-a/payments', ['team-b/payments', 'team/payments']],
    ['shop/crat', ['shop/cart']],
    ['librray/nginx', ['library/nginx']],
    ['other/thing', []],
    ['x', []],
  ]
  for (const [wanted, want] of table) t.same(suggestRepositories(wanted, catalog), want, wanted)
  t.same(suggestRepositories('team/payments', catalog), ['team-b/payments'], 'never the name itself')
  t.equal(suggestRepositories('team/paymentz', catalog, 1).length, 1, 'at most max')
})
