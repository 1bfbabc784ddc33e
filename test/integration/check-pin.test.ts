// `pullguard check --pin-digests`: the manifests printed again with each verified image at the
// digest the registry gave for its tag (an index's own for a multi-platform image), comments and
// layout kept, the report on stderr; what was not verified, a digest, a Never image left as written.
// Checked again, the pinned manifests pull by digest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { runCli, type CliRun } from '../helpers/cli.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { AMD64_AND_ARM64, seedOciIndex, seedOciManifest } from '../helpers/seed.js'

const ca = await createTestCA()
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
const host = registry.host
const app = await seedOciIndex(registry, 'shop/app', '1.0', AMD64_AND_ARM64)
const init = await seedOciManifest(registry, 'shop/init', '2.0')
const data = await seedOciManifest(registry, 'shop/data', '3.0')
const tools = await seedOciManifest(registry, 'shop/tools', 'latest')

const work = mkdtempSync(join(tmpdir(), 'pullguard-pin-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

function check(args: string[], stdin?: string): Promise<CliRun> {
  return runCli(['check', '--registry-ca', ca.caPath, '--timeout', '3s', ...args], {
    env: { HOME: work, DOCKER_CONFIG: work },
    cwd: work,
    ...(stdin === undefined ? {} : { stdin }),
  })
}

const MANIFEST = [
  '# The shop, as the team keeps it in Git.',
  'apiVersion: apps/v1',
  'kind: Deployment',
  'metadata: {name: shop, namespace: shop}',
  'spec:',
  '  template:',
  '    spec:',
  '      initContainers:',
  `        - name: init   # runs first`,
  `          image: "${host}/shop/init:2.0"`,
  '      containers:',
  `        - {name: app, image: ${host}/shop/app:1.0}`,
  `        - name: pinned`,
  `          image: ${host}/shop/init@${init.digest}`,
  `        - name: local`,
  `          image: ${host}/shop/local:dev`,
  '          imagePullPolicy: Never',
  `        - name: gone`,
  `          image: ${host}/shop/app:9.9`,
  '      volumes:',
  '        - name: data',
  '          image:',
  `            reference: ${host}/shop/data:3.0`,
  '        - name: config',
  '          secret: {secretName: shop, defaultMode: 0644}',
  '---',
  'apiVersion: v1',
  'kind: ConfigMap',
  'metadata: {name: settings}',
  'data: {a: "1"}',
  '---',
  'apiVersion: v1',
  'kind: List',
  'items:',
  `  - {apiVersion: v1, kind: Pod, metadata: {name: debug}, spec: {containers: [{name: t, image: ${host}/shop/tools}]}}`,
  '',
].join('\n')

t.test('verified images pinned to their digests, everything else as written', async (t) => {
  writeFileSync(join(work, 'shop.yaml'), MANIFEST)
  const r = await check(['shop.yaml', '--pin-digests'])
  t.equal(r.code, 1, 'a tag that does not exist still fails the run')
  t.match(r.stderr, /deployment shop\/shop +gone +\S+ +not-pullable +TagNotFound/, 'the report on stderr')
  const docs = parseAllDocuments(r.stdout)
  if (!Array.isArray(docs)) throw new Error('no documents')
  const [deployment, configMap, list] = docs.map((d) => d.toJS())
  const spec = deployment.spec.template.spec
  t.equal(spec.initContainers[0].image, `${host}/shop/init@${init.digest}`)
  t.equal(spec.containers[0].image, `${host}/shop/app@${app.digest}`, "a multi-platform image at its index's digest")
  t.equal(spec.containers[1].image, `${host}/shop/init@${init.digest}`, 'a digest left as written')
  t.equal(spec.containers[2].image, `${host}/shop/local:dev`, 'imagePullPolicy Never left as written')
  t.equal(spec.containers[3].image, `${host}/shop/app:9.9`, 'an image that does not pull left as written')
  t.equal(spec.volumes[0].image.reference, `${host}/shop/data@${data.digest}`, 'an image volume')
  t.same(configMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: '1' } })
  t.equal(list.items[0].spec.containers[0].image, `${host}/shop/tools@${tools.digest}`, 'no tag: latest, pinned')
  // Every other byte as it was: comments, quotes, flow style, indentation, 0644 (octal to Kubernetes).
  const expected = MANIFEST.replace(`"${host}/shop/init:2.0"`, `"${host}/shop/init@${init.digest}"`)
    .replace(`image: ${host}/shop/app:1.0}`, `image: ${host}/shop/app@${app.digest}}`)
    .replace(`reference: ${host}/shop/data:3.0`, `reference: ${host}/shop/data@${data.digest}`)
    .replace(`image: ${host}/shop/tools}`, `image: ${host}/shop/tools@${tools.digest}}`)
  t.equal(r.stdout, expected)

  // The pinned manifests, checked again: every pin pulls, by digest.
  writeFileSync(join(work, 'pinned.yaml'), r.stdout)
  const again = await check(['pinned.yaml', '-o', 'json'])
  const images = JSON.parse(again.stdout).objects.flatMap((o: any) => o.images)
  t.same(
    images.filter((i: any) => i.image.includes('@')).map((i: any) => i.verdict),
    ['pullable', 'pullable', 'pullable', 'pullable', 'pullable'],
  )
})

t.test('stdin in, the pinned stream out', async (t) => {
  const r = await check(
    ['-f', '-', '--pin-digests', '-o', 'json'],
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: "${host}/shop/app:1.0"}\n`,
  )
  t.equal(r.code, 0, r.stderr)
  t.equal(
    r.stdout,
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: "${host}/shop/app@${app.digest}"}\n`,
  )
  t.equal(JSON.parse(r.stderr).summary.pullable, 1, 'the report in the format asked, on stderr')
})

t.test('an image written through an anchor or a merge key is left as written, and said so', async (t) => {
  const text = [
    'apiVersion: v1',
    'kind: Pod',
    'metadata: {name: anchored}',
    'spec:',
    '  containers:',
    `    - &app {name: a, image: &img "${host}/shop/app:1.0"}`,
    '    - {name: b, image: *img}',
    '    - <<: *app',
    '      name: c',
    '',
  ].join('\n')
  const r = await check(['-f', '-', '--pin-digests'], text)
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, text, 'nothing rewritten: each of them shares the anchored value')
  t.match(
    r.stderr,
    /note: pod default\/anchored spec\.containers\[0\]: \S+ is written through an alias, a merge key or an anchor; left as written/,
  )
})
