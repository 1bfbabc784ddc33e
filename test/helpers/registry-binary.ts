// Where the CNCF distribution registry binary lives. The Debian package `docker-registry` (2.8.2)
// installs it as /usr/bin/docker-registry; a PATH lookup covers other installs of the same name.
// Kept apart from registry.ts so ensure-packages.ts can use it without importing the harness.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

export const REGISTRY_PACKAGE_HINT =
  'install the Debian package docker-registry: apt-get update && apt-get install -y docker-registry'

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function findRegistryBinary(): string | null {
  const candidates = [
    '/usr/bin/docker-registry',
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((d) => join(d, 'docker-registry')),
  ]
  return candidates.find(isExecutable) ?? null
}

export function requireRegistryBinary(): string {
  const found = findRegistryBinary()
  if (found === null) throw new Error(`docker-registry binary not found; ${REGISTRY_PACKAGE_HINT}`)
  return found
}
