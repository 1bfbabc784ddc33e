// Run by `npm test` before tap: the integration tests need the real registry binary. As root with apt
// (CI containers) we install it; anywhere else we say exactly what to install and stop, rather than
// letting every integration test fail with a spawn error.
import { spawnSync } from 'node:child_process'
import { findRegistryBinary, REGISTRY_PACKAGE_HINT } from './registry-binary.js'

function aptAvailable(): boolean {
  return spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0
}

function install(): boolean {
  // noninteractive: the package's postinst must not wait for a prompt in CI. It may try to start a
  // systemd service on :5000; harmless, the tests use random ports.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update'], ['install', '-y', 'docker-registry']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env })
    if (r.status !== 0) return false
  }
  return true
}

function main(): number {
  if (findRegistryBinary() !== null) return 0
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (isRoot && aptAvailable()) {
    console.error('docker-registry not found; installing the Debian package docker-registry')
    if (install() && findRegistryBinary() !== null) return 0
  }
  console.error(`integration tests need the registry binary: ${REGISTRY_PACKAGE_HINT}`)
  return 1
}

process.exitCode = main()
