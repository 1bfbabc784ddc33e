// Opens the pools of the file in argv[2] as serve does (files read and watched) and tells the
// parent the heap they added, after a full GC on each side (run with --expose-gc).
import { nodePools } from '../../src/commands/node-pools.js'
import { openNodePools } from '../../src/commands/pools.js'
import { createLogger } from '../../src/log/logger.js'
import { NO_NODE_FILES } from '../helpers/pools.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
gc()
const before = process.memoryUsage().heapUsed
const settings = nodePools(
  { value: process.argv[2], source: '--node-pools' },
  {
    node: NO_NODE_FILES,
    kubelet: { verificationPolicy: 'NeverVerifyPreloadedImages', allowlist: [] },
    platforms: [],
    given: [],
  },
  {},
)
const opened = openNodePools(
  settings,
  { registryCaPem: undefined, insecureRegistries: [], nodeExtraCaCertsPath: undefined, registryConcurrency: 8 },
  8000,
  { logger: createLogger('silent'), watch: true },
)
gc()
const bytes = process.memoryUsage().heapUsed - before
process.send?.({ bytes })
await opened.close()
process.exit(0)
