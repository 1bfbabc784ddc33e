// The real pre-commit (https://pre-commit.com), pinned, installed with pip into a venv in the cache
// outside the repository the first time a test needs it (PyPI is one of the package registries CI
// reaches), then reused.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { findPythonVenv, PYTHON_VENV_PACKAGE_HINT } from './python.js'

export const PRE_COMMIT_VERSION = '4.7.0'

function cacheDir(): string {
  const base =
    process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== ''
      ? process.env.XDG_CACHE_HOME
      : join(homedir(), '.cache')
  return join(base, 'pullguard', `pre-commit-${PRE_COMMIT_VERSION}`)
}

/** The pre-commit executable, installing it first when this machine has none of this version. */
export function ensurePreCommit(): string {
  const dir = cacheDir()
  const bin = join(dir, 'bin', 'pre-commit')
  // Written last: an install that stopped half-way is started again. (A venv cannot be moved into
  // place once made: its scripts name their python by path.)
  const complete = join(dir, '.complete')
  if (existsSync(complete)) return bin
  const python = findPythonVenv()
  if (python === null) throw new Error(PYTHON_VENV_PACKAGE_HINT)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  run(python, ['-m', 'venv', dir])
  run(join(dir, 'bin', 'pip'), [
    'install',
    '--quiet',
    '--disable-pip-version-check',
    `pre-commit==${PRE_COMMIT_VERSION}`,
  ])
  writeFileSync(complete, `pre-commit ${PRE_COMMIT_VERSION}\n`)
  return bin
}

function run(command: string, args: readonly string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' })
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout || r.error}`)
}
