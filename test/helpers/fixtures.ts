// The project's own fixtures (test/fixtures/, copied from the shapes the Kubernetes API server sends
// and returns; its README says where each comes from). Tests run as compiled JavaScript in
// dist/test/…, so the directory is found from the repository root, never from beside the clone.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// dist/test/helpers/ → the repository root is three levels up.
export const FIXTURES_DIR = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url))

/** A fresh deep copy of a fixture, e.g. `loadFixture('api/secret-opaque.json')`. */
export function loadFixture<T = any>(relativePath: string): T {
  return JSON.parse(readFileSync(new URL(relativePath, `file://${FIXTURES_DIR}`), 'utf8')) as T
}
