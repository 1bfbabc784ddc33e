// A full garbage collection on demand, for tests that measure or search the heap: tap does not
// start test files with --expose-gc, so the flag is set at run time and gc() fetched from a context.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
export const gc = runInNewContext('gc') as () => void
