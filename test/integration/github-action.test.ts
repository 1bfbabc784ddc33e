// The GitHub Action (action.yml) as the runner runs it: its entry started with the INPUT_* variables
// the runner sets from `with:` (upper case, hyphens kept), GITHUB_ACTIONS, GITHUB_STEP_SUMMARY and
// RUNNER_TEMP, in a workspace of manifests, against real registries. And action.yml itself: every
// input the entry reads is declared and handed over under the name the entry reads.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { ACTION_INPUTS } from '../../src/check/action-inputs.js'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { seedOciManifest } from '../helpers/seed.js'
import { closedPort } from '../helpers/fake-server.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const ENTRY = fileURLToPath(new URL('../../src/github-action.js', import.meta.url))
const PASSWORD = 'Pull-Secret-Value-42'

const ca = await createTestCA()
t.teardown(() => ca.close())
const privateRegistry = await startRegistry({ ca, auth: { kind: 'htpasswd', users: { ci: PASSWORD } } })
t.teardown(() => privateRegistry.close())
await seedOciManifest(privateRegistry, 'team/api', '1.0', { username: 'ci', password: PASSWORD })
const dead = `127.0.0.1:${await closedPort()}`

const work = mkdtempSync(join(tmpdir(), 'pullguard-action-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const workspace = join(work, 'workspace')
mkdirSync(join(workspace, 'k8s', 'jobs'), { recursive: true })
const api = [
  'apiVersion: apps/v1',
  'kind: Deployment',
  'metadata: {name: api, namespace: shop}',
  'spec:',
  '  template:',
  '    spec:',
  '      containers:',
  '        - name: api',
  `          image: ${privateRegistry.host}/team/api:1.0`,
  '        - name: sidecar',
  `          image: ${privateRegistry.host}/team/api:1.1`,
]
writeFileSync(join(workspace, 'k8s', 'api.yaml'), api.join('\n') + '\n')
const job = [
  'apiVersion: batch/v1',
  'kind: Job',
  'metadata: {name: report}',
  'spec:',
  '  template:',
  '    spec:',
  '      containers:',
  `        - {name: r, image: "${dead}/team/report:1"}`,
]
writeFileSync(join(workspace, 'k8s', 'jobs', 'report.yaml'), job.join('\n') + '\n')

const dockerConfigJson = JSON.stringify({
  auths: { [privateRegistry.host]: { auth: Buffer.from(`ci:${PASSWORD}`).toString('base64') } },
})

interface ActionRun {
  code: number | null
  stdout: string
  stderr: string
  summary: string
  runnerTemp: string[]
}

/** The entry as the runner starts it: `with:` as INPUT_* variables. */
function runAction(inputs: Record<string, string>, more: Record<string, string> = {}): Promise<ActionRun> {
  const summary = join(work, `summary-${Math.random().toString(36).slice(2)}.md`)
  writeFileSync(summary, '')
  const runnerTemp = mkdtempSync(join(work, 'runner-temp-'))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: join(work, 'home'),
    GITHUB_ACTIONS: 'true',
    GITHUB_STEP_SUMMARY: summary,
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: runnerTemp,
    PULLGUARD_REGISTRY_CA: ca.caPath,
    ...more,
  }
  // The runner sets every declared input, with its default when the workflow gives none.
  for (const name of ACTION_INPUTS) env[`INPUT_${name.toUpperCase()}`] = inputs[name] ?? DEFAULTS[name] ?? ''
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, summary: readFileSync(summary, 'utf8'), runnerTemp: readdirSync(runnerTemp) }),
    )
  })
}

const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8'))
const DEFAULTS: Record<string, string> = Object.fromEntries(
  Object.entries(action.inputs as Record<string, { default?: string }>).map(([k, v]) => [k, v.default ?? '']),
)

t.test(
  'action.yml: a composite action declaring exactly the inputs the entry reads, handed over by name',
  async (t) => {
    t.equal(action.runs.using, 'composite')
    t.same(Object.keys(action.inputs).sort(), [...ACTION_INPUTS].sort())
    t.equal(action.inputs.paths.required, true)
    for (const [name, spec] of Object.entries(action.inputs as Record<string, { description?: string }>))
      t.ok((spec.description ?? '').length > 20, `${name} is described`)
    const check = action.runs.steps.find((s: any) => typeof s.run === 'string' && s.run.includes('github-action.js'))
    t.equal(check.run, 'node "$GITHUB_ACTION_PATH/dist/src/github-action.js"', 'runs the compiled entry')
    t.same(
      check.env,
      Object.fromEntries(ACTION_INPUTS.map((n) => [`INPUT_${n.toUpperCase()}`, `\${{ inputs.${n} }}`])),
      'each input under the variable name the runner gives a JavaScript action',
    )
    const install = action.runs.steps[0]
    // A GitHub expression, not a template string.
    t.equal(install['working-directory'], ['$', '{{ github.action_path }}'].join(''))
    t.match(install.run, /npm ci .*\nnpm run build/)
    t.equal(
      fileURLToPath(new URL('../../src/github-action.js', import.meta.url)),
      join(ROOT, 'dist/src/github-action.js'),
    )
  },
)

