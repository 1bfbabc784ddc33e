/**
 * What a manifest check can conclude. The `code` is stable: messages, metrics, policy and
 * tests all branch on it, never on text.
 */
export type NotFoundCode = 'TagNotFound' | 'DigestNotFound' | 'RepositoryNotFound'
export type DeniedCode = 'RepositoryNotFoundOrDenied' | 'AccessDenied'
export type UndeterminedCode = 'RateLimited' | 'RegistryUnreachable'
export type ReasonCode = 'Exists' | NotFoundCode | DeniedCode | UndeterminedCode

/** Why a registry gave no answer. */
/** `metadata-host`: pullguard refused to send a request to a cloud metadata or link-local address (metadata-hosts.ts). */
/** `mirror-auth`: a mirror or rewritten location refused the credentials pullguard can send (the node may hold others for it). */
export type UnreachableCause =
  | 'dns'
  | 'refused'
  | 'tls'
  | 'timeout'
  | 'reset'
  | '5xx'
  | 'bad-response'
  | 'metadata-host'
  | 'mirror-auth'

/** What one credential (or the anonymous attempt) got. Never carries a credential value. */
export interface Attempt {
  /** The credential's label, or `anonymous`. */
  credential: string
  code: ReasonCode
  detail: string
  /** HTTP status of the answer that decided this attempt, when there was one. */
  status?: number
  /** Error codes from the registry's JSON error body (`MANIFEST_UNKNOWN`, `DENIED`, …). */
  registryErrors?: string[]
  cause?: UnreachableCause
  retryAfterSeconds?: number
  /** With mirrors: the host this attempt asked. */
  host?: string
}

/**
 * One `platform` of an image index entry, as the registry wrote it (not normalized: policy/
 * platforms.ts compares platforms the way containerd does).
 */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

interface Base {
  /** Every attempt in the order made: one per credential (and host), or one anonymous. */
  attempts: Attempt[]
  /** With mirrors: the hosts asked, in order (each once). */
  asked?: string[]
}

export type CheckResult =
  | (Base & {
      code: 'Exists'
      digest: string
      mediaType: string
      decidedBy: string
      /** With mirrors: the host that answered. */
      answeredBy?: string
      /** For an index: the platforms of its entries. Absent for an image manifest, or when they could not be read. */
      platforms?: Platform[]
    })
  | (Base & { code: NotFoundCode | DeniedCode; detail: string })
  | (Base & { code: 'RateLimited'; detail: string; retryAfterSeconds?: number })
  | (Base & { code: 'RegistryUnreachable'; detail: string; cause: UnreachableCause })
