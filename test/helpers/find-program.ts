// A program from a Debian package: at the path the package installs it, or anywhere on PATH.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The first executable of `installed` (the package's paths), then of `name` on PATH; null if none. */
export function findProgram(name: string, installed: readonly string[]): string | null {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((d) => join(d, name))
  return [...installed, ...onPath].find(isExecutable) ?? null
}
