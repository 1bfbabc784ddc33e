#!/usr/bin/env node
/**
 * The GitHub Action's entry (action.yml): its inputs (check/action-inputs.ts) become
 * `pullguard check … --output github`, which annotates each image's line and appends the report
 * to the job summary ($GITHUB_STEP_SUMMARY). The exit status is check's: the step fails when an
 * image will not pull (in enforce mode), or was not verified with fail-on-unverified.
 *
 * A docker config given as a secret's content is written to a file only this user can read in the
 * runner's temporary folder, named to check with --docker-config, and removed when the step ends.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionCheck, type ActionCheck } from './check/action-inputs.js'

let check: ActionCheck | undefined
try {
  check = actionCheck(process.env)
} catch (err) {
  // A workflow command, so the run's page shows it; messages name inputs, never a secret's value.
  process.stdout.write(`::error title=pullguard::${(err as Error).message}\n`)
  process.exitCode = 2
}
if (check !== undefined) {
  const argv = [...check.argv]
  if (check.dockerConfigJson !== undefined) {
    const file = join(process.env.RUNNER_TEMP || tmpdir(), `pullguard-docker-config-${process.pid}.json`)
    writeFileSync(file, check.dockerConfigJson, { mode: 0o600 })
    // On every way out, process.exit included.
    process.on('exit', () => rmSync(file, { force: true }))
    argv.push('--docker-config', file)
  }
  // The CLI, run as if called with these arguments: its errors, help and exit codes are the action's.
  process.argv.splice(2, process.argv.length, ...argv)
  await import('./cli.js')
}
