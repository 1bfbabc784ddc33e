// Where the CNCF distribution registry binary lives. The Debian package `docker-registry` (2.8.2)
// installs it as /usr/bin/docker-registry; a PATH lookup covers other installs of the same name.
// Kept apart from registry.ts so ensure-packages.ts can use it without importing the harness.
import { findProgram } from './find-program.js'

export const REGISTRY_PACKAGE_HINT =
  'install the Debian package docker-registry: apt-get update && apt-get install -y docker-registry'

export function findRegistryBinary(): string | null {
  return findProgram('docker-registry', ['/usr/bin/docker-registry'])
}

export function requireRegistryBinary(): string {
  const found = findRegistryBinary()
  if (found === null) throw new Error(`docker-registry binary not found; ${REGISTRY_PACKAGE_HINT}`)
  return found
}
