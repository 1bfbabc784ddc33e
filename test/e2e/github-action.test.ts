// The GitHub Action's composite steps run as the runner runs them, from a fresh checkout of this
// repository as `uses:` fetches it: each step's `run` with bash (`bash --noprofile --norc -eo
// pipefail`), in its working-directory, with ${{ inputs.* }} and ${{ github.action_path }} put in
// and GITHUB_ACTION_PATH set. The install step builds pullguard from the checkout with npm; the
// check step then annotates the workspace's manifests and writes the job summary.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { createTestCA } from '../helpers/pki.js'
import { startRegistry } from '../helpers/registry.js'
import { runLogged } from '../helpers/program.js'
import { seedOciManifest } from '../helpers/seed.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface Step {
  name: string
  shell: string
  run: string
  'working-directory'?: string
  env?: Record<string, string>
}

const run = runLogged

/** The expressions a composite action's steps may use here; any other is a test failure, not a guess. */
function expand(text: string, inputs: Record<string, string>, actionPath: string): string {
  return text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
    if (expr === 'github.action_path') return actionPath
    const m = /^inputs\.([\w-]+)$/.exec(expr)
    if (m !== null && m[1]! in inputs) return inputs[m[1]!]!
    throw new Error(`action.yml uses an expression this runner does not know: ${expr}`)
  })
}

const ca = await createTestCA()
t.teardown(() => ca.close())
const registry = await startRegistry({ ca, auth: { kind: 'none' } })
t.teardown(() => registry.close())
await seedOciManifest(registry, 'team/app', '1.0')

const work = mkdtempSync(join(tmpdir(), 'pullguard-action-run-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

t.test('uses: pullguard — the action installs itself from a fresh checkout and checks the workspace', async (t) => {
  // What `uses: owner/pullguard@ref` fetches: the repository's files at that commit, nothing built.
  const actionPath = join(work, 'action')
  const clone = await run('git', ['clone', '--quiet', '--depth', '1', `file://${ROOT}`, actionPath], work, process.env)
  t.equal(clone.code, 0, clone.out)
  const action = parse(readFileSync(join(actionPath, 'action.yml'), 'utf8'))
  const inputs: Record<string, string> = Object.fromEntries(
    Object.entries(action.inputs as Record<string, { default?: string }>).map(([k, v]) => [k, v.default ?? '']),
  )
  Object.assign(inputs, { paths: 'deploy/', mode: 'enforce' })

  const workspace = join(work, 'workspace')
  mkdirSync(join(workspace, 'deploy'), { recursive: true })
  writeFileSync(
    join(workspace, 'deploy', 'app.yaml'),
    [
      'apiVersion: v1',
      'kind: Pod',
      'metadata: {name: app}',
      'spec:',
      '  containers:',
      '    - name: app',
      `      image: ${registry.host}/team/app:1.1`,
      '',
    ].join('\n'),
  )
  const summary = join(work, 'step-summary.md')
  writeFileSync(summary, '')
  const runnerEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? work,
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTION_PATH: actionPath,
    GITHUB_WORKSPACE: workspace,
    GITHUB_STEP_SUMMARY: summary,
    RUNNER_TEMP: work,
    NODE_EXTRA_CA_CERTS: ca.caPath,
  }
  const outputs: string[] = []
  let last: { code: number | null; out: string } | undefined
  for (const step of action.runs.steps as Step[]) {
    t.equal(step.shell, 'bash', `${step.name}: bash`)
    const script = join(work, `step-${outputs.length}.sh`)
    writeFileSync(script, expand(step.run, inputs, actionPath))
    const env = { ...runnerEnv }
    for (const [k, v] of Object.entries(step.env ?? {})) env[k] = expand(v, inputs, actionPath)
    const cwd =
      step['working-directory'] === undefined ? workspace : expand(step['working-directory'], inputs, actionPath)
    last = await run('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], cwd, env)
    outputs.push(last.out)
    if (step !== action.runs.steps.at(-1)) t.equal(last.code, 0, `${step.name}: ${last.out}`)
  }
  t.equal(last?.code, 1, 'the step fails: an image will not pull')
  const out = outputs.at(-1) ?? ''
  t.match(
    out,
    /^::error file=deploy\/app\.yaml,line=7,col=7,title=pullguard TagNotFound%3A pod default\/app%2C container app::/m,
  )
  t.match(readFileSync(summary, 'utf8'), /^### pullguard: 1 of 1 images will not pull\n/)
})
