// For stand-in registry checkers of tests that have no signature policy: the two reads only a
// signature policy makes, answering that there is nothing to read.
import type { ImageChecker } from '../../src/registry/cached-checker.js'

export const NO_SIGNATURE_READS: Pick<ImageChecker, 'sigstoreAttachments' | 'indexInstances'> = {
  sigstoreAttachments: async () => ({ ok: true, attachments: [] }),
  indexInstances: async () => ({ ok: true, instances: [] }),
}
