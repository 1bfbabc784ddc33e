/** A credential provider as its config declares it: decoded by config.ts, judged by validate.ts. */
import { urlsMatch } from '../credentials/keyring.js'

export interface TokenAttributes {
  serviceAccountTokenAudience: string
  cacheType: string
  requireServiceAccount: boolean | undefined
  requiredServiceAccountAnnotationKeys: string[]
  optionalServiceAccountAnnotationKeys: string[]
}

/** One provider as decoded (validate.ts decides whether it is usable). */
export interface ProviderSpec {
  name: string
  matchImages: string[]
  /** Milliseconds; undefined when the field is absent (a validation error). */
  defaultCacheDurationMs: number | undefined
  apiVersion: string
  args: string[]
  env: Array<{ name: string; value: string }>
  tokenAttributes: TokenAttributes | undefined
}

/**
 * A provider's `matchImages` (kubelet pluginProvider.isImageAllowed): the image's repository name
 * (`docker.io/library/nginx`, no tag or digest) is allowed when any pattern URLsMatch-es it: the
 * same Go url.Parse, exact port, one glob per host label and plain path-prefix rules as the keyring
 * (credentials/keyring.ts), a scheme in a pattern never matching.
 */
export function imageAllowed(matchImages: readonly string[], repository: string): boolean {
  return matchImages.some((pattern) => urlsMatch(pattern, repository))
}
