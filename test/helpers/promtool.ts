// promtool from the Debian package `prometheus` (2.42 in bookworm) checks and unit-tests the alert
// rules the chart ships; any promtool on PATH will do.
import { findProgram } from './find-program.js'

export const PROMTOOL_PACKAGE_HINT =
  'install the Debian package prometheus: apt-get update && apt-get install -y --no-install-recommends prometheus'

export function findPromtool(): string | null {
  return findProgram('promtool', ['/usr/bin/promtool'])
}

export function requirePromtool(): string {
  const found = findPromtool()
  if (found === null) throw new Error(`promtool not found; ${PROMTOOL_PACKAGE_HINT}`)
  return found
}
