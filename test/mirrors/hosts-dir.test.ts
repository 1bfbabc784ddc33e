// The host directory containerd picks under config_path, on a real folder: host_port_ before host
// before _default, a directory without hosts.toml, a broken hosts.toml, and none at all.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { hostsFromDir } from '../../src/mirrors/hosts-dir.js'

const root = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
async function hosts(dir: string, text: string | undefined, extra: Record<string, string> = {}): Promise<void> {
  await mkdir(join(root, dir), { recursive: true })
  if (text !== undefined) await writeFile(join(root, dir, 'hosts.toml'), text)
  for (const [name, body] of Object.entries(extra)) await writeFile(join(root, dir, name), body)
}
await hosts('registry.example_5000_', 'server = "https://escaped.internal"')
await hosts('registry.example:5000', 'server = "https://plain.internal"')
await hosts('other.example:5000', 'server = "https://plain-only.internal"')
await hosts('_default', '[host."https://default-mirror.internal"]\n  capabilities = ["pull", "resolve"]')
await hosts('docker.io', undefined, { 'ca.crt': 'x' })
await hosts('quay.io', 'server = [')

t.test('host_port_ wins over host:port, which wins over _default', async (t) => {
  t.same(hostsFromDir(root, 'registry.example:5000').hosts.map((h) => h.host), ['escaped.internal'])
  t.equal(hostsFromDir(root, 'other.example:5000').dir, join(root, 'other.example:5000'))
  const fallback = hostsFromDir(root, 'ghcr.io')
  t.equal(fallback.dir, join(root, '_default'))
  t.same(fallback.hosts.map((h) => h.host), ['default-mirror.internal', 'ghcr.io'], '_default\'s mirror, then the registry itself')
})

t.test('a directory of docker-style certificates only: the registry, with them', async (t) => {
  const r = hostsFromDir(root, 'docker.io')
  t.same(r.hosts.map((h) => [h.host, h.caFiles]), [['registry-1.docker.io', [join(root, 'docker.io', 'ca.crt')]]])
  t.equal(r.problem, undefined)
})

t.test('a broken hosts.toml: the registry itself, and the problem named with its file', async (t) => {
  const r = hostsFromDir(root, 'quay.io')
  t.same(r.hosts.map((h) => h.host), ['quay.io'])
  t.match(r.problem?.file, join(root, 'quay.io', 'hosts.toml'))
})

t.test('no directory at all (and no _default): the registry itself', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'pullguard-certs-d-empty-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  t.same(hostsFromDir(empty, 'ghcr.io').hosts.map((h) => h.host), ['ghcr.io'])
  t.equal(hostsFromDir(empty, 'ghcr.io').dir, undefined)
})
