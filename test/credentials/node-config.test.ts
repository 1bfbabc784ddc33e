import { mkdtempSync, writeFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { NodeDockerConfig, NodeDockerConfigError } from '../../src/credentials/node-config.js'
import { createLogger } from '../../src/log/logger.js'

const dir = mkdtempSync(join(tmpdir(), 'pullguard-node-config-'))
const lines: string[] = []
const logger = createLogger(
  'debug',
  new Writable({
    write: (c: Buffer, _e, done) => {
      lines.push(c.toString())
      done()
    },
  }),
)
const config = (auths: Record<string, { auth: string }>, extra: object = {}): string =>
  JSON.stringify({ auths, ...extra })
const auth = (u: string, p: string) => ({ auth: Buffer.from(`${u}:${p}`).toString('base64') })

t.test('reads entries labelled by key, never by value', async (t) => {
  const path = join(dir, 'a.json')
  writeFileSync(path, config({ 'reg.local:5000': auth('node', 'NodeSecret1') }))
  const c = new NodeDockerConfig(path, logger, { watch: false })
  t.same(c.entries(), [
    {
      key: 'reg.local:5000',
      username: 'node',
      password: 'NodeSecret1',
      label: 'node docker config (key "reg.local:5000")',
    },
  ])
})

t.test('an unreadable or unparseable file is a start-up error', async (t) => {
  t.throws(() => new NodeDockerConfig(join(dir, 'missing.json'), logger, { watch: false }), NodeDockerConfigError)
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, '{"auths": {"x": {"auth": "bm9jb2xvbg=="}}}') // "nocolon"
  t.throws(() => new NodeDockerConfig(bad, logger, { watch: false }), { message: /auth/ })
})

t.test('credential helpers are reported as unsupported', async (t) => {
  const path = join(dir, 'helpers.json')
  writeFileSync(path, config({}, { credHelpers: { 'gcr.io': 'gcloud' } }))
  lines.splice(0)
  new NodeDockerConfig(path, logger, { watch: false })
  t.match(lines.join(''), /credential helpers .* are not supported/)
})

t.test('reload takes a new version, and keeps the last good one when the new one is broken', async (t) => {
  const path = join(dir, 'reload.json')
  writeFileSync(path, config({ 'reg.local': auth('u', 'first') }))
  const c = new NodeDockerConfig(path, logger, { watch: false })
  writeFileSync(path, config({ 'reg.local': auth('u', 'second') }))
  c.reload()
  t.equal(c.entries()[0]?.password, 'second')
  writeFileSync(path, '{broken')
  c.reload()
  t.equal(c.entries()[0]?.password, 'second')
  t.notOk(lines.join('').includes('second'), 'no secret in any log line')
})

t.test('a change on disk (atomic rename, as a mounted Secret does) is picked up by the watcher', async (t) => {
  const path = join(dir, 'watched.json')
  writeFileSync(path, config({ 'reg.local': auth('u', 'before') }))
  const c = new NodeDockerConfig(path, logger)
  t.teardown(() => c.close())
  const next = join(dir, 'watched.json.new')
  writeFileSync(next, config({ 'reg.local': auth('u', 'after-change') }))
  renameSync(next, path)
  const deadline = Date.now() + 15_000
  while (c.entries()[0]?.password !== 'after-change' && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100))
  t.equal(c.entries()[0]?.password, 'after-change')
})
