#!/usr/bin/env node
/**
 * The GitHub Action's entry (action.yml): its inputs (check/action-inputs.ts) become
 * `pullguard check … --output github`, which annotates each image's line and appends the report
 * to the job summary ($GITHUB_STEP_SUMMARY). The exit status is check's: the step fails when an
 * image will not pull (in enforce mode), or was not verified with fail-on-unverified.
 *
 * A docker config given as a secret's content is written to a file only the runner's user can read,
 * in a new folder of the runner's temporary folder, named to check with --docker-config, and
 * removed when the step ends, or is cancelled.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionCheck, type ActionCheck } from './check/action-inputs.js'
import { data } from './check/workflow-commands.js'

let check: ActionCheck | undefined
try {
  check = actionCheck(process.env)
} catch (err) {
  // A workflow command, so the run's page shows it; messages name inputs, never a secret's value.
  process.stdout.write(`::error title=pullguard::${data((err as Error).message)}\n`)
  process.exitCode = 2
}
if (check !== undefined) {
  const argv = [...check.argv]
  if (check.dockerConfigJson !== undefined) {
    // A folder of its own (created 0700, never an existing one), and the file created new, 0600.
    const dir = mkdtempSync(join(process.env.RUNNER_TEMP || tmpdir(), 'pullguard-docker-config-'))
    const file = join(dir, 'config.json')
    writeFileSync(file, check.dockerConfigJson, { mode: 0o600, flag: 'wx' })
    const remove = (): void => rmSync(dir, { recursive: true, force: true })
    // On every way out: the end, process.exit, and a cancelled job's signal.
    process.on('exit', remove)
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.once(signal, () => {
        remove()
        process.exit(128 + (signal === 'SIGTERM' ? 15 : 2))
      })
    argv.push('--docker-config', file)
  }
  // The CLI, run as if called with these arguments: its errors, help and exit codes are the action's.
  process.argv.splice(2, process.argv.length, ...argv)
  await import('./cli.js')
}
