/** A credential provider as its config declares it: decoded by config.ts, judged by validate.ts. */

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
