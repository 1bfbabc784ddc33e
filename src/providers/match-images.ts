/**
 * A provider's `matchImages` (kubelet pluginProvider.isImageAllowed): the image's repository name
 * (`docker.io/library/nginx`, no tag or digest) is allowed when any pattern URLsMatch-es it: the
 * same Go url.Parse, exact port, one glob per host label and plain path-prefix rules as the keyring
 * (credentials/keyring.ts), a scheme in a pattern never matching.
 */
import { urlsMatch } from '../credentials/keyring.js'

export function imageAllowed(matchImages: readonly string[], repository: string): boolean {
  return matchImages.some((pattern) => urlsMatch(pattern, repository))
}
