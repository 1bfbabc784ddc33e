/**
 * How the user called pullguard, for help and error lines: `kubectl pullguard` when kubectl runs
 * it as its plugin (the executable kubectl-pullguard), else `pullguard`.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

export const PROGRAM = basename(process.argv[1] ?? '').startsWith('kubectl-pullguard')
  ? 'kubectl pullguard'
  : 'pullguard'

/**
 * The package's version, from the package.json above dist/ (the image: dist/commands/program.js;
 * a checkout or npm package: dist/src/commands/program.js).
 */
export function programVersion(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'pullguard' && pkg.version !== undefined) return pkg.version
    } catch {
      // not there: the other layout
    }
  }
  return 'unknown'
}
