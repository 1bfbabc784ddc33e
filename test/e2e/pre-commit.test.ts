// The pre-commit hook (.pre-commit-hooks.yaml) run by the real pre-commit, as a team would wire it
// in: pullguard packed and installed with npm (`npm pack`, `npm install -g`) onto PATH, then
// `pre-commit try-repo` of this repository in a temporary repository with manifests staged: a bad
// tag fails the commit with the finding, a chart template is left out, the fixed file passes.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createTestCA } from '../helpers/pki.js'
import { ensurePreCommit } from '../helpers/pre-commit.js'
import { startRegistry } from '../helpers/registry.js'
import { runLogged } from '../helpers/program.js'
import { seedOciManifest } from '../helpers/seed.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

const run = runLogged

const ca = await createTestCA()
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
await seedOciManifest(registry, 'team/app', '1.0')

const work = mkdtempSync(join(tmpdir(), 'pullguard-pre-commit-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const preCommit = ensurePreCommit()

// pullguard as a user installs it: the package npm packs (package.json `files`), installed globally
// into a prefix of its own.
const prefix = join(work, 'prefix')
const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: join(work, 'home') }
mkdirSync(join(work, 'home'))
const packed = await run('npm', ['pack', ROOT, '--pack-destination', work, '--silent'], work, {
  ...process.env,
  HOME: process.env.HOME,
})
if (packed.code !== 0) throw new Error(`npm pack: ${packed.out}`)
const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))
const installed = await run(
  'npm',
  ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball ?? 'none')],
  work,
  { ...process.env },
)
if (installed.code !== 0) throw new Error(`npm install -g: ${installed.out}`)

const repo = join(work, 'repo')
mkdirSync(join(repo, 'chart', 'templates'), { recursive: true })
const env: NodeJS.ProcessEnv = {
  ...baseEnv,
  PATH: `${join(prefix, 'bin')}${delimiter}${baseEnv.PATH}`,
  PRE_COMMIT_HOME: join(work, 'pre-commit-home'),
  // The registry's certificate, as a CI runner's trust store would hold a private registry's CA.
  NODE_EXTRA_CA_CERTS: ca.caPath,
  GIT_AUTHOR_NAME: 'ci',
  GIT_AUTHOR_EMAIL: 'ci@example.com',
  GIT_COMMITTER_NAME: 'ci',
  GIT_COMMITTER_EMAIL: 'ci@example.com',
}
const git = (...args: string[]): Promise<{ code: number | null; out: string }> => run('git', args, repo, env)

function manifest(tag: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: {name: api, namespace: shop}',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: api',
    `          image: ${registry.host}/team/app:${tag}`,
    '',
  ].join('\n')
}

t.test('pre-commit try-repo: a staged manifest with a tag that was never pushed fails the hook', async (t) => {
  t.equal((await git('init', '-q')).code, 0)
  writeFileSync(join(repo, 'api.yaml'), manifest('1.1'))
  // Files a repository holds beside its manifests, which must not block a commit: a values file,
  // an Ansible play (a list), JSON with comments.
  writeFileSync(join(repo, 'values.yaml'), 'replicas: 3\n')
  writeFileSync(join(repo, 'playbook.yml'), '- hosts: all\n  tasks: []\n')
  writeFileSync(
    join(repo, 'tsconfig.json'),
    '{\n  // comments, as tsc --init writes them\n  "compilerOptions": {}\n}\n',
  )
  // Not YAML until helm renders it: the hook leaves templates/ out.
  writeFileSync(join(repo, 'chart', 'templates', 'deployment.yaml'), 'image: {{ .Values.image }}\n')
  writeFileSync(join(repo, 'README.md'), '# shop\n')
  t.equal((await git('add', '-A')).code, 0)

  const failed = await run(preCommit, ['try-repo', ROOT, 'pullguard', '--verbose'], repo, env)
  t.equal(failed.code, 1, failed.out)
  t.match(failed.out, /pullguard check\.+Failed/)
  t.match(failed.out, /- hook id: pullguard\n(- duration: [\d.]+s\n)?- exit code: 1/)
  t.match(
    failed.out,
    new RegExp(
      `deployment shop/api +api +${registry.host.replace(/\./g, '\\.')}/team/app:1\\.1 +not-pullable +TagNotFound`,
    ),
  )
  t.match(failed.out, /existing tags nearest to "1\.1": 1\.0/, 'the fix names the tag that exists')
  t.notMatch(failed.out, /templates\/deployment\.yaml/, 'the chart template was not handed to pullguard')
  t.notMatch(failed.out, /invalid YAML/, 'JSON files are left out')
  t.match(failed.out, /1 images in 1 objects: 0 pullable, 1 not pullable, 0 unknown/)
})

t.test('the fixed manifest passes; warn mode reports without failing', async (t) => {
  writeFileSync(join(repo, 'api.yaml'), manifest('1.0'))
  t.equal((await git('add', 'api.yaml')).code, 0)
  const passed = await run(preCommit, ['try-repo', ROOT, 'pullguard', '--verbose'], repo, env)
  t.equal(passed.code, 0, passed.out)
  t.match(passed.out, /pullguard check\.+Passed/)
  t.match(passed.out, /1 images in 1 objects: 1 pullable, 0 not pullable, 0 unknown/)

  // A team that adopts it in warn mode first: the webhook's variable, read by check too.
  writeFileSync(join(repo, 'api.yaml'), manifest('1.2'))
  t.equal((await git('add', 'api.yaml')).code, 0)
  const warned = await run(preCommit, ['try-repo', ROOT, 'pullguard', '--verbose'], repo, {
    ...env,
    PULLGUARD_MODE: 'warn',
  })
  t.equal(warned.code, 0, warned.out)
  t.match(warned.out, /pullguard check\.+Passed/)
  t.match(warned.out, /not-pullable +TagNotFound/)
})
