// python3 with venv, for tools the tests install with pip (pre-commit): Debian's python3-venv.
import { spawnSync } from 'node:child_process'
import { findProgram } from './find-program.js'

export const PYTHON_VENV_PACKAGE_HINT =
  'the pre-commit hook test installs pre-commit with pip into a venv: apt-get update && apt-get install -y python3-venv'

/** The python3 on PATH, else Debian's, that can make a venv with pip in it. */
export function findPythonVenv(): string | null {
  const candidates = [findProgram('python3', []), findProgram('python3', ['/usr/bin/python3'])]
  return (
    candidates.find(
      (python) =>
        python !== null && spawnSync(python, ['-c', 'import venv, ensurepip'], { stdio: 'ignore' }).status === 0,
    ) ?? null
  )
}