t.test(
  'enforce: annotations on the lines, the job summary, exit 1; the secret docker config is used and removed',
  async (t) => {
    const r = await runAction({ paths: 'k8s/api.yaml\nk8s/jobs', 'docker-config-json': dockerConfigJson })
    t.equal(r.code, 1, r.stderr)
    const commands = r.stdout.split('\n').filter((l) => /^::(error|warning) /.test(l))
    t.equal(commands.length, 2, r.stdout)
    t.match(
      commands[0],
      /^::error file=k8s\/api\.yaml,line=11,col=11,title=pullguard TagNotFound%3A deployment shop\/api%2C container sidecar::/,
    )
    t.match(
      commands[1],
      /^::warning file=k8s\/jobs\/report\.yaml,line=8,col=21,title=pullguard RegistryUnreachable%3A job default\/report%2C container r::/,
    )
    t.match(r.summary, /^### pullguard: 1 of 3 images will not pull\n/)
    t.match(r.summary, '| k8s/api.yaml:11 |')
    t.match(
      r.stdout,
      /deployment shop\/api +api +\S+team\/api:1\.0 +pullable +Exists/,
      'the secret credentials reached the private registry',
    )
    t.same(r.runnerTemp, [], 'the docker config file is gone when the step ends')
    for (const text of [r.stdout, r.stderr, r.summary]) {
      t.notMatch(text, PASSWORD)
      t.notMatch(text, Buffer.from(`ci:${PASSWORD}`).toString('base64'))
    }
  },
)

t.test('mode warn passes with warnings; fail-on-unverified fails on the registry that gave no answer', async (t) => {
  const warn = await runAction({ paths: 'k8s', 'docker-config-json': dockerConfigJson, mode: 'warn' })
  t.equal(warn.code, 0, warn.stderr)
  t.same(
    warn.stdout
      .split('\n')
      .filter((l) => /^::(error|warning) /.test(l))
      .map((l) => l.slice(0, l.indexOf(' '))),
    ['::warning', '::warning'],
  )
  // No mode input: the workflow's PULLGUARD_MODE, as for every pullguard command.
  const fromEnv = await runAction({ paths: 'k8s', 'docker-config-json': dockerConfigJson }, { PULLGUARD_MODE: 'warn' })
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.notMatch(fromEnv.stdout, /^::error/m)
  const strict = await runAction({ paths: 'k8s/jobs', 'fail-on-unverified': 'true' })
  t.equal(strict.code, 3, strict.stderr)
  t.match(strict.stdout, /^::error file=k8s\/jobs\/report\.yaml,line=8,/)
  t.match(strict.summary, /could not be verified/)
})

t.test('a docker config file by path, and extra flags through args', async (t) => {
  const path = join(work, 'docker', 'config.json')
  mkdirSync(join(work, 'docker'))
  writeFileSync(path, dockerConfigJson)
  const r = await runAction({
    paths: 'k8s/api.yaml',
    'docker-config': path,
    args: '--platform linux/amd64 --timeout 3s',
  })
  t.equal(r.code, 1, r.stderr)
  t.match(r.stdout, /api:1\.0 +pullable/)
})

t.test('bad inputs: one workflow error each, exit 2, a secret never echoed', async (t) => {
  const none = await runAction({ paths: ' \n ' })
  t.equal(none.code, 2)
  t.equal(none.stdout, '::error title=pullguard::input paths: give at least one file or directory\n')
  const both = await runAction({ paths: 'k8s', 'docker-config': '/x', 'docker-config-json': dockerConfigJson })
  t.equal(both.code, 2)
  t.match(both.stdout, 'inputs docker-config and docker-config-json: give one, not both')
  t.notMatch(both.stdout, PASSWORD)
  const flag = await runAction({ paths: 'k8s', 'fail-on-unverified': 'yes' })
  t.equal(flag.code, 2)
  t.match(flag.stdout, 'input fail-on-unverified: "yes" is not true or false')
  const mode = await runAction({ paths: 'k8s', mode: 'audit' })
  t.equal(mode.code, 2)
  t.match(mode.stderr, 'pullguard: --mode: "audit" is not one of enforce, warn')
  const missing = await runAction({ paths: 'nope/' })
  t.equal(missing.code, 2)
  t.match(missing.stderr, 'nope/: cannot read (ENOENT)')
})
