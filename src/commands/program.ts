/**
 * How the user called pullguard, for help and error lines: `kubectl pullguard` when kubectl runs
 * it as its plugin (the executable kubectl-pullguard), else `pullguard`.
 */
import { basename } from 'node:path'

export const PROGRAM = basename(process.argv[1] ?? '').startsWith('kubectl-pullguard')
  ? 'kubectl pullguard'
  : 'pullguard'
