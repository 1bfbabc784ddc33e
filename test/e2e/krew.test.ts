// The krew plugin: manifests/krew/pullguard.yaml, the archive `.ci/krew-archive` builds for it,
// krew's own validator (the one krew-index runs on every submission), and the real krew installing
// it from the local archive, after which the real kubectl finds and runs `kubectl pullguard`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { ensureToolsets } from '../cluster/binaries.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { runProgram, type ProgramRun } from '../helpers/program.js'
import { seedOciManifest } from '../helpers/seed.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const MANIFEST = join(ROOT, 'manifests', 'krew', 'pullguard.yaml')
const VERSION = `v${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ProgramRun> {
  return runProgram(command, args, { env })
}

const { krew, cluster } = await ensureToolsets(['krew', 'cluster'])
const work = mkdtempSync(join(tmpdir(), 'pullguard-krew-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

t.test('the manifest in the repository: the fields krew requires, for this version', async (t) => {
  const m = parse(readFileSync(MANIFEST, 'utf8'))
  t.match(m, {
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: 'pullguard' },
    spec: { version: VERSION, homepage: /^https:\/\// },
  })
  t.ok(m.spec.shortDescription.length <= 60, 'a short description krew-index accepts')
  t.same(
    m.spec.platforms.map((p: any) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`),
    ['linux/amd64', 'linux/arm64', 'darwin/amd64', 'darwin/arm64'],
  )
  for (const p of m.spec.platforms) {
    t.equal(p.bin, 'kubectl-pullguard')
    t.equal(
      p.uri,
      `https://github.com/pullguard/pullguard/releases/download/${VERSION}/kubectl-pullguard-${VERSION}.tar.gz`,
    )
    t.equal(p.sha256, 'SHA256_OF_THE_ARCHIVE', 'filled in by .ci/krew-archive')
  }
})

const out = join(work, 'out')
let archive = ''

t.test('.ci/krew-archive: a reproducible archive, and the manifest with its sha256', async (t) => {
  const built = await run(join(ROOT, '.ci', 'krew-archive'), [out])
  t.equal(built.code, 0, built.stderr)
  const [path, sha] = built.stdout.trim().split('\n').at(-1)!.split(' ')
  archive = path!
  t.equal(archive, join(out, `kubectl-pullguard-${VERSION}.tar.gz`))
  t.match(sha, /^[0-9a-f]{64}$/)
  const written = readFileSync(join(out, 'pullguard.yaml'), 'utf8')
  t.equal(written, readFileSync(MANIFEST, 'utf8').replaceAll('SHA256_OF_THE_ARCHIVE', sha!), 'only the sha256 differs')
  const listed = await run('tar', ['-tzvf', archive])
  t.match(listed.stdout, /^-rwxr-xr-x 0\/0 .* \.\/kubectl-pullguard$/m, 'the launcher, executable')
  t.match(listed.stdout, /\.\/dist\/src\/kubectl-pullguard\.js$/m)
  t.match(listed.stdout, /\.\/node_modules\/fastify\/package\.json$/m, 'the production dependencies')
  t.notMatch(listed.stdout, /node_modules\/(typescript|tap)\//, 'no development dependency')
  t.notMatch(listed.stdout, /^l/m, 'no symbolic link, which krew cannot unpack')
  // Again, from another folder, with a relative OUT_DIR and another umask.
  const again = await runProgram('bash', ['-c', `umask 0002 && exec '${join(ROOT, '.ci', 'krew-archive')}' again`], {
    cwd: work,
  })
  t.equal(again.code, 0, again.stderr)
  t.equal(
    again.stdout.trim().split('\n').at(-1),
    `${join(work, 'again', `kubectl-pullguard-${VERSION}.tar.gz`)} ${sha}`,
    'built twice, the same bytes',
  )
})

t.test("krew's validator accepts the written manifest and refuses the template", async (t) => {
  const validate = join(krew, 'validate-krew-manifest')
  const ok = await run(validate, ['-manifest', join(out, 'pullguard.yaml'), '-skip-install'])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stderr, 'structural validation OK')
  const template = join(work, 'template', 'pullguard.yaml')
  mkdirSync(dirname(template))
  writeFileSync(template, readFileSync(MANIFEST))
  const refused = await run(validate, ['-manifest', template, '-skip-install'])
  t.not(refused.code, 0, 'a manifest without a real sha256 is refused')
  t.match(refused.stderr, /sha256/)
})

t.test('krew installs it from the archive; kubectl finds and runs kubectl pullguard', async (t) => {
  const krewRoot = join(work, 'krew-root')
  const env = { ...process.env, KREW_ROOT: krewRoot, HOME: work }
  const installed = await run(
    join(krew, 'krew'),
    ['install', `--manifest=${join(out, 'pullguard.yaml')}`, `--archive=${archive}`],
    env,
  )
  t.equal(installed.code, 0, installed.stderr)
  t.match(installed.stderr + installed.stdout, 'Installed plugin: pullguard')
  const path = `${join(krewRoot, 'bin')}${delimiter}${dirname(process.execPath)}${delimiter}/usr/bin:/bin`
  const kubectl = (args: string[], more: NodeJS.ProcessEnv = {}) =>
    run(join(cluster, 'kubectl'), args, { PATH: path, HOME: work, ...more })
  const list = await kubectl(['plugin', 'list'])
  t.match(list.stdout, join(krewRoot, 'bin', 'kubectl-pullguard'))
  const version = await kubectl(['pullguard', '--version'])
  t.equal(version.stdout, `kubectl pullguard ${VERSION.slice(1)}\n`, version.stderr)

  // The archive's dependencies are complete: a real check through the installed plugin.
  const ca = await createTestCA()
  t.teardown(() => ca.close())
  const registry = await startRegistry({ ca, auth: { kind: 'none' } })
  t.teardown(() => registry.close())
  await seedOciManifest(registry, 'team/app', '1.0')
  const file = join(work, 'pod.yaml')
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: c, image: "${registry.host}/team/app:1.1"}\n`,
  )
  const checked = await kubectl(['pullguard', 'check', '-f', file, '--registry-ca', ca.caPath])
  t.equal(checked.code, 1, checked.stderr)
  t.match(checked.stdout, /not-pullable +TagNotFound/)
  const help = await kubectl(['pullguard', 'check', '--help'])
  t.match(help.stdout, /^Usage:\n {2}kubectl pullguard check /m, 'its help names kubectl pullguard')
})
