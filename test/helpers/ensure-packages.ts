// Programs some test tiers need from Debian packages (test/tiers/tiers.ts names them per tier): the
// real registry (docker-registry), promtool (prometheus, for the alert rules), runc (the node's
// container runtime, under containerd) and python3-venv (pip installs pre-commit for its hook test). As root with apt
// (CI containers) we install what is missing; anywhere else we say exactly what to install and stop,
// rather than letting the tests fail one by one with spawn errors.
//
// `node dist/test/helpers/ensure-packages.js [package ...]` does the same for the packages named
// (all of them when none is).
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { findRegistryBinary, REGISTRY_PACKAGE_HINT } from './registry-binary.js'
import { findPromtool, PROMTOOL_PACKAGE_HINT } from './promtool.js'
import { findRunc, RUNC_PACKAGE_HINT } from './runc.js'
import { findPythonVenv, PYTHON_VENV_PACKAGE_HINT } from './python.js'

interface Needed {
  find(): string | null
  hint: string
}

/** The Debian packages a tier can ask for, by name. */
export const PACKAGES = {
  'docker-registry': {
    find: findRegistryBinary,
    hint: `the integration and end-to-end tests need the registry binary: ${REGISTRY_PACKAGE_HINT}`,
  },
  prometheus: { find: findPromtool, hint: `the alert rule tests need promtool: ${PROMTOOL_PACKAGE_HINT}` },
  runc: { find: findRunc, hint: `the node tests run containers with runc: ${RUNC_PACKAGE_HINT}` },
  'python3-venv': { find: findPythonVenv, hint: PYTHON_VENV_PACKAGE_HINT },
} as const satisfies Record<string, Needed>
export type PackageName = keyof typeof PACKAGES

export function missingPackages(names: readonly PackageName[]): PackageName[] {
  return names.filter((name) => PACKAGES[name].find() === null)
}

/** Whether missing packages can be installed here: as root, with apt. */
export function canInstall(): boolean {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  return isRoot && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0
}

/** What to install, one line per package still missing. */
export function hints(names: readonly PackageName[]): string[] {
  return names.map((name) => PACKAGES[name].hint)
}

function aptGet(args: readonly string[], output: (text: string) => void): Promise<boolean> {
  // noninteractive: a package's postinst must not wait for a prompt in CI. Both may try to start a
  // systemd service (on :5000, :9090); harmless, the tests use random ports.
  return new Promise((resolve) => {
    const child = spawn('apt-get', [...args], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    // The test command stopped (Ctrl-C): apt stops with it.
    const stop = (): void => {
      child.kill('SIGTERM')
    }
    process.once('exit', stop)
    child.on('close', () => process.off('exit', stop))
    child.stdout.on('data', (c: Buffer) => output(c.toString('utf8')))
    child.stderr.on('data', (c: Buffer) => output(c.toString('utf8')))
    child.on('error', (err) => {
      output(`apt-get: ${err.message}\n`)
      resolve(false)
    })
    child.on('close', (code) => resolve(code === 0))
  })
}

/**
 * Installs the missing ones among `names` with apt (no recommends: the prometheus package would
 * bring its web console libraries and exporters). apt's output goes to `output`. Resolves with the
 * packages still missing afterwards.
 */
export async function installPackages(
  names: readonly PackageName[],
  output: (text: string) => void,
): Promise<PackageName[]> {
  const missing = missingPackages(names)
  if (missing.length === 0) return []
  if (await aptGet(['update'], output)) await aptGet(['install', '-y', '--no-install-recommends', ...missing], output)
  return missingPackages(missing)
}

async function main(args: readonly string[]): Promise<number> {
  const unknown = args.filter((a) => !(a in PACKAGES))
  if (unknown.length > 0) {
    console.error(`unknown package(s): ${unknown.join(', ')}; known: ${Object.keys(PACKAGES).join(', ')}`)
    return 2
  }
  const names = (args.length === 0 ? Object.keys(PACKAGES) : args) as PackageName[]
  let missing = missingPackages(names)
  if (missing.length === 0) return 0
  if (canInstall()) {
    console.error(`not found: ${missing.join(', ')}; installing the Debian package(s)`)
    missing = await installPackages(missing, (text) => process.stderr.write(text))
  }
  for (const line of hints(missing)) console.error(line)
  return missing.length === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1])
  process.exitCode = await main(process.argv.slice(2))
