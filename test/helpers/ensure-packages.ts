// Run by `npm test` before tap: the tests need two programs from Debian packages, the real registry
// (docker-registry) and promtool (prometheus, for the alert rules). As root with apt (CI containers)
// we install what is missing; anywhere else we say exactly what to install and stop, rather than
// letting the tests fail one by one with spawn errors.
import { spawnSync } from 'node:child_process'
import { findRegistryBinary, REGISTRY_PACKAGE_HINT } from './registry-binary.js'
import { findPromtool, PROMTOOL_PACKAGE_HINT } from './promtool.js'

interface Needed {
  pkg: string
  find(): string | null
  hint: string
}

const NEEDED: readonly Needed[] = [
  { pkg: 'docker-registry', find: findRegistryBinary, hint: `integration tests need the registry binary: ${REGISTRY_PACKAGE_HINT}` },
  { pkg: 'prometheus', find: findPromtool, hint: `the alert rule tests need promtool: ${PROMTOOL_PACKAGE_HINT}` },
]

function aptAvailable(): boolean {
  return spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0
}

function install(packages: readonly string[]): boolean {
  // noninteractive: a package's postinst must not wait for a prompt in CI. Both may try to start a
  // systemd service (on :5000, :9090); harmless, the tests use random ports. No recommends: the
  // prometheus package would bring its web console libraries and exporters.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env })
    if (r.status !== 0) return false
  }
  return true
}

function main(): number {
  let missing = NEEDED.filter((n) => n.find() === null)
  if (missing.length === 0) return 0
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (isRoot && aptAvailable()) {
    console.error(`not found: ${missing.map((n) => n.pkg).join(', ')}; installing the Debian package(s)`)
    install(missing.map((n) => n.pkg))
    missing = missing.filter((n) => n.find() === null)
  }
  for (const n of missing) console.error(n.hint)
  return missing.length === 0 ? 0 : 1
}

process.exitCode = main()
