// A catalog page as the distribution API sends it: `{"repositories": [...]}`, null for none, names
// that are not repository paths dropped, anything else not a catalog.
import t from 'tap'
import { parseCatalogPage } from '../../src/registry/catalog.js'

t.test('catalog pages', async (t) => {
  const table: Array<[string, string[] | undefined]> = [
    ['{"repositories":["team/app","library/nginx"]}', ['team/app', 'library/nginx']],
    ['{"repositories":null}', []],
    ['{}', []],
    ['{"repositories":["ok/name","Bad/Name","a//b","",7]}', ['ok/name']],
    ['{"repositories":"team/app"}', undefined],
    ['[]', undefined],
    ['not json', undefined],
  ]
  for (const [body, want] of table) t.same(parseCatalogPage(Buffer.from(body)), want, body)
})
