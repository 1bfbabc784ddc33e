// promtool from the Debian package `prometheus` (2.42 in bookworm) checks and unit-tests the alert
// rules the chart ships; any promtool on PATH will do.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

export const PROMTOOL_PACKAGE_HINT =
  'install the Debian package prometheus: apt-get update && apt-get install -y --no-install-recommends prometheus'

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function findPromtool(): string | null {
  const candidates = [
    '/usr/bin/promtool',
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((d) => join(d, 'promtool')),
  ]
  return candidates.find(isExecutable) ?? null
}

export function requirePromtool(): string {
  const found = findPromtool()
  if (found === null) throw new Error(`promtool not found; ${PROMTOOL_PACKAGE_HINT}`)
  return found
}
